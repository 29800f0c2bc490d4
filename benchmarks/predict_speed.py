"""Memory prediction: seconds per full-size configuration, the scanning reference vs today's.

    python benchmarks/predict_speed.py                   # ViT-B train/infer, joint and divided
    python benchmarks/predict_speed.py --configs divided:8:224:train:sdpa --repeats 3
    python benchmarks/predict_speed.py --breakdown      # also `peak_breakdown`'s seconds

Both run in this process, one configuration after the other, so a busy machine slows both alike;
the ratio is the figure to compare (CPU seconds of this process too: less disturbed by other
processes than wall time). Each row also checks that both predict the same bytes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import predict_reference

from tsfbench.config import GIB, ProbeSettings, RunConfig
from tsfbench.measure.peak_parts import peak_breakdown
from tsfbench.measure.predict import predict_peak

DEFAULT = (
    "divided:8:224:train:sdpa",
    "joint:8:224:train:sdpa",
    "joint:16:224:train:math",
    "divided:8:224:infer:sdpa",
)


def seconds(predict: Callable[[], int], repeats: int) -> tuple[float, float, int]:
    """Median wall and CPU seconds of `repeats` predictions, and the predicted bytes."""
    walls, cpus, peak = [], [], 0
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        peak = predict()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), peak


def breakdown_bytes(config: RunConfig, settings: ProbeSettings) -> int:
    """The rows of `peak_breakdown` summed: the predicted peak again, the slower way."""
    return sum(row["bytes"] for row in peak_breakdown(config, settings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(DEFAULT),
                        help="attention:frames:size:mode:backend, comma-separated")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--breakdown", action="store_true", help="also time peak_breakdown (storages labelled)"
    )
    args = parser.parse_args()
    # the first prediction in a process pays for lazy imports and kernel registration: not timed
    predict_peak(RunConfig(frames=2, size=32), ProbeSettings(device="cpu"), "cpu", {"depth": 1})
    print(f"{'configuration':26} {'wall s: reference':>17} {'now':>6} {'ratio':>6}"
          f" {'CPU s: reference':>17} {'now':>6} {'ratio':>6}  same bytes")  # fmt: skip
    ratios = []
    for spec in args.configs.split(","):
        attention, frames, size, mode, backend = spec.split(":")
        config = RunConfig(attention=attention, frames=int(frames), size=int(size))
        settings = ProbeSettings(mode=mode, backend=backend, device="cpu")
        old, old_cpu, old_peak = seconds(
            partial(predict_reference.predict_peak, config, settings, "cpu"), args.repeats
        )
        new, new_cpu, new_peak = seconds(
            partial(predict_peak, config, settings, "cpu"), args.repeats
        )
        ratios.append(old / new)
        print(f"{spec:26} {old:17.1f} {new:6.2f} {old / new:5.1f}x {old_cpu:17.1f} {new_cpu:6.2f}"
              f" {old_cpu / new_cpu:5.1f}x  {old_peak == new_peak} ({new_peak / GIB:.2f} GiB)",
              flush=True)  # fmt: skip
        if args.breakdown:
            parts, parts_cpu, _ = seconds(partial(breakdown_bytes, config, settings), args.repeats)
            print(f"{'  breakdown':26} {parts:17.2f} wall s, {parts / new:.2f}x the prediction;"
                  f" {parts_cpu:.2f} CPU s, {parts_cpu / new_cpu:.2f}x", flush=True)  # fmt: skip
    print(f"geometric mean of the wall-time ratios: {statistics.geometric_mean(ratios):.1f}x")


if __name__ == "__main__":
    main()
