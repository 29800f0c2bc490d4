"""The quick suite's budget (4 minutes): its motion test against the accuracy grid it replaced.

The quick suite traded its random-weight accuracy task (base divided at 8 x 224, 4 synthetic
videos x 3 views) for the motion test (`space` and `divided` trained on the synthetic motion
set, one seed); everything else is the same. This runs both parts in this process, alternating
`--repeats` times so that a busy machine slows both alike, with fresh data each time (a fresh
clone has none): wall and CPU seconds (this process and its reaped children: the data loader's
workers) and their ratio. The motion tasks are what `tsfbench run` does in its child process
(`runner._motion_child`), read from `suites/quick.toml` itself. `--full` also times
`tsfbench run suites/quick.toml` into a new store, the whole suite as a fresh clone runs it.

    python benchmarks/quick_budget.py [--repeats 1] [--full]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tsfbench.environment import environment
from tsfbench.runner import _accuracy_record, ensure_synthetic
from tsfbench.suite import load_suite
from tsfbench.train import TrainSettings, motion_test

SUITES = Path(__file__).resolve().parents[1] / "suites"
OLD_GRID = """
[[grid]]
measure = ["accuracy"]
model = "base"
attention = "divided"
data = "synthetic"
classes = 4
per_class = 1
batch = 3
"""  # the accuracy grid of the quick suite before the motion test


def cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def timed(work: Callable[[], object]) -> tuple[float, float, object]:
    """(wall s, CPU s, what `work` returned)."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    value = work()
    return time.perf_counter() - wall, cpu_seconds() - cpu, value


def old_accuracy(folder: Path) -> None:
    (folder / "old.toml").write_text(OLD_GRID)
    (task,) = load_suite(folder / "old.toml", folder).tasks
    status, record = _accuracy_record(task, environment())
    assert status == "ok", record.get("error")


def motion(folder: Path) -> list[float]:
    tasks = [
        t for t in load_suite(SUITES / "quick.toml", folder).tasks if t.measurement == "motion"
    ]
    top1 = []
    for task in tasks:
        root = Path(task.settings["data"])
        ensure_synthetic(root / "train.csv", **task.settings["synthetic"])
        settings = TrainSettings(**task.settings["train"])
        record = motion_test(settings, root, folder / f"{settings.attention}.pt")
        top1.append(record["top1"])
    return top1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--full", action="store_true", help="also time the whole quick suite")
    args = parser.parse_args()
    figures: dict[str, list[tuple[float, float]]] = {"old accuracy grid": [], "motion test": []}
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as old, tempfile.TemporaryDirectory() as new:
            wall, cpu, _ = timed(lambda: old_accuracy(Path(old)))
            figures["old accuracy grid"].append((wall, cpu))
            wall, cpu, top1 = timed(lambda: motion(Path(new)))
            figures["motion test"].append((wall, cpu))
        print(f"repeat {repeat + 1}: motion test top-1 of space, divided: {top1}")
    for name, values in figures.items():
        wall, cpu = (min(v[i] for v in values) for i in (0, 1))
        print(f"{name:>18}: {wall:7.1f} s wall, {cpu:7.1f} s CPU (best of {len(values)})")
    old, new = (min(v[0] for v in figures[k]) for k in figures)
    print(f"motion / old accuracy: {new / old:.2f}x wall; the suite changes by {new - old:+.1f} s")
    if args.full:
        with tempfile.TemporaryDirectory() as store:
            command = [sys.executable, "-m", "tsfbench", "run", str(SUITES / "quick.toml")]
            command += ["--store", str(Path(store) / "r.sqlite")]
            wall, _, _ = timed(lambda: subprocess.run(command, check=True))
        print(f"tsfbench run suites/quick.toml, new store: {wall:.0f} s wall (budget 240 s)")


if __name__ == "__main__":
    main()
