"""Where the views of a video come from: frame indices in time, crop offsets in space.

Pure index math, no decoding, so the test protocol can be checked number by number. Both follow
the released TimeSformer / PySlowFast test code (`decoder.get_start_end_idx`,
`decoder.temporal_sampling`, `transform.uniform_crop`, `transform.random_short_side_scale_jitter`
with min = max = crop size), re-derived, not copied.
"""

from __future__ import annotations

import math

SAMPLINGS = ("dense", "segment", "symmetric")
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


def symmetric_indices(
    video_frames: int,
    frames: int,
    rate: int,
    clip: int = 0,
    clips: int = 1,
    *,
    fps: float = TARGET_FPS,
    target_fps: float = TARGET_FPS,
) -> list[int]:
    """Dense sampling made symmetric in time: clip `clip` of a video played backwards is clip
    `clips - 1 - clip` of the video, played backwards (the synthetic set's sampling).

    The motion test's ceiling rests on it: a left video is a right one reversed, so its clip
    must be the right clip reversed, or an order-blind model can tell them apart by which
    frames were taken. The released truncation breaks that: 8 frames at rate 3 of 24 are
    {0,3,6,9,13,16,19,23}, the reversed video's {0,4,7,10,14,17,20,23}. Here the clips are
    centred in the slack (start = delta (k + 1/2) / clips, delta = video - span; a video
    shorter than the span has every clip centred on it, clamped at both ends), positions round
    to the nearest frame, and the later half of a clip is the mirror image of the earlier half
    of its mirror clip, so that the rounding is mirrored too ({0,3,7,10,13,16,20,23}). With an
    odd F the middle frame is its own mirror, which a middle position on a half frame cannot
    be (it rounds up): there the symmetry is off by one frame.
    """
    span = rate * frames * fps / target_fps
    step = (span - 1) / (frames - 1) if frames > 1 else 0.0
    last = video_frames - 1
    slack = video_frames - span

    def nearest(k: int, i: int) -> int:
        """Frame nearest the i-th position of clip k, counted from the start."""
        start = slack * (k + 0.5) / clips if slack >= 0 else slack / 2
        position = start + step * i
        return min(max(math.floor(position + 0.5), 0), last)

    half = (frames + 1) // 2
    early = [nearest(clip, i) for i in range(half)]
    late = [last - nearest(clips - 1 - clip, i) for i in range(frames - half)]
    return early + late[::-1]


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
    sample = symmetric_indices if sampling == "symmetric" else clip_indices
    return [sample(video_frames, frames, rate, c, clips, fps=fps) for c in range(clips)]


def dataset_sampling(format: str, dataset: str) -> str:
    """How a dataset's clips are sampled: SSv2 by segments (released loader), the synthetic set
    symmetrically in time (`symmetric_indices`, so the motion test's ceiling holds by
    construction), every other set densely at a fixed rate (released Kinetics loader)."""
    if format == "ssv2":
        return "segment"
    return "symmetric" if dataset == "synthetic" else "dense"


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
