"""Opening a video for its frames: decord first, PyAV for what decord cannot read, and the true
reason when neither can.

decord (the paper's reader, and the faster one for the sparse frames a test view needs) bundles
an old FFmpeg without an AV1 decoder, the codec many re-downloaded Kinetics / YouTube videos now
come in; PyAV (a dependency) decodes it. PyAV gives the same frames on what both read (bit for
bit on H.264, see tests/data/test_decoders.py) and the same sampling: a video's length and frame
rate come from its stream in both. Where neither reads a file, PyAV's view of it says why:
`missing`, `corrupt` (not a container FFmpeg recognises), `truncated` (cut short: an MP4 whose
boxes run past the end or that has no `moov`, or fewer frames than the stream declares),
`no video stream` (audio only), `unsupported codec` (no decoder for its video stream) or
`unreadable` (the file cannot be read, or its frames fail to decode).

Neither decoder writes on the terminal: decord's FFmpeg log is set to quiet, and its C++
`LOG(ERROR)` lines, which no Python setting reaches, go to /dev/null (file descriptor 2 is
redirected around each decord call, in this process only); PyAV's log is off unless asked for.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Protocol, TypeVar

import numpy as np

from tsfbench.quiet import native_stderr_silenced

T = TypeVar("T")
CUT_SHORT = "an MP4 cut short (its data runs past the end of the file, or no moov index)"
DECORD, PYAV = "decord", "pyav"
DECODERS = (DECORD, PYAV)
# Why a video gives no views, each with a fix a user can act on
SKIP_REASONS = (
    "missing",
    "corrupt",
    "truncated",
    "no video stream",
    "unsupported codec",
    "unreadable",
    "too short",
)


class VideoError(Exception):
    """A video that cannot be evaluated; `reason` is one of `SKIP_REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class Video(Protocol):
    """An open video stream: its length and rate, and the RGB frames at given indices."""

    decoder: str
    length: int
    fps: float

    def frames(self, indices: Sequence[int]) -> np.ndarray:
        """(len(indices), H, W, 3) uint8; raises `VideoError`."""
        ...

    def close(self) -> None: ...


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

    decord.logging.set_level(decord.logging.QUIET)  # its FFmpeg's log; the skip has the reason
    return decord


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:200]


class DecordVideo:
    """decord's reader: its index gives the length, and `get_batch` seeks to the frames asked
    for (the test views need a few of a video's frames)."""

    decoder = DECORD

    def __init__(self, path: str, threads: int) -> None:
        decord = import_decord()
        self.path = path
        with native_stderr_silenced():
            self.reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=threads)
            self.length, self.fps = len(self.reader), float(self.reader.get_avg_fps() or 30.0)

    def frames(self, indices: Sequence[int]) -> np.ndarray:
        try:
            with native_stderr_silenced():
                return self.reader.get_batch(list(indices)).asnumpy()
        except Exception as error:  # decord raises its own DECORDError, or RuntimeError
            raise VideoError("unreadable", f"{self.path}: {_first_line(error)}") from None

    def close(self) -> None:
        del self.reader


class PyAVVideo:
    """The first video stream, decoded in order by PyAV; only the wanted frames are kept."""

    decoder = PYAV

    def __init__(self, path: str, threads: int) -> None:
        import av

        self.path = path
        try:
            self.container = av.open(path)
        except av.error.InvalidDataError as error:  # FFmpeg found no container it reads
            if mp4_cut_short(path):
                raise VideoError("truncated", f"{path}: {CUT_SHORT}") from None
            raise VideoError("corrupt", f"{path}: {_first_line(error)}") from None
        except (av.error.FFmpegError, OSError) as error:
            raise VideoError("unreadable", f"{path}: {_first_line(error)}") from None
        try:
            streams = self.container.streams
            if not streams.video:
                kinds = ", ".join(sorted({s.type for s in streams})) or "none"
                raise VideoError("no video stream", f"{path}: streams: {kinds}")
            self.stream = streams.video[0]
            if self.stream.codec_context is None:
                raise VideoError("unsupported codec", f"{path}: no decoder for its video stream")
            self.stream.codec_context.thread_count = threads
            self.length = self.stream.frames or self._count_packets()
            rate = self.stream.average_rate or self.stream.guessed_rate
            self.fps = float(rate) if rate else 30.0
        except BaseException:
            self.container.close()
            raise

    def _count_packets(self) -> int:
        """Frames of a container that does not declare them (WebM): one per video packet."""
        count = sum(1 for packet in self.container.demux(self.stream) if packet.size)
        self.container.seek(0)
        return count

    def frames(self, indices: Sequence[int]) -> np.ndarray:
        import av

        wanted, kept = set(indices), {}
        last = max(indices, default=-1)
        decoded = 0
        try:
            for decoded, frame in enumerate(self.container.decode(self.stream), 1):
                if decoded - 1 in wanted:
                    kept[decoded - 1] = frame.to_ndarray(format="rgb24")
                if decoded > last:
                    break
        except av.error.FFmpegError as error:  # a packet cut in two is truncation too
            if mp4_cut_short(self.path):
                raise VideoError("truncated", f"{self.path}: {CUT_SHORT}") from None
            raise VideoError("unreadable", f"{self.path}: {_first_line(error)}") from None
        if len(kept) < len(wanted):
            raise VideoError("truncated", f"{self.path}: {decoded} of {self.length} frames decode")
        return np.stack([kept[i] for i in indices])

    def close(self) -> None:
        self.container.close()


def open_video(path: str, threads: int = 1) -> Video:
    """The video at `path`, open for its frames: decord's reader, or PyAV's where decord cannot
    open it. Raises `VideoError` with the reason neither can."""
    if not Path(path).is_file():
        raise VideoError("missing", path)
    try:
        return DecordVideo(path, threads)
    except Exception:  # DECORDError or RuntimeError, whatever the cause: PyAV tells it
        pass
    if importlib.util.find_spec("av") is None:
        raise VideoError("unreadable", f"{path}: decord cannot open it (PyAV not installed)")
    return PyAVVideo(path, threads)


def read_video(
    path: str, threads: int, choose: Callable[[int, float], tuple[Sequence[int], T]]
) -> tuple[np.ndarray, T, str]:
    """Open `path`, `choose(length, fps)` the frame indices it needs (and whatever else it
    returns, passed back), and decode them: (frames, choice, decoder). A decord stream that
    opens but fails to decode is read again by PyAV, which says where it breaks."""
    video = open_video(path, threads)
    try:
        indices, choice = choose(video.length, video.fps)
        try:
            return video.frames(indices), choice, video.decoder
        except VideoError:
            if video.decoder != DECORD or importlib.util.find_spec("av") is None:
                raise
    finally:
        video.close()
    video = PyAVVideo(path, threads)
    try:
        indices, choice = choose(video.length, video.fps)
        return video.frames(indices), choice, video.decoder
    finally:
        video.close()


# The boxes an MP4 (ISO/IEC 14496-12) may have at its top level
MP4_TOP_LEVEL = {
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pdin", b"moof", b"mfra",
    b"meta", b"styp", b"sidx", b"ssix", b"prft", b"emsg",
}  # fmt: skip


def mp4_cut_short(path: str) -> bool:
    """Whether `path` is an MP4 (ISO base media file) cut short: it starts with `ftyp`, and its
    last top-level box runs past the end of the file, or there is no `moov` (an MP4 written
    with its index last and stopped before it: what an interrupted download leaves)."""
    size = os.path.getsize(path)
    boxes: list[bytes] = []
    with open(path, "rb") as file:
        offset = 0
        while offset < size:
            file.seek(offset)
            header = file.read(16)
            if len(header) < 8:
                return bool(boxes)  # a box header cut in two
            length, kind = struct.unpack(">I4s", header[:8])
            if length == 1:  # a 64-bit size follows
                if len(header) < 16:
                    return bool(boxes)
                (length,) = struct.unpack(">Q", header[8:])
            elif length == 0:  # to the end of the file
                length = size - offset
            if (not boxes and kind != b"ftyp") or kind not in MP4_TOP_LEVEL or length < 8:
                return False  # not an MP4, or one damaged rather than cut
            boxes.append(kind)
            if offset + length > size:
                return True
            offset += length
    return bool(boxes) and b"moov" not in boxes
