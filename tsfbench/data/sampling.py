"""Where the views of a video come from: frame indices in time, crop offsets in space.

Pure index math, no decoding, so the test protocol can be checked number by number. Both follow
the released TimeSformer / PySlowFast test code (`decoder.get_start_end_idx`,
`decoder.temporal_sampling`, `transform.uniform_crop`, `transform.random_short_side_scale_jitter`
with min = max = crop size), re-derived, not copied.
"""

from __future__ import annotations

import math

SAMPLINGS = ("dense", "segment")
TARGET_FPS = 30.0  # released configs: DATA.TARGET_FPS


def clip_indices(
    video_frames: int,
    frames: int,
    rate: int,
    clip: int = 0,
    clips: int = 1,
    *,
    fps: float = TARGET_FPS,
    target_fps: float = TARGET_FPS,
) -> list[int]:
    """Frame indices of temporal clip `clip` of `clips` for an F-frame clip at sampling rate r.

    Dense sampling (Kinetics, Diving-48): a clip spans `rate * frames` frames at `target_fps`
    (so `rate * frames * fps / target_fps` frames of the file); the `clips` start points split
    the slack `delta = max(video - span, 0)` uniformly, start = delta * clip / clips (released
    formula: one clip starts at frame 0, ten clips never reach the very end). F indices are
    spaced evenly from start to start + span - 1, truncated to integers and clamped to the
    video, so a short video repeats its last frame rather than failing.
    """
    span = rate * frames * fps / target_fps
    delta = max(video_frames - span, 0.0)
    start = delta * clip / clips
    end = start + span - 1
    step = (end - start) / (frames - 1) if frames > 1 else 0.0
    return [min(max(int(start + step * i), 0), video_frames - 1) for i in range(frames)]


def segment_indices(video_frames: int, frames: int) -> list[int]:
    """The middle frame of each of F equal segments (released SSv2 test sampling, TSN-style).

    Something-Something-V2 clips are short and their order matters more than their rate, so the
    released code takes one frame from each segment instead of a fixed-rate clip.
    """
    segment = (video_frames - 1) / frames
    out = []
    for i in range(frames):
        start, end = round(segment * i), round(segment * (i + 1))
        out.append((start + end) // 2)
    return out


def view_indices(
    video_frames: int,
    frames: int,
    rate: int,
    clips: int,
    sampling: str = "dense",
    fps: float = TARGET_FPS,
) -> list[list[int]]:
    """Frame indices of every temporal clip of a video (segment sampling has a single clip)."""
    if sampling == "segment":
        return [segment_indices(video_frames, frames)]
    return [clip_indices(video_frames, frames, rate, c, clips, fps=fps) for c in range(clips)]


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """(H, W) with the shorter side scaled to `short` and the longer side floored (released)."""
    if width <= height:
        return math.floor(height / width * short), short
    return short, math.floor(width / height * short)


def crop_offsets(height: int, width: int, size: int, crops: int = 3) -> list[tuple[int, int]]:
    """(y, x) corners of `crops` square crops of side `size`: 1 = centre; 3 = start, centre, end.

    Three crops run along the longer side (left / centre / right, or top / centre / bottom), so
    together they cover the whole frame once its shorter side equals `size` (paper, appendix).
    """
    centre = (math.ceil((height - size) / 2), math.ceil((width - size) / 2))
    if crops == 1:
        return [centre]
    if crops != 3:
        raise ValueError(f"crops={crops}; the test protocol takes 1 or 3 spatial crops")
    if height > width:
        return [(0, centre[1]), centre, (height - size, centre[1])]
    return [(centre[0], 0), centre, (centre[0], width - size)]
