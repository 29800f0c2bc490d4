"""Predicted peak memory against the C heap measured on the CPU over the same steps.

The prediction (`measure.memory.predict_peak`) counts tensor bytes without running a step; on a
CPU, glibc's heap (`measure_cpu_allocations`, in a child process) holds the same tensors, so the
two should agree at full size (target: within 10%). This runs a `predict_only` suite with
`cpu_allocations = true` through `tsfbench run`'s own code, then prints the report's table:

    python benchmarks/predict_vs_measured.py                    # joint, divided x infer, train
    python benchmarks/predict_vs_measured.py --backends sdpa,math --store results/tsfbench.sqlite

With `--store` the rows land in that store, and `tsfbench report` shows them ("Memory prediction
vs measured CPU allocations"). A full-size training step measures several GB and, on 2 busy
cores, takes minutes: the quick suite leaves this out for its time budget.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from tsfbench.config import GIB
from tsfbench.report import build_report, load_results
from tsfbench.runner import run_suite
from tsfbench.store import Store
from tsfbench.suite import load_suite

SUITE = """name = "predict-vs-measured"
[[grid]]
measure = ["memory"]
model = "base"
attention = {attention}
frames = {frames}
size = {size}
mode = {modes}
backend = {backends}
memory_limit = "{limit}"
device = "cpu"
predict_only = true
cpu_allocations = true
{overrides}"""


def _list(text: str) -> str:
    return json.dumps(text.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attention", default="joint,divided")
    parser.add_argument("--modes", default="infer,train")
    parser.add_argument("--backends", default="sdpa")
    parser.add_argument("--frames", default="8")
    parser.add_argument("--size", default="224")
    parser.add_argument("--memory-limit", default="32GiB", help="as the quick suite's rows")
    parser.add_argument("--depth", type=int, help="a shrunken model (a quick check, not a figure)")
    parser.add_argument("--store", type=Path, help="keep the rows here (default: a temp store)")
    args = parser.parse_args()

    overrides = f"overrides = {{ depth = {args.depth} }}\n" if args.depth else ""
    text = SUITE.format(
        attention=_list(args.attention), frames=f"[{args.frames}]", size=f"[{args.size}]",
        modes=_list(args.modes), backends=_list(args.backends), limit=args.memory_limit,
        overrides=overrides,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "predict-vs-measured.toml"
        path.write_text(text)
        store_path = args.store or Path(scratch) / "store.sqlite"
        suite = load_suite(path, store_path.parent)
        started = time.perf_counter()
        summary = run_suite(suite, Store(store_path))  # resumes: a kept store measures once
        seconds = time.perf_counter() - started
        frame = load_results(store_path, suite=str(path))
        report = build_report(frame)
        shrunk = frame["overrides"].map(bool).any()
        table = report.prediction if not shrunk else _shrunken(frame)
    print(f"{len(suite.tasks)} configurations, {summary.tasks - summary.skipped} measured now "
          f"in {seconds:.0f} s; failures: {summary.failures or 'none'}")  # fmt: skip
    print(f"{'attention':<9} {'frames x size':>13} {'run':<34} {'predicted GiB':>13} "
          f"{'measured GiB':>12} {'error':>7}  within 10%")  # fmt: skip
    for row in table.to_dict("records"):
        error = row["error_pct"]
        print(f"{row['attention']:<9} {row['frames']:>6} x {row['size']:<4} {row['run']:<34} "
              f"{row['predicted_peak_gib']:>13.3f} {row['cpu_alloc_gib']:>12.3f} "
              f"{error:>+6.1f}%  {'yes' if abs(error) <= 10 else 'no'}")  # fmt: skip
    if shrunk:
        print("(a shrunken model: the runtime's own buffers dominate; not a test of the target)")


def _shrunken(frame: pd.DataFrame) -> pd.DataFrame:
    """The same table for rows of a shrunken model, which the report keeps apart."""
    rows = frame.dropna(subset=["predicted_peak_bytes", "measured_cpu_alloc_bytes"]).copy()
    rows["run"] = rows["mode"] + " " + rows["dtype"] + " " + rows["backend"]
    rows["predicted_peak_gib"] = rows["predicted_peak_bytes"].astype(float) / GIB
    rows["cpu_alloc_gib"] = rows["measured_cpu_alloc_bytes"].astype(float) / GIB
    rows["error_pct"] = (rows["predicted_peak_gib"] / rows["cpu_alloc_gib"] - 1) * 100
    return rows


if __name__ == "__main__":
    main()
