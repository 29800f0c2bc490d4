"""Memory prediction: seconds per full-size configuration, the scanning reference vs today's.

    python benchmarks/predict_speed.py                   # ViT-B train/infer, joint and divided
    python benchmarks/predict_speed.py --configs divided:8:224:train:sdpa --repeats 3

Both run in this process, one configuration after the other, so a busy machine slows both alike;
the ratio is the figure to compare. Each row also checks that both predict the same bytes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import predict_reference  # noqa: E402

from tsfbench.config import ProbeSettings, RunConfig  # noqa: E402
from tsfbench.measure.predict import predict_peak  # noqa: E402

DEFAULT = (
    "divided:8:224:train:sdpa",
    "joint:8:224:train:sdpa",
    "joint:16:224:train:math",
    "divided:8:224:infer:sdpa",
)


def seconds(predict: Callable[[], int], repeats: int) -> tuple[float, int]:
    """Median wall seconds of `repeats` predictions, and the predicted bytes."""
    times, peak = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        peak = predict()
        times.append(time.perf_counter() - start)
    return statistics.median(times), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(DEFAULT),
                        help="attention:frames:size:mode:backend, comma-separated")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    # the first prediction in a process pays for lazy imports and kernel registration: not timed
    predict_peak(RunConfig(frames=2, size=32), ProbeSettings(device="cpu"), "cpu", {"depth": 1})
    print(f"{'configuration':32} {'reference s':>12} {'now s':>8} {'ratio':>7}  same bytes")
    ratios = []
    for spec in args.configs.split(","):
        attention, frames, size, mode, backend = spec.split(":")
        config = RunConfig(attention=attention, frames=int(frames), size=int(size))
        settings = ProbeSettings(mode=mode, backend=backend, device="cpu")
        old, old_peak = seconds(
            lambda: predict_reference.predict_peak(config, settings, "cpu"), args.repeats
        )
        new, new_peak = seconds(lambda: predict_peak(config, settings, "cpu"), args.repeats)
        ratios.append(old / new)
        print(f"{spec:32} {old:12.1f} {new:8.2f} {old / new:6.1f}x  {old_peak == new_peak}"
              f" ({new_peak / 2**30:.2f} GiB)", flush=True)  # fmt: skip
    print(f"geometric mean ratio: {statistics.geometric_mean(ratios):.1f}x")


if __name__ == "__main__":
    main()
