"""Accuracy: the counts are right, bad videos are counted, and 2 ranks equal 1 process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tsfbench.config import AccuracySettings, RunConfig
from tsfbench.data.datasets import read_dataset
from tsfbench.data.video import ViewSpec, decode_views
from tsfbench.evaluate import accuracy, evaluate
from tsfbench.models.build import build_model

pytest.importorskip("decord")
pytest.importorskip("av")

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


def on(data: Path, **options: Any) -> AccuracySettings:
    return AccuracySettings(data=str(data), **options)


@pytest.fixture
def checkpoint(tmp_path: Path, tiny: dict[str, object]) -> str:
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    torch.save(build_model(CONFIG, **tiny).state_dict(), path)
    return str(path)


def test_counts_and_skips(data: Path, checkpoint: str, tiny: dict[str, object]) -> None:
    seen: list[tuple[int, int]] = []
    result = accuracy(
        CONFIG, on(data, checkpoint=checkpoint, batch=5, workers=2, rate=2),
        progress=lambda done, total: seen.append((done, total)), **tiny,
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


def test_video_score_is_the_mean_softmax_over_views(data: Path, tiny: dict[str, object]) -> None:
    videos = read_dataset(data)
    videos = type(videos)(videos.items[:1], videos.classes, videos.root)
    model = build_model(CONFIG, **tiny)
    spec = ViewSpec(frames=4, size=32, rate=2, clips=1, crops=3)
    result = evaluate(model, videos, spec, classes=4, batch=2)
    with torch.inference_mode():
        mean = model(decode_views(videos.items[0].path, spec)).softmax(-1).mean(0)
    assert result.predictions[0][2] == int(mean.argmax())


def test_subset_is_stored_with_the_result(data: Path, tiny: dict[str, object]) -> None:
    settings = on(data, per_class=1, seed=5, workers=0, rate=2)
    result = accuracy(CONFIG, settings, **tiny)
    assert len(result["video_list"]) == 4 and result["per_class_subset"] == 1
    again = accuracy(CONFIG, settings, **tiny)
    assert again["video_list"] == result["video_list"]


def test_the_result_records_the_dataset_it_measured(
    data: Path, tmp_path: Path, tiny: dict[str, object]
) -> None:
    run = {"per_class": 1, "workers": 0, "rate": 2}
    synthetic = accuracy(CONFIG, on(data, **run), **tiny)
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
    assert accuracy(CONFIG, on(copy, **run), **tiny)["dataset"] == "other"
    declared = accuracy(CONFIG, on(copy, dataset="k400", **run), **tiny)
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
from tsfbench.config import AccuracySettings, RunConfig
from tsfbench.evaluate import accuracy
torch.set_num_threads(1)
torch.backends.cudnn.allow_tf32 = False  # on a GPU: fp32 convolutions, as on the CPU
config = RunConfig(frames=4, size=32, classes=4, views=3)
settings = AccuracySettings(sys.argv[1], checkpoint=sys.argv[2], batch=3, workers=0, rate=2)
result = accuracy(config, settings, **json.loads(sys.argv[4]))
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


def one_and_two_ranks(
    data: Path, checkpoint: str, tmp_path: Path, hide_gpus: bool, tiny: dict[str, object]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The records of one process and of two `torchrun` ranks (rank 0's), timing left out."""
    script = tmp_path / "run.py"
    script.write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    if hide_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    single, double = tmp_path / "one.json", tmp_path / "two.json"
    model = json.dumps(tiny)
    subprocess.run(
        [sys.executable, str(script), str(data), checkpoint, str(single), model],
        env=env,
        check=True,
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    torchrun += ["--master-port", str(_free_port()), "--master-addr", "127.0.0.1"]
    subprocess.run(
        [*torchrun, str(script), str(data), checkpoint, str(double), model], env=env, check=True
    )
    one, two = json.loads(single.read_text()), json.loads(double.read_text())
    assert (one["world_size"], two["world_size"]) == (1, 2)
    for key in TIMING | {"world_size"}:
        one.pop(key), two.pop(key)
    return one, two


def test_two_gloo_ranks_equal_one_process(
    data: Path, checkpoint: str, tmp_path: Path, tiny: dict[str, object]
) -> None:
    one, two = one_and_two_ranks(data, checkpoint, tmp_path, hide_gpus=True, tiny=tiny)
    assert one == two


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="the NCCL path needs two GPUs")
def test_two_nccl_ranks_on_two_gpus_equal_one_process(
    data: Path, checkpoint: str, tmp_path: Path, tiny: dict[str, object]
) -> None:
    one, two = one_and_two_ranks(data, checkpoint, tmp_path, hide_gpus=False, tiny=tiny)
    assert one["device"] == two["device"] == "cuda:0"  # rank 0 on GPU 0 (rank 1 on GPU 1)
    assert one == two


@pytest.mark.gpu
def test_accuracy_on_a_gpu_runs_on_the_current_cuda_device(
    data: Path, checkpoint: str, tiny: dict[str, object]
) -> None:
    settings = on(data, checkpoint=checkpoint, batch=5, workers=2, rate=2)
    result = accuracy(CONFIG, settings, **tiny)
    assert result["device"] == f"cuda:{torch.cuda.current_device()}"
    assert (result["evaluated"], result["clips"]) == (12, 36)


def test_without_decord_accuracy_says_how_to_install_it(
    data: Path, monkeypatch: pytest.MonkeyPatch, tiny: dict[str, object]
) -> None:
    """decord has wheels for x86_64 only; its absence is one line, not a worker's traceback."""
    from importlib import util

    from tsfbench.config import ConfigError

    find_spec = util.find_spec
    monkeypatch.setattr(
        util, "find_spec", lambda name: None if name == "decord" else find_spec(name)
    )
    with pytest.raises(ConfigError, match="pip install decord"):
        accuracy(CONFIG, on(data, workers=0), **tiny)


def test_a_label_beyond_the_head_says_how_many_classes_to_give(
    data: Path, tiny: dict[str, object]
) -> None:
    from dataclasses import replace

    from tsfbench.config import ConfigError

    with pytest.raises(ConfigError, match=r"label 3, the model 2 classes; give --classes 4"):
        accuracy(replace(CONFIG, classes=2), on(data, workers=0), **tiny)


class FakeCuda:
    """A host with `gpus` GPUs, as `torch.cuda` and `torch.distributed` show it to one rank:
    records the calls that matter (which GPU, which backend, in which order)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, gpus: int) -> None:
        import torch.distributed as dist

        self.calls: list[tuple[Any, ...]] = []
        self.current = 0  # CUDA's current device until set_device
        self.joined = False
        cuda = torch.cuda
        monkeypatch.setattr(cuda, "is_available", lambda: True)
        monkeypatch.setattr(cuda, "device_count", lambda: gpus)
        monkeypatch.setattr(cuda, "current_device", lambda: self.current)
        monkeypatch.setattr(cuda, "set_device", self.set_device)
        monkeypatch.setattr(dist, "is_initialized", lambda: self.joined)
        monkeypatch.setattr(dist, "init_process_group", self.init_process_group)
        monkeypatch.setattr(dist, "get_rank", lambda: int(os.environ["RANK"]))
        monkeypatch.setattr(dist, "get_world_size", lambda: int(os.environ["WORLD_SIZE"]))

    def set_device(self, device: torch.device | int) -> None:
        self.current = device.index if isinstance(device, torch.device) else int(device)
        self.calls.append(("set_device", self.current))

    def init_process_group(self, backend: str, **kwargs: Any) -> None:
        self.joined = True
        self.calls.append(("init_process_group", backend, kwargs.get("device_id")))


class Evaluated(Exception):
    """Raised by a stand-in for `evaluate`, carrying the device `accuracy` chose."""


@pytest.fixture
def chosen_device(monkeypatch: pytest.MonkeyPatch) -> None:
    import tsfbench.evaluate as module

    def stand_in(model: Any, videos: Any, spec: Any, **kwargs: Any) -> Any:
        raise Evaluated(str(kwargs["device"]))

    monkeypatch.setattr(module, "evaluate", stand_in)


def torchrun_env(monkeypatch: pytest.MonkeyPatch, rank: int, local: int, **sizes: int) -> None:
    world, local_world = sizes.get("world", 2), sizes.get("local_world", 2)
    for name, value in (("RANK", rank), ("LOCAL_RANK", local), ("WORLD_SIZE", world),
                        ("LOCAL_WORLD_SIZE", local_world)):  # fmt: skip
        monkeypatch.setenv(name, str(value))


def test_distributed_accuracy_sets_each_ranks_gpu_then_joins_gloo_for_cpu_and_nccl_for_cuda(
    data: Path, chosen_device: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rank 3 of 4 (second node, local rank 1): its own GPU, set before NCCL forms a
    communicator, and a group whose CPU tensors (the counts) go to gloo."""
    from torch.distributed.distributed_c10d import BackendConfig

    torchrun_env(monkeypatch, rank=3, local=1, world=4)
    cuda = FakeCuda(monkeypatch, gpus=2)
    with pytest.raises(Evaluated) as evaluated:
        accuracy(CONFIG, on(data, workers=0), model=torch.nn.Identity())
    set_device, init = cuda.calls
    assert set_device == ("set_device", 1)
    assert init[0] == "init_process_group" and init[2] == torch.device("cuda", 1)
    backends = BackendConfig(init[1]).get_device_backend_map()  # torch's own parser
    assert {device: str(name) for device, name in backends.items()} == {
        "cpu": "gloo",
        "cuda": "nccl",
    }
    assert str(evaluated.value) == "cuda:1"


def test_more_local_ranks_than_gpus_stops_every_rank_before_joining(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsfbench.config import ConfigError

    torchrun_env(monkeypatch, rank=0, local=0, world=4, local_world=4)  # rank 0 refuses too
    cuda = FakeCuda(monkeypatch, gpus=2)
    with pytest.raises(ConfigError, match=r"4 ranks on this node but 2 GPU\(s\)"):
        accuracy(CONFIG, on(data, workers=0), model=torch.nn.Identity())
    assert cuda.calls == []


def test_an_accuracy_task_of_a_torchrun_rank_runs_on_the_gpu_bind_rank_gpu_left_it(
    data: Path, chosen_device: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tsfbench run` under torchrun: rank 1 sees only its GPU, which is cuda:0 to it."""
    from tsfbench.runner import bind_rank_gpu

    torchrun_env(monkeypatch, rank=1, local=1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    bind_rank_gpu()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    cuda = FakeCuda(monkeypatch, gpus=1)  # what this rank's CUDA sees from now on
    with pytest.raises(Evaluated) as evaluated:
        accuracy(CONFIG, on(data, workers=0), model=torch.nn.Identity(), distributed_eval=False)
    assert str(evaluated.value) == "cuda:0"
    assert cuda.calls == []  # each rank evaluates alone: no group, no device switch
