"""The whole FLOP grid on the meta device: wall time and peak RSS, the speed-up over counting
on real tensors (measured side by side, on a subset small enough to run on a laptop), and that
counting one block (`repeated_blocks_macs`) gives every count of a full trace of the grid.

    python benchmarks/flops_grid.py            # --no-check skips the full traces (a minute)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from tsfbench.config import GIB, RunConfig, expand
from tsfbench.measure.flops import analyze, count_many
from tsfbench.measure.sampler import rss, tree
from tsfbench.models.build import build_model, example_input
from tsfbench.models.registry import ATTENTIONS

GRID = ["--attention", "all", "--frames", "8,16,32,64,96", "--size", "224,336,448,560"]
FRAMES, SIZES = (8, 16, 32, 64, 96), (224, 336, 448, 560)


def tree_rss_bytes(root: int) -> int:
    """Resident memory of `root` and all its descendants (its worker processes)."""
    return sum(rss(pid) for pid in tree(root, exclude=-1))


def grid_in_a_child() -> tuple[float, float, list[dict]]:
    """Run `tsfbench flops` over the grid as a user would; seconds, peak RSS of the whole
    process tree (GiB, summed over the workers, sampled every 50 ms) and its rows."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "tsfbench", "flops", *GRID, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    peak = 0
    while child.poll() is None:
        peak = max(peak, tree_rss_bytes(child.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    out = child.stdout.read() if child.stdout else ""
    if child.returncode:
        raise SystemExit(f"tsfbench flops failed with exit code {child.returncode}")
    return seconds, peak / GIB, json.loads(out)


def check_against_full_traces(rows: list[dict]) -> None:
    """Every count of the grid against a trace of the whole model (today's way): mismatches."""
    configs = expand(["base"], list(ATTENTIONS), list(FRAMES), list(SIZES))
    start = time.perf_counter()
    full = list(count_many(configs, shortcut=False))
    seconds = time.perf_counter() - start
    key = lambda row: (row["attention"], row["frames"], row["size"])  # noqa: E731
    shown = {key(row): row for row in rows}
    mismatches = [
        r for r in full if shown.get(key(r), {}).get("flops_per_view") != r["flops_per_view"]
    ]
    print(f"full traces of the {len(full)} configurations: {seconds:.1f} s; "
          f"mismatches with the grid: {len(mismatches)}")  # fmt: skip
    for row in mismatches:
        got = shown.get(key(row), {}).get("flops_per_view")
        print(f"  MISMATCH {key(row)}: grid {got}, full trace {row['flops_per_view']}")


def count_seconds(config: RunConfig, device: str) -> tuple[float, int]:
    start = time.perf_counter()
    model = build_model(config, device=device)
    macs = analyze(model, (example_input(config, device=device),)).total()
    return time.perf_counter() - start, macs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-check", action="store_true", help="skip the full traces")
    args = parser.parse_args()
    seconds, peak_gib, rows = grid_in_a_child()
    print(f"grid: {len(rows)} configurations in {seconds:.1f} s")
    print(f"peak RSS {peak_gib:.2f} GiB (summed over tsfbench and its worker processes)")
    print("   (targets: under 45 s and under 2 GiB on a 2-core machine)")
    if not args.no_check:
        check_against_full_traces(rows)
    print(f"{'config':<22} {'meta s':>8} {'real s':>8} {'speed-up':>9} {'same count':>10}")
    meta_total = real_total = 0.0
    for attention in ATTENTIONS:
        config = RunConfig(attention=attention, frames=8, size=224)
        meta_s, meta_macs = count_seconds(config, "meta")
        real_s, real_macs = count_seconds(config, "cpu")
        meta_total, real_total = meta_total + meta_s, real_total + real_s
        name = f"{attention} 8x224"
        same = "yes" if meta_macs == real_macs else "NO"
        print(f"{name:<22} {meta_s:>8.2f} {real_s:>8.2f} {real_s / meta_s:>8.1f}x {same:>10}")
    speedup = real_total / meta_total
    print(f"{'subset total':<22} {meta_total:>8.2f} {real_total:>8.2f} {speedup:>8.1f}x")


if __name__ == "__main__":
    main()
