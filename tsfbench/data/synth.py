"""A small synthetic video data set whose classes only motion tells apart.

A square crosses a smooth background; the class is its direction and speed. A left-moving video
is a right-moving one played backwards, so the two have the same set of frames: a model that
ignores frame order (`space` attention without a time table, frame averaging) cannot separate
them, and one that models time can. Deterministic for a seed; small and fast to decode, for
tests, demos and the quick suite.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsfbench.config import TrainSettings
from tsfbench.data.datasets import CLASS_INDEX, SYNTHETIC_MARKER
from tsfbench.errors import ConfigError

# (name, axis, sign, travel as a fraction of the free extent); a prefix of this list is used, so
# two classes already differ only in direction.
MOTIONS = (
    ("right_slow", 1, 1, 0.35),
    ("left_slow", 1, -1, 0.35),
    ("right_fast", 1, 1, 0.9),
    ("left_fast", 1, -1, 0.9),
    ("down_slow", 0, 1, 0.35),
    ("up_slow", 0, -1, 0.35),
    ("down_fast", 0, 1, 0.9),
    ("up_fast", 0, -1, 0.9),
)
# Fewest frames a video of the set may have: a motion needs two positions, and the motion test
# samples `TrainSettings.frames` frames a clip; from a shorter video its clip repeats frames, so
# the set would measure the padding, not the motion.
MIN_FRAMES = max(2, TrainSettings.frames)


def synth_frames(
    motion: str, frames: int, height: int, width: int, rng: random.Random
) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of one video of class `motion`."""
    _, axis, sign, travel = next(m for m in MOTIONS if m[0] == motion)
    side = max(4, min(height, width) // 5)
    free = (height - side, width - side)
    span = travel * free[axis]
    start = rng.uniform(0, free[axis] - span)
    other = rng.uniform(0, free[1 - axis])
    steps = np.linspace(start, start + span, frames)
    if sign < 0:
        steps = steps[::-1]
    top = np.array([0.2 + 0.3 * rng.random() for _ in range(3)])
    bottom = np.array([0.2 + 0.3 * rng.random() for _ in range(3)])
    ramp = np.linspace(0, 1, height)[:, None, None]
    background = (255 * (top + (bottom - top) * ramp)).astype(np.uint8)
    colour = np.array([rng.randrange(180, 256) for _ in range(3)], dtype=np.uint8)
    video = np.broadcast_to(background, (frames, height, width, 3)).copy()
    for t, position in enumerate(steps):
        y, x = (round(position), round(other)) if axis == 0 else (round(other), round(position))
        video[t, y : y + side, x : x + side] = colour
    return video


@dataclass(frozen=True)
class Codec:
    """How `write_video` encodes one codec: the FFmpeg encoder, the container its datasets
    ship it in, and near-lossless settings (the test compares decoded frames with the written
    ones)."""

    encoder: str
    suffix: str
    options: tuple[tuple[str, str], ...]


# The codecs the paper's datasets ship: SSv2 VP9 in WebM, Kinetics and Diving-48 H.264 in MP4;
# MPEG-4 Part 2 (Xvid) in AVI as UCF-101 and HMDB-51 do. `flags=qscale` + `global_quality`
# (quantiser 2 x FF_QP2LAMBDA) is ffmpeg's `-q:v 2`; without it mpeg4 runs at 200 kb/s.
CODECS = {
    "h264": Codec("libx264", ".mp4", (("crf", "12"), ("preset", "veryfast"))),
    "vp9": Codec(
        "libvpx-vp9", ".webm", (("crf", "10"), ("b", "0"), ("deadline", "good"), ("cpu-used", "4"))
    ),
    "mpeg4": Codec("mpeg4", ".avi", (("flags", "qscale"), ("global_quality", "236"))),
}


def usable(name: str) -> bool:
    """Whether this PyAV build has the encoder of codec `name`."""
    import av  # lazily: only writing synthetic data needs PyAV

    return CODECS[name].encoder in av.codecs_available


def codec_of(name: str) -> Codec:
    """The `Codec` called `name`, if this PyAV build can encode it; else a `ConfigError`."""
    if name not in CODECS:
        raise ConfigError(f"--codec: unknown {name!r}; accepted: {', '.join(CODECS)}")
    codec = CODECS[name]
    if not usable(name):
        raise ConfigError(
            f"--codec: {name} needs FFmpeg's {codec.encoder} encoder, which this PyAV build "
            f"lacks; use one of {', '.join(n for n in CODECS if usable(n))}"
        )
    return codec


def write_video(path: Path, video: np.ndarray, fps: int = 30, codec: str = "h264") -> None:
    """`video` (T, H, W, 3 uint8) as `codec` in yuv420p via PyAV (the container follows
    `path`'s suffix: `CODECS[codec].suffix`). One encoder thread; even so libx264 now and then
    writes a few bytes differently for the same frames (seen on main as well), so a set is
    reproducible in its frames, within codec error, not byte for byte."""
    import av

    settings = codec_of(codec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(settings.encoder, rate=fps)
        stream.width, stream.height = video.shape[2], video.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = dict(settings.options)
        stream.codec_context.thread_count = 1
        try:
            stream.codec_context.open()
        except av.error.ArgumentError:
            if "decord" in sys.modules and settings.encoder.startswith("libvpx"):
                raise ConfigError(
                    f"--codec: {codec} cannot be written in a process that imported decord "
                    "before PyAV (decord's bundled libvpx shadows PyAV's); import av first, "
                    "or write from `tsfbench synth`"
                ) from None
            raise
        for frame in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_synthetic(
    root: str | Path,
    *,
    classes: int = 4,
    per_class: int = 8,
    frames: int = 24,
    height: int = 48,
    width: int = 64,
    fps: int = 30,
    seed: int = 0,
    codec: str = "h264",
    train_per_class: int = 0,
) -> Path:
    """Write `root/videos/<class>/NNN.mp4`, `root/val.csv`, `root/classids.json` and the marker.

    Videos are `codec` (`CODECS`: `.webm` for vp9, `.avi` for mpeg4). `train_per_class` > 0
    also writes a disjoint training split, `root/train/<class>/NNN.mp4` listed in
    `root/train.csv`: its videos come from seeds no val video uses, and val is the same with or
    without it (the motion test trains on one and evaluates on the other).

    The CSV is Kinetics / PySlowFast style (`videos/<class>/NNN.mp4 <id>`, relative to `root`);
    class ids follow the sorted class names, so `root/videos` also reads as a folder-per-class
    tree with the same ids. The marker (`SYNTHETIC_MARKER`, with the generation settings) is
    how a result knows for certain that it measured this set and not a real one. Returns the
    CSV's path. Sizes must be even (yuv420p); `frames` at least `MIN_FRAMES`.
    """
    if not 2 <= classes <= len(MOTIONS):
        raise ConfigError(f"--classes: {classes}; expected 2..{len(MOTIONS)}")
    if per_class <= 0:
        raise ConfigError(f"--per-class: {per_class} must be a positive integer")
    if frames < MIN_FRAMES:
        raise ConfigError(
            f"--frames: {frames} cannot show the motion; expected at least {MIN_FRAMES} (the "
            "frames of the motion test's clip)"
        )
    if height % 2 or width % 2 or height <= 0 or width <= 0:
        raise ConfigError(
            f"--height/--width: {height} x {width}; both must be positive and even (yuv420p)"
        )
    suffix = codec_of(codec).suffix
    if train_per_class < 0:
        raise ConfigError(f"--train-per-class: {train_per_class}; expected 0 (none) or more")
    root = Path(root)
    try:
        (root / "videos").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"root: cannot create {root / 'videos'} ({error.strerror}); give a writable folder"
        ) from None
    names = sorted(m[0] for m in MOTIONS[:classes])
    # (folder, CSV, videos a class, seed prefix): val keeps the seeds it always had; the train
    # seeds carry a "train:" tag, so no train video can equal a val video.
    splits = [("videos", "val.csv", per_class, f"{seed}:")]
    if train_per_class:
        splits.append(("train", "train.csv", train_per_class, f"{seed}:train:"))
    for folder, csv_name, count, prefix in splits:
        lines = []
        for label, name in enumerate(names):
            for n in range(count):
                rng = random.Random(f"{prefix}{name}:{n}")
                relative = f"{folder}/{name}/{n:03d}{suffix}"
                video = synth_frames(name, frames, height, width, rng)
                write_video(root / relative, video, fps, codec)
                lines.append(f"{relative} {label}")
        (root / csv_name).write_text("\n".join(lines) + "\n")
    (root / CLASS_INDEX).write_text(json.dumps({name: i for i, name in enumerate(names)}))
    csv = root / "val.csv"
    settings = {"classes": classes, "per_class": per_class, "frames": frames, "height": height}
    settings |= {"width": width, "fps": fps, "seed": seed}
    settings["codec"] = codec
    if train_per_class:
        settings["train_per_class"] = train_per_class
    marker = {"dataset": "synthetic", "written_by": "tsfbench synth", **settings}
    (root / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return csv


def reversed_class(name: str) -> str | None:
    """The class of a video of class `name` played backwards (right_slow -> left_slow), or None
    for a name that is not one of `MOTIONS`."""
    found = next((m for m in MOTIONS if m[0] == name), None)
    if found is None:
        return None
    _, axis, sign, travel = found
    return next(m[0] for m in MOTIONS if m[1:] == (axis, -sign, travel))


def direction_blind_ceiling(classes: int) -> float:
    """Top-1 (percent) of a perfect classifier that cannot see frame order, on the first
    `classes` motions with balanced classes: a class and its reverse (right / left, down / up
    at one speed) look the same to it, so each merged pair is right half of the time.
    4 classes -> 50.0, 3 -> 66.7 (the third class has no reverse among them)."""
    if not 1 <= classes <= len(MOTIONS):
        raise ConfigError(f"classes: {classes}; expected 1..{len(MOTIONS)}")
    used = [m for m in MOTIONS[:classes]]
    # a class is told apart by what order-blind features see: axis, speed (travel), not sign
    groups: dict[tuple[int, float], int] = {}
    for _, axis, _, travel in used:
        groups[(axis, travel)] = groups.get((axis, travel), 0) + 1
    return round(100 * len(groups) / classes, 1)
