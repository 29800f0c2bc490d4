"""Decoding gives the protocol's views; a bad file is a counted skip, never an exception."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tsfbench.data.datasets import VideoItem, read_dataset
from tsfbench.data.synth import synth_frames
from tsfbench.data.video import MEAN, STD, VideoViews, ViewSpec, decode_views, make_views

pytest.importorskip("decord")


def test_views_shape_and_normalisation(synth_csv: Path) -> None:
    videos = read_dataset(synth_csv)
    spec = ViewSpec(frames=4, size=32, rate=2, clips=2, crops=3)
    views = decode_views(videos.items[0].path, spec)
    assert views.shape == (6, 3, 4, 32, 32)
    # Back to pixels: within [0, 1] (normalised with the released 0.45 / 0.225).
    pixels = views * STD[0] + MEAN[0]
    assert pixels.min() >= -1e-4 and pixels.max() <= 1 + 1e-4


def test_three_crops_span_the_longer_side() -> None:
    frames = torch.arange(48 * 64).view(1, 48, 64, 1).expand(2, 48, 64, 3).to(torch.uint8)
    spec = ViewSpec(frames=2, size=48, crops=3, mean=(0, 0, 0), std=(1, 1, 1))
    views = make_views(frames, [[0, 1]], spec)
    expected = frames[0, :, :, 0].float() / 255
    assert torch.equal(views[0, 0, 0], expected[:, :48])
    assert torch.equal(views[2, 0, 0], expected[:, 16:])


def test_bad_videos_are_skipped_with_a_reason(synth_csv: Path, tmp_path: Path) -> None:
    good = read_dataset(synth_csv).items[0]
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(random.Random(0).randbytes(2000)))
    items = [good, VideoItem(str(tmp_path / "missing.mp4"), 0), VideoItem(str(corrupt), 0)]
    dataset = VideoViews(items, ViewSpec(frames=4, size=32, rate=2))
    reasons = [dataset[i]["reason"] for i in range(3)]
    assert reasons == ["", "missing", "corrupt"]
    too_long = VideoViews(items[:1], ViewSpec(frames=64, size=32))
    assert too_long[0]["reason"] == "too short"


def test_synthetic_videos_are_deterministic_and_decode_close(synth_csv: Path) -> None:
    a = synth_frames("left_fast", 24, 48, 64, random.Random("0:left_fast:0"))
    b = synth_frames("left_fast", 24, 48, 64, random.Random("0:left_fast:0"))
    assert np.array_equal(a, b)
    import decord

    decoded = decord.VideoReader(str(synth_csv.parent / "videos/left_fast/000.mp4"))
    frames = decoded.get_batch(list(range(24))).asnumpy().astype(float)
    assert frames.shape == a.shape and np.abs(frames - a).mean() < 3


def test_left_is_right_played_backwards() -> None:
    right = synth_frames("right_slow", 16, 32, 32, random.Random(1))
    left = synth_frames("left_slow", 16, 32, 32, random.Random(1))
    assert np.array_equal(left, right[::-1])


def test_a_corrupt_video_leaves_no_decoder_log(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(random.Random(1).randbytes(1000))
    item = VideoViews([VideoItem(str(corrupt), 0)], ViewSpec(frames=4, size=32))[0]
    assert item["reason"] == "corrupt" and "corrupt.mp4" in item["detail"]
    # neither FFmpeg's "[mov,mp4,...] moov atom not found" nor decord's C++ LOG(ERROR) line
    # ("[12:00:00] .../video_reader.cc:83: ERROR opening ...", which no Python setting stops)
    assert capfd.readouterr().err == ""
