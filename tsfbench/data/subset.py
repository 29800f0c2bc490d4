"""Validation subsets: a fraction or K videos per class, stratified and reproducible.

The same seed and data give the same list on any machine (no dependence on file-system order
or hash seeds), and the chosen paths are stored with a result so a run can be repeated exactly.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

from tsfbench.data.datasets import VideoSet
from tsfbench.errors import ConfigError

T = TypeVar("T")


def parse_fraction(text: str | float) -> float:
    """'10%', '0.1' or 0.1 -> 0.1; the fraction must lie in (0, 1]."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise ConfigError(f"subset: cannot read {raw!r}; expected a percentage (10%) or 0 < x <= 1")
    return value


def select_subset(
    videos: VideoSet,
    *,
    fraction: float | None = None,
    per_class: int | None = None,
    seed: int = 0,
) -> VideoSet:
    """A stratified random subset: `per_class` videos of each class, or `fraction` of each class.

    Each class is shuffled by its own generator seeded with (seed, label), so adding or removing
    another class never changes which videos this one contributes. A fraction keeps
    `round(fraction * n)` videos of a class of n, at least one; a class with fewer than
    `per_class` videos gives all it has. The subset keeps the data set's order.
    """
    if fraction is None and per_class is None:
        return videos
    if per_class is not None and per_class <= 0:
        raise ConfigError(f"per-class: {per_class} must be a positive integer")
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, item in enumerate(videos.items):
        by_class[item.label].append(index)
    chosen: list[int] = []
    for label, indices in by_class.items():
        ordered = sorted(indices, key=lambda i: videos.items[i].path)
        random.Random(f"{seed}:{label}").shuffle(ordered)
        keep = per_class if per_class is not None else max(1, round(fraction * len(ordered)))
        chosen.extend(ordered[:keep])
    items = tuple(videos.items[i] for i in sorted(chosen))
    return replace(videos, items=items)


def restrict(videos: VideoSet, paths: Iterable[str]) -> VideoSet:
    """Only the videos named in `paths` (relative, as a result stores them): reuse a subset."""
    wanted = set(paths)
    items = tuple(item for item in videos.items if videos.relative(item) in wanted)
    missing = wanted - {videos.relative(item) for item in items}
    if missing:
        raise ConfigError(
            f"videos: {len(missing)} listed videos not in the data, e.g. {min(missing)}"
        )
    return replace(videos, items=items)


def shard(items: Sequence[T], index: int, count: int) -> list[T]:
    """Slice `index` of `count` disjoint round-robin slices: every `count`-th item from `index`,
    none padded or repeated (a torchrun rank's videos; a SLURM task's suite tasks). Round-robin
    keeps slices balanced when a list puts cheap items before expensive ones."""
    return list(items[index::count])
