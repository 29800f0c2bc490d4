"""Decode throughput of the accuracy loader at 8 x 224, before / after: float32 views or uint8.

Writes Kinetics-like synthetic videos (10 s at 30 fps, 340 x 256, H.264) to a temporary folder,
then reads every test view of each (8 frames at rate 1/32, shorter side to 224, 3 crops,
normalised) through `VideoViews` in a `DataLoader`, with 0 and N workers, two ways:

- before: workers ship the normalised float32 views (`pixels="float32"`, the old path);
- after: workers ship the uint8 pixels the views read, and the consumer makes the same views
  with `device_views` (`pixels="uint8"`, what `evaluate` does; here on `--device`, so on a CPU
  that work is timed in the main process, and on a GPU it leaves the host).

The four runs alternate `--repeats` times and the best rate of each is printed (the machine may
be shared), with the bytes shipped per video and the after / before ratios. Synthetic frames
are smooth and compress well, so H.264 decoding is cheaper than on real Kinetics videos: read
the rates as an upper bound of this machine; the bytes are what real 340 x 256 videos ship.

    python benchmarks/decode_throughput.py [--videos 12] [--workers 2] [--repeats 3]
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
from tsfbench.data.video import VideoViews, ViewSpec, device_views
from tsfbench.evaluate import _worker_init

SPEC = ViewSpec(frames=8, size=224, rate=32, clips=1, crops=3)


def run(
    dataset: VideoViews, workers: int, device: torch.device
) -> tuple[float, int, float, torch.Tensor]:
    """(clips/s end to end, clips, mean bytes shipped per video, the last video's views)."""
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        worker_init_fn=_worker_init if workers else None,
        pin_memory=device.type == "cuda",
    )
    start, clips, shipped = time.perf_counter(), 0, 0
    views = torch.empty(0)
    for item in loader:
        assert not item["reason"], item["reason"]
        shipped += (item["views"] if item["pixels"] is None else item["pixels"]).nbytes
        views = device_views(item, SPEC, device)
        clips += views.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return clips / (time.perf_counter() - start), clips, shipped / len(dataset), views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12, help="videos to write and read")
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel runs")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds; best kept")
    parser.add_argument("--frames", type=int, default=300, help="frames per video (30 fps)")
    parser.add_argument("--device", default="cpu", help="where the views are made (cpu, cuda)")
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        csv = write_synthetic(
            folder,
            classes=4,
            per_class=-(-args.videos // 4),
            frames=args.frames,
            height=256,
            width=340,
        )
        took = time.perf_counter() - start
        items = read_dataset(csv).items
        print(f"wrote {len(items)} videos ({args.frames} frames, 340 x 256) in {took:.1f} s")
        torch.set_num_threads(1)  # same per-process threads in every run: only the path differs
        paths = {"before": "float32", "after": "uint8"}
        datasets = {name: VideoViews(items, SPEC, pixels=pixels) for name, pixels in paths.items()}
        run(datasets["before"], 0, device)  # warm the page cache and the decoder libraries
        best: dict[tuple[str, int], float] = {}
        shipped: dict[str, float] = {}
        last: dict[str, torch.Tensor] = {}
        clips = 0
        for _ in range(args.repeats):
            for workers in (0, args.workers):
                for name, dataset in datasets.items():
                    rate, clips, shipped[name], last[name] = run(dataset, workers, device)
                    best[name, workers] = max(best.get((name, workers), 0.0), rate)
        difference = (last["after"] - last["before"]).abs().max().item()
        print(
            f"{len(items)} videos, {clips} clips of {SPEC.frames} x {SPEC.size} "
            f"(rate 1/{SPEC.rate}, {SPEC.clips} x {SPEC.crops} views), views made on {device}, "
            f"{os.cpu_count()} CPU cores, best of {args.repeats}"
        )
        print(f"  {'':26}{'before (float32)':>18}{'after (uint8)':>16}{'after/before':>14}")
        mb = {name: shipped[name] / 1e6 for name in paths}
        print(
            f"  {'MB shipped per video':26}{mb['before']:18.2f}{mb['after']:16.2f}"
            f"{mb['after'] / mb['before']:14.2f}"
        )
        for workers in (0, args.workers):
            before, after = best["before", workers], best["after", workers]
            label = f"clips/s, {workers} workers"
            print(f"  {label:26}{before:18.1f}{after:16.1f}{after / before:14.2f}")
        print(f"  max |after - before| of the last video's normalised views: {difference:.1e}")


if __name__ == "__main__":
    main()
