"""Accuracy: the counts are right, bad videos are counted, and 2 ranks equal 1 process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tsfbench.config import RunConfig
from tsfbench.data.datasets import read_dataset
from tsfbench.data.video import ViewSpec, decode_views
from tsfbench.evaluate import accuracy, evaluate
from tsfbench.models.registry import build_model

pytest.importorskip("decord")
pytest.importorskip("av")

TINY = {"dim": 64, "depth": 2, "heads": 4, "drop_path": 0.0}
CONFIG = RunConfig(frames=4, size=32, classes=4, views=3)
TIMING = {"wall_s", "decode_clips_per_s", "model_clips_per_s", "clips_per_s", "bound"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic videos plus one corrupt and one missing entry in the CSV."""
    from tsfbench.data.synth import write_synthetic

    csv = write_synthetic(tmp_path_factory.mktemp("eval"), classes=4, per_class=3, seed=1)
    (csv.parent / "videos/bad.mp4").write_bytes(b"not a video" * 100)
    with csv.open("a") as f:
        f.write("videos/bad.mp4 0\nvideos/gone.mp4 1\n")
    return csv


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save(build_model(CONFIG, **TINY).state_dict(), path)
    return path


def test_counts_and_skips(data: Path, checkpoint: Path) -> None:
    seen: list[tuple[int, int]] = []
    result = accuracy(
        CONFIG, data, checkpoint=checkpoint, batch=5, workers=2, rate=2,
        progress=lambda done, total: seen.append((done, total)), **TINY,
    )  # fmt: skip
    assert (result["videos"], result["evaluated"], result["skipped"]) == (14, 12, 2)
    assert result["skipped_by_reason"]["missing"] == 1
    assert result["skipped_by_reason"]["corrupt"] == 1
    assert result["clips"] == 36 and result["views"] == 3
    assert sum(c["videos"] for c in result["per_class"]) == 12
    hits = sum(label == pred for _, label, pred in result["predictions"])
    assert result["top1"] == pytest.approx(100 * hits / 12)
    assert result["top5"] == 100.0  # 4 classes: top-5 is top-4
    assert seen[-1] == (14, 14) and len(seen) == 14
    assert result["checkpoint_layout"] == "plain"


def test_video_score_is_the_mean_softmax_over_views(data: Path) -> None:
    videos = read_dataset(data)
    videos = type(videos)(videos.items[:1], videos.classes, videos.root)
    model = build_model(CONFIG, **TINY)
    spec = ViewSpec(frames=4, size=32, rate=2, clips=1, crops=3)
    result = evaluate(model, videos, spec, classes=4, batch=2)
    with torch.inference_mode():
        mean = model(decode_views(videos.items[0].path, spec)).softmax(-1).mean(0)
    assert result.predictions[0][2] == int(mean.argmax())


def test_subset_is_stored_with_the_result(data: Path) -> None:
    result = accuracy(CONFIG, data, per_class=1, seed=5, workers=0, rate=2, **TINY)
    assert len(result["video_list"]) == 4 and result["per_class_subset"] == 1
    again = accuracy(CONFIG, data, per_class=1, seed=5, workers=0, rate=2, **TINY)
    assert again["video_list"] == result["video_list"]


def test_the_result_records_the_dataset_it_measured(data: Path, tmp_path: Path) -> None:
    run = {"per_class": 1, "workers": 0, "rate": 2, **TINY}
    synthetic = accuracy(CONFIG, data, **run)
    assert synthetic["dataset"] == "synthetic"  # the marker `tsfbench synth` left
    assert synthetic["class_names_from"] == str(
        data.parent / "classids.json"
    )  # found beside the CSV
    names = json.loads((data.parent / "classids.json").read_text())
    assert {c["class"] for c in synthetic["per_class"]} <= set(names)
    # the same videos listed elsewhere: a Kinetics-style CSV is not taken for any dataset
    lines = [line.split() for line in data.read_text().splitlines()]
    copy = tmp_path / "val.csv"
    copy.write_text("".join(f"{data.parent / path} {label}\n" for path, label in lines))
    assert accuracy(CONFIG, copy, **run)["dataset"] == "other"
    declared = accuracy(CONFIG, copy, dataset="k400", **run)
    assert declared["dataset"] == "k400" and declared["evaluated"] == synthetic["evaluated"] == 4


def test_an_unknown_or_contradicted_dataset_is_one_line_and_exit_2(data: Path) -> None:
    from typer.testing import CliRunner

    from tsfbench.cli import app

    args = ["accuracy", str(data), "--frames", "4", "--size", "32", "--classes", "4"]
    for name, message in (
        ("kinetics", "error: dataset: unknown 'kinetics'; accepted: k400, k600, ssv2, diving48, "
         "synthetic, other"),
        ("k400", f"error: dataset: 'k400', but {data} is the synthetic set"),
    ):  # fmt: skip
        result = CliRunner().invoke(app, [*args, "--dataset", name])
        assert result.exit_code == 2
        assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1


RUNNER = """
import json, sys, torch
from tsfbench.config import RunConfig
from tsfbench.evaluate import accuracy
torch.set_num_threads(1)
config = RunConfig(frames=4, size=32, classes=4, views=3)
result = accuracy(config, sys.argv[1], checkpoint=sys.argv[2], batch=3, workers=0, rate=2,
                  dim=64, depth=2, heads=4, drop_path=0.0)
if result["world_size"] == 1 or torch.distributed.get_rank() == 0:
    open(sys.argv[3], "w").write(json.dumps(result))
if torch.distributed.is_initialized():  # exiting with a live gloo group can abort
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_equal_one_process(data: Path, checkpoint: Path, tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    single, double = tmp_path / "one.json", tmp_path / "two.json"
    subprocess.run(
        [sys.executable, str(script), str(data), str(checkpoint), str(single)], env=env, check=True
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    torchrun += ["--master-port", str(_free_port()), "--master-addr", "127.0.0.1"]
    subprocess.run(
        [*torchrun, str(script), str(data), str(checkpoint), str(double)], env=env, check=True
    )
    one, two = json.loads(single.read_text()), json.loads(double.read_text())
    assert (one["world_size"], two["world_size"]) == (1, 2)
    for key in TIMING | {"world_size"}:
        one.pop(key), two.pop(key)
    assert one == two


def test_without_decord_accuracy_says_how_to_install_it(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """decord has wheels for x86_64 only; its absence is one line, not a worker's traceback."""
    from importlib import util

    from tsfbench.config import ConfigError

    find_spec = util.find_spec
    monkeypatch.setattr(
        util, "find_spec", lambda name: None if name == "decord" else find_spec(name)
    )
    with pytest.raises(ConfigError, match="pip install decord"):
        accuracy(CONFIG, data, workers=0, **TINY)


def test_a_label_beyond_the_head_says_how_many_classes_to_give(data: Path) -> None:
    from dataclasses import replace

    from tsfbench.config import ConfigError

    with pytest.raises(ConfigError, match=r"label 3, the model 2 classes; give --classes 4"):
        accuracy(replace(CONFIG, classes=2), data, workers=0, **TINY)
