"""Measure configurations: one flat record each (config, settings, figures, status, environment).

`measure` runs one configuration (in a child process by default, see `isolate`), `sweep` runs a
list of them with a progress callback, and `largest_fitting` answers "what is the largest clip
each attention scheme can run here?". Every record has the same keys, whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.environment import environment, environment_summary
from tsfbench.measure.canary import Canary
from tsfbench.measure.contention import (
    RETRIES,
    Contention,
    ContentionTracker,
    idle_state,
    nvml_gpu,
    wait_for_quiet,
)
from tsfbench.measure.energy import Energy, EnergyTracker, gpu_uuid
from tsfbench.measure.isolate import Outcome, classify, run_isolated, start_method, start_server
from tsfbench.measure.latency import AUTO, Latency, timed, warm_up
from tsfbench.measure.memory import Memory, MemoryTracker, predict_peak
from tsfbench.measure.workload import build_workload
from tsfbench.models.registry import get_preset
from tsfbench.store import Status

ConfigProgress = Callable[[int, int, RunConfig, dict[str, Any]], None]
# What a child imports besides this module, once in the fork server instead of in every child:
# the optimisers import torch._dynamo when they are built (1.5 s of CPU per training run).
PRELOAD = (__name__, "torch._dynamo")
FIGURES = (
    *Latency(()).as_record(),
    *Contention().as_record(),
    "remeasured",
    *Memory().as_record(),
    *Energy().as_record(),
)


def probe(
    config: RunConfig, settings: ProbeSettings, overrides: Mapping[str, object] | None = None
) -> dict[str, Any]:
    """Latency, memory and energy of `config` in this process (raises on OOM or error).

    The memory tracker spans the warm-up too: the first steps hold the peaks that matter
    (compilation, the optimiser's first momentum buffers). The timed window is read for other
    work on the machine (`contention`); with `iterations = "auto"` a contended window is timed
    again once the machine is quiet (at most RETRIES times), else the row says it was contended.
    """
    device = torch.device(settings.target)
    if device.type == "cuda" and device.index is not None:  # CUDA events time the current one
        torch.cuda.set_device(device)
    work = build_workload(config, settings, device, overrides)
    memory = MemoryTracker(device, settings.interval)
    auto = settings.iterations == AUTO
    canary = Canary(device)
    with memory.track():
        warmed = warm_up(work.step, settings.warmup, device, settings.max_warmup)
        gpu = nvml_gpu(gpu_uuid(device))
        for attempt in range(RETRIES + 1 if auto else 1):
            if attempt:
                wait_for_quiet(settings.max_time)
            canary.reset()
            contention = ContentionTracker(gpu=gpu, on_gpu=device.type == "cuda")
            energy = EnergyTracker(device)
            with energy.track(clips=0), contention.track():
                times, reason = timed(
                    work.step, settings.iterations, device,
                    target_ci=settings.target_ci, max_time=settings.max_time, canary=canary,
                )  # fmt: skip
            if not contention.contention.contended:
                break
    notes = "; ".join(work.notes) or None
    latency = Latency(
        tuple(times), tuple(warmed), settings.batch, reason, notes,
        canary_ms=tuple(canary.readings_ms()), canary_kind=canary.kind,
        canary_steps=tuple(canary.positions()),
    )  # fmt: skip
    clips = settings.batch * len(times)
    joules = energy.energy.joules
    return {
        **latency.as_record(),
        **contention.contention.as_record(),
        "remeasured": attempt,
        **memory.memory.as_record(),
        **replace(
            energy.energy, joules_per_clip=None if joules is None else joules / clips
        ).as_record(),
    }


def miniature(
    config: RunConfig, settings: ProbeSettings
) -> tuple[RunConfig, ProbeSettings, dict[str, object]]:
    """The same step on a tiny input (a TimeSformer: one block, one frame, 16 px): run before a
    CPU memory cap, it maps what any step needs (lazy imports, thread stacks, malloc arenas), so
    the cap is left for the configuration itself. A 3D CNN keeps its layers (they are its
    architecture) and gets the smallest clip it accepts."""
    warmup = 1 if settings.compile else 0  # a compiled step is never timed cold (ProbeSettings)
    small = replace(settings, batch=1, warmup=warmup, iterations=1, memory_limit=None)
    preset = get_preset(config.model)
    if not preset.has_attention:
        frames = max(preset.min_frames, preset.frame_multiple)
        return replace(config, frames=frames, size=max(preset.min_size, 32)), small, {}
    return replace(config, frames=1, size=16), small, {"depth": 1, "dim": 64, "heads": 4}


def predicted(
    config: RunConfig, settings: ProbeSettings, overrides: Mapping[str, object] | None = None
) -> dict[str, Any]:
    """Predicted peak bytes, and whether it fits the memory limit (or the GPU) if known.

    Runs in the sweep's parent, so nothing here may create a CUDA context (see
    `predict.no_device_context`): the GPU's size comes from NVML.
    """
    from tsfbench.measure.predict import gpu_total_memory

    try:
        peak: int | None = predict_peak(config, settings, overrides=overrides)
    except Exception:  # an op without a fake kernel: no prediction, never a failed sweep
        peak = None
    capacity = settings.memory_limit
    target = torch.device(settings.target)
    if capacity is None and target.type == "cuda":
        capacity = gpu_total_memory(target.index or 0)
    fits = None if peak is None or capacity is None else peak <= capacity
    return {"predicted_peak_bytes": peak, "predicted_fits": fits}


def measure(
    config: RunConfig,
    settings: ProbeSettings,
    *,
    overrides: Mapping[str, object] | None = None,
    isolate: bool = True,
    predict_only: bool = False,
    env: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """One flat record for `config`: its fields, the settings, figures, prediction, status."""
    record: dict[str, Any] = {**config.as_dict(), **settings.as_dict()}
    record |= predicted(config, settings, overrides)
    if predict_only:
        outcome = Outcome(Status.PREDICTED)
    elif isolate:
        # The miniature step only maps what a step needs before a memory cap; without a cap
        # the warm-up steps do that (its monitor and step cost up to a few seconds).
        limited = settings.memory_limit is not None
        outcome = run_isolated(
            probe,
            config,
            settings,
            dict(overrides or {}),
            memory_limit=settings.memory_limit,
            device=settings.target,
            timeout=timeout,
            prepare=(probe, miniature(config, settings)) if limited else None,
            preload=PRELOAD,
        )
    else:
        try:
            outcome = Outcome(Status.OK, None, probe(config, settings, overrides))
        except Exception as exc:
            outcome = classify(exc)
    # figures a failed run did not produce are None; settings of the same name are kept
    record |= {key: None for key in FIGURES if key not in record} | (outcome.value or {})
    record |= {"status": outcome.status, "error": outcome.error}
    # the context a GPU cap left out: with the prediction, which clips a card of the cap runs
    record["memory_cap_context_bytes"] = outcome.context
    if outcome.note:  # how the run differs from what was asked (a cap above the card)
        record["notes"] = "; ".join(filter(None, [record.get("notes"), outcome.note]))
    return record | environment_summary(env)


def sweep(
    configs: Sequence[RunConfig],
    settings: ProbeSettings,
    *,
    overrides: Mapping[str, object] | None = None,
    progress: ConfigProgress | None = None,
    predict_only: bool = False,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """`measure` each configuration in its own child process; failures are rows, not stops.

    `progress(done, total, config, record)` is called after each configuration.
    """
    if not predict_only and configs and start_method() == "forkserver":
        start_server(PRELOAD)  # its imports overlap the first prediction
    env = environment() | ({} if predict_only else idle_state())  # the machine before the run
    records = []
    for index, config in enumerate(configs):
        record = measure(
            config,
            settings,
            overrides=overrides,
            predict_only=predict_only,
            env=env,
            timeout=timeout,
        )
        records.append(record)
        if progress is not None:
            progress(index + 1, len(configs), config, record)
    return records


def clip_size(record: Mapping[str, Any]) -> tuple[int, int, int]:
    """Order configurations by patch tokens per batch, then frames, then size."""
    tokens = record["frames"] * (record["size"] // 16) ** 2 * record.get("batch", 1)
    return tokens, record["frames"], record["size"]


def largest_fitting(
    records: Sequence[Mapping[str, Any]], *, predicted: bool = False
) -> dict[str, Mapping[str, Any] | None]:
    """Per attention scheme, the largest configuration that ran (`ok`) or, with `predicted`,
    that is predicted to fit; None for a scheme where nothing fits."""
    best: dict[str, Mapping[str, Any] | None] = {}
    for record in records:
        best.setdefault(record["attention"], None)
        fits = record.get("predicted_fits") if predicted else record["status"] == Status.OK
        current = best[record["attention"]]
        if fits and (current is None or clip_size(record) > clip_size(current)):
            best[record["attention"]] = record
    return best
