"""Cost of the NVML/RSS monitor process: the measured step's latency, and the monitor's own CPU.

Times the same step without the monitor, with the monitor walking the process tree at every
sample (the schedule before the tree was cached), and with the library's default (a walk every
`RESCAN` seconds), interleaved over 5 runs in one process so that drift hits all equally. Prints
the median latency of each run and the latency overhead; the monitor's CPU seconds per wall
second (its share of one core; target < 5%), its samples per second and CPU per sample (a
starved monitor samples less, and then costs less: its share at the full rate is CPU per sample
/ interval); the coefficient of variation (std / mean) of the run medians; and how many threads
the measured process has (a walk reads one file per thread). `--idle-threads N` adds N sleeping
threads to the measured process, as a CUDA process has (driver, pinned-memory and OpenMP
threads). Runs on CPU (a small TimeSformer) or on the GPU.

    python benchmarks/sampler_overhead.py [--frames 4] [--size 64] [--interval 0.01]
        [--idle-threads 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading

import torch

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.energy import gpu_uuid
from tsfbench.measure.latency import time_step
from tsfbench.measure.sampler import RESCAN, Monitor
from tsfbench.measure.workload import build_workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--idle-threads", type=int, default=0)
    args = parser.parse_args()

    settings = ProbeSettings(batch=args.batch)
    device = torch.device(settings.target)
    small = {"depth": 4, "dim": 192, "heads": 3} if device.type == "cpu" else {}
    config = RunConfig(attention="divided", frames=args.frames, size=args.size)
    work = build_workload(config, settings, device, small)
    idle = threading.Event()
    for _ in range(args.idle_threads):
        threading.Thread(target=idle.wait, daemon=True).start()
    threads = len(os.listdir(f"/proc/{os.getpid()}/task"))
    print(f"device: {device}; {config.attention} {config.frames}x{config.size}, "
          f"batch {args.batch}, {args.iterations} iterations x {args.runs} runs, "
          f"sampling every {args.interval * 1e3:g} ms; measured process: {threads} threads"
    )  # fmt: skip

    def timed() -> float:
        latency = time_step(work.step, batch=args.batch, iterations=args.iterations, device=device)
        return latency.median_ms

    timed()  # settle
    variants = {"without": None, "walk/sample": 0.0, f"walk/{RESCAN:g}s": RESCAN}
    latency: dict[str, list[float]] = {name: [] for name in variants}
    cpu_share: dict[str, list[float]] = {
        name: [] for name in variants if variants[name] is not None
    }
    rate: dict[str, list[float]] = {name: [] for name in cpu_share}  # samples per second
    per_sample: dict[str, list[float]] = {name: [] for name in cpu_share}  # CPU s per sample
    for _ in range(args.runs):
        for name, rescan in variants.items():
            if rescan is None:
                latency[name].append(timed())
                continue
            with Monitor(args.interval, gpu_uuid(device), rescan=rescan) as monitor:
                latency[name].append(timed())
            cost = monitor.peaks["monitor"]
            cpu_share[name].append(cost["cpu_s"] / cost["wall_s"])
            rate[name].append(monitor.peaks["samples"] / cost["wall_s"])
            per_sample[name].append(cost["cpu_s"] / monitor.peaks["samples"])

    names = list(variants)
    print(f"{'run':>4} " + " ".join(f"{name + ' ms':>16}" for name in names))
    for run in range(args.runs):
        print(f"{run + 1:>4} " + " ".join(f"{latency[name][run]:>16.3f}" for name in names))
    base = statistics.median(latency["without"])
    print(f"median latency without monitor: {base:.3f} ms")
    for name, shares in cpu_share.items():
        sampled = statistics.median(latency[name])
        overhead = (sampled - base) / base * 100
        print(f"monitor {name:>11}: latency {sampled:.3f} ms ({overhead:+.2f}%),"
              f" monitor CPU {statistics.median(shares) * 100:.2f}% of one core "
              f"(runs: {', '.join(f'{s * 100:.2f}' for s in shares)}), "
              f"{statistics.median(rate[name]):.0f} samples/s")  # fmt: skip
        each = statistics.median(per_sample[name])
        print(f"{'':>20}CPU per sample {each * 1e6:.0f} us: {each / args.interval * 100:.2f}% "
              f"of one core at the full {1 / args.interval:.0f} samples/s")  # fmt: skip
    for name, values in latency.items():
        cv = statistics.stdev(values) / statistics.fmean(values) * 100
        print(f"coefficient of variation over {args.runs} runs ({name}): {cv:.2f}%")
    if monitor.peaks.get("ram"):
        print(f"peak RSS seen by the monitor: {monitor.peaks['ram'] / 2**20:.0f} MiB")
    idle.set()


if __name__ == "__main__":
    main()
