"""Ours vs the reference implementations, side by side in one run (issue 7, first version).

Same config, same weights (one set of tensors shared by all three models), same inputs:
- `ours`: our TimeSformer with SDPA attention (the default),
- `ours-math`: the same model with `set_backend("math")`, the released code's eager attention,
- `hf`: Hugging Face `transformers`' `TimesformerForVideoClassification` (eager attention).
Inference only, on CPU, divided attention; clips/s is the median over repeats, the models
taking turns within each repeat so that load from other processes hits them alike.

Peak memory is the most bytes of tensors alive at once during one forward pass, counted by a
`TorchDispatchMode` at every ATen op (an allocation counts from the op that creates its storage
until the last tensor viewing it is freed). Weights and the input are shared and not counted.
Scratch memory inside one kernel (SDPA's per-thread blocks, oneDNN buffers) is invisible to it;
it is allocator-independent, unlike RSS, which glibc's free lists blur between models.

    python benchmarks/vs_reference.py --quick      # batch 1, fp32, 2 repeats: ~2 minutes
    python benchmarks/vs_reference.py              # batch 1 and 2, fp32 (+ bf16 autocast
                                                   # where oneDNN has bf16 kernels for this CPU)
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from tsfbench.models.convert import HF_ATTENTION, from_transformers
from tsfbench.models.timesformer import TimeSformer

HF_NAMES = {value: key for key, value in HF_ATTENTION.items()}
MATMULS = ("addmm", "mm", "bmm", "matmul", "linear", "baddbmm", "_scaled_dot_product", "conv")


class LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of storages created inside the mode and still referenced by a tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._storages: dict[int, list[int]] = {}  # data_ptr -> [bytes, live tensors]

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        inputs = {
            t.untyped_storage().data_ptr()
            for t in tree_leaves((args, kwargs))
            if isinstance(t, torch.Tensor)
        }
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self._track(tensor, inputs)
        return out

    def _track(self, tensor: torch.Tensor, inputs: set[int]) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key == 0:
            return
        entry = self._storages.get(key)
        if entry is None:
            if key in inputs:  # a view or in-place result on a tensor made outside the mode
                return
            entry = self._storages[key] = [storage.nbytes(), 0]
            self.live += entry[0]
            self.peak = max(self.peak, self.live)
        entry[1] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self._storages[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self._storages[key]


def build_models(
    attention: str, frames: int, size: int, num_classes: int = 400
) -> dict[str, torch.nn.Module]:
    """`hf`, `ours` and `ours-math` holding one shared set of random ViT-Base weights."""
    import transformers  # a benchmark dependency only

    config = transformers.TimesformerConfig(
        attention_type=HF_NAMES[attention], num_frames=frames, image_size=size, num_labels=400
    )
    with torch.device("meta"):  # skip both random inits: the weights are filled once below
        hf = transformers.TimesformerForVideoClassification(config)
        ours = TimeSformer(attention=attention, frames=frames, size=size, drop_path=0.0)
        reference = TimeSformer(attention=attention, frames=frames, size=size, drop_path=0.0)
    hf = hf.to_empty(device="cpu").eval()
    with torch.no_grad():
        for name, param in hf.named_parameters():
            param.normal_(0.0, 0.02)
            if "layernorm" in name and name.endswith("weight"):
                param.add_(1.0)
    state = from_transformers(hf.state_dict())
    ours.load_state_dict(state, strict=True, assign=True)
    reference.load_state_dict(state, strict=True, assign=True)
    reference.set_backend("math")
    return {"ours": ours.eval(), "ours-math": reference.eval(), "hf": hf}


def forward_fn(name: str, model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Logits from a (B, C, T, H, W) clip; `transformers` wants (B, T, C, H, W)."""
    if name == "hf":
        return lambda video: model(pixel_values=video.transpose(1, 2)).logits
    return model


@contextlib.contextmanager
def precision(dtype: str) -> Iterator[None]:
    if dtype == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


@torch.inference_mode()
def measure(
    models: dict[str, torch.nn.Module], video: torch.Tensor, dtype: str, repeats: int
) -> list[dict[str, Any]]:
    """One flat record per model: median seconds per batch, clips/s, peak live-tensor MiB."""
    fns = {name: forward_fn(name, model) for name, model in models.items()}
    outputs, seconds = {}, {name: [] for name in fns}
    with precision(dtype):
        for name, fn in fns.items():  # warm-up, and the logits to check agreement
            outputs[name] = fn(video).float()
        for _ in range(repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn(video)
                seconds[name].append(time.perf_counter() - start)
        peaks = {}
        for name, fn in fns.items():
            with LiveTensorBytes() as tracker:
                fn(video)
            peaks[name] = tracker.peak
    records = []
    for name in fns:
        median = statistics.median(seconds[name])
        records.append(
            {
                "impl": name,
                "batch": video.shape[0],
                "frames": video.shape[2],
                "size": video.shape[-1],
                "dtype": dtype,
                "seconds": median,
                "seconds_min": min(seconds[name]),
                "seconds_max": max(seconds[name]),
                "clips_per_s": video.shape[0] / median,
                "peak_mib": peaks[name] / 2**20,
                "max_abs_diff_vs_hf": (outputs[name] - outputs["hf"]).abs().max().item(),
            }
        )
    return records


@torch.inference_mode()
def profile(models: dict[str, torch.nn.Module], video: torch.Tensor, rows: int) -> None:
    """Where CPU time goes in one forward pass of `ours` and `hf`: top ops by self time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for name in ("ours", "hf"):
        fn = forward_fn(name, models[name])
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            fn(video)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        matmul = sum(e.self_cpu_time_total for e in events if any(m in e.key for m in MATMULS))
        print(
            f"\n{name}: self CPU {total / 1e6:.2f} s, {100 * (1 - matmul / total):.0f}% "
            "outside matrix multiplies / SDPA / conv"
        )
        print(events.table(sort_by="self_cpu_time_total", row_limit=rows))


def render(records: list[dict[str, Any]]) -> None:
    header = f"{'impl':<10}{'batch':>6}{'dtype':>6}{'s/batch':>9}{'min..max':>14}{'clips/s':>9}"
    header += f"{'peak MiB':>10}{'x hf speed':>11}{'x hf mem':>9}{'|d| vs hf':>11}"
    print(header)
    by_key = {(r["batch"], r["dtype"], r["impl"]): r for r in records}
    for r in records:
        hf = by_key[(r["batch"], r["dtype"], "hf")]
        print(
            f"{r['impl']:<10}{r['batch']:>6}{r['dtype']:>6}{r['seconds']:>9.3f}"
            f"{r['seconds_min']:>7.3f}..{r['seconds_max']:<5.3f}{r['clips_per_s']:>9.3f}{r['peak_mib']:>10.0f}"
            f"{r['clips_per_s'] / hf['clips_per_s']:>11.2f}{r['peak_mib'] / hf['peak_mib']:>9.2f}"
            f"{r['max_abs_diff_vs_hf']:>11.1e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 1, fp32, 2 repeats")
    parser.add_argument("--attention", default="divided", choices=sorted(HF_NAMES))
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", default="1,2")
    # Without native bf16 (no AVX512-BF16 / AMX) CPU autocast is several times slower than
    # fp32, and minutes per configuration at 8x224: asked for, not run by default.
    native_bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    parser.add_argument(
        "--dtypes", default="fp32,bf16" if native_bf16 else "fp32", help="bf16 = CPU autocast"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile-rows", type=int, default=12, help="0 skips the profile")
    args = parser.parse_args()
    if args.quick:
        args.batches, args.dtypes, args.repeats = "1", "fp32", 2

    torch.manual_seed(0)
    models = build_models(args.attention, args.frames, args.size)
    print(
        f"{args.attention} {args.frames}x{args.size}, ViT-Base, {torch.get_num_threads()} threads,"
        f" torch {torch.__version__}; peak = live tensor bytes (TorchDispatchMode), weights and"
        " input excluded"
    )
    records = []
    for batch in (int(b) for b in args.batches.split(",")):
        video = torch.randn(batch, 3, args.frames, args.size, args.size)
        for dtype in args.dtypes.split(","):
            records += measure(models, video, dtype, args.repeats)
    render(records)
    if args.profile_rows:
        profile(models, torch.randn(1, 3, args.frames, args.size, args.size), args.profile_rows)


if __name__ == "__main__":
    main()
