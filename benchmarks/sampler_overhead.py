"""Overhead of the NVML/RSS monitor process on latency, and latency repeatability.

Times the same step with and without the monitor sampling alongside, interleaved over 5 runs in
one process (so drift hits both equally), and prints the median latency of each run, the
overhead of sampling, and the coefficient of variation (std / mean) of the 5 run medians.
Runs on CPU (a small TimeSformer) or on the GPU where there is one.

    python benchmarks/sampler_overhead.py [--frames 4] [--size 64] [--interval 0.01]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.latency import time_step
from tsfbench.measure.memory import MemoryTracker
from tsfbench.measure.workload import build_workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--interval", type=float, default=0.01)
    args = parser.parse_args()

    settings = ProbeSettings(batch=args.batch)
    device = torch.device(settings.target)
    small = {"depth": 4, "dim": 192, "heads": 3} if device.type == "cpu" else {}
    config = RunConfig(attention="divided", frames=args.frames, size=args.size)
    work = build_workload(config, settings, device, small)
    print(f"device: {device}; {config.attention} {config.frames}x{config.size}, "
          f"batch {args.batch}, {args.iterations} iterations x {args.runs} runs, "
          f"sampling every {args.interval * 1e3:g} ms")  # fmt: skip

    time_step(work.step, batch=args.batch, iterations=args.iterations, device=device)  # settle
    without, with_monitor = [], []
    for _ in range(args.runs):
        latency = time_step(work.step, batch=args.batch, iterations=args.iterations, device=device)
        without.append(latency.median_ms)
        tracker = MemoryTracker(device, interval=args.interval)
        with tracker.track():
            latency = time_step(
                work.step, batch=args.batch, iterations=args.iterations, device=device
            )
        with_monitor.append(latency.median_ms)

    print(f"{'run':>4} {'without ms':>11} {'with ms':>9}")
    for run, (a, b) in enumerate(zip(without, with_monitor, strict=True), start=1):
        print(f"{run:>4} {a:>11.3f} {b:>9.3f}")
    base, sampled = statistics.median(without), statistics.median(with_monitor)
    print(f"median latency without monitor: {base:.3f} ms; with monitor: {sampled:.3f} ms")
    print(f"sampler overhead: {(sampled - base) / base * 100:+.2f}%")
    for name, values in (("without", without), ("with", with_monitor)):
        cv = statistics.stdev(values) / statistics.fmean(values) * 100
        print(f"coefficient of variation over {args.runs} runs ({name} monitor): {cv:.2f}%")
    print(f"peak RSS seen by the monitor: {tracker.memory.max_ram / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
