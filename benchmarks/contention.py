"""Contention noticed, not averaged in: a suite's latency tasks measured quiet, then again while
a CPU-bound process runs for a while, side by side in one run.

Runs the suite's latency tasks (the quick suite's by default) into a quiet store, then into a
second store while `python -c "while 1: pass"` is started `--busy-after` seconds in and stopped
`--busy-for` seconds later. Per row it prints whether the row's measurement overlapped the busy
window, its `contended` flag, whether it was re-measured (`iterations = "auto"` times a
contended window again once the machine is quiet), its median against the quiet run's (ratio),
and a verdict: a row measured during the busy process must be marked or re-measured to within
10% of the quiet median; a quiet row must not be marked. Exit code 1 if any row fails.

The two runs are minutes apart, and some machines change speed over minutes with nothing in
the guest to see (docs/timing.md): each row also prints the machine-speed canary's ratio (busy
run's / quiet run's, a fixed matmul timed beside each row) and the median ratio divided by it.
A re-measured row (its last window read quiet) is judged on that adjusted ratio; any other row
on the raw one, since a busy process slows the canary beside it too.

    python benchmarks/contention.py [--suite suites/quick.toml] [--iterations auto]
        [--max-time 10] [--busy-after 20] [--busy-for 30] [--out DIR]
    python benchmarks/contention.py --quick   # tiny models, seconds of busy time: a smoke run

Absolute times vary between machines; the ratios are measured in one run. Run it on an
otherwise quiet machine: other work during the "quiet" run shows as a marked quiet row.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tsfbench.runner import run_suite
from tsfbench.store import Store
from tsfbench.suite import Suite, Task, load_suite

SUITES = Path(__file__).resolve().parents[1] / "suites"
TOLERANCE = 0.10  # a re-measured row's median within 10% of the quiet run's
QUICK = {"frames": 2, "size": 32}  # --quick: tiny clips and models
QUICK_MODEL = {"depth": 1, "dim": 32, "heads": 2}


@dataclass(frozen=True)
class Window:
    """When something ran: seconds since the epoch."""

    start: float
    end: float

    def overlaps(self, other: Window | None) -> bool:
        return other is not None and self.start < other.end and other.start < self.end


def latency_tasks(suite: Suite, settings: Mapping[str, Any], quick: bool) -> list[Task]:
    """The suite's timed runtime tasks (not predictions), with `settings` laid over theirs."""
    tasks = []
    for task in suite.tasks:
        if task.measurement != "runtime" or task.settings.get("predict_only"):
            continue
        config, overrides = task.config, task.overrides
        if quick:
            if config.model not in ("base",):  # a 3D CNN has no tiny form: left out
                continue
            config, overrides = replace(config, **QUICK), QUICK_MODEL
        tasks.append(Task("runtime", config, {**task.settings, **settings}, overrides))
    return list({task.key: task for task in tasks}.values())


def measure(tasks: Sequence[Task], store: Path, name: str) -> dict[str, Window]:
    """Run `tasks` into `store`; each task's window (from the end of the previous one)."""
    windows: dict[str, Window] = {}
    last = time.time()

    def progress(done: int, total: int, task: Task, status: str) -> None:
        nonlocal last
        now = time.time()
        windows[task.key] = Window(last, now)
        last = now
        print(f"  {name} {done}/{total}: {task.describe()} {status}", file=sys.stderr)

    suite = Suite(name, "", None, tuple(tasks))
    run_suite(suite, Store(store), resume=False, progress=progress)
    return windows


class BusyProcess:
    """A CPU-bound process from `after` seconds for `length` seconds, on a thread's timer."""

    def __init__(self, after: float, length: float) -> None:
        self.after, self.length = after, length
        self.window: Window | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if self._stop.wait(self.after):
            return
        busy = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
        start = time.time()
        self._stop.wait(self.length)
        busy.kill()
        busy.wait()
        self.window = Window(start, time.time())

    def __enter__(self) -> BusyProcess:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def machine_ratio(record: Mapping[str, Any], base: Mapping[str, Any]) -> float | None:
    """The canary's busy-run / quiet-run median: how much slower the machine itself ran."""
    now, before = record.get("canary_ms"), base.get("canary_ms")
    return now / before if now and before else None


def verdict(
    during: bool, record: Mapping[str, Any], quiet_median: float | None, machine: float | None
) -> str:
    """`ok` or why not: a row measured during the busy process is marked, or re-measured to
    within TOLERANCE of the quiet median (divided by the machine's change of speed); a row
    measured outside it is not marked."""
    median = record.get("latency_median_ms")
    contended = bool(record.get("contended"))
    if not during:
        return "FAIL: quiet row marked" if contended else "ok"
    if contended:
        return "ok (marked)"
    if median is None or quiet_median is None:
        return "FAIL: no median"
    ratio = median / quiet_median
    if record.get("remeasured") and machine:
        ratio /= machine
    if abs(ratio - 1) <= TOLERANCE:
        return "ok (re-measured)" if record.get("remeasured") else "ok (within 10%)"
    return f"FAIL: unmarked, {ratio:.2f}x the quiet median"


def rows(
    tasks: Sequence[Task],
    quiet: Store,
    busy: Store,
    windows: Mapping[str, Window],
    busy_window: Window | None,
) -> list[dict[str, Any]]:
    quiet_by = {row.task: row.record for row in quiet.rows("runtime")}
    busy_by = {row.task: row.record for row in busy.rows("runtime")}
    table = []
    for task in tasks:
        record, base = busy_by.get(task.key, {}), quiet_by.get(task.key, {})
        during = windows[task.key].overlaps(busy_window) if task.key in windows else False
        quiet_median, median = base.get("latency_median_ms"), record.get("latency_median_ms")
        machine = machine_ratio(record, base)
        ratio = None if not (median and quiet_median) else median / quiet_median
        table.append(
            {
                "task": task.describe(),
                "during busy": during,
                "contended": bool(record.get("contended")),
                "remeasured": record.get("remeasured") or 0,
                "quiet ms": quiet_median,
                "ms": median,
                "ratio": ratio,
                "machine": machine,
                "adjusted": None if ratio is None or not machine else ratio / machine,
                "quiet row marked": bool(base.get("contended")),
                "verdict": verdict(during, record, quiet_median, machine),
            }
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=SUITES / "quick.toml")
    parser.add_argument("--iterations", default="auto", help="an integer or auto")
    parser.add_argument("--max-time", type=float, default=10.0)
    parser.add_argument("--busy-after", type=float, default=20.0)
    parser.add_argument("--busy-for", type=float, default=30.0)
    parser.add_argument("--out", type=Path, help="folder for the two stores (default: temporary)")
    parser.add_argument("--quick", action="store_true", help="tiny models, a few busy seconds")
    args = parser.parse_args()
    if args.quick:
        args.max_time, args.busy_after, args.busy_for = 1.0, 2.0, 5.0
    iterations = args.iterations if args.iterations == "auto" else int(args.iterations)
    settings = {"iterations": iterations, "device": "cpu"}
    if iterations == "auto":
        settings |= {"target_ci": 0.02, "max_time": args.max_time}
    out = args.out or Path(tempfile.mkdtemp(prefix="tsfbench-contention-"))
    tasks = latency_tasks(load_suite(args.suite, out), settings, args.quick)
    print(f"{len(tasks)} latency tasks; stores in {out}", file=sys.stderr)
    measure(tasks, out / "quiet.sqlite", "quiet")
    with BusyProcess(args.busy_after, args.busy_for) as busy:
        windows = measure(tasks, out / "busy.sqlite", "busy")
    if busy.window is None:
        print("the busy process never started: the run ended first; lower --busy-after")
    table = rows(
        tasks, Store(out / "quiet.sqlite"), Store(out / "busy.sqlite"), windows, busy.window
    )
    for row in table:
        ratio, machine, adjusted = (
            "-" if row[key] is None else f"{row[key]:.2f}x"
            for key in ("ratio", "machine", "adjusted")
        )
        quiet_ms = "-" if row["quiet ms"] is None else f"{row['quiet ms']:.1f}"
        ms = "-" if row["ms"] is None else f"{row['ms']:.1f}"
        print(
            f"{row['task']}: during busy {row['during busy']}, contended {row['contended']}, "
            f"re-measured {row['remeasured']}, median {ms} ms vs quiet {quiet_ms} ms ({ratio}; "
            f"machine {machine}, adjusted {adjusted}), quiet row marked "
            f"{row['quiet row marked']}: {row['verdict']}"
        )
    sys.exit(1 if any(row["verdict"].startswith("FAIL") for row in table) else 0)


if __name__ == "__main__":
    main()
