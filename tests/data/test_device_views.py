"""Workers ship uint8 pixels; the views made from them where the batch runs equal the float ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tsfbench.data.datasets import VideoSet, read_dataset
from tsfbench.data.video import (
    ViewSpec,
    cropped_pixels,
    decode_views,
    device_views,
    make_views,
)

# (frames, height, width, crop): landscape and portrait downscales, an upscale, an exact fit, odd
SHAPES = [(6, 64, 85, 48), (6, 85, 64, 48), (4, 20, 30, 32), (4, 32, 32, 32), (3, 51, 77, 32)]


def frames_and_clips(t: int, h: int, w: int) -> tuple[torch.Tensor, list[list[int]]]:
    frames = torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8)
    return frames, [[0, 1, 2], [t - 3, t - 2, t - 1]]


@pytest.mark.parametrize("crops", [1, 3])
@pytest.mark.parametrize(("t", "h", "w", "size"), SHAPES)
def test_uint8_pixels_make_the_float_views_to_float_rounding(
    t: int, h: int, w: int, size: int, crops: int
) -> None:
    frames, clips = frames_and_clips(t, h, w)
    spec = ViewSpec(frames=3, size=size, clips=2, crops=crops, mean=(0.4, 0.45, 0.5))
    item = cropped_pixels(frames, clips, spec)
    old = make_views(frames, clips, spec)
    assert item["pixels"].dtype == torch.uint8
    assert item["pixels"].nbytes < old.nbytes
    new = device_views(item, spec, "cpu")
    if crops == 3 or h == w == size:  # the crops span the frame: the very same computation
        assert item["pixels"].shape[1:3] == (h, w) and torch.equal(new, old)
    else:  # one crop: only the window it reads is shipped, and resized
        assert item["pixels"].shape[1] * item["pixels"].shape[2] < h * w
        torch.testing.assert_close(new, old, rtol=0, atol=2e-5)


def test_a_source_far_larger_than_the_crop_ships_the_smaller_float_views() -> None:
    """One centre crop of 32 px from 200 px frames: the float views are fewer bytes."""
    frames, clips = frames_and_clips(4, 200, 300)
    spec = ViewSpec(frames=3, size=32, clips=2, crops=1)
    item = cropped_pixels(frames, clips, spec)
    assert item["pixels"] is None
    assert torch.equal(device_views(item, spec, "cpu"), make_views(frames, clips, spec))


def fitted_readout(videos: VideoSet, spec: ViewSpec) -> torch.nn.Module:
    """A linear readout of the views least-squares fitted to the labels: a model whose answer
    depends on every pixel and is right, so equal scores mean equal views, not a constant guess."""
    views = [decode_views(item.path, spec) for item in videos.items]
    x = torch.cat(views).flatten(1)
    labels = torch.tensor(
        [item.label for item, v in zip(videos.items, views, strict=True) for _ in v]
    )
    weight = torch.linalg.lstsq(x, torch.eye(4)[labels]).solution
    readout = torch.nn.Linear(x.shape[1], 4)
    readout.weight.data, readout.bias.data = weight.T.contiguous(), torch.zeros(4)
    return torch.nn.Sequential(torch.nn.Flatten(), readout)


def test_evaluation_ships_uint8_and_scores_every_video_as_the_float_views_did(
    synth_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tsfbench.evaluate as evaluate_module

    shipped: list[torch.dtype] = []

    def spy(item: dict[str, Any], spec: ViewSpec, device: torch.device | str) -> torch.Tensor:
        shipped.append((item["views"] if item["pixels"] is None else item["pixels"]).dtype)
        return device_views(item, spec, device)

    monkeypatch.setattr(evaluate_module, "device_views", spy)
    videos = read_dataset(synth_csv)
    spec = ViewSpec(frames=4, size=32, rate=2, clips=1, crops=3)
    model = fitted_readout(videos, spec)
    run = {"classes": 4, "batch": 5, "workers": 1}
    new = evaluate_module.evaluate(model, videos, spec, **run)
    assert shipped == [torch.uint8] * 12
    old = evaluate_module.evaluate(model, videos, spec, pixels="float32", **run)
    assert shipped[12:] == [torch.float32] * 12
    assert new.evaluated == old.evaluated == 12 and new.top1 > 50
    assert (new.predictions, new.top1, new.top5) == (old.predictions, old.top1, old.top5)


@pytest.mark.gpu
@pytest.mark.parametrize("crops", [1, 3])
def test_views_are_made_on_the_gpu_and_equal_the_cpu_ones(crops: int) -> None:
    frames, clips = frames_and_clips(6, 256, 340)
    spec = ViewSpec(frames=3, size=224, clips=2, crops=crops)
    views = device_views(cropped_pixels(frames, clips, spec), spec, "cuda")
    assert views.device.type == "cuda"
    torch.testing.assert_close(views.cpu(), make_views(frames, clips, spec), rtol=0, atol=2e-5)
