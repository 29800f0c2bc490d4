"""The motion test, in full: every attention scheme x 3 seeds, trained from scratch, one table.

Writes the synthetic set with a train split (4 classes: right / left, slow / fast; 64 training
and 32 validation videos a class), then runs `tsfbench.train.motion_test` (the code behind
`tsfbench train`) for each scheme and seed, and prints scheme, parameters, val top-1 (mean and
spread over the seeds, test protocol: 3 crops), the direction-blind ceiling and the training
seconds. `space` cannot see frame order, so it should stay within the noise of the ceiling;
the other schemes should reach 90% or more.

By default it trains the published seeds on the published data seed (`PUBLISHED_SEEDS`,
`PUBLISHED_DATA_SEED`), which the recipe was not tuned on; `--seeds 0,1,2 --data-seed 0` is the
tuning set.

    python benchmarks/motion_test.py [--schemes all] [--seeds 100,101,102] [--data-seed 1]
                                     [--data DIR] [--json FILE] [--threads N]
    python benchmarks/motion_test.py --merge a.json b.json   # one table from runs in parallel
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from tsfbench.config import PUBLISHED_DATA_SEED, PUBLISHED_SEEDS
from tsfbench.data.synth import write_synthetic
from tsfbench.models.timesformer import ATTENTIONS
from tsfbench.train import TrainSettings, motion_test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemes", default="all", help="comma list of schemes, or all")
    published = ",".join(map(str, PUBLISHED_SEEDS))
    parser.add_argument("--seeds", default=published, help="comma list of training seeds")
    parser.add_argument("--data-seed", type=int, default=PUBLISHED_DATA_SEED)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (recipe's)")
    parser.add_argument("--train-per-class", type=int, default=64)
    parser.add_argument("--val-per-class", type=int, default=32)
    parser.add_argument("--data", type=Path, default=None, help="reuse / write the set here")
    parser.add_argument("--json", type=Path, default=None, help="also write every record")
    parser.add_argument("--merge", type=Path, nargs="+", help="print the table of --json files")
    args = parser.parse_args()
    if args.merge:
        table([r for path in args.merge for r in json.loads(path.read_text())])
        return
    schemes = list(ATTENTIONS) if args.schemes == "all" else args.schemes.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        data = args.data or Path(scratch) / "synthetic"
        if not (data / "train.csv").is_file():
            start = time.perf_counter()
            write_synthetic(
                data,
                per_class=args.val_per_class,
                train_per_class=args.train_per_class,
                seed=args.data_seed,
            )
            print(f"wrote the synthetic set in {time.perf_counter() - start:.1f} s: {data}")
        records = []
        for scheme in schemes:
            for seed in seeds:
                settings = TrainSettings(attention=scheme, seed=seed, steps=args.steps)
                record = motion_test(settings, data, Path(scratch) / f"{scheme}-{seed}.pt")
                records.append(record)
                print(
                    f"{scheme:>12} seed {seed}: top-1 {record['top1']:5.1f}%  loss "
                    f"{record['final_loss']:.3f}  train {record['train_seconds']:.0f} s",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(records, indent=2))
    table(records)


def table(records: list[dict[str, Any]]) -> None:
    """Scheme, params, top-1 mean +- spread over seeds, ceiling, mean training seconds."""
    schemes = list(dict.fromkeys(r["attention"] for r in records))
    recipe = {k: v for k, v in records[0].items() if k in TrainSettings.__dataclass_fields__}
    for varies in ("attention", "seed", "steps", "patch"):
        recipe.pop(varies)
    print()
    print(f"recipe: {json.dumps(recipe)}; data seed {records[0].get('data_seed')}")
    header = ("scheme", 12), ("params", 8), ("top-1 %", 15), ("seeds", 6), ("ceiling %", 10)
    columns = f"{'patch':>5} {'steps':>6} {'train s':>8} {'eval s':>7}"
    print(" ".join(f"{name:>{width}}" for name, width in header), columns)
    for scheme in schemes:
        rows = [r for r in records if r["attention"] == scheme]
        top1 = [r["top1"] for r in rows]
        spread = statistics.pstdev(top1) if len(top1) > 1 else 0.0
        seconds = statistics.mean(r["train_seconds"] for r in rows)
        evaluation = statistics.mean(r["eval_seconds"] for r in rows)
        print(
            f"{scheme:>12} {rows[0]['params']:>8,} {statistics.mean(top1):>8.1f} +- {spread:4.1f}"
            f" {len(rows):>6} {rows[0]['ceiling']:>10.1f} {rows[0]['patch']:>5}"
            f" {rows[0]['steps']:>6} {seconds:>8.0f} {evaluation:>7.0f}"
        )
    print("top-1: mean +- population std over seeds; val set, 3 crops; ceiling: direction-blind")


if __name__ == "__main__":
    main()
