"""`tsfbench fit`: whole-command time, CPU time and predictions made vs brute force.

    python benchmarks/fit_speed.py                 # the issue's two commands (issue 24 goals)
    python benchmarks/fit_speed.py --suite         # also `tsfbench run suites/fit.toml`

Each command runs as a user runs it (`python -m tsfbench ...`, a fresh process: imports, the
prediction workers' start, the predictions, the table). Wall time is what the goals are about
(one scheme, three axes, under 60 s; joint and divided under 90 s, on a 2-core CPU); CPU time,
summed over the command's process tree (its prediction workers are the fork server's children,
which `getrusage` does not see, so the tree is sampled), moves less with other load. The
predictions made and what predicting every searched value would take come from `--json`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "one scheme, three axes": ["fit", "--gpu", "v100-32gb", "--attention", "divided"],
    "joint and divided, three axes": [
        "fit", "--gpu", "v100-32gb", "--attention", "joint,divided", "--mode", "train",
    ],
}  # fmt: skip
GOALS = {"one scheme, three axes": 60, "joint and divided, three axes": 90}


def timed(argv: list[str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the process tree, stdout) of `argv` run from the checkout."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    # files, not pipes: nothing blocks the command while this polls its process tree
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
        root = psutil.Process(process.pid)
        seen: dict[int, float] = {}  # pid -> the latest CPU seconds read
        while process.poll() is None:
            try:
                for proc in [root, *root.children(recursive=True)]:
                    times = proc.cpu_times()
                    seen[proc.pid] = times.user + times.system
            except psutil.Error:  # a process ended between listing and reading
                pass
            time.sleep(0.2)
        wall = time.perf_counter() - began
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited with {process.returncode}: {err.read()}")
        return wall, sum(seen.values()), out.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="store_true", help="also run suites/fit.toml")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} before the first run")
    print(f"{'command':32} {'wall s':>7} {'goal s':>7} {'CPU s':>7} {'predictions':>12} "
          f"{'brute force':>12}")  # fmt: skip
    for name, command in COMMANDS.items():
        wall, cpu, out = timed([sys.executable, "-m", "tsfbench", *command, "--json"])
        made = json.loads(out)["predictions"]
        print(f"{name:32} {wall:7.1f} {GOALS[name]:7d} {cpu:7.1f} {made['made']:12d} "
              f"{made['brute_force']:12d}", flush=True)  # fmt: skip
    if args.suite:
        with tempfile.TemporaryDirectory() as folder:
            store = Path(folder) / "fit.sqlite"
            argv = [sys.executable, "-m", "tsfbench", "run", "suites/fit.toml", "--store",
                    str(store), "--json"]  # fmt: skip
            wall, cpu, out = timed(argv)
            tasks = json.loads(out)["tasks"]
        print(f"{'suites/fit.toml (' + str(tasks) + ' tasks)':32} {wall:7.1f} {'-':>7} {cpu:7.1f}")
    print(f"load average {os.getloadavg()[0]:.1f} after the last run")


if __name__ == "__main__":
    main()
