"""The memory prediction: the same bytes as the slow reference, and no CUDA context for it.

The reference (`benchmarks/predict_reference.py`) is the prediction as it was: a scan of every
live storage after every op, over two full steps. The fast one counts frees where they happen and
runs the second step only; on every configuration here the two must agree to the byte.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from types import ModuleType

import pytest
import torch
from torch._subclasses import fake_tensor

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.predict import LiveBytes, predict_peak
from tsfbench.measure.sweep import predicted
from tsfbench.models import timesformer


@pytest.fixture(scope="module")
def reference(load_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return load_benchmark("predict_reference")


def _forget_lattice_indices() -> None:
    """`local_global` caches its index tensors process-wide (one grouping object per scheme):
    each prediction must start without them, as it would in a fresh process."""
    for steps in timesformer.SCHEMES.values():
        for step in steps:
            if isinstance(step.grouping, timesformer.LatticeGrouping):
                step.grouping._cache.clear()


@pytest.fixture(autouse=True)
def _fresh_lattice_indices() -> None:
    _forget_lattice_indices()


def _both(
    reference: ModuleType, config: RunConfig, settings: ProbeSettings, overrides: dict
) -> tuple[int, int]:
    slow = reference.predict_peak(config, settings, "cpu", overrides)
    _forget_lattice_indices()
    return slow, predict_peak(config, settings, "cpu", overrides)


GRID = [  # (attention, mode, backend, dtype, checkpointing, batch, drop_path)
    (attention, mode, backend, dtype, False, 1, 0.0)
    for attention in ("joint", "divided", "space", "axial", "local_global")
    for mode in ("infer", "train")
    for backend in ("sdpa", "math")
    for dtype in ("fp32", "bf16")
] + [
    ("divided", "train", "sdpa", "fp32", True, 2, 0.1),  # checkpointing, stochastic depth
    ("joint", "train", "sdpa", "bf16", True, 1, 0.0),
    ("divided", "train", "math", "fp16", False, 2, 0.1),
    ("joint", "infer", "sdpa", "fp16", False, 3, 0.0),
]


@pytest.mark.parametrize(
    ("attention", "mode", "backend", "dtype", "checkpointing", "batch", "drop_path"), GRID
)
def test_prediction_is_byte_identical_to_the_scanning_reference(
    reference: ModuleType,
    attention: str,
    mode: str,
    backend: str,
    dtype: str,
    checkpointing: bool,
    batch: int,
    drop_path: float,
    tiny: dict[str, object],
) -> None:
    config = RunConfig(attention=attention, frames=4, size=32)
    settings = ProbeSettings(
        mode=mode, backend=backend, dtype=dtype, checkpointing=checkpointing, batch=batch
    )
    slow, fast = _both(reference, config, settings, {**tiny, "drop_path": drop_path})
    assert fast == slow


def test_a_full_size_inference_is_byte_identical_to_the_reference(reference: ModuleType) -> None:
    config = RunConfig(attention="divided", frames=8, size=224)
    slow, fast = _both(reference, config, ProbeSettings(mode="infer"), {})
    assert fast == slow


def test_a_model_that_keeps_tensors_across_steps_gets_both_steps(
    reference: ModuleType, tiny: dict[str, object]
) -> None:
    """local_global's index tensors outlive the first step: the second step alone would start
    without them, so the prediction runs both steps and still matches the reference."""
    config = RunConfig(attention="local_global", frames=4, size=64)
    slow, fast = _both(reference, config, ProbeSettings(mode="train", batch=2), tiny)
    assert fast == slow


def test_a_free_is_counted_after_the_next_op() -> None:
    tracker = LiveBytes()
    with tracker:
        a = torch.ones(1000)  # 4000 bytes
        b = a * 2  # 8000 alive
        del a  # freed, but still counted at the next op's peak (as a scan after it would)
        c = b + 1  # 12000 at this op, 8000 after it
        del b, c
        torch.ones(10)
    assert tracker.peak == 12000
    assert tracker.current == 40 and tracker.freed == 40 and not tracker.live


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("the prediction initialised CUDA")


def test_a_cuda_prediction_never_initialises_cuda(
    monkeypatch: pytest.MonkeyPatch, tiny: dict[str, object]
) -> None:
    """A GPU machine, as far as the prediction can see one from here: settings that target CUDA,
    and FakeTensorMode's `init_gpu_context` live (as in torch <= 2.9 and after pytorch#196338),
    where it allocates a real tensor. Any CUDA initialisation fails the test."""
    with monkeypatch.context() as patch:  # only to accept the settings: no CUDA runs here
        patch.setattr(torch.cuda, "is_available", lambda: True)
        settings = ProbeSettings(device="cuda")
    assert settings.target == "cuda"
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda *_: "cuda")
    fake_tensor.init_gpu_context.cache_clear()
    monkeypatch.setattr(torch.cuda, "_lazy_init", _refuse)
    monkeypatch.setattr(torch.cuda, "init", _refuse)
    config = RunConfig(attention="divided", frames=2, size=32)
    assert predict_peak(config, settings, overrides=tiny) > 0
    record = predicted(config, settings, tiny)
    assert record["predicted_peak_bytes"] is not None and record["predicted_peak_bytes"] > 0
    assert record["predicted_fits"] is None  # no NVML here: the GPU's size is unknown


@pytest.mark.gpu
def test_predicting_for_the_gpu_leaves_no_cuda_context() -> None:
    """In a fresh process (pytest's may hold one already): a full-size training prediction in
    bf16, then the primary context of the GPU must still not exist."""
    code = (
        "import torch\n"
        "from tsfbench.config import ProbeSettings, RunConfig\n"
        "from tsfbench.measure.sweep import predicted\n"
        "settings = ProbeSettings(mode='train', dtype='bf16', device='cuda')\n"
        "record = predicted(RunConfig(attention='divided', frames=8, size=224), settings)\n"
        "assert record['predicted_peak_bytes'] > 2**30, record\n"
        "torch.cuda.init()\n"
        "print(torch._C._cuda_hasPrimaryContext(0))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"


def test_local_global_predicts_training_after_inference_in_one_process() -> None:
    """A sweep predicts every configuration in one process: the lattice indices cached by an
    earlier (fake, inference) prediction must not break a later training one."""
    config = RunConfig(attention="local_global", frames=3, size=48)
    tiny = {"depth": 2, "dim": 64, "heads": 4}
    infer = predict_peak(config, ProbeSettings(mode="infer", device="cpu"), "cpu", tiny)
    train = predict_peak(config, ProbeSettings(mode="train", device="cpu"), "cpu", tiny)
    assert train > infer > 0
