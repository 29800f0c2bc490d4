"""`tsfbench ab`'s acceptance: an A/A run raises no false alarm, fewer threads are caught.

On the quick suite's six latency tasks (`suites/latency.toml`: the five attention schemes of
`base` at 8 x 224 and i3d_r50; batch 1, fp32, infer), each a `tsfbench ab --json` subprocess
(the command a user runs):

(a) A/A (both sides as shared): no row `slower`; the ratio intervals' widths are printed.
(b) `--new threads=1` against `--base threads=N` (N = --threads, default 2): every row `slower`,
    exit code 1.
(c) the reverse, `--base threads=1` against `--new threads=N`: every row `faster`, exit 0.

Each check prints PASS / FAIL with its figures and wall time. The sides are timed alternately
in one run, so the machine's drift cancels, but other work on it still widens the intervals:
run it on a quiet machine. `--quick` shrinks the models (one block, 8 x 96, two schemes; no 3D
CNN) to check the script's logic in a minute or two.

    python benchmarks/ab_acceptance.py [--threads 2] [--max-time 60] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

TASKS = ["--variant", "base,i3d_r50", "--attention", "all", "--batch", "1", "--dtype", "fp32"]
TASKS += ["--mode", "infer", "--warmup", "1"]
# --quick: two schemes of a one-block ViT-B-wide TimeSformer at 8 x 96 (~50 ms a step on 2
# threads here): narrower ones ran faster on one thread than on two (0.79x at width 256, 4 x 64)
QUICK = ["--variant", "base", "--attention", "divided,space", "--frames", "8", "--size", "96"]
QUICK += ["--depth", "1", "--dim", "768", "--heads", "12", "--warmup", "1"]


def run_ab(
    tasks: list[str], sides: list[str], plan: list[str]
) -> tuple[int, dict[str, Any], float]:
    """`tsfbench ab TASKS SIDES PLAN --json`: (exit code, its JSON, wall seconds)."""
    command = [sys.executable, "-m", "tsfbench", "ab", *tasks, *sides, *plan, "--json"]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"tsfbench ab failed: {done.stderr.strip()}")
    return done.returncode, json.loads(done.stdout), seconds


def spread(values: list[float], percent: bool = True) -> str:
    """`min 1.2%, median 2.0%, max 3.1%` of fractions, or of ratios: `min 1.08x, ...`."""
    if not values:
        return "none"
    figures = (min(values), statistics.median(values), max(values))
    return ", ".join(
        f"{name} {v * 100:.1f}%" if percent else f"{name} {v:.3g}x"
        for name, v in zip(("min", "median", "max"), figures, strict=True)
    )


def summary(result: dict[str, Any]) -> str:
    """Rows, verdicts, ratios, interval widths, rounds and stop reasons, in one line."""
    rows = result["results"]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["verdict"] or "error"] = counts.get(row["verdict"] or "error", 0) + 1
    ok = [r for r in rows if r["status"] == "ok"]
    widths = [r["ratio_high"] - r["ratio_low"] for r in ok if r.get("ratio_low") is not None]
    stops = sorted({r["stop_reason"] for r in ok})
    contended = [r["what"] for r in ok if r.get("contended")]
    text = f"{len(rows)} rows: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    text += f"; ratio {spread([r['ratio'] for r in ok], percent=False)}"
    text += f"; CI width {spread(widths)}; rounds {spread([r['rounds'] for r in ok], False)}"
    text += f"; stopped by {', '.join(stops) or '-'}"
    return text + (f"; contended: {', '.join(contended)}" if contended else "")


def errors(result: dict[str, Any]) -> list[str]:
    return [f"{r['what']}: {r['error']}" for r in result["results"] if r["status"] != "ok"]


def no_false_alarm(code: int, result: dict[str, Any]) -> tuple[bool, str]:
    """(a): every row measured, none `slower`, exit code 0."""
    slower = [r["what"] for r in result["results"] if r["verdict"] == "slower"]
    failed = errors(result)
    passed = bool(result["results"]) and not slower and not failed and code == 0
    text = f"{summary(result)}; exit {code}" + (f"; slower: {', '.join(slower)}" if slower else "")
    return passed, text + (f"; errors: {'; '.join(failed)}" if failed else "")


def every_row(code: int, result: dict[str, Any], verdict: str, exit_code: int) -> tuple[bool, str]:
    """(b), (c): every row has `verdict`, and the command exits with `exit_code`."""
    others = [f"{r['what']}: {r['verdict']}" for r in result["results"] if r["verdict"] != verdict]
    passed = bool(result["results"]) and not others and code == exit_code
    text = f"{summary(result)}; exit {code}"
    return passed, text + (f"; not {verdict}: {'; '.join(others)}" if others else "")


def report(name: str, check: tuple[bool, str], seconds: float) -> bool:
    print(f"{'PASS' if check[0] else 'FAIL'} {name} ({seconds:.0f} s): {check[1]}", flush=True)
    return check[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="the base side's threads in (b)")
    parser.add_argument("--max-time", type=float, default=None, help="seconds per configuration")
    parser.add_argument("--target-ci", type=float, default=None, help="the ratio CI half-width")
    parser.add_argument("--quick", action="store_true", help="one-block models: the logic only")
    args = parser.parse_args(argv)
    tasks = QUICK if args.quick else TASKS
    plan = ["--device", "cpu"]
    max_time = args.max_time if args.max_time is not None else (10.0 if args.quick else None)
    plan += ["--max-time", str(max_time)] if max_time is not None else []
    plan += ["--target-ci", str(args.target_ci)] if args.target_ci is not None else []
    many, one = f"threads={args.threads}", "threads=1"
    checks = [
        ("(a) A/A: no row slower", [], lambda c, r: no_false_alarm(c, r)),
        (f"(b) --new {one} against {many}: every row slower, exit 1",
         ["--base", many, "--new", one], lambda c, r: every_row(c, r, "slower", 1)),
        (f"(c) the reverse, --base {one}: every row faster, exit 0",
         ["--base", one, "--new", many], lambda c, r: every_row(c, r, "faster", 0)),
    ]  # fmt: skip
    began = time.perf_counter()
    passed = []
    for name, sides, judge in checks:
        code, result, seconds = run_ab(tasks, sides, plan)
        passed.append(report(name, judge(code, result), seconds))
    total = time.perf_counter() - began
    print(f"{sum(passed)} of {len(passed)} checks passed in {total:.0f} s")
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
