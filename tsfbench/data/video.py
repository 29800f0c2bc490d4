"""Decoding a video into its test views, and the `Dataset` that does it inside loader workers.

Test protocol (paper appendix; NUMBERS.md): sample `clips` temporal clips, scale the shorter
side to the crop size, take `crops` square crops along the longer side, normalise with the
released configs' mean / std. A video that cannot give its views is returned as a skip with a
reason, never raised: one bad file among 20,000 must not end a run.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from tsfbench.data.datasets import VideoItem
from tsfbench.data.sampling import SAMPLINGS, crop_offsets, short_side_size, view_indices

# PySlowFast's DATA.MEAN / DATA.STD, which the released TimeSformer configs keep: pixels are
# scaled to [0, 1], then (x - 0.45) / 0.225 in every channel (not ImageNet's per-channel values).
MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)
SKIP_REASONS = ("missing", "corrupt", "unreadable", "too short")


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


class VideoError(Exception):
    """A video that cannot be evaluated; `reason` is one of `SKIP_REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def import_decord() -> ModuleType:
    """decord, imported after PyAV where PyAV is installed.

    decord loads its bundled FFmpeg with RTLD_GLOBAL, and its old libvpx (whose symbols carry no
    version) then shadows the newer one PyAV's libavcodec links: once decord is in a process,
    PyAV cannot open the VP9 encoder there (EINVAL). With PyAV loaded first each keeps its own,
    so a process that decodes can still write `synth --codec vp9` videos.
    """
    if "decord" not in sys.modules and importlib.util.find_spec("av") is not None:
        import av  # noqa: F401

    import decord

    return decord


def read_frames(path: str, spec: ViewSpec) -> tuple[Tensor, list[list[int]]]:
    """Decode the frames every view needs in one `get_batch` call.

    Returns the unique frames (T, H, W, 3) uint8 and, per temporal clip, positions into them.
    """
    if not Path(path).is_file():
        raise VideoError("missing", path)
    decord = import_decord()  # lazily: the package imports without the decoder

    decord.logging.set_level(decord.logging.QUIET)  # FFmpeg's log: the skip carries the reason
    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=spec.threads)
        length, fps = len(reader), float(reader.get_avg_fps() or 30.0)
    except Exception as error:  # decord raises its own DECORDError, or RuntimeError
        raise VideoError("corrupt", f"{path}: {str(error).splitlines()[0][:200]}") from None
    if length < spec.frames:
        raise VideoError("too short", f"{path}: {length} frames < {spec.frames}")
    clips = view_indices(length, spec.frames, spec.rate, spec.clips, spec.sampling, fps)
    unique = sorted({i for clip in clips for i in clip})
    try:
        frames = torch.from_numpy(reader.get_batch(unique).asnumpy())
    except Exception as error:
        raise VideoError("unreadable", f"{path}: {str(error).splitlines()[0][:200]}") from None
    position = {index: n for n, index in enumerate(unique)}
    return frames, [[position[i] for i in clip] for clip in clips]


def make_views(frames: Tensor, clips: list[list[int]], spec: ViewSpec) -> Tensor:
    """(T, H, W, 3) uint8 frames -> (V, 3, F, S, S) normalised views, clip-major then crop.

    Bilinear resize of the shorter side (align_corners=False, as released), then crops; the
    normalisation is per channel and affine, so doing it after the resize changes nothing but
    the work.
    """
    x = frames.permute(0, 3, 1, 2).float().div_(255)
    height, width = short_side_size(x.shape[2], x.shape[3], spec.size)
    if (height, width) != tuple(x.shape[2:]):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    x = (x - mean) / std
    views = []
    for clip in clips:
        frames_of_clip = x[clip]  # (F, 3, H, W)
        for y0, x0 in crop_offsets(height, width, spec.size, spec.crops):
            crop = frames_of_clip[:, :, y0 : y0 + spec.size, x0 : x0 + spec.size]
            views.append(crop.permute(1, 0, 2, 3))
    return torch.stack(views)


def decode_views(path: str, spec: ViewSpec) -> Tensor:
    """All test views of one video, (V, 3, F, S, S); raises `VideoError` with the reason."""
    frames, clips = read_frames(path, spec)
    return make_views(frames, clips, spec)


class VideoViews(Dataset):
    """Item i is every view of video `indices[i]`, or the reason it was skipped.

    Items are dicts of plain values (`index`, `label`, `views` or None, `reason`, `detail`,
    `decode_s`) so a `DataLoader(batch_size=None)` with workers passes them through unchanged;
    `decode_s` is the worker's own time, which gives the loader's throughput apart from the
    model's.
    """

    def __init__(
        self, items: Sequence[VideoItem], spec: ViewSpec, indices: Sequence[int] | None = None
    ) -> None:
        self.items = list(items)
        self.spec = spec
        self.indices = list(range(len(self.items))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        index = self.indices[i]
        item = self.items[index]
        start = time.perf_counter()
        out: dict[str, Any] = {"index": index, "label": item.label, "views": None, "reason": ""}
        try:
            out["views"] = decode_views(item.path, self.spec)
        except VideoError as error:
            out["reason"], out["detail"] = error.reason, str(error)
        out["decode_s"] = time.perf_counter() - start
        return out
