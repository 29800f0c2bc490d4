"""decord reads what it can, PyAV the rest (AV1), with the same frames; a file neither reads is
skipped with its true reason, and neither decoder writes on the terminal. Every file here is
written by the test itself, with PyAV."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from tsfbench.data.datasets import VideoItem
from tsfbench.data.decoders import DECORD, PYAV, DecordVideo, PyAVVideo, mp4_cut_short
from tsfbench.data.sampling import view_indices
from tsfbench.data.synth import synth_frames, write_video
from tsfbench.data.video import VideoViews, ViewSpec, decode_frames

pytest.importorskip("decord")
av = pytest.importorskip("av")

SPEC = ViewSpec(frames=8, size=32, rate=3, clips=2, crops=1)
AV1_ENCODERS = ("libsvtav1", "libaom-av1", "librav1e")  # fastest first


def frames(count: int = 24, height: int = 48, width: int = 64) -> np.ndarray:
    return synth_frames("right_fast", count, height, width, random.Random(7))


def write_with(path: Path, video: np.ndarray, encoder: str, options: dict[str, str]) -> None:
    """`video` as `encoder` in `path`'s container; container options (e.g. faststart) too."""
    container_options = {"movflags": "faststart"} if options.pop("faststart", "") else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options=container_options) as container:
        stream = container.add_stream(encoder, rate=30)
        stream.width, stream.height, stream.pix_fmt = video.shape[2], video.shape[1], "yuv420p"
        stream.options = options
        for frame in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_av1(path: Path, video: np.ndarray) -> None:
    encoder = next((name for name in AV1_ENCODERS if name in av.codecs_available), None)
    if encoder is None:
        pytest.skip(f"this PyAV build has no AV1 encoder ({', '.join(AV1_ENCODERS)})")
    options = {"libsvtav1": {"crf": "8", "preset": "12"}, "libaom-av1": {"crf": "8"}}
    write_with(path, video, encoder, {"cpu-used": "8"} | options.get(encoder, {}))


def write_audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        tone = (3000 * np.sin(np.arange(16000) / 5)).astype(np.int16)[None]
        for start in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(tone[:, start : start + 1024]), format="s16", layout="mono"
            )
            frame.sample_rate = 16000
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.mark.parametrize(("height", "width"), [(48, 64), (54, 96)])
def test_both_decoders_give_identical_frames_and_sampling_on_h264(
    tmp_path: Path, height: int, width: int
) -> None:
    path = tmp_path / "a.mp4"
    write_video(path, frames(24, height, width))
    ours, theirs = DecordVideo(str(path), 1), PyAVVideo(str(path), 1)
    assert (ours.length, ours.fps) == (theirs.length, theirs.fps) == (24, 30.0)
    clips = view_indices(24, SPEC.frames, SPEC.rate, SPEC.clips, SPEC.sampling, 30.0)
    wanted = sorted({i for clip in clips for i in clip})
    assert np.array_equal(ours.frames(wanted), theirs.frames(wanted))
    ours.close()
    theirs.close()


def test_an_av1_video_decord_cannot_open_is_read_by_pyav(tmp_path: Path) -> None:
    written = frames()
    write_av1(tmp_path / "av1.mp4", written)
    with pytest.raises(Exception):  # noqa: B017  (decord's own DECORDError)
        DecordVideo(str(tmp_path / "av1.mp4"), 1)
    decoded = decode_frames(str(tmp_path / "av1.mp4"), SPEC)
    assert decoded.decoder == PYAV
    clips = view_indices(24, SPEC.frames, SPEC.rate, SPEC.clips, SPEC.sampling, 30.0)
    for clip, positions in zip(clips, decoded.clips, strict=True):
        pixels = decoded.frames[positions].numpy().astype(float)
        assert np.abs(pixels - written[clip]).mean() < 4.0  # near-lossless, the right frames


def test_accuracy_evaluates_an_av1_video_and_records_its_decoder(
    tmp_path: Path, tiny: dict[str, object]
) -> None:
    from tsfbench.config import AccuracySettings, RunConfig
    from tsfbench.evaluate import accuracy

    write_av1(tmp_path / "a/000.mp4", frames())
    write_video(tmp_path / "b/000.mp4", frames())
    (tmp_path / "val.csv").write_text("a/000.mp4 0\nb/000.mp4 1\n")
    config = RunConfig(frames=4, size=32, classes=2, views=1)
    settings = AccuracySettings(str(tmp_path / "val.csv"), workers=0, batch=2, device="cpu")
    result = accuracy(config, settings, **tiny)
    assert (result["evaluated"], result["skipped"]) == (2, 0)
    assert result["decoders"] == {DECORD: 1, PYAV: 1}
    assert result["pyav_videos"] == ["a/000.mp4"]


def bad_files(root: Path) -> dict[str, str]:
    """{path: the reason it must be skipped for}, each kind written here."""
    root.mkdir(parents=True, exist_ok=True)
    video = frames(48)
    write_video(root / "whole.mp4", video)  # moov last, as PyAV writes it
    whole = (root / "whole.mp4").read_bytes()
    (root / "index_lost.mp4").write_bytes(whole[: len(whole) // 2])  # the moov never written
    write_with(root / "fast.mp4", video, "libx264", {"crf": "12", "faststart": "1"})
    fast = (root / "fast.mp4").read_bytes()
    (root / "data_cut.mp4").write_bytes(fast[: int(len(fast) * 0.6)])  # decord opens it
    write_audio_only(root / "audio.m4a")
    write_video(root / "mpeg4.avi", video[:24], codec="mpeg4")
    avi = (root / "mpeg4.avi").read_bytes()
    assert avi.count(b"FMP4") == 2  # the stream header's and the bitmap header's codec tag
    (root / "unknown.avi").write_bytes(avi.replace(b"FMP4", b"ZZZZ"))
    (root / "garbage.mp4").write_bytes(random.Random(1).randbytes(3000))
    header = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"  # a valid first box, then junk
    (root / "junk.mp4").write_bytes(header + random.Random(2).randbytes(3000))
    return {
        str(root / "index_lost.mp4"): "truncated",
        str(root / "data_cut.mp4"): "truncated",
        str(root / "audio.m4a"): "no video stream",
        str(root / "unknown.avi"): "unsupported codec",
        str(root / "garbage.mp4"): "corrupt",
        str(root / "junk.mp4"): "corrupt",
        str(root / "absent.mp4"): "missing",
    }


def test_each_file_neither_decoder_reads_is_skipped_with_its_true_reason(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    expected = bad_files(tmp_path)
    capfd.readouterr()  # what writing them printed (encoders' own logs)
    items = [VideoItem(path, 0) for path in expected]
    dataset = VideoViews(items, SPEC)
    found = {item.path: dataset[i]["reason"] for i, item in enumerate(items)}
    assert found == expected
    details = [dataset[i]["detail"] for i in range(len(items))]
    assert all(Path(path).name in detail for path, detail in zip(expected, details, strict=True))
    # decord's C++ LOG(ERROR) lines and FFmpeg's own log reach neither stream
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_an_mp4_cut_short_is_told_from_a_whole_or_foreign_file(tmp_path: Path) -> None:
    write_video(tmp_path / "whole.mp4", frames())
    whole = (tmp_path / "whole.mp4").read_bytes()
    for size, cut in ((len(whole), False), (len(whole) - 1, True), (len(whole) // 2, True)):
        (tmp_path / "x.mp4").write_bytes(whole[:size])
        assert mp4_cut_short(str(tmp_path / "x.mp4")) is cut, size
    (tmp_path / "y.avi").write_bytes(b"RIFF" + bytes(100))
    assert mp4_cut_short(str(tmp_path / "y.avi")) is False
