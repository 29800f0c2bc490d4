"""Subsets are reproducible for a seed and keep every class's share."""

from __future__ import annotations

from collections import Counter

import pytest

from tsfbench.config import ConfigError
from tsfbench.data.datasets import VideoItem, VideoSet
from tsfbench.data.subset import parse_fraction, restrict, select_subset, shard

VIDEOS = VideoSet(
    tuple(VideoItem(f"/d/{c}/{i}.mp4", c) for c in range(5) for i in range(10 + 10 * c)),
    tuple(str(c) for c in range(5)),
    "/d",
)


def test_fraction_is_stratified_and_deterministic() -> None:
    first = select_subset(VIDEOS, fraction=0.1, seed=3)
    assert first == select_subset(VIDEOS, fraction=0.1, seed=3)
    assert Counter(i.label for i in first.items) == {0: 1, 1: 2, 2: 3, 3: 4, 4: 5}
    assert first != select_subset(VIDEOS, fraction=0.1, seed=4)


def test_per_class_ignores_input_order() -> None:
    shuffled = VideoSet(tuple(reversed(VIDEOS.items)), VIDEOS.classes, VIDEOS.root)
    a = select_subset(VIDEOS, per_class=3, seed=0)
    b = select_subset(shuffled, per_class=3, seed=0)
    assert set(a.items) == set(b.items)
    assert Counter(i.label for i in a.items) == dict.fromkeys(range(5), 3)


def test_a_stored_list_restores_the_subset() -> None:
    chosen = select_subset(VIDEOS, per_class=2, seed=1)
    assert restrict(VIDEOS, [VIDEOS.relative(i) for i in chosen.items]) == chosen


def test_shards_are_disjoint_and_complete() -> None:
    parts = [shard(range(len(VIDEOS.items)), r, 3) for r in range(3)]
    assert sorted(i for p in parts for i in p) == list(range(len(VIDEOS.items)))


@pytest.mark.parametrize("text", ["0%", "abc", "150%", "-0.5"])
def test_bad_fraction(text: str) -> None:
    with pytest.raises(ConfigError, match="subset"):
        parse_fraction(text)


def test_fraction_forms() -> None:
    assert parse_fraction("10%") == parse_fraction("0.1") == 0.1
