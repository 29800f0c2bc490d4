"""Decoding a video into its test views, and the `Dataset` that does it inside loader workers.

Test protocol (paper appendix; NUMBERS.md): sample `clips` temporal clips, scale the shorter
side to the crop size, take `crops` square crops along the longer side, normalise with the
released configs' mean / std. A video that cannot give its views is returned as a skip with a
reason, never raised: one bad file among 20,000 must not end a run. Which decoder reads a video
(decord, or PyAV where decord cannot) and why none could is `decoders.py`'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from tsfbench.data.datasets import VideoItem
from tsfbench.data.decoders import VideoError, read_video
from tsfbench.data.sampling import SAMPLINGS, crop_offsets, short_side_size, view_indices

# PySlowFast's DATA.MEAN / DATA.STD, which the released TimeSformer configs keep: pixels are
# scaled to [0, 1], then (x - 0.45) / 0.225 in every channel (not ImageNet's per-channel values).
MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)
# What a loader worker ships: "float32" normalised views (V, 3, F, S, S), or "uint8" pixels, the
# part of the decoded frames the views read, finished by `device_views` where the batch is run.
# At 8 x 224 with 3 crops of a 340 x 256 video that is 2.1 MB instead of 14.5 MB through shared
# memory, and the float work runs on the GPU when there is one.
PIXELS = ("float32", "uint8")


@dataclass(frozen=True)
class ViewSpec:
    """How to cut one video into views: F frames at rate r, `clips` x `crops`, side `size`."""

    frames: int
    size: int
    rate: int = 1
    clips: int = 1
    crops: int = 3
    sampling: str = "dense"  # "segment" for Something-Something-V2
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD
    threads: int = 1  # decoder threads per worker; the loader's workers give the parallelism

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling={self.sampling!r}; expected one of {', '.join(SAMPLINGS)}")

    @property
    def views(self) -> int:
        return (1 if self.sampling == "segment" else self.clips) * self.crops


@dataclass(frozen=True)
class Decoded:
    """The unique frames every view of a video needs, (T, H, W, 3) uint8; per temporal clip,
    positions into them; and the decoder that read them (`decoders.DECODERS`)."""

    frames: Tensor
    clips: list[list[int]]
    decoder: str


def decode_frames(path: str, spec: ViewSpec) -> Decoded:
    """Decode the frames every view needs in one batch (`decoders.read_video`: decord, or PyAV
    where decord cannot read the video); raises `VideoError` with the reason."""

    def choose(length: int, fps: float) -> tuple[list[int], list[list[int]]]:
        if length < spec.frames:
            raise VideoError("too short", f"{path}: {length} frames < {spec.frames}")
        clips = view_indices(length, spec.frames, spec.rate, spec.clips, spec.sampling, fps)
        return sorted({i for clip in clips for i in clip}), clips

    pixels, clips, decoder = read_video(path, spec.threads, choose)
    unique = sorted({i for clip in clips for i in clip})
    position = {index: n for n, index in enumerate(unique)}
    return Decoded(
        torch.from_numpy(pixels), [[position[i] for i in clip] for clip in clips], decoder
    )


def read_frames(path: str, spec: ViewSpec) -> tuple[Tensor, list[list[int]]]:
    """`decode_frames` without the decoder's name: (unique frames, positions per clip)."""
    decoded = decode_frames(path, spec)
    return decoded.frames, decoded.clips


def resized_frames(frames: Tensor, spec: ViewSpec) -> Tensor:
    """(T, H, W, 3) uint8 frames -> (T, 3, H', W') normalised floats, the shorter side `size`.

    Bilinear resize (align_corners=False, as released), then the normalisation: per channel and
    affine, so doing it after the resize changes nothing but the work.
    """
    x = frames.permute(0, 3, 1, 2).float().div_(255)
    height, width = short_side_size(x.shape[2], x.shape[3], spec.size)
    if (height, width) != tuple(x.shape[2:]):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    mean = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def make_views(frames: Tensor, clips: list[list[int]], spec: ViewSpec) -> Tensor:
    """(T, H, W, 3) uint8 frames -> (V, 3, F, S, S) normalised views, clip-major then crop."""
    x = resized_frames(frames, spec)
    height, width = x.shape[2:]
    views = []
    for clip in clips:
        frames_of_clip = x[clip]  # (F, 3, H, W)
        for y0, x0 in crop_offsets(height, width, spec.size, spec.crops):
            crop = frames_of_clip[:, :, y0 : y0 + spec.size, x0 : x0 + spec.size]
            views.append(crop.permute(1, 0, 2, 3))
    return torch.stack(views)


def _taps(
    source: int, resized: int, start: int, size: int, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor, Tensor]:
    """Bilinear taps of rows `start .. start + size - 1` of a `source` -> `resized` resize: the
    two source rows each reads and the weight of the second, as `F.interpolate` computes them
    (align_corners=False: scale in float32, source = scale (dst + 0.5) - 0.5, clamped at 0)."""
    scale = torch.tensor(source, dtype=torch.float32) / resized
    position = (torch.arange(start, start + size, device=device) + 0.5) * scale.to(device) - 0.5
    position = position.clamp_(min=0)
    first = position.long()  # floor: position >= 0
    second = (first + 1).clamp_(max=source - 1)
    return first, second, (position - first).clamp_(0, 1)


def _window(height: int, width: int, spec: ViewSpec) -> tuple[slice, slice]:
    """The rows and the columns of a decoded frame that the crops read (their bilinear taps)."""
    resized = short_side_size(height, width, spec.size)
    corners = crop_offsets(*resized, spec.size, spec.crops)
    spans = []
    for axis, source in enumerate((height, width)):
        taps = [_taps(source, resized[axis], corner[axis], spec.size)[:2] for corner in corners]
        low, high = min(int(t[0].min()) for t in taps), max(int(t[1].max()) for t in taps)
        spans.append(slice(low, high + 1))
    return spans[0], spans[1]


def cropped_pixels(frames: Tensor, clips: list[list[int]], spec: ViewSpec) -> dict[str, Any]:
    """What a worker ships for `device_views`: the uint8 rows and columns of `frames` that the
    views read and where they sit, or the float views where those are the smaller."""
    height, width = frames.shape[1:3]
    rows, columns = _window(height, width, spec)
    pixels = frames[:, rows, columns]
    views_bytes = 4 * 3 * spec.frames * spec.size**2 * len(clips) * spec.crops
    if pixels.nbytes >= views_bytes:  # e.g. 1080p at 8 x 224: the float views are smaller
        return {"views": make_views(frames, clips, spec), "pixels": None}
    return {
        "pixels": pixels.contiguous(),
        "clips": clips,
        "frame_size": (height, width),
        "origin": (rows.start, columns.start),
    }


def device_views(item: dict[str, Any], spec: ViewSpec, device: torch.device | str) -> Tensor:
    """The (V, 3, F, S, S) float views of a `VideoViews` item, made on `device`.

    Whole frames (3 crops span the frame) go through `make_views` itself: the same numbers as
    the workers' float views, bit for bit on the CPU. A window (one crop) is resized only where
    the crop reads it: the same taps as `F.interpolate` on the whole frame, equal to float
    rounding (~1e-6). A float32 item is moved as it is.
    """
    if item["pixels"] is None:
        return item["views"].to(device, non_blocking=True)
    pixels = item["pixels"].to(device, non_blocking=True)
    height, width = item["frame_size"]
    top, left = item["origin"]
    if (top, left, *pixels.shape[1:3]) == (0, 0, height, width):
        return make_views(pixels, item["clips"], spec)
    # (3, T, h, w) floats, normalised first: affine per channel, so it commutes with the resize
    x = torch.empty(3, *pixels.shape[:3], device=pixels.device).copy_(pixels.permute(3, 0, 1, 2))
    std = torch.tensor(spec.std, device=x.device).view(3, 1, 1, 1)
    mean = torch.tensor(spec.mean, device=x.device).view(3, 1, 1, 1)
    x.mul_(1 / (255 * std)).sub_(mean / std)
    resized = short_side_size(height, width, spec.size)
    crops = []
    for y0, x0 in crop_offsets(*resized, spec.size, spec.crops):
        r0, r1, a = _taps(height, resized[0], y0, spec.size, x.device)
        c0, c1, b = _taps(width, resized[1], x0, spec.size, x.device)
        # rows by index_select on dim 2 (whole rows copied), then the same for the columns of
        # the transposed result: gathering along the last dim is several times slower on a CPU
        rows = torch.lerp(x.index_select(2, r0 - top), x.index_select(2, r1 - top), a[:, None])
        rows = rows.transpose(2, 3).contiguous()  # (3, T, w, S)
        crops.append(
            torch.lerp(rows.index_select(2, c0 - left), rows.index_select(2, c1 - left), b[:, None])
        )  # (3, T, S columns, S rows)
    clips = [torch.tensor(clip, device=x.device) for clip in item["clips"]]
    return torch.stack([crop.index_select(1, i).transpose(2, 3) for i in clips for crop in crops])


def decode_views(path: str, spec: ViewSpec) -> Tensor:
    """All test views of one video, (V, 3, F, S, S); raises `VideoError` with the reason."""
    frames, clips = read_frames(path, spec)
    return make_views(frames, clips, spec)


class VideoViews(Dataset):
    """Item i is every view of video `indices[i]`, or the reason it was skipped.

    Items are dicts of plain values (`index`, `label`, `views` or None, `reason`, `detail`,
    `decode_s`) so a `DataLoader(batch_size=None)` with workers passes them through unchanged;
    `decode_s` is the worker's own time, which gives the loader's throughput apart from the
    model's. With `pixels="uint8"` an item carries `pixels` (the uint8 part of the frames the
    views read), `clips`, `frame_size` and `origin` instead of `views`, unless the float views
    are the smaller (sources far larger than the crop); `device_views` makes views of either.
    """

    def __init__(
        self,
        items: Sequence[VideoItem],
        spec: ViewSpec,
        indices: Sequence[int] | None = None,
        pixels: str = "float32",
    ) -> None:
        if pixels not in PIXELS:
            raise ValueError(f"pixels={pixels!r}; expected one of {', '.join(PIXELS)}")
        self.items = list(items)
        self.spec = spec
        self.indices = list(range(len(self.items))) if indices is None else list(indices)
        self.pixels = pixels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        index = self.indices[i]
        item = self.items[index]
        start = time.perf_counter()
        out: dict[str, Any] = {"index": index, "label": item.label, "views": None, "reason": ""}
        out["pixels"] = out["decoder"] = None
        try:
            decoded = decode_frames(item.path, self.spec)
            out["decoder"] = decoded.decoder
            if self.pixels == "float32":
                out["views"] = make_views(decoded.frames, decoded.clips, self.spec)
            else:
                out |= cropped_pixels(decoded.frames, decoded.clips, self.spec)
        except VideoError as error:
            out["reason"], out["detail"] = error.reason, str(error)
        out["decode_s"] = time.perf_counter() - start
        return out
