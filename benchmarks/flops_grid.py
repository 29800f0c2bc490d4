"""The whole FLOP grid on the meta device: wall time and peak RSS, and the speed-up over counting
on real tensors (measured side by side, on a subset small enough to run on a laptop).

    python benchmarks/flops_grid.py
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

from tsfbench.config import RunConfig
from tsfbench.measure.flops import analyze
from tsfbench.models.registry import build_model, example_input
from tsfbench.models.timesformer import ATTENTIONS

GRID = ["--attention", "all", "--frames", "8,16,32,64,96", "--size", "224,336,448,560"]


def grid_in_a_child() -> tuple[float, float, int]:
    """Run `tsfbench flops` over the grid as a user would; seconds, peak RSS (GiB), rows."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tsfbench", "flops", *GRID, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kib / 2**20, done.stdout.count('"attention"')


def count_seconds(config: RunConfig, device: str) -> tuple[float, int]:
    start = time.perf_counter()
    model = build_model(config, device=device)
    macs = analyze(model, (example_input(config, device=device),)).total()
    return time.perf_counter() - start, macs


def main() -> None:
    seconds, peak_gib, rows = grid_in_a_child()
    print(f"grid: {rows} configurations in {seconds:.1f} s, peak RSS {peak_gib:.2f} GiB")
    print("   (targets: under 60 s and under 2 GiB on a 2-core machine)")
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
