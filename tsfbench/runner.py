"""`tsfbench run`: measure a suite's tasks into the store, skipping what is already there.

Each task's row is written the moment it finishes (see `store`), so an interrupted run loses at
most the task in flight, and running the same command again measures only what is missing.
FLOPs tasks go first and in parallel (`count_many`); runtime and profile tasks each run in a child
process (`measure.sweep.measure`: an OOM is a row, not a crash); accuracy runs here, one at a time;
a motion task trains and evaluates in a child process too (`train.motion_test`), so that on a GPU
machine no CUDA context stays in this one, and its steps reach the progress bar (`Training`).
Fit tasks go last, all at once: their predictions run in a pool of processes and are shared
between them (`measure.fit.answer_tasks`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsfbench.config import AccuracySettings, TrainSettings
from tsfbench.environment import environment, environment_summary, nvml_device_count
from tsfbench.errors import ConfigError
from tsfbench.store import MEASURED, Row, Status, Store, environment_id
from tsfbench.suite import Suite, Task, my_tasks, torchrun_rank

if TYPE_CHECKING:
    from tsfbench.config import ProbeSettings

TaskProgress = Callable[[int, int, Task, str], None]  # (done, total, task, status)
Training = Callable[[Task, int, int, float], None]  # (task, step, steps, loss) of a motion task


@dataclass
class RunSummary:
    """What one `run` did on this process's slice of the suite."""

    suite: str
    store: str
    environment: str
    shard: str
    tasks: int  # in this slice
    skipped: int  # already in the store
    statuses: dict[str, int] = field(default_factory=dict)  # of the tasks measured now
    failures: list[dict[str, str]] = field(default_factory=list)  # task, status, error
    contended: list[dict[str, str]] = field(default_factory=list)  # task, contention
    canary_ms: list[float] = field(default_factory=list)  # the timed rows' machine-speed canary
    seconds: float = 0.0


def bind_rank_gpu() -> None:
    """Under `torchrun`, show each rank only its own GPU (its LOCAL_RANK-th visible one).

    Must run before anything touches CUDA in this process; child processes inherit it, so
    every probe of this rank lands on its GPU, which the rank then sees as cuda:0. More ranks
    than GPUs is refused (a `ConfigError`): the extra ranks would either share a GPU, each
    disturbing the other's timings, or fall back to the CPU and measure other figures.
    Without GPUs (none listed, or no NVML) every rank runs where `auto` takes it, unbound.
    """
    if "LOCAL_RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        return
    local = int(os.environ["LOCAL_RANK"])
    ranks = max(int(os.environ.get("LOCAL_WORLD_SIZE", 0)), local + 1)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        devices = [str(i) for i in range(nvml_device_count())]
    else:  # "" hides every GPU
        devices = [device.strip() for device in visible.split(",") if device.strip()]
    if not devices:
        return
    if ranks > len(devices):
        raise ConfigError(
            f"nproc-per-node: {ranks} ranks on this node but {len(devices)} GPU(s) visible; "
            f"start at most {len(devices)} (torchrun --nproc-per-node {len(devices)}), one GPU "
            "per rank, or set CUDA_VISIBLE_DEVICES='' to measure on the CPU"
        )
    os.environ["CUDA_VISIBLE_DEVICES"] = devices[local]


def ensure_synthetic(csv: Path, **options: Any) -> None:
    """Generate the synthetic set whose list is `csv` (`write_synthetic(**options)`), once, even
    with several shards racing: each writes a private folder and renames it into place; a loser
    drops its copy."""
    from tsfbench.data.synth import write_synthetic

    if csv.is_file():
        return
    csv.parent.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=csv.parent.parent))
    scratch.chmod(0o755)  # mkdtemp's 0700 would make the shared set readable by its owner only
    write_synthetic(scratch, **options)
    try:
        scratch.rename(csv.parent)
    except OSError:  # another process renamed its copy first
        shutil.rmtree(scratch, ignore_errors=True)


def _accuracy_record(task: Task, env: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    from tsfbench.evaluate import accuracy

    try:
        settings = AccuracySettings(**task.settings)
        if settings.synthetic:
            ensure_synthetic(Path(settings.data))
        record = accuracy(task.config, settings, distributed_eval=False, **task.overrides)
        status = Status.OK
    except Exception as exc:  # a failed evaluation is a row; the suite goes on
        record = {**task.config.as_dict(), "error": f"{type(exc).__name__}: {exc}"}
        status = Status.ERROR
    return status, record | environment_summary(env)


class ProgressFile:
    """The training's progress callback in the child: the latest (step, steps, loss) in a small
    file that the parent polls. A file, not a queue: the child's arguments must pickle before
    the process starts (see `measure.isolate.bare_main`), and a killed child leaves no broken
    pipe behind."""

    def __init__(self, path: str | Path, every: float = 0.2) -> None:
        self.path, self.every, self.last = Path(path), every, 0.0

    def __call__(self, step: int, steps: int, loss: float) -> None:
        now = time.monotonic()
        if now - self.last < self.every and step < steps:
            return
        self.last = now
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(f"{step} {steps} {loss!r}\n")
        os.replace(scratch, self.path)  # the reader never sees half a line

    def read(self) -> tuple[int, int, float] | None:
        try:
            step, steps, loss = self.path.read_text().split()
            return int(step), int(steps), float(loss)
        except (OSError, ValueError):  # not written yet
            return None


@contextlib.contextmanager
def _relay(task: Task, training: Training | None, interval: float = 0.5) -> Iterator[ProgressFile]:
    """A progress file for the child, and a thread passing what it says to `training`."""
    with tempfile.TemporaryDirectory(prefix="tsfbench-train-") as folder:
        progress = ProgressFile(Path(folder) / "progress")
        done = threading.Event()

        def poll() -> None:
            seen = None
            while training is not None:
                stop = done.wait(interval)
                latest = progress.read()
                if latest is not None and latest != seen:
                    seen = latest
                    training(task, *latest)
                if stop:  # after a last look: a short training may end between two polls
                    return

        reader = threading.Thread(target=poll, name="tsfbench-training-progress", daemon=True)
        reader.start()
        try:
            yield progress
        finally:
            done.set()
            reader.join()


def _motion_child(
    settings: dict[str, Any], data: str, checkpoint: str, progress: ProgressFile
) -> dict[str, Any]:
    """In the child process: train, save, evaluate (`train.motion_test`)."""
    from tsfbench.train import motion_test

    return motion_test(TrainSettings(**settings), data, checkpoint, progress=progress)


def _motion_record(
    task: Task, env: Mapping[str, Any], training: Training | None = None
) -> tuple[str, dict[str, Any]]:
    from tsfbench.measure.isolate import run_isolated

    settings = task.settings
    train = dict(settings["train"])
    root = Path(settings["data"])
    name = f"motion-{train['attention']}-seed{train['seed']}-{task.key}.pt"
    checkpoint = Path(settings["checkpoints"]) / name
    try:
        if settings["synthetic"] is not None:
            ensure_synthetic(root / "train.csv", **settings["synthetic"])
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    except Exception as exc:  # a failed task is a row; the suite goes on
        outcome_status, value, error = Status.ERROR, None, f"{type(exc).__name__}: {exc}"
    else:
        with _relay(task, training) as progress:
            outcome = run_isolated(
                _motion_child,
                train,
                str(root),
                str(checkpoint),
                progress,
                timeout=settings["timeout"],
                preload=("tsfbench.train",),
            )
        outcome_status, value, error = outcome.status, outcome.value, outcome.error
    if outcome_status == Status.OK:
        record = dict(value)
    else:
        record = {**task.config.as_dict(), **train, "error": error}
    # The training's seed last: the accuracy record's `seed` (its subset's) must not stand for it
    record |= {"seed": train["seed"], "recipe": settings["recipe"]}
    return outcome_status, record | environment_summary(env)


def _runtime_record(task: Task, env: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    from tsfbench.config import ProbeSettings
    from tsfbench.measure.sweep import measure

    settings = dict(task.settings)
    timeout = settings.pop("timeout")  # the rest are ProbeSettings' but for the two checks
    predict_only = settings.pop("predict_only", False)
    check = settings.pop("cpu_allocations", False)
    probe = ProbeSettings(**settings)
    record = measure(
        task.config,
        probe,
        overrides=task.overrides,
        env=env,
        timeout=timeout,
        predict_only=predict_only,
    )
    if check:
        record |= _cpu_allocations(task, probe, record, timeout)
    return record["status"], record


def _profile_record(task: Task, env: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """`tsfbench profile` of the task in a child process, like a runtime probe (an OOM is a row)."""
    from tsfbench.config import ProbeSettings
    from tsfbench.measure.isolate import run_isolated
    from tsfbench.measure.profile import profile

    settings = dict(task.settings)
    timeout = settings.pop("timeout")
    probe = ProbeSettings(**settings)
    outcome = run_isolated(
        profile, task.config, probe, dict(task.overrides), device=probe.target, timeout=timeout
    )
    record = outcome.value or {**task.config.as_dict(), **probe.as_dict()}
    record |= {"error": outcome.error}
    return outcome.status, record | environment_summary(env)


def _cpu_allocations(
    task: Task, settings: ProbeSettings, record: Mapping[str, Any], timeout: float | None
) -> dict[str, Any]:
    """The glibc heap's peak over the same steps on the CPU (`measured_cpu_alloc_bytes`), to
    check a CPU prediction against: in a child, so that its GBs and its heap high-water mark
    do not stay in this process. Skipped (None) off the CPU or where the prediction says the
    step would not fit the memory limit."""
    from tsfbench.measure.isolate import run_isolated
    from tsfbench.measure.memory import measure_cpu_allocations

    if record["device"] != "cpu" or record.get("predicted_fits") is False:
        return {"measured_cpu_alloc_bytes": None}
    outcome = run_isolated(
        measure_cpu_allocations, task.config, settings, dict(task.overrides), timeout=timeout
    )
    if outcome.status != Status.OK:
        return {"measured_cpu_alloc_bytes": None, "error": f"cpu allocations: {outcome.error}"}
    return {"measured_cpu_alloc_bytes": outcome.value}


def plan(
    suite: Suite,
    store: Store | None,
    env_id: str | None = None,
    shard_index: int = 0,
    shard_count: int = 1,
    resume: bool = True,
) -> tuple[list[Task], list[Task]]:
    """This process's tasks, and those of them still to measure (what `--dry-run` shows);
    no `store` (none yet) means nothing is measured."""
    env_id = env_id or environment_id(environment())
    mine = my_tasks(suite.tasks, shard_index, shard_count)
    finished = store.finished(env_id) if resume and store is not None else set()
    return mine, [task for task in mine if (task.measurement, task.key) not in finished]


def plan_rows(
    suite: Suite, store: Store | None, index: int = 0, count: int = 1, resume: bool = True
) -> list[dict[str, str]]:
    """`run --dry-run`: this shard's tasks, each "stored" or "to run" (nothing is measured)."""
    mine, todo = plan(suite, store, None, index, count, resume)
    pending = {task.key for task in todo}
    return [
        {
            "task": task.describe(),
            "measurement": task.measurement,
            "key": task.key,
            "state": "to run" if task.key in pending else "stored",
        }
        for task in mine
    ]


def run_suite(
    suite: Suite,
    store: Store,
    *,
    shard_index: int = 0,
    shard_count: int = 1,
    resume: bool = True,
    progress: TaskProgress | None = None,
    training: Training | None = None,
) -> RunSummary:
    """Measure this process's slice of `suite` into `store`; `resume=False` redoes everything.
    `progress` hears of every finished task, `training` of a motion task's steps."""
    started = time.perf_counter()
    env = environment()
    env_id = environment_id(env)
    mine, todo = plan(suite, store, env_id, shard_index, shard_count, resume)
    rank, world = torchrun_rank()
    summary = RunSummary(
        suite=suite.name,
        store=str(store.path),
        environment=env_id,
        shard=f"{shard_index}/{shard_count}" + (f" rank {rank}/{world}" if world > 1 else ""),
        tasks=len(mine),
        skipped=len(mine) - len(todo),
    )
    statuses: Counter[str] = Counter()
    if not todo:  # a finished suite answers at once: nothing below is imported (torch)
        summary.seconds = time.perf_counter() - started
        return summary
    from tsfbench.measure.contention import idle_state
    from tsfbench.measure.flops import count_many

    env = env | idle_state()  # how quiet the machine was before the run (not the env's identity)

    def save(task: Task, status: str, record: dict[str, Any]) -> None:
        record = {"overrides": dict(task.overrides), **record}
        row = Row(task.measurement, task.key, env_id, suite.name, status, time.time(), record)
        store.put(row, replace=not resume)
        statuses[status] += 1
        if status not in MEASURED:
            error = str(record.get("error") or status)
            summary.failures.append({"task": task.describe(), "status": status, "error": error})
        if record.get("contended"):  # stored with its note: the figure is not a quiet one
            summary.contended.append({"task": task.describe(), "contention": record["contention"]})
        if record.get("canary_ms"):
            summary.canary_ms.append(record["canary_ms"])
        if progress is not None:
            progress(sum(statuses.values()), len(todo), task, status)

    flops = [task for task in todo if task.measurement == "flops"]
    for task, record in zip(flops, count_many([task.config for task in flops]), strict=True):
        save(task, Status.OK, record | environment_summary(env))
    for task in todo:
        if task.measurement == "runtime":
            save(task, *_runtime_record(task, env))
        elif task.measurement == "accuracy":
            save(task, *_accuracy_record(task, env))
        elif task.measurement == "motion":
            save(task, *_motion_record(task, env, training))
        elif task.measurement == "profile":
            save(task, *_profile_record(task, env))
    # Last, all at once: their searches share one pool of predictions (`measure.fit`), forked
    # from the fork server the runtime tasks started (with their imports) where there were any
    fits = [task for task in todo if task.measurement == "fit"]
    if fits:
        from tsfbench.measure.fit import answer_tasks

        specs = [(task.config, task.settings, task.overrides) for task in fits]
        for task, (status, record) in zip(fits, answer_tasks(specs), strict=True):
            save(task, status, record | environment_summary(env))
    summary.statuses = dict(statuses)
    summary.seconds = time.perf_counter() - started
    return summary
