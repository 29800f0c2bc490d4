"""`tsfbench profile`: where a step's time goes, by the model's own parts, beside its FLOPs.

Parts are named as the peak-memory breakdown names them (`models/parts.py`, one vocabulary): a
TimeSformer's `patch_embed` (patch embedding with the positional and time tables), for each
attention step of its scheme (`time`, `space`, `joint`, `width`, `height`, `local`, `global`)
its projections `<step>.qkv` and `<step>.proj`, an extra step's `<step>.fc`, the attention
kernel `<step>.attend` (heads split and merged around SDPA or softmax(QK^T)V), the data
movement that forms and undoes its groups `<step>.grouping` (permutes, copies, index gathers),
and `<step>` alone, the step's own code (the class token's repeat and mean, the residual add);
`norm` (every LayerNorm), `block` (each block's own work: class token and patches joined, a
copy, and the MLP's residual add), `mlp`, `head`. A 3D CNN's parts are its top-level stages
(`peak_parts.part_names`: `stem`, `res2`..`res5`, `head`, or the module's name).
Training adds `<part> backward` (the autograd nodes of the part's forward ops, matched by their
sequence number) and `optimizer`; what no part claims is `other`, so shares sum to 100%.

How: each part's module opens a `torch.profiler.record_function` range named after its part (a
forward hook pair, registered only while profiling; the code outside modules, the embedding's
tables, each step and its grouping, is wrapped as the memory breakdown wraps it,
`peak_parts.label_timesformer_code`, and unwrapped after). Every profiler event gives its *self*
time to the nearest enclosing part range, so nested ranges are never counted twice. On the CPU
that is CPU self time, on CUDA the device (kernel) time of the ops, and a step's idle gaps are
`other`.
Each profiled step gives one sample per part; a part's time is the median of its samples with
the order-statistic interval (`stats.summarize`). Before profiling, the same steps are timed
without the profiler (`LatencyTracker`, as `latency` does) in the same process, so the profiler's
own overhead is measured, not guessed.

FLOPs per part are fvcore's multiply-adds on the meta device (`flops.analyze`, CNNs
`flops.cnn_macs`), split by the same module-to-part map: they sum to `tsfbench flops` exactly.
Training's backward parts count twice their forward's multiply-adds (the usual estimate: one
product for the input's gradient, one for the weights'), said in the notes.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, record_function
from torch.profiler import profile as torch_profile

from tsfbench.config import AUTO, ConfigError, ProbeSettings, RunConfig
from tsfbench.measure.contention import ContentionTracker, nvml_gpu
from tsfbench.measure.energy import gpu_uuid
from tsfbench.measure.flops import part_macs
from tsfbench.measure.latency import LatencyTracker
from tsfbench.measure.peak_parts import (
    forward_parts,
    label_timesformer_code,
    nearest_owner,
    part_names,
)
from tsfbench.measure.peaks import device_peak
from tsfbench.measure.workload import build_workload
from tsfbench.models.parts import BACKWARD, BLOCK, OTHER, PATCH_EMBED, step_part
from tsfbench.models.timesformer import TimeSformer
from tsfbench.quiet import native_stderr_silenced
from tsfbench.stats import summarize

STEP = "tsfbench.step"  # the range around each profiled step
EVALUATE = "autograd::engine::evaluate_function: "  # an autograd node running in backward
OPTIMIZER = "Optimizer."  # torch's own ranges around `step` and `zero_grad`
TOLERANCE = 0.05  # parts' times must sum to the latency within 5%
Progress = Callable[[str, int, int], None]  # (what runs, done, total)


# --- Parts: module -> range name -> part ---------------------------------------------------------


def module_ranges(model: nn.Module) -> dict[str, str]:
    """The range each module's forward opens while profiling: its part's name (the memory
    breakdown's, `peak_parts.part_names`), a block's `block <i>` (for `--per-block`).

    A TimeSformer's Attention module is its step's `attend` part: its own work, once its qkv and
    proj ranges are taken out, is the kernel and the head split and merge around it."""
    ranges = part_names(model)
    if isinstance(model, TimeSformer):
        ranges |= {f"blocks.{index}": f"{BLOCK} {index}" for index in range(len(model.blocks))}
    return ranges


def range_part(name: str) -> str:
    """The part a range's own time belongs to: a block's (`block 3`) the `block` part, any other
    range its own name."""
    return BLOCK if name.startswith(f"{BLOCK} ") else name


def range_names(model: nn.Module) -> set[str]:
    """Every range a profiled step of `model` opens: the hooks' and the wrapped code's."""
    names = set(module_ranges(model).values())
    if isinstance(model, TimeSformer):  # `peak_parts.label_timesformer_code`
        for step in model.blocks[0].steps:
            names |= {step_part(step.name), step_part(step.name, "grouping")}
        names.add(PATCH_EMBED)
    return names


def part_order(model: nn.Module, train: bool) -> list[str]:
    """Every part of `model`, in the order of the forward pass (then backward, optimizer, other)."""
    forward = forward_parts(model)
    if not train:
        return [*forward, OTHER]
    return [*forward, *(part + BACKWARD for part in forward), "optimizer", OTHER]


def parameter_parts(model: nn.Module) -> dict[str, str]:
    """Each parameter's part: that of the deepest mapped module holding it (a TimeSformer's own
    class token and positional tables are `patch_embed`'s)."""
    ranges = module_ranges(model)
    parts = {}
    for name, _ in model.named_parameters():
        owner = nearest_owner(name.rpartition(".")[0], ranges)
        if owner is not None:
            parts[name] = range_part(ranges[owner])
        else:
            parts[name] = PATCH_EMBED if isinstance(model, TimeSformer) else OTHER
    return parts


@contextlib.contextmanager
def hooked_ranges(model: nn.Module) -> Iterator[None]:
    """While inside: every mapped module's forward runs in its named range (hooks removed after,
    so a model that is not profiled carries none)."""
    ranges = module_ranges(model)
    open_scopes: list[Any] = []  # forward calls nest, so the last range opened closes first
    handles = []

    # Under torch.compile the hooks run eagerly between compiled pieces (dynamo would drop the
    # ranges and guard on the scope objects, recompiling every step)
    def enter(label: str) -> Callable[..., None]:
        @torch.compiler.disable
        def hook(module: nn.Module, args: Any) -> None:
            scope = record_function(label)
            scope.__enter__()
            open_scopes.append(scope)

        return hook

    @torch.compiler.disable
    def leave(module: nn.Module, args: Any, output: Any) -> None:
        open_scopes.pop().__exit__(None, None, None)

    for name, module in model.named_modules():
        if name in ranges:
            handles.append(module.register_forward_pre_hook(enter(ranges[name])))
            handles.append(module.register_forward_hook(leave))
    restore = (
        label_timesformer_code(model, record_function) if isinstance(model, TimeSformer) else None
    )
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        if restore is not None:
            restore()


# --- Attribution of profiler events to parts -----------------------------------------------------


def attribute(events: Sequence[Any], names: set[str], device_time: bool) -> list[dict[str, float]]:
    """Per profiled step (a `STEP` range), milliseconds per part.

    Each event's self time (CPU, or device with `device_time`) goes to the nearest enclosing
    range in `names`; an autograd node to its forward op's part + ` backward` (same sequence
    number); torch's optimizer ranges to `optimizer`; the rest to `other`, together with the
    step's time that no event covers (on CUDA: the device's idle gaps)."""
    steps = sorted((e for e in events if e.name == STEP), key=lambda e: e.time_range.start)
    totals = [Counter() for _ in steps]
    forward_parts: dict[int, str] = {}  # forward op's sequence number -> its part

    def own(event: Any) -> float:
        return event.self_device_time_total if device_time else event.self_cpu_time_total

    def visit(event: Any, part: str, backward: bool, counter: Counter[str]) -> None:
        name = event.name
        if name in names:
            part = range_part(name) + (BACKWARD if backward else "")
        elif name.startswith(EVALUATE):
            backward = True
            forward = forward_parts.get(event.sequence_nr, OTHER)
            part = OTHER if forward == OTHER else forward + BACKWARD
        elif name.startswith(OPTIMIZER):
            part = "optimizer"
        elif not backward and event.sequence_nr >= 0 and part != OTHER:
            forward_parts.setdefault(event.sequence_nr, part)
        counter[part] += own(event)
        for child in event.cpu_children:
            visit(child, part, backward, counter)

    starts = [step.time_range.start for step in steps]
    # host events only: a range's device-side copy (a GPU user annotation) would count twice
    host = [e for e in events if e.cpu_parent is None and e.device_type == DeviceType.CPU]
    roots = sorted(host, key=lambda e: e.time_range.start)
    for root in roots:
        # events of other threads (CUDA's autograd threads) belong to the step they start in
        index = next(
            (i for i in reversed(range(len(steps))) if starts[i] <= root.time_range.start), None
        )
        if index is not None and root.time_range.start <= steps[index].time_range.end:
            visit(root, OTHER, False, totals[index])
    per_step = []
    for step, counter in zip(steps, totals, strict=True):
        counter[OTHER] += step.cpu_time_total - sum(counter.values())  # 0 on the CPU
        per_step.append({part: us / 1e3 for part, us in counter.items()})
    return per_step


# --- The profile ---------------------------------------------------------------------------------


def check_per_block(model: nn.Module, per_block: Sequence[str]) -> None:
    """`--per-block` names parts of this model."""
    known = [p for p in part_order(model, False) if p != OTHER]
    unknown = [part for part in per_block if part not in known]
    if unknown:
        raise ConfigError(
            f"per_block: unknown part {unknown[0]!r}; accepted: {', '.join(known)}, all"
        )


def check_trace(trace: str | Path | None) -> None:
    """`--trace` is a file in an existing folder (checked before anything is built)."""
    if trace is not None and Path(trace).is_dir():
        raise ConfigError(f"trace: {str(trace)!r} is a folder; give a file name, e.g. trace.json")
    if trace is not None and not Path(trace).parent.is_dir():
        raise ConfigError(
            f"trace: no folder {str(Path(trace).parent)!r}; create it or write elsewhere"
        )


def block_index(event: Any) -> int | None:
    """The block an event runs in (its nearest `block <i>` range), None outside the blocks."""
    while event is not None:
        if event.name.startswith(f"{BLOCK} "):
            return int(event.name.split()[1])
        event = event.cpu_parent
    return None


def per_block_times(
    events: Sequence[Any], parts: Sequence[str], names: set[str], device_time: bool
) -> list[dict[str, Any]]:
    """Median ms per (block, part) for the parts asked for (forward ranges, self time)."""
    samples: dict[tuple[int, str], list[float]] = {}
    steps = [e for e in events if e.name == STEP]
    for step in steps:
        seen: Counter[tuple[int, str]] = Counter()
        stack = [step]
        while stack:
            event = stack.pop()
            stack.extend(event.cpu_children)
            if event.name not in names:
                continue
            part = range_part(event.name)
            if part not in parts or (index := block_index(event)) is None:
                continue
            # the range's own time: it less the part ranges nested in it
            inner = sum(
                (c.device_time_total if device_time else c.cpu_time_total)
                for c in event.cpu_children
                if c.name in names
            )
            total = event.device_time_total if device_time else event.cpu_time_total
            seen[(index, part)] += (total - inner) / 1e3
        for key, ms in seen.items():
            samples.setdefault(key, []).append(ms)
    return [
        {"block": index, "part": part, "time_ms": statistics.median(values)}
        for (index, part), values in sorted(samples.items())
    ]


def profile(
    config: RunConfig,
    settings: ProbeSettings,
    overrides: Mapping[str, object] | None = None,
    *,
    per_block: Sequence[str] | None = None,
    trace: str | Path | None = None,
    memory: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Time, FLOPs and throughput per part of `config`'s step under `settings` (module doc).

    `per_block`: parts (or ["all"]) also given per block; `trace`: a Chrome trace file;
    `memory`: the predicted peak by category (`peak_parts.peak_breakdown`, where present)."""
    device = torch.device(settings.target)
    train = settings.mode == "train"
    clock = Stopwatch()
    check_trace(trace)
    if AUTO in (settings.iterations, settings.warmup):
        raise ConfigError(
            "iterations, warmup: profile takes numbers (it profiles as many steps as it times)"
        )
    work = build_workload(config, settings, device, overrides)
    model = work.model
    all_parts = [p for p in part_order(model, False) if p != OTHER]
    blocks = all_parts if per_block and list(per_block) == ["all"] else list(per_block or [])
    check_per_block(model, blocks)
    notes: list[str] = list(work.notes)
    total_steps = settings.warmup + 2 * settings.iterations + 2
    done = 0

    def advance(what: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(what, done, total_steps)

    clock.lap("build")
    for _ in range(settings.warmup):
        work.step()
        advance("warm-up")
    clock.lap("warm-up")
    latency = LatencyTracker(device)  # the same steps as `latency` times them, no profiler
    gpu, on_gpu = nvml_gpu(gpu_uuid(device)), device.type == "cuda"
    # what else ran: a busy machine is said, not hidden
    timed_window = ContentionTracker(gpu=gpu, on_gpu=on_gpu)
    with timed_window.track():
        for _ in range(settings.iterations):
            with latency.track():
                work.step()
            advance("timing without the profiler")
    latency_ms = latency.times_ms()
    clock.lap("timed steps")

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    names = range_names(model)
    with hooked_ranges(model):
        if settings.compile:  # the hooks break the graph: its pieces compile here, untimed
            for _ in range(settings.warmup):
                work.step()
        prof = torch_profile(activities=activities)
        profiled_window = ContentionTracker(gpu=gpu, on_gpu=on_gpu)
        with profiled_window.track(), profiling(prof):
            for _ in range(settings.iterations):
                with record_function(STEP):
                    work.step()
                    if cuda:
                        torch.cuda.synchronize(device)
                advance("profiling")
    clock.lap("profiled steps")
    events = prof.events()
    per_step = attribute(events, names, device_time=cuda)
    if trace is not None:
        write_trace(prof, Path(trace))
    clock.lap("attribution")
    advance("counting FLOPs")

    per_view, forward_macs = part_macs(config, overrides)
    macs = {part: value * settings.batch for part, value in forward_macs.items()}
    if train:  # backward: twice the forward's multiply-adds (see the module's docstring)
        macs |= {part + BACKWARD: 2 * value for part, value in macs.items() if part != OTHER}
        notes.append("backward FLOPs: 2x the forward part's multiply-adds (estimate)")

    clock.lap("flops")
    advance("measuring the peak")
    if isinstance(model, TimeSformer):  # the GEMMs of every token: qkv, fc1, fc2
        peak, peak_how = device_peak(
            device, settings.dtype, tokens(config, settings), model.head.in_features
        )
    else:  # a CNN's convolutions are GEMMs too, of other shapes: a middling one stands for them
        shapes = "GEMMs standing for the CNN's convolutions"
        peak, peak_how = device_peak(device, settings.dtype, 2048, 512, shapes)
    if settings.compile:
        notes.append(
            "torch.compile: the parts' hooks split the compiled graph at every part (the profiled "
            "step is the split one, the latency the whole graph's); a range inside a compiled "
            "piece is dropped and its time counts to the part around it"
        )
    sizes = dict(model.named_parameters())
    param_counts: Counter[str] = Counter()
    for name, part in parameter_parts(model).items():
        param_counts[part] += sizes[name].numel()
    clock.lap("peak")
    order = [p for p in part_order(model, train) if any(p in s for s in per_step) or p in macs]
    rows = part_rows(order, per_step, macs, param_counts, peak)
    total_ms = [sum(step.values()) for step in per_step]
    latency_summary, profiled = summarize(latency_ms), summarize(total_ms)
    parts_sum = sum(row["time_ms"] for row in rows)
    windows = {"timed": timed_window.contention, "profiled": profiled_window.contention}
    for window, reading in windows.items():
        if reading.contended:
            notes.append(f"contended while the {window} steps ran: {reading.contention}")
    if abs(parts_sum / profiled["median_ms"] - 1) > TOLERANCE:
        # Each step's parts sum to its time exactly; their medians sum to the median step only
        # when the steps are alike. Apart, some steps were slowed in one part or another.
        notes.append(
            f"the parts' medians sum to {100 * (parts_sum / profiled['median_ms'] - 1):+.0f}% of "
            "the profiled step's median: steps varied (a busy machine?); rerun on a quiet one"
        )
    result: dict[str, Any] = {
        **config.as_dict(),
        **settings.as_dict(),
        "overrides": dict(overrides or {}),
        "time_source": "CUDA kernel time (profiler device events)" if cuda else "CPU self time",
        "latency": latency_summary,
        "profiled_step": profiled,
        "profiler_overhead": profiled["median_ms"] / latency_summary["median_ms"] - 1,
        "parts_sum_ms": parts_sum,
        "parts_sum_vs_latency": parts_sum / latency_summary["median_ms"] - 1,
        "flops_per_view": per_view,
        "counter": "fvcore" if isinstance(model, TimeSformer) else "torch.utils.flop_counter",
        "peak_flops": peak,
        "peak_how": peak_how,
        "parts": rows,
        "notes": notes,
        "contention": {window: reading.as_record() for window, reading in windows.items()},
        "contended": any(reading.contended for reading in windows.values()),
        "seconds": clock.laps,  # where profile's own time went: steps, attribution, FLOPs...
    }
    if blocks:
        result["per_block"] = per_block_times(events, blocks, names, cuda)
    if memory:
        result["memory"] = memory_rows(config, settings, overrides, notes)
    return result


def part_rows(
    order: Sequence[str],
    per_step: Sequence[Mapping[str, float]],
    macs: Mapping[str, int],
    params: Mapping[str, int],
    peak: float | None,
) -> list[dict[str, Any]]:
    """One row per part: its time statistics over the steps, share, FLOPs, rate, % of peak."""
    times = {part: summarize([step.get(part, 0.0) for step in per_step]) for part in order}
    total_time = sum(t["median_ms"] for t in times.values()) or 1.0
    total_macs = sum(macs.values()) or 1
    rows = []
    for part in order:
        median = times[part]["median_ms"]
        part_macs = macs.get(part, 0)
        time_share, flop_share = median / total_time, part_macs / total_macs
        rate = 2 * part_macs / (median / 1e3) if median > 0 and part_macs else None
        rows.append(
            {
                "part": part,
                "params": params.get(part, 0),
                "time_ms": median,
                "ci_low_ms": times[part]["ci_low_ms"],
                "ci_high_ms": times[part]["ci_high_ms"],
                "time_share": time_share,
                "macs": part_macs,
                "flop_share": flop_share,
                "gflops_per_s": None if rate is None else rate / 1e9,
                "peak_share": None if rate is None or not peak else rate / peak,
                "time_per_flop": time_share / flop_share if flop_share > 0 else None,
            }
        )
    return rows


class Stopwatch:
    """Seconds per stage of a profile (what it costs beyond its steps), as `laps`."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self.last
        self.last = now


def tokens(config: RunConfig, settings: ProbeSettings) -> int:
    """Tokens of one step: patches of every frame and the class token, of every clip."""
    return settings.batch * (config.frames * (config.size // 16) ** 2 + 1)


@contextlib.contextmanager
def profiling(prof: torch_profile) -> Iterator[None]:
    """`prof` running while inside, its start and stop kept off the terminal: kineto writes its
    own lines on fd 2 there (`tsfbench.quiet`). Only those two calls are silenced, so an error
    or warning of the profiled steps still shows."""
    with native_stderr_silenced():
        prof.start()
    try:
        yield
    finally:
        with native_stderr_silenced():
            prof.stop()


def write_trace(prof: Any, path: Path) -> None:
    """The profiler's Chrome / Perfetto trace at `path`, written whole or not at all."""
    scratch = path.with_name(f".{path.name}.tmp")
    prof.export_chrome_trace(str(scratch))
    os.replace(scratch, path)


def memory_rows(
    config: RunConfig,
    settings: ProbeSettings,
    overrides: Mapping[str, object] | None,
    notes: list[str],
) -> list[dict[str, Any]] | None:
    """The predicted peak by category, where `measure.peak_parts` exists (issue 23, item 4)."""
    try:
        from tsfbench.measure.peak_parts import peak_breakdown  # type: ignore[import-not-found]
    except ImportError:
        notes.append("memory by category: needs tsfbench.measure.peak_parts, not in this build")
        return None
    return peak_breakdown(config, settings, overrides=overrides)


def within_tolerance(result: Mapping[str, Any], tolerance: float = TOLERANCE) -> bool:
    """Whether the parts' times sum to within `tolerance` of the latency median (acceptance)."""
    return abs(result["parts_sum_vs_latency"]) <= tolerance
