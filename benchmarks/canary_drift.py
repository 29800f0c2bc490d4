"""Does the machine-speed canary follow the machine's drift? A step and the canary, alternately.

Times one step of a model (ViT-B divided 8x224 inference by default) and one canary reading
(`tsfbench.measure.canary.Canary`, the product every timed row reads) alternately for
`--seconds`, then prints: the step's and the canary's spread (coefficient of variation, max /
min), their correlation, and the spread of the step divided by the canary (what `compare`'s
adjustment leaves), per pair and per block of `--block` pairs (medians of each, as a row of that
many steps keeps them). A canary that follows the drift leaves a smaller spread than the steps.

    python benchmarks/canary_drift.py [--seconds 300] [--attention divided] [--quick]

Run it on an otherwise quiet machine; other work shows in both series alike.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.canary import Canary
from tsfbench.measure.workload import build_workload


def spread(values: np.ndarray) -> str:
    return f"cv {values.std() / values.mean():.1%}, max/min {values.max() / values.min():.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--attention", default="divided")
    parser.add_argument("--quick", action="store_true", help="a one-block model at 4 x 32")
    parser.add_argument("--block", type=int, default=6, help="pairs a row: 6, auto's fewest")
    parser.add_argument("--log", help="write every (time, step, canary) here as JSON lines")
    args = parser.parse_args(argv)
    config = RunConfig(model="base", attention=args.attention)
    overrides = {}
    if args.quick:
        config = RunConfig(model="base", attention=args.attention, frames=4, size=32)
        overrides = {"depth": 1, "dim": 64, "heads": 4}
        args.seconds = min(args.seconds, 10.0)
    work = build_workload(config, ProbeSettings(), "cpu", overrides)
    canary = Canary("cpu")
    for _ in range(2):  # warm-up: both
        work.step()
        canary.read()
    canary.reset()
    steps, began = [], time.perf_counter()
    log = open(args.log, "w") if args.log else None  # noqa: SIM115
    while time.perf_counter() - began < args.seconds:
        canary.read()
        start = time.perf_counter_ns()
        work.step()
        steps.append((time.perf_counter_ns() - start) / 1e6)
        if log:
            reading = canary.readings_ms()[-1]
            log.write(json.dumps({"t": time.perf_counter() - began, "step_ms": steps[-1],
                                  "canary_ms": reading}) + "\n")  # fmt: skip
    step_ms, canary_ms = np.asarray(steps), np.asarray(canary.readings_ms())
    print(f"{config.attention} {config.frames}x{config.size}, {len(steps)} pairs in "
          f"{time.perf_counter() - began:.0f} s; torch threads {torch.get_num_threads()}; "
          f"canary: {canary.kind}")  # fmt: skip
    print(f"step ms: median {np.median(step_ms):,.1f}, {spread(step_ms)}")
    print(f"canary ms: median {np.median(canary_ms):,.2f}, {spread(canary_ms)}")
    if len(steps) > 2:
        print(f"correlation step / canary: {np.corrcoef(step_ms, canary_ms)[0, 1]:.2f}")
    print(f"step / canary: {spread(step_ms / canary_ms)}")
    blocks = len(steps) // args.block
    if blocks > 2:
        rows = [slice(i * args.block, (i + 1) * args.block) for i in range(blocks)]
        step_rows = np.asarray([np.median(step_ms[r]) for r in rows])
        canary_rows = np.asarray([np.median(canary_ms[r]) for r in rows])
        print(f"as {blocks} rows of {args.block} steps (medians): step {spread(step_rows)}; "
              f"step / canary {spread(step_rows / canary_rows)}; correlation "
              f"{np.corrcoef(step_rows, canary_rows)[0, 1]:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
