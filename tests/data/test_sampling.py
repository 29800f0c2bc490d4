"""The test protocol's index math: temporal clips and spatial crops."""

from __future__ import annotations

import pytest

from tsfbench.data.sampling import (
    clip_indices,
    crop_offsets,
    segment_indices,
    short_side_size,
    view_indices,
)


def test_one_clip_of_8_at_rate_32_spans_256_frames_from_the_start() -> None:
    # 300-frame Kinetics video at 30 fps: slack 44, one clip starts at 44 * 0 / 1 = 0.
    assert clip_indices(300, 8, 32) == [0, 36, 72, 109, 145, 182, 218, 255]


def test_ten_clips_split_the_slack_uniformly() -> None:
    starts = [clip_indices(300, 8, 32, c, 10)[0] for c in range(10)]
    assert starts == [int(44 * c / 10) for c in range(10)]
    last = clip_indices(300, 8, 32, 9, 10)
    assert last[-1] == int(44 * 9 / 10 + 255) and last[-1] < 300


def test_a_short_video_repeats_its_last_frame() -> None:
    assert clip_indices(100, 8, 32) == [0, 36, 72, 99, 99, 99, 99, 99]


def test_the_span_follows_the_file_frame_rate() -> None:
    # At 60 fps a 1/32 rate at 30 fps covers 512 file frames.
    assert clip_indices(600, 8, 32, fps=60)[-1] == 511


def test_segment_sampling_takes_the_middle_of_each_segment() -> None:
    assert segment_indices(33, 8) == [2, 6, 10, 14, 18, 22, 26, 30]
    assert view_indices(33, 8, 32, 10, "segment") == [segment_indices(33, 8)]


def test_shorter_side_goes_to_the_crop_size() -> None:
    assert short_side_size(240, 320, 224) == (224, 298)
    assert short_side_size(320, 240, 224) == (298, 224)


@pytest.mark.parametrize(("height", "width"), [(224, 298), (298, 224), (224, 224)])
def test_three_crops_cover_the_frame(height: int, width: int) -> None:
    covered = [[False] * width for _ in range(height)]
    for y, x in crop_offsets(height, width, 224, 3):
        assert 0 <= y <= height - 224 and 0 <= x <= width - 224
        for row in range(y, y + 224):
            covered[row][x : x + 224] = [True] * 224
    assert all(all(row) for row in covered)


def test_one_crop_is_centred() -> None:
    assert crop_offsets(224, 298, 224, 1) == [(0, 37)]
