"""Every codec the datasets ship, written for real and read back through the real readers.

SSv2 ships VP9 WebM, Kinetics and Diving-48 H.264 MP4, older sets MPEG-4 Part 2 AVI; each
layout below is written the way its dataset lays it out, at varied sizes and frame rates, then
read by `read_dataset`, decoded by `data/video.py` and scored by `accuracy`.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tsfbench.config import ConfigError, RunConfig
from tsfbench.data.datasets import read_dataset
from tsfbench.data.sampling import view_indices
from tsfbench.data.synth import CODECS, synth_frames, usable, write_synthetic, write_video
from tsfbench.data.video import ViewSpec, read_frames

pytest.importorskip("decord")
pytest.importorskip("av")

# (height, width, fps) as real sets vary: landscape, portrait, SSv2's 12 fps, 25 and 24 fps.
# Not 48 or 72 wide: decord 0.6.0's `get_batch` fails on exactly those widths (any height).
SHAPES = ((48, 64, 30), (64, 40, 25), (40, 70, 12), (54, 96, 24))
FRAMES = 16
MOTIONS = ("left_slow", "right_slow")  # two classes told apart only by direction
# Mean absolute error per pixel of the near-lossless settings on these frames is 1.3-1.6; the
# square's sharp edges under 4:2:0 chroma take a few pixels much further.
MEAN_ERROR = 4.0


def needs(codec: str) -> None:
    if not usable(codec):
        pytest.skip(f"this PyAV build lacks FFmpeg's {CODECS[codec].encoder} encoder ({codec})")


def write(path: Path, n: int, codec: str) -> tuple[np.ndarray, int, int]:
    """Video `n` (class `n % 2`, shape `SHAPES[n % 4]`) at `path`: (frames written, fps, label)."""
    height, width, fps = SHAPES[n % len(SHAPES)]
    label = n % len(MOTIONS)
    video = synth_frames(MOTIONS[label], FRAMES, height, width, random.Random(n))
    write_video(path, video, fps, codec)
    return video, fps, label


def layout(root: Path, fmt: str, codec: str, videos: int = 4) -> tuple[Path, dict]:
    """`videos` in `fmt`'s layout: what to give the reader, and {path: (frames, fps, label)}."""
    suffix = CODECS[codec].suffix
    written = {}
    if fmt == "ssv2":
        templates = ["Moving something from right to left", "Moving something from left to right"]
        labels = {name: str(i) for i, name in enumerate(templates)}
        (root / "something-something-v2-labels.json").write_text(json.dumps(labels))
        entries = []
        for n in range(videos):
            path = root / "20bn-something-something-v2" / f"{1000 + n}{suffix}"
            written[str(path)] = write(path, n, codec)
            template = templates[written[str(path)][2]].replace("something", "[something]")
            entries.append({"id": str(1000 + n), "label": "a thing", "template": template})
        (root / "something-something-v2-validation.json").write_text(json.dumps(entries))
        return root, written
    if fmt == "diving48":
        entries = []
        for n in range(videos):
            path = root / "rgb" / f"-mmq0PT-u8k_{n:05d}{suffix}"
            video, _, label = written[str(path)] = write(path, n, codec)
            entries.append({"vid_name": path.stem, "label": label, "start_frame": 0})
            entries[-1]["end_frame"] = len(video)
        (root / "Diving48_V2_test.json").write_text(json.dumps(entries))
        vocab = [["Back", "15som", "05Twis", "FREE"], ["Forward", "25som", "NoTwis", "PIKE"]]
        (root / "Diving48_vocab.json").write_text(json.dumps(vocab))
        return root, written
    lines = []
    for n in range(videos):
        relative = f"{MOTIONS[n % 2]}/{n:03d}{suffix}"
        written[str(root / relative)] = write(root / relative, n, codec)
        lines.append(f"{relative} {n % 2}")
    if fmt == "folder":
        return root, written
    (root / "val.csv").write_text("\n".join(lines) + "\n")
    return root / "val.csv", written


CASES = [
    ("ssv2", "vp9"),
    ("diving48", "h264"),
    *(("kinetics", codec) for codec in CODECS),
    *(("folder", codec) for codec in CODECS),
]


@pytest.mark.parametrize(("fmt", "codec"), CASES)
def test_each_reader_decodes_real_files_of_each_codec_close_to_what_was_written(
    tmp_path: Path, fmt: str, codec: str
) -> None:
    needs(codec)
    import decord

    data, written = layout(tmp_path, fmt, codec)
    videos = read_dataset(data, fmt)
    assert sorted(item.path for item in videos.items) == sorted(written)
    sampling = "segment" if fmt == "ssv2" else "dense"
    spec = ViewSpec(frames=8, size=32, rate=2, clips=2, crops=3, sampling=sampling)
    for item in videos.items:
        video, fps, label = written[item.path]
        assert item.label == label
        reader = decord.VideoReader(item.path)
        assert (len(reader), round(reader.get_avg_fps())) == (FRAMES, fps)
        frames, clips = read_frames(item.path, spec)
        expected = view_indices(FRAMES, spec.frames, spec.rate, spec.clips, sampling, fps)
        for clip, indices in zip(clips, expected, strict=True):
            decoded = frames[clip].numpy().astype(float)
            assert decoded.shape == video[indices].shape
            assert np.abs(decoded - video[indices]).mean() < MEAN_ERROR, (item.path, indices)


@pytest.mark.parametrize(("fmt", "codec"), CASES)
def test_accuracy_evaluates_every_video_of_each_codec_and_skips_none(
    tmp_path: Path, fmt: str, codec: str, tiny: dict[str, object]
) -> None:
    needs(codec)
    from tsfbench.config import AccuracySettings
    from tsfbench.evaluate import accuracy

    data, written = layout(tmp_path, fmt, codec, videos=5)
    config = RunConfig(frames=4, size=32, classes=2, views=3)
    settings = AccuracySettings(str(data), format=fmt, workers=0, batch=4, device="cpu")
    result = accuracy(config, settings, **tiny)
    assert (result["videos"], result["evaluated"], result["skipped"]) == (5, 5, 0)
    assert result["clips"] == 15
    assert sorted(result["video_list"]) == sorted(
        str(Path(path).relative_to(tmp_path)) for path in written
    )


@pytest.mark.parametrize("codec", list(CODECS))
def test_synth_writes_each_codec_in_its_container(tmp_path: Path, codec: str) -> None:
    needs(codec)
    csv = write_synthetic(tmp_path, classes=2, per_class=1, frames=8, codec=codec)
    suffix = CODECS[codec].suffix
    assert [line.split()[0][-len(suffix) :] for line in csv.read_text().splitlines()] == [
        suffix,
        suffix,
    ]
    assert json.loads((tmp_path / "tsfbench-synthetic.json").read_text())["codec"] == codec
    assert read_dataset(tmp_path / "videos", "folder").items[0].path.endswith(suffix)


def test_an_unknown_codec_is_one_line_naming_the_accepted_ones_and_exit_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tsfbench.cli import app

    with pytest.raises(ConfigError, match=r"^--codec: unknown 'av1'; accepted: h264, vp9, mpeg4$"):
        write_synthetic(tmp_path, codec="av1")
    assert not (tmp_path / "videos").exists()  # refused before anything is written
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "s"), "--codec", "H265"])
    assert result.exit_code == 2
    assert result.stderr == "error: --codec: unknown 'H265'; accepted: h264, vp9, mpeg4\n"


def test_synth_cli_writes_vp9_webm(tmp_path: Path) -> None:
    needs("vp9")
    from typer.testing import CliRunner

    from tsfbench.cli import app

    args = ["synth", str(tmp_path), "--codec", "vp9", "--classes", "2", "--per-class", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("videos/*/*")) == ["000.webm", "000.webm"]


def test_vp9_after_decord_is_one_line_saying_why(tmp_path: Path) -> None:
    """decord's bundled libvpx, loaded first, breaks PyAV's VP9 encoder in that process."""
    needs("vp9")
    script = (
        "import decord, numpy as np, pathlib\n"
        "from tsfbench.config import ConfigError\n"
        "from tsfbench.data.synth import write_video\n"
        "try:\n"
        f"    write_video(pathlib.Path({str(tmp_path / 'a.webm')!r}), "
        "np.zeros((2, 32, 32, 3), np.uint8), 30, 'vp9')\n"
        "except ConfigError as error:\n"
        "    print(error)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("--codec: vp9 cannot be written in a process that imported decord")
