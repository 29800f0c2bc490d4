"""The test protocol's index math: temporal clips and spatial crops."""

from __future__ import annotations

import pytest

from tsfbench.data.sampling import (
    clip_indices,
    crop_offsets,
    dataset_sampling,
    segment_indices,
    short_side_size,
    symmetric_indices,
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


@pytest.mark.parametrize("frames", [2, 4, 8, 16])
@pytest.mark.parametrize("clips", [1, 2, 3])
@pytest.mark.parametrize("rate", [1, 2, 3, 5])
def test_a_symmetric_clip_played_backwards_is_the_reversed_videos_clip(
    frames: int, clips: int, rate: int
) -> None:
    """What the motion test's ceiling rests on: a left video is a right one reversed, so the
    frames a left clip shows must be a right clip's, reversed; then no order-blind model can
    tell the two apart by which frames were taken."""
    for length in range(frames, 3 * rate * frames):
        sampled = view_indices(length, frames, rate, clips, "symmetric")
        # The reversed video has the same length, so the same indices; its frame i is the
        # original's frame length - 1 - i. Its clip k, played backwards, in the original's frames:
        for k, clip in enumerate(sampled):
            backwards = [length - 1 - i for i in reversed(clip)]
            assert backwards == sampled[clips - 1 - k], (length, k)
            assert clip == sorted(clip) and clip[0] >= 0 and clip[-1] < length


def test_the_released_dense_sampling_is_not_symmetric_and_stays_as_released() -> None:
    """The issue's example: 8 frames at rate 3 of a 24-frame video (the synthetic set's)."""
    dense = clip_indices(24, 8, 3)
    assert dense == [0, 3, 6, 9, 13, 16, 19, 23]  # released truncation, unchanged
    assert [23 - i for i in reversed(dense)] == [0, 4, 7, 10, 14, 17, 20, 23] != dense
    assert symmetric_indices(24, 8, 3) == [0, 3, 7, 10, 13, 16, 20, 23]
    assert view_indices(24, 8, 3, 1, "symmetric") == [[0, 3, 7, 10, 13, 16, 20, 23]]


def test_only_the_synthetic_set_is_sampled_symmetrically() -> None:
    assert dataset_sampling("kinetics", "synthetic") == "symmetric"
    assert dataset_sampling("kinetics", "K400") == "dense"
    assert dataset_sampling("kinetics", "other") == "dense"
    assert dataset_sampling("ssv2", "SSv2") == "segment"


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
