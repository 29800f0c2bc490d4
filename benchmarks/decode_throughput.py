"""Decode throughput of the accuracy loader for 8 x 224 clips: 0 vs 2 DataLoader workers.

Writes Kinetics-like synthetic videos (10 s at 30 fps, 340 x 256, H.264) to a temporary folder,
then reads every test view of each (8 frames at rate 1/32, shorter side to 224, 3 crops,
normalised) through `VideoViews` in a `DataLoader`, with 0 and then 2 workers, and prints both
rates and their ratio. Synthetic frames are smooth and compress well, so H.264 decoding is
cheaper than on real Kinetics videos: read the figures as an upper bound of this machine.

    python benchmarks/decode_throughput.py [--videos 12] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from torch.utils.data import DataLoader

from tsfbench.data.datasets import read_dataset
from tsfbench.data.synth import write_synthetic
from tsfbench.data.video import VideoViews, ViewSpec
from tsfbench.evaluate import _worker_init

SPEC = ViewSpec(frames=8, size=224, rate=32, clips=1, crops=3)


def clips_per_second(dataset: VideoViews, workers: int) -> tuple[float, int]:
    """Clips (views) per second through the loader, end to end, and the clips counted."""
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        worker_init_fn=_worker_init if workers else None,
    )
    start, clips = time.perf_counter(), 0
    for item in loader:
        assert item["views"] is not None, item["reason"]
        clips += item["views"].shape[0]
    return clips / (time.perf_counter() - start), clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12, help="videos to write and read")
    parser.add_argument("--workers", type=int, default=2, help="workers of the second run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        csv = write_synthetic(
            folder, classes=4, per_class=-(-args.videos // 4), frames=300, height=256, width=340
        )
        took = time.perf_counter() - start
        print(f"wrote {args.videos} videos (300 frames, 340 x 256) in {took:.1f} s")
        items = read_dataset(csv).items
        dataset = VideoViews(items, SPEC)
        torch.set_num_threads(1)  # same per-process threads in both runs: only workers differ
        clips_per_second(dataset, 0)  # warm the page cache and the decoder libraries
        serial, clips = clips_per_second(dataset, 0)
        parallel, _ = clips_per_second(dataset, args.workers)
        print(
            f"{len(items)} videos, {clips} clips of {SPEC.frames} x {SPEC.size} "
            f"(rate 1/{SPEC.rate}, {SPEC.clips} x {SPEC.crops} views), {os.cpu_count()} CPU cores"
        )
        print(f"  0 workers: {serial:7.1f} decode clips/s")
        print(f"  {args.workers} workers: {parallel:7.1f} decode clips/s")
        print(f"  ratio     : {parallel / serial:7.2f}x")


if __name__ == "__main__":
    main()
