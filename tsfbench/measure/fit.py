"""`tsfbench fit`: the largest clip, crop and batch that fit a budget, from predictions.

Each (configuration, axis) is a `fit.search`, a bisection that asks for one predicted peak at a
time. Every search runs at once: their pending predictions go to a pool of worker processes
(forked from the fork server, torch imported once), and a prediction already made answers any
search that asks for the same step again: the fixed point every axis starts from, the same
clip on another card (a peak does not depend on the card, only whether it fits). No prediction
runs in this process, and a prediction creates no CUDA context (`predict.no_device_context`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.errors import ConfigError
from tsfbench.fit import (
    DEFAULT_RESERVE,
    DEFAULT_RESERVE_SOURCE,
    Boundary,
    Budget,
    FitSettings,
    Span,
    search,
    span,
)
from tsfbench.store import Status

# A step's prediction is the same whatever the card: (config, run settings, overrides)
Job = tuple[RunConfig, ProbeSettings, tuple[tuple[str, object], ...]]
Progress = Callable[[int, int, str], None]  # (predictions done, at most this many, what)
WORKERS = 6  # at most; a bisection asks one value at a time, so searches bound the parallelism
# A worker that dies (the OOM killer) breaks the whole pool: every prediction in flight fails
# with it, the culprit's and its neighbours'. Each is asked again in a fresh pool, once.
ATTEMPTS = 2


def _predict(config: RunConfig, settings: ProbeSettings, overrides: dict) -> tuple[int | None, str]:
    """In a worker: the predicted peak, or None and why (an op without a fake kernel)."""
    from tsfbench.measure.predict import predict_peak

    try:
        return predict_peak(config, settings, overrides=overrides), ""
    except Exception as exc:
        return None, f"{type(exc).__name__}: {str(exc).strip()[:300]}"


class Predictor:
    """Predicted peaks by job, each made once, in `workers` processes (0: in this process,
    for tests and one-off calls)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = min(WORKERS, os.cpu_count() or 1) if workers is None else workers
        self.cache: dict[Job, tuple[int | None, str]] = {}
        self.made = 0
        self.attempts: dict[Job, int] = {}
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def submit(self, job: Job) -> Future:
        config, settings, overrides = job
        self.attempts[job] = self.attempts.get(job, 0) + 1
        if self.workers <= 0:
            future: Future = Future()
            future.set_result(_predict(config, settings, dict(overrides)))
            return future
        from tsfbench.measure.isolate import bare_main, start_method, start_server, starting

        if self._pool is not None and getattr(self._pool, "_broken", False):
            self._pool.shutdown(wait=False, cancel_futures=True)  # a worker died: start afresh
            self._pool = None
        method = start_method()
        if self._pool is None:
            import multiprocessing

            if method == "forkserver":
                start_server((__name__, "tsfbench.measure.predict"))
            context = multiprocessing.get_context(method)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        # workers start on demand, here: without this program's `__main__` (the CLI), and
        # ignoring Ctrl-C, which this process handles
        with starting(method), bare_main(None):
            return self._pool.submit(_predict, config, settings, dict(overrides))

    def again(self, job: Job, error: BaseException) -> bool:
        """Whether a prediction that failed with `error` is asked once more: when its pool broke
        under it (a worker died, not necessarily its own) and it has attempts left."""
        return isinstance(error, BrokenProcessPool) and self.attempts.get(job, 0) < ATTEMPTS


@dataclass
class Request:
    """One answer to find: `config` and `settings` fixed but for `axis`, against `budget`."""

    config: RunConfig
    settings: ProbeSettings
    overrides: Mapping[str, object]
    axis: str
    values: Span
    budget: Budget

    def job(self, value: int) -> Job:
        config, settings = self.config, self.settings
        if self.axis == "batch":
            settings = replace(settings, batch=value)
        else:
            config = replace(config, **{self.axis: value})
        return config, settings, tuple(sorted(self.overrides.items()))

    def start(self) -> int:
        return self.settings.batch if self.axis == "batch" else getattr(self.config, self.axis)

    def describe(self) -> str:
        return f"{self.config.attention} {self.axis}"


def requests(
    configs: Sequence[RunConfig],
    settings: ProbeSettings,
    fit: FitSettings,
    budget: Budget,
    overrides: Mapping[str, object] | None = None,
) -> list[Request]:
    """A request per configuration and axis, the axes' values checked for each model."""
    prediction = replace(settings, memory_limit=None, compile=False)  # neither changes a peak
    return [
        Request(
            config, prediction, dict(overrides or {}), axis, span(axis, config, fit.bounds), budget
        )
        for config in configs
        for axis in fit.axes
    ]


def answer(
    wanted: Sequence[Request], predictor: Predictor, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Run every request's search at once; a flat record per request, in order."""
    searches: list[Generator[int, int, Boundary]] = [
        search(r.values, r.budget.budget, r.start()) for r in wanted
    ]
    results: list[Boundary | str | None] = [None] * len(wanted)
    asked = [0] * len(wanted)  # predictions each search used, made or reused
    waiting: dict[Job, list[int]] = {}
    running: dict[Future, Job] = {}
    made = predictor.made

    def advance(index: int, peak: int | None) -> None:
        """Send `peak` (None: start) and go on while the answers are known already."""
        try:
            while True:
                value = searches[index].send(peak)  # type: ignore[arg-type]
                asked[index] += 1
                job = wanted[index].job(value)
                if job not in predictor.cache:
                    if job not in waiting:
                        running[predictor.submit(job)] = job
                    waiting.setdefault(job, []).append(index)
                    return
                peak, error = predictor.cache[job]
                if peak is None:
                    results[index] = error
                    searches[index].close()
                    return
        except StopIteration as stop:
            results[index] = stop.value

    def report(what: str) -> None:
        if progress is not None:
            left = sum(
                max(1, r.values.expected_predictions - n)
                for r, n, done in zip(wanted, asked, results, strict=True)
                if done is None
            )
            progress(predictor.made - made, predictor.made - made + left, what)

    for index in range(len(wanted)):
        advance(index, None)
    report(wanted[0].describe() if wanted else "")
    while running:
        done, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for future in done:
            job = running.pop(future)
            try:
                predictor.cache[job] = future.result()
            except Exception as exc:  # a worker died (the OOM killer): once more, then an error
                if predictor.again(job, exc):
                    running[predictor.submit(job)] = job
                    continue
                died = "a prediction worker died twice (out of memory?)"
                why = died if isinstance(exc, BrokenProcessPool) else f"{type(exc).__name__}: {exc}"
                predictor.cache[job] = (None, f"prediction worker: {why}")
            predictor.made += 1
            peak, error = predictor.cache[job]
            for index in waiting.pop(job):
                if peak is None:
                    results[index] = error
                    searches[index].close()
                else:
                    advance(index, peak)
            report(f"{job[0].attention} {job[0].frames}x{job[0].size} b{job[1].batch}")
    return [
        _record(request, result, count)
        for request, result, count in zip(wanted, results, asked, strict=True)
    ]


def _record(request: Request, result: Boundary | str | None, asked: int) -> dict[str, Any]:
    settings = request.settings
    record: dict[str, Any] = {
        **request.config.as_dict(),
        "mode": settings.mode,
        "dtype": settings.dtype,
        "batch": settings.batch,
        "backend": settings.backend,
        "checkpointing": settings.checkpointing,
        "device": settings.target,  # where the step was predicted (which kernels)
        "axis": request.axis,
        "axis_low": request.values.low,
        "axis_high": request.values.high,
        "axis_step": request.values.step,
        "predictions": asked,
        **request.budget.as_record(),
    }
    if isinstance(result, Boundary):
        return record | result.as_record() | {"status": Status.PREDICTED, "error": None}
    empty = Boundary("error").as_record()
    return record | empty | {"status": Status.ERROR, "error": result or "no answer"}


def brute_force(wanted: Iterable[Request]) -> int:
    """Predictions that predicting every value of every request's axis would make."""
    return len({request.job(value) for request in wanted for value in _values(request.values)})


def _values(values: Span) -> range:
    return range(values.low, values.high + 1, values.step)


# --- The context reserve ---------------------------------------------------------------------


def _context_footprint() -> int:
    """In a child: the device memory a CUDA context with cuBLAS and the attention kernels
    loaded takes beyond its tensors (what `predict_peak` cannot see), from NVML's used memory
    before and after (other processes' memory is not counted), else `mem_get_info`."""
    import torch
    import torch.nn.functional as F

    index = torch.cuda._get_nvml_device_index(0)
    before = _nvml_used(index)
    for dtype in (torch.float32, torch.bfloat16):
        q = torch.randn(1, 2, 64, 64, device="cuda", dtype=dtype, requires_grad=True)
        F.scaled_dot_product_attention(q, q, q).sum().backward()
        (q[0, 0] @ q[0, 0]).sum().backward()
        del q
    torch.cuda.synchronize()
    torch.cuda.empty_cache()  # what stays reserved now is the libraries' (cuBLAS workspaces)
    after = _nvml_used(index)
    if before is not None and after is not None:
        return after - before - torch.cuda.memory_allocated()  # tensors still alive: none
    free, total = torch.cuda.mem_get_info()
    return total - free - torch.cuda.memory_allocated()


def _nvml_used(index: int) -> int | None:
    """Device memory in use, all processes (NVML); None where NVML cannot tell."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML, or a device it cannot name (MIG)
        return None


def context_reserve(settings: ProbeSettings, fit: FitSettings) -> tuple[int, str]:
    """The reserve and where it comes from: given, measured on this GPU in a child process
    (so this one holds no CUDA context), or the stated default without a GPU."""
    if fit.reserve is not None:
        return fit.reserve, "given"
    if settings.target != "cuda":
        return DEFAULT_RESERVE, DEFAULT_RESERVE_SOURCE
    from tsfbench.environment import environment
    from tsfbench.measure.isolate import run_isolated

    outcome = run_isolated(_context_footprint, device="cuda", timeout=120)
    if outcome.status != Status.OK or not outcome.value or outcome.value <= 0:
        return DEFAULT_RESERVE, f"{DEFAULT_RESERVE_SOURCE}; measuring failed: {outcome.error}"
    gpus = environment().get("gpus") or ["this GPU"]
    return int(outcome.value), f"measured on {gpus[0]}: CUDA context and workspaces"


def fit(
    configs: Sequence[RunConfig],
    settings: ProbeSettings,
    fit_settings: FitSettings,
    overrides: Mapping[str, object] | None = None,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """`tsfbench fit`: the budget, a record per configuration and axis, and what it cost."""
    began = time.monotonic()
    reserve, source = context_reserve(settings, fit_settings)
    budget = fit_settings.budget(reserve, source)
    wanted = requests(configs, settings, fit_settings, budget, overrides)
    with Predictor(workers) as predictor:
        records = answer(wanted, predictor, progress)
    asked = sum(record["predictions"] for record in records)
    return {
        "budget": budget.as_record() | {"line": budget.line()},
        "answers": records,
        "predictions": {
            "made": predictor.made,
            "reused": asked - predictor.made,
            "brute_force": brute_force(wanted),
            "seconds": time.monotonic() - began,
            "workers": predictor.workers,
        },
    }


def answer_tasks(
    specs: Sequence[tuple[RunConfig, Mapping[str, Any], Mapping[str, object]]],
    workers: int | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """A suite's fit tasks, each (config, settings, overrides) with `settings` as
    `suite._fit_tasks` writes them: (status, record) each, from one shared pool of predictions
    (the same step on two cards, or on two axes, is predicted once)."""
    wanted, reserves = [], {}
    for config, settings, overrides in specs:
        run = {key: value for key, value in settings.items() if key != "fit"}
        probe = ProbeSettings(**run, warmup=1)
        fit_settings = FitSettings(**{**settings["fit"], "axes": tuple(settings["fit"]["axes"])})
        key = (probe.target, fit_settings.reserve)
        if key not in reserves:
            reserves[key] = context_reserve(probe, fit_settings)
        try:
            budget = fit_settings.budget(*reserves[key])
        except ConfigError as err:  # a measured reserve above the memory: the task's error
            wanted.append(str(err))
            continue
        wanted += requests([config], probe, fit_settings, budget, overrides)
    with Predictor(workers) as predictor:
        found = iter(answer([w for w in wanted if isinstance(w, Request)], predictor))
    records = []
    for (config, _, _), item in zip(specs, wanted, strict=True):
        record = next(found) if isinstance(item, Request) else {**config.as_dict(), "error": item}
        records.append((Status.ERROR if record.get("error") else Status.PREDICTED, record))
    return records
