"""The measured step on CUDA: forced SDPA kernels, checkpointing with each of them, autocast,
torch.compile, and a memory limit that ends in `oom` while smaller runs still fit."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from tsfbench.config import ProbeSettings, RunConfig, parse_memory
from tsfbench.measure.sweep import measure, probe
from tsfbench.measure.workload import TORCH_DTYPES, build_workload
from tsfbench.models.build import build_model, example_input

pytestmark = pytest.mark.gpu
CLIP = RunConfig(attention="divided", frames=2, size=32)
FUSED = {
    "flash": "_scaled_dot_product_flash_attention",
    "efficient": "_scaled_dot_product_efficient_attention",
    "cudnn": "_scaled_dot_product_cudnn_attention",
}
# Every kernel at every dtype it supports on an H100 / H200 (flash: fp16 and bf16 only)
KERNEL_DTYPES = [
    ("sdpa", "fp32"), ("sdpa", "bf16"), ("math", "fp32"), ("math", "bf16"), ("math", "fp16"),
    ("efficient", "fp32"), ("efficient", "bf16"), ("efficient", "fp16"),
    ("flash", "bf16"), ("flash", "fp16"),
]  # fmt: skip


def ops_of(step: object) -> set[str]:
    """The names of the ATen ops one call of `step` dispatched."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()  # type: ignore[operator]
        torch.cuda.synchronize()
    return {event.key for event in prof.key_averages()}


@pytest.mark.parametrize("mode", ["infer", "train"])
@pytest.mark.parametrize(
    ("backend", "dtype"),
    [("flash", "bf16"), ("flash", "fp16"), ("efficient", "fp32"), ("efficient", "bf16")],
)
def test_a_forced_kernel_is_the_one_that_runs(
    backend: str, dtype: str, mode: str, tiny: dict[str, object]
) -> None:
    settings = ProbeSettings(mode=mode, dtype=dtype, backend=backend, batch=2)
    work = build_workload(CLIP, settings, "cuda", tiny)
    names = ops_of(work.step)
    assert any(FUSED[backend] in name for name in names), sorted(names)
    others = [op for kernel, op in FUSED.items() if kernel != backend]
    assert not [name for name in names if any(op in name for op in others)]


def test_math_runs_no_fused_kernel(tiny: dict[str, object]) -> None:
    settings = ProbeSettings(mode="train", dtype="bf16", backend="math", batch=2)
    names = ops_of(build_workload(CLIP, settings, "cuda", tiny).step)
    assert not [name for name in names if any(op in name for op in FUSED.values())]


def test_flash_in_fp32_is_an_error_row_not_a_crash(tiny: dict[str, object]) -> None:
    record = measure(CLIP, ProbeSettings(backend="flash"), overrides=tiny, isolate=False, env={})
    assert record["status"] == "error" and record["error"]
    assert record["latency_median_ms"] is None


@pytest.mark.parametrize(("backend", "dtype"), KERNEL_DTYPES)
def test_activation_checkpointing_trains_with_every_kernel(
    backend: str, dtype: str, tiny: dict[str, object]
) -> None:
    """The recomputed forward must use the forward's kernel (else torch's CheckpointError)."""
    settings = ProbeSettings(
        mode="train", dtype=dtype, backend=backend, checkpointing=True, batch=2, warmup=1,
        iterations=2,
    )  # fmt: skip
    figures = probe(CLIP, settings, tiny)  # raises on any error
    assert figures["latency_median_ms"] > 0 and figures["max_allocated_bytes"] > 0


def test_activation_checkpointing_lowers_the_peak_on_the_gpu() -> None:
    config = RunConfig(attention="divided", frames=8, size=128)
    overrides = {"depth": 4, "dim": 64, "heads": 4}
    plain = ProbeSettings(mode="train", batch=8, warmup=1, iterations=1)
    peaks = {
        checkpointing: probe(config, replace(plain, checkpointing=checkpointing), overrides)[
            "max_allocated_bytes"
        ]
        for checkpointing in (False, True)
    }
    assert peaks[True] < 0.7 * peaks[False], peaks


@pytest.mark.parametrize("mode", ["infer", "train"])
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_autocast_runs_the_model_in_half_precision_with_fp32_weights(
    dtype: str, mode: str, tiny: dict[str, object]
) -> None:
    work = build_workload(CLIP, ProbeSettings(mode=mode, dtype=dtype, batch=2), "cuda", tiny)
    logits: list[torch.dtype] = []
    work.model.head.register_forward_hook(lambda module, args, out: logits.append(out.dtype))
    before = [p.detach().clone() for p in work.model.parameters()]
    for _ in range(10):  # fp16: the gradient scaler skips the first steps if they overflow
        work.step()
    torch.cuda.synchronize()
    assert set(logits) == {TORCH_DTYPES[dtype]}
    assert all(p.dtype == torch.float32 and p.is_cuda for p in work.model.parameters())
    if mode == "train":
        after = list(work.model.parameters())
        assert all(torch.isfinite(p).all() for p in after)
        assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_a_compiled_model_is_measured(tiny: dict[str, object]) -> None:
    settings = ProbeSettings(compile=True, batch=2, warmup=2, iterations=3)
    figures = probe(CLIP, settings, tiny)
    assert figures["latency_median_ms"] > 0 and figures["iterations"] == 3


@torch.inference_mode()
def test_the_compiled_model_gives_the_eager_logits(tiny: dict[str, object]) -> None:
    model = build_model(CLIP, "cuda", **tiny).eval()
    clip = example_input(CLIP, 2, "cuda")
    expected = model(clip)
    compiled = torch.compile(model, fullgraph=True)
    torch.testing.assert_close(compiled(clip), expected, rtol=1e-4, atol=1e-4)


def test_a_memory_limit_makes_a_run_that_fits_the_card_oom(tiny: dict[str, object]) -> None:
    """The limit emulates a smaller card: the large run fits the real one, not the limit, and
    a small run still fits the limit (an `error` here means the limit itself failed)."""
    large = RunConfig(attention="joint", frames=16, size=224)  # 3137 tokens: 1.3 GB a matrix
    limit = parse_memory("1GiB")
    free = ProbeSettings(mode="train", batch=8, backend="math", warmup=1, iterations=1)
    capped = replace(free, memory_limit=limit)
    unlimited = measure(large, free, overrides=tiny, env={})
    assert unlimited["status"] == "ok", unlimited["error"]
    assert unlimited["max_allocated_bytes"] > 2 * limit
    assert unlimited["predicted_fits"] is True
    oom = measure(large, capped, overrides=tiny, env={})
    assert oom["status"] == "oom", oom["error"]
    assert oom["predicted_fits"] is False
    small = measure(CLIP, capped, overrides=tiny, env={})
    assert small["status"] == "ok", small["error"]
    assert small["max_allocated_bytes"] < limit
