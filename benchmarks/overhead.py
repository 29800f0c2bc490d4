"""Where a sweep's time goes besides the steps it measures: the phases of one configuration's
child process, the old way (spawned: a fresh interpreter) and the new (forked from a fork server
that imported torch once), side by side; then, with `--baseline`, a whole `tsfbench` command of
this tree and of another (the code before the change) alternately.

    python benchmarks/overhead.py                          # phases only
    python benchmarks/overhead.py --baseline /work/main    # and the command, before / after

Phases of one configuration (seconds, wall clock): child start to ready (process start,
interpreter, unpickling), imports (what the probe needs that the child has not yet imported),
model build (model, optimiser, input), monitor start (until its first sample), warm-up and
measured steps, monitor stop, teardown (answer to exit, seen from the parent).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("start", "imports", "build", "monitor", "steps", "monitor stop", "teardown")


def phases(config: Any, settings: Any, overrides: dict[str, Any], began: float) -> dict[str, float]:
    """In the child: the phases of `probe`, each timed (the library's calls, in its order)."""
    entered = time.monotonic()
    for module in ("tsfbench.measure.sweep", "torch._dynamo"):  # what a training probe uses
        importlib.import_module(module)
    imported = time.monotonic()
    from tsfbench.measure.energy import gpu_uuid
    from tsfbench.measure.sampler import Monitor
    from tsfbench.measure.workload import build_workload

    work = build_workload(config, settings, settings.target, overrides)
    built = time.monotonic()
    monitor = Monitor(settings.interval, gpu_uuid(settings.target))
    monitor.__enter__()
    started = time.monotonic()
    for _ in range(settings.warmup + settings.iterations):
        work.step()
    stepped = time.monotonic()
    monitor.__exit__(None, None, None)
    ended = time.monotonic()
    return {
        "start": entered - began,
        "imports": imported - entered,
        "build": built - imported,
        "monitor": started - built,
        "steps": stepped - started,
        "monitor stop": ended - stepped,
        "ended": ended,
    }


def one_configuration(method: str, config: Any, settings: Any, overrides: dict) -> dict:
    from tsfbench.measure.isolate import run_isolated
    from tsfbench.measure.sweep import PRELOAD

    this = importlib.import_module("overhead")  # by name, so that the child can unpickle it
    began = time.monotonic()
    outcome = run_isolated(
        this.phases, config, settings, overrides, began, method=method, preload=PRELOAD
    )
    if outcome.status != "ok":
        raise SystemExit(f"{method}: {outcome.status}: {outcome.error}")
    figures = dict(outcome.value)
    figures["teardown"] = time.monotonic() - figures.pop("ended")
    figures["total"] = time.monotonic() - began
    return figures


def command_seconds(tree: Path, args: list[str]) -> float:
    """Wall time of `tsfbench ARGS` (the console script, as users run it) from source `tree`."""
    script = Path(sys.executable).with_name("tsfbench")
    env = os.environ | {"PYTHONPATH": str(tree)}
    began = time.monotonic()
    done = subprocess.run(
        [str(script), *args], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - began
    if done.returncode != 0 or " ok " not in done.stdout:
        raise SystemExit(f"{tree}: tsfbench failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attention", default="divided")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--mode", default="train")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each")
    parser.add_argument("--depth", type=int, default=None, help="a smaller model (tests)")
    parser.add_argument("--baseline", type=Path, default=None, help="source tree of the old code")
    parser.add_argument(
        "--command",
        default="memory-sweep --frames 2..8:2 --size 64 --attention joint,divided",
        help="the tsfbench command timed with --baseline",
    )
    parser.add_argument("--command-only", action="store_true", help="skip the phases")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    median = statistics.median
    if not args.command_only:
        phase_table(args)
    if args.baseline is not None:
        command = args.command.split()
        seconds: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(args.repeats):
            seconds["before"].append(command_seconds(args.baseline, command))
            seconds["after"].append(command_seconds(ROOT, command))
        before, after = median(seconds["before"]), median(seconds["after"])
        print(f"tsfbench {args.command}")
        print(f"  before {before:.1f} s ({args.baseline}), after {after:.1f} s ({ROOT}): "
              f"{before / after:.2f}x (each run: {seconds})")  # fmt: skip


def phase_table(args: argparse.Namespace) -> None:
    """Each phase of one configuration, spawned and forked alternately; medians."""
    from tsfbench.config import ProbeSettings, RunConfig
    from tsfbench.measure.isolate import run_isolated, start_server
    from tsfbench.measure.sweep import PRELOAD

    config = RunConfig(attention=args.attention, frames=args.frames, size=args.size)
    settings = ProbeSettings(mode=args.mode, warmup=1, iterations=3)
    overrides = {} if args.depth is None else {"depth": args.depth}
    began = time.monotonic()
    start_server(["overhead", *PRELOAD])  # as `sweep` does, once, before the first child
    run_isolated(os.getpid)  # answered once the server has imported everything
    server = time.monotonic() - began
    runs: dict[str, list[dict[str, float]]] = {"spawn": [], "forkserver": []}
    for _ in range(args.repeats):
        for method in runs:  # alternately, so that both see the same machine
            runs[method].append(one_configuration(method, config, settings, overrides))
    print(f"one configuration: {args.attention} {args.frames}x{args.size} {args.mode}, "
          f"warm-up 1 + 3 steps; seconds, median of {args.repeats}")  # fmt: skip
    print(f"{'phase':<14} {'spawn':>8} {'forkserver':>11}")
    median = statistics.median
    rows = {
        m: {k: median([r[k] for r in rs]) for k in (*PHASES, "total")} for m, rs in runs.items()
    }
    for phase in (*PHASES, "total"):
        print(f"{phase:<14} {rows['spawn'][phase]:>8.2f} {rows['forkserver'][phase]:>11.2f}")
    for method, row in rows.items():
        overhead = row["total"] - row["steps"]
        print(f"overhead beyond the steps, {method}: {overhead:.2f} s")
    print(f"fork server start (once per sweep, overlapping the first prediction): {server:.2f} s")


if __name__ == "__main__":
    main()
