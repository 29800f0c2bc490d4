"""Ours vs the reference implementations, side by side in one run (issue 7).

Same config, same weights, same inputs:
- `ours`: our TimeSformer with SDPA attention (the default),
- `ours-math`: the same model with `set_backend("math")`, the released code's eager attention,
- `ours-compiled` (with `--compile`): `ours` under `torch.compile`, as `tsfbench latency --compile`,
- `hf`: Hugging Face `transformers`' `TimesformerForVideoClassification` (eager attention),
  behind `convert.TransformersClip`, which takes our (B, C, T, H, W) clip.
Each is measured by the package's code, as `tsfbench latency` measures a model: `build_workload`
makes the step (inference, or forward + cross-entropy + backward + SGD with momentum),
`LatencyTracker` times it, `isolate.classify` tells out of memory (an `oom` row) from a bug
(raised). For every mode, dtype (fp32, or bf16 autocast), batch and clip (frames x crop), they
take turns within each repeat, in an order that rotates from one repeat to the next, so that load
from other processes and the allocator's state hit them alike; s/step is the median.

Peak memory: what the second step (after the warm-up, whose logits or loss are compared) adds at
its peak to what was allocated before it (weights, input, momentum; gradients count): on CUDA
`MemoryTracker`'s `max_allocated` less the bytes allocated before, on CPU the peak of the memory
prediction's storage counter `LiveBytes` over the real step (it applies a free after the next
op, as the prediction does: 5-14 MiB above an exact count at 8x224). TF32 is off: fp32 is fp32.
Agreement: the largest logit difference from `hf` (inference), the loss difference of the first
train step. `faults`: the median minor page faults of a timed step. With glibc's default malloc an
implementation that frees large buffers often gets them back as fresh pages, which varies from run
to run; `MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=4294967296` leaves compute alone.

On CPU, each fp32 inference configuration gets a roofline: its FLOPs (the counter of `tsfbench
flops`, x 2) at the best fp32 GEMM rate of the model's own shapes measured here, each
implementation's share of that rate, and the most any exact fp32 implementation could gain over
hf. Then a profile of one forward of each: the share of time outside matrix multiplies, and the
ceiling that follows (hf's time over ours' time in matrix multiplies). On CUDA, the model FLOP
utilisation of `ours`, divided 8x224, batch 32, bf16 inference: FLOPs from `count_flops`
(multiply-adds x 2) / time / the GPU's dense bf16 peak.

    python benchmarks/vs_reference.py --quick      # CPU acceptance: batch 1, fp32, 8x224 infer
    python benchmarks/vs_reference.py              # CPU: 8x224 infer, batch 1, fp32 (+bf16 with
                                                   # native CPU bf16); CUDA: infer and train, fp32
                                                   # and bf16, batch 1 and 8, 8x224, 16x448, 96x224
    python benchmarks/vs_reference.py --depth 1 --clips 2x32 --modes infer,train --repeats 1
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.isolate import classify
from tsfbench.measure.latency import LatencyTracker
from tsfbench.measure.memory import MemoryTracker
from tsfbench.measure.peaks import datasheet_peak, gemm_peak
from tsfbench.measure.predict import LiveBytes
from tsfbench.measure.workload import Workload, build_workload
from tsfbench.models.convert import HF_ATTENTION, TransformersClip, from_transformers, randomize_
from tsfbench.models.timesformer import TimeSformer
from tsfbench.store import atomic_write

HF_NAMES = {value: key for key, value in HF_ATTENTION.items()}
MATMULS = ("addmm", "mm", "bmm", "matmul", "linear", "baddbmm", "_scaled_dot_product", "conv")
MFU_TARGET = 0.45


def build_models(
    attention: str,
    frames: int,
    size: int,
    depth: int = 12,
    device: str = "cpu",
    compiled: bool = False,
) -> dict[str, torch.nn.Module]:
    """`ours`, `ours-math` (`ours-compiled`) and `hf` holding one set of random ViT-Base weights."""
    import transformers  # a benchmark dependency only

    config = transformers.TimesformerConfig(
        attention_type=HF_NAMES[attention],
        num_frames=frames,
        image_size=size,
        num_labels=400,
        num_hidden_layers=depth,
    )
    with torch.device("meta"):  # skip both random inits: the weights are filled once below
        hf = transformers.TimesformerForVideoClassification(config)
        kwargs = {"attention": attention, "frames": frames, "size": size, "depth": depth}
        ours = TimeSformer(**kwargs, drop_path=0.0)
        reference = TimeSformer(**kwargs, drop_path=0.0)
    hf = randomize_(hf.to_empty(device=device))
    state = from_transformers(hf.state_dict())
    ours.load_state_dict(state, strict=True, assign=True)
    reference.load_state_dict(state, strict=True, assign=True)
    reference.set_backend("math")
    models = {"ours": ours.eval(), "ours-math": reference.eval()}
    if compiled:  # the same module: its workload compiles it
        models["ours-compiled"] = ours
    return models | {"hf": TransformersClip(hf).eval()}


def step_peak(work: Workload) -> int:
    """Peak bytes one step adds to what is allocated before it (see the module docstring)."""
    device = work.inputs[0].device
    if device.type == "cuda":
        before = torch.cuda.memory_allocated(device)
        tracker = MemoryTracker(device, monitor=False)
        with tracker.track():
            work.step()
        return (tracker.memory.max_allocated or 0) - before
    counter = LiveBytes()
    state = work.optimizer.state.values() if work.optimizer is not None else ()
    held = [*work.model.parameters(), *work.model.buffers(), *work.inputs]
    counter.add([*held, *(tensor for entry in state for tensor in entry.values())])
    before = counter.current
    with counter:
        work.step()
    return counter.peak - before


def warm_up(
    config: RunConfig,
    settings: ProbeSettings,
    model: torch.nn.Module,
    video: torch.Tensor,
    labels: torch.Tensor,
) -> tuple[Workload, torch.Tensor, int | None]:
    """The workload on `video` (and `labels`); the logits (or loss) of its first step, to compare
    with hf; the peak memory of its second step."""
    work = build_workload(config, settings, video.device, model=model)
    for held, value in zip(work.inputs, (video, labels), strict=False):  # each made its own
        held.copy_(value)
    seen: list[torch.Tensor] = []
    hook = work.model.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().float()))
    try:
        work.step()
    finally:  # an OOM leaves the model to the next dtype (inference shares it): no stray hook
        hook.remove()
    output = seen[0] if work.optimizer is None else F.cross_entropy(seen[0], work.inputs[1])
    # The CPU counter is a dispatch mode, which compiled code cannot run under
    untracked = video.device.type == "cpu" and settings.compile
    return work, output, None if untracked else step_peak(work)


def minor_faults() -> int:
    """Page faults so far: one per fresh page mapped for a large temporary buffer, most of the
    run-to-run spread on CPU, which is why each row shows them."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def measure(
    models: dict[str, torch.nn.Module],
    video: torch.Tensor,
    mode: str,
    dtype: str,
    repeats: int,
) -> list[dict[str, Any]]:
    """One flat record per implementation: median seconds per step, clips/s, peak MiB."""
    device = video.device
    batch, frames, size = video.shape[0], video.shape[2], video.shape[-1]
    base = {"mode": mode, "dtype": dtype, "batch": batch, "frames": frames, "size": size}
    if mode == "train":  # each trains its own copy, all starting from the same weights
        models = {name: copy.deepcopy(model) for name, model in models.items()}
    labels = torch.randint(0, 400, (batch,), generator=torch.Generator().manual_seed(0))
    config = RunConfig(frames=frames, size=size)  # the clip's shape; the models are given
    works: dict[str, Workload] = {}
    outputs, peaks, failed = {}, {}, {}
    for name, model in models.items():
        settings = ProbeSettings(
            mode=mode, dtype=dtype, batch=batch, compile=name == "ours-compiled", device=device.type
        )
        try:
            works[name], outputs[name], peaks[name] = warm_up(
                config, settings, model, video, labels
            )
        except Exception as error:
            if classify(error).status != "oom":
                raise
            failed[name] = "oom"
        if name in failed and device.type == "cuda":  # the traceback, and its tensors, are gone
            torch.cuda.empty_cache()
    names = list(works)
    timers = {name: LatencyTracker(device) for name in names}
    faults: dict[str, list[int]] = {name: [] for name in names}
    for repeat in range(repeats):  # the order rotates, so none always follows the same one
        shift = repeat % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            before = minor_faults()
            with timers[name].track():
                works[name].step()
            faults[name].append(minor_faults() - before)
    records = []
    for name in models:
        if name in failed:
            records.append({**base, "impl": name, "status": failed[name]})
            continue
        seconds = [ms / 1e3 for ms in timers[name].times_ms()]
        latency = timers[name].latency(batch)
        diff = None
        if "hf" in outputs:
            diff = (outputs[name] - outputs["hf"]).abs().max().item()
        records.append(
            {
                **base,
                "impl": name,
                "status": "ok",
                "seconds": latency.median_ms / 1e3,
                "seconds_min": min(seconds),
                "seconds_max": max(seconds),
                "minor_faults": statistics.median(faults[name]),
                "clips_per_s": latency.throughput,
                "peak_mib": None if peaks[name] is None else peaks[name] / 2**20,
                "max_abs_diff_vs_hf": diff,
            }
        )
    del works, models
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return records


def gpu_peak_flops() -> tuple[str, float | None]:
    """This GPU's name and its dense bf16 peak, None where `peaks.BF16_PEAK` does not list it."""
    name = torch.cuda.get_device_name()
    return name, datasheet_peak(name, "bf16")


def model_flop_utilisation(device: str, repeats: int, compiled: bool) -> dict[str, Any]:
    """MFU of `ours` (or `ours-compiled`): divided 8x224, batch 32, bf16 inference (issue 7's
    target: >= 45%)."""
    from tsfbench.config import RunConfig
    from tsfbench.measure.flops import count_flops

    batch = 32
    macs = count_flops(RunConfig(attention="divided", frames=8, size=224))["flops_per_view"]
    name = "ours-compiled" if compiled else "ours"
    model = build_models("divided", 8, 224, device=device)["ours"]
    video = torch.randn(batch, 3, 8, 224, 224, device=device)
    (record,) = measure({name: model}, video, "infer", "bf16", repeats)
    gpu, peak = gpu_peak_flops()
    achieved = 2 * macs * batch / record["seconds"]
    return {
        "gpu": gpu,
        "impl": name,
        "achieved_tflops": achieved / 1e12,
        "peak_tflops": peak / 1e12 if peak else None,
        "mfu": achieved / peak if peak else None,
        "target": MFU_TARGET,
        **record,
    }


@torch.inference_mode()
def profile(models: dict[str, torch.nn.Module], video: torch.Tensor, rows: int) -> dict[str, Any]:
    """Where CPU time goes in one forward pass of `ours` and `hf`: top ops by self time, and
    the most `ours` could gain: hf's time over ours' time in matrix multiplies / SDPA alone."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    seconds = {}
    for name in ("ours", "hf"):
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            models[name](video)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events) / 1e6
        matmul = sum(e.self_cpu_time_total for e in events if any(m in e.key for m in MATMULS))
        seconds[name] = {"total": total, "matmul": matmul / 1e6}
        print(
            f"\n{name}: self CPU {total:.2f} s, {100 * (1 - matmul / 1e6 / total):.0f}% "
            "outside matrix multiplies / SDPA / conv"
        )
        print(events.table(sort_by="self_cpu_time_total", row_limit=rows))
    hf_total, ours_matmul = seconds["hf"]["total"], seconds["ours"]["matmul"]
    ceiling = hf_total / ours_matmul
    print(
        f"ceiling: hf's {hf_total:.2f} s over ours' {ours_matmul:.2f} s in matrix multiplies / "
        f"SDPA: with zero time anywhere else ours would be {ceiling:.2f}x hf"
    )
    return {"self_cpu_s": seconds, "ceiling_x_hf": ceiling}


def model_macs(attention: str, frames: int, size: int, depth: int, batch: int) -> int:
    """Multiply-adds of one inference step (`tsfbench flops`' counter, on the meta device)."""
    from tsfbench.measure.flops import analyze

    with torch.device("meta"):
        model = TimeSformer(attention=attention, frames=frames, size=size, depth=depth)
        clip = torch.empty(batch, 3, frames, size, size)
    return int(analyze(model, (clip,)).total())


def roofline(records: list[dict[str, Any]], attention: str, depth: int) -> list[dict[str, Any]]:
    """For each CPU fp32 inference configuration: its FLOPs at `gemm_peak`, each
    implementation's share of that rate, and the most any exact implementation could gain."""
    rows = []
    configs = {(r["frames"], r["size"], r["batch"]) for r in records}
    for frames, size, batch in sorted(configs):
        runs = {
            r["impl"]: r["seconds"]
            for r in records
            if (r["frames"], r["size"], r["batch"]) == (frames, size, batch)
            and (r["mode"], r["dtype"], r["status"]) == ("infer", "fp32", "ok")
        }
        if "hf" not in runs:
            continue
        flops = 2 * model_macs(attention, frames, size, depth, batch)
        peak = gemm_peak(batch * (frames * (size // 16) ** 2 + 1))
        least = flops / peak
        shares = {name: least / seconds for name, seconds in runs.items()}
        row = {"frames": frames, "size": size, "batch": batch, "gflop": flops / 1e9,
               "gemm_peak_gflops": peak / 1e9, "seconds_at_peak": least,
               "share_of_peak": shares, "max_x_hf": runs["hf"] / least}  # fmt: skip
        listed = ", ".join(f"{name} {100 * share:.0f}%" for name, share in shares.items())
        gflop = f"{row['gflop']:,.0f}" if row["gflop"] >= 10 else f"{row['gflop']:.3g}"
        print(
            f"\nroofline, {frames}x{size} batch {batch}: {gflop} GFLOP at the best fp32 "
            f"GEMM rate of its shapes here ({row['gemm_peak_gflops']:.0f} GFLOP/s) take "
            f"{least:.3g} s; share of that rate: {listed}; no exact fp32 implementation can be "
            f"faster than {row['max_x_hf']:.2f}x hf on this machine"
        )
        rows.append(row)
    return rows


def render(records: list[dict[str, Any]]) -> None:
    header = f"{'mode':<6}{'clip':>7}{'batch':>6}{'dtype':>6} {'impl':<14}{'s/step':>9}"
    header += f"{'min..max':>16}{'clips/s':>9}{'peak MiB':>10}{'x hf speed':>11}{'x hf mem':>9}"
    print(header + f"{'|d| vs hf':>11}{'faults':>9}")
    key = lambda r: (r["mode"], r["frames"], r["size"], r["batch"], r["dtype"])  # noqa: E731
    hf = {key(r): r for r in records if r["impl"] == "hf" and r["status"] == "ok"}
    for r in records:
        clip = f"{r['frames']}x{r['size']}"
        line = f"{r['mode']:<6}{clip:>7}{r['batch']:>6}{r['dtype']:>6} {r['impl']:<14}"
        if r["status"] != "ok":
            print(line + f"{r['status']:>9}")
            continue
        ref = hf.get(key(r))
        speed = f"{r['clips_per_s'] / ref['clips_per_s']:.2f}" if ref else "-"
        peak = "-" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
        mem = "-"
        if ref and ref["peak_mib"] and r["peak_mib"] is not None:
            mem = f"{r['peak_mib'] / ref['peak_mib']:.2f}"
        diff = "-" if r["max_abs_diff_vs_hf"] is None else f"{r['max_abs_diff_vs_hf']:.1e}"
        spread = f"{r['seconds_min']:.3f}..{r['seconds_max']:.3f}"
        print(
            line + f"{r['seconds']:>9.3f}{spread:>16}{r['clips_per_s']:>9.3f}"
            f"{peak:>10}{speed:>11}{mem:>9}{diff:>11}{r['minor_faults']:>9.0f}"
        )


def parse_clips(text: str) -> list[tuple[int, int]]:
    clips = []
    for item in text.split(","):
        frames, _, size = item.partition("x")
        clips.append((int(frames), int(size)))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU: batch 1, fp32, 8x224 infer")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--attention", default="divided", choices=sorted(HF_NAMES))
    parser.add_argument("--modes", help="infer,train [CPU: infer; CUDA: both]")
    parser.add_argument("--dtypes", help="fp32,bf16 [CPU: fp32, bf16 too with native bf16]")
    parser.add_argument("--batches", help="[CPU: 1; CUDA: 1,8]")
    parser.add_argument("--clips", help="FRAMESxSIZE list [CPU: 8x224; CUDA: 8x224,16x448,96x224]")
    parser.add_argument("--depth", type=int, default=12, help="blocks (1 for a quick check)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mfu", action=argparse.BooleanOptionalAction, default=None,
                        help="model FLOP utilisation (default: on with CUDA)")  # fmt: skip
    parser.add_argument("--compile", action="store_true", help="add ours under torch.compile")
    parser.add_argument("--profile-rows", type=int, default=12, help="CPU profile; 0 skips it")
    parser.add_argument("--json", metavar="PATH", help="also write every record here")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = ("cuda" if cuda else "cpu") if args.device == "auto" else args.device
    on_gpu = device == "cuda"
    # Without native bf16 (no AVX512-BF16 / AMX) CPU autocast is several times slower than
    # fp32, and minutes per configuration at 8x224: asked for, not run by default.
    native_bf16 = on_gpu or torch.ops.mkldnn._is_mkldnn_bf16_supported()
    modes = args.modes or ("infer,train" if on_gpu else "infer")
    dtypes = args.dtypes or ("fp32,bf16" if native_bf16 else "fp32")
    batches = args.batches or ("1,8" if on_gpu else "1")
    clips = args.clips or ("8x224,16x448,96x224" if on_gpu else "8x224")
    if args.quick:
        modes, dtypes, batches, clips, args.repeats = "infer", "fp32", "1", "8x224", 3
    if on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    torch.manual_seed(0)
    where = torch.cuda.get_device_name() if on_gpu else f"CPU, {torch.get_num_threads()} threads"
    if on_gpu:
        peak_kind = "max_memory_allocated during a step, beyond what was allocated before"
    else:
        peak_kind = "live tensor bytes (LiveBytes), weights, input and momentum excluded"
    print(
        f"{args.attention}, ViT-Base x {args.depth} blocks, {where}, torch {torch.__version__}; "
        f"peak = {peak_kind}"
    )
    records: list[dict[str, Any]] = []
    for frames, size in parse_clips(clips):
        models = build_models(args.attention, frames, size, args.depth, device, args.compile)
        for batch in (int(b) for b in batches.split(",")):
            video = torch.randn(batch, 3, frames, size, size, device=device)
            for mode in modes.split(","):
                for dtype in dtypes.split(","):
                    records += measure(models, video, mode, dtype, args.repeats)
        del models
    render(records)
    payload: dict[str, Any] = {"device": where, "torch": torch.__version__, "records": records}
    if args.mfu if args.mfu is not None else on_gpu:
        if not on_gpu:
            parser.error("--mfu needs CUDA")
        mfu = model_flop_utilisation(device, args.repeats, args.compile)
        payload["mfu"] = mfu
        share = (
            f"{100 * mfu['mfu']:.1f}% of peak"
            if mfu["mfu"] is not None
            else ("unknown peak (its exact name is not in peaks.BF16_PEAK; a MIG slice has none)")
        )
        print(
            f"\nMFU, {mfu['impl']}, divided 8x224, batch 32, bf16 inference on {mfu['gpu']}: "
            f"{mfu['achieved_tflops']:.0f} TFLOP/s, {share} (target {100 * MFU_TARGET:.0f}%)"
        )
    if not on_gpu:
        payload["roofline"] = roofline(records, args.attention, args.depth)
    if args.profile_rows and not on_gpu:
        frames, size = parse_clips(clips)[0]
        models = build_models(args.attention, frames, size, args.depth, device)
        video = torch.randn(1, 3, frames, size, size)
        payload["profile"] = profile(models, video, args.profile_rows)
    if args.json:
        atomic_write(Path(args.json), json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
