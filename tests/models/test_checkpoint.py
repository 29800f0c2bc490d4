"""Checkpoints load only into a model they fit, through `weights_only`, or fail in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tsfbench.config import ConfigError, RunConfig
from tsfbench.models.checkpoint import load_checkpoint, read_state_dict
from tsfbench.models.registry import build_model, example_input

TINY = {"dim": 64, "depth": 2, "heads": 4, "drop_path": 0.0}
CONFIG = RunConfig(frames=4, size=32, classes=5)


@pytest.mark.parametrize("layout", ["plain", "released"])
def test_a_saved_model_loads_into_another_with_identical_logits(
    tmp_path: Path, layout: str
) -> None:
    source = build_model(CONFIG, **TINY)
    state = source.state_dict()
    if layout == "released":  # .pyth: the wrapper's state under `model_state`, keys `model.*`
        state = {"model_state": {f"model.{k}": v for k, v in state.items()}, "epoch": 15}
    torch.save(state, tmp_path / "ckpt.pyth")
    target = build_model(CONFIG, **TINY)
    report = load_checkpoint(target, tmp_path / "ckpt.pyth")
    assert report.layout == layout and not report.resized
    clip = example_input(CONFIG, batch=2)
    with torch.inference_mode():
        assert torch.equal(source(clip), target(clip))


def test_wrong_class_count_is_one_clear_line(tmp_path: Path) -> None:
    torch.save(
        build_model(RunConfig(frames=4, size=32, classes=7), **TINY).state_dict(), tmp_path / "c.pt"
    )
    with pytest.raises(ConfigError, match=r"has 7 classes .* built for 5") as error:
        load_checkpoint(build_model(CONFIG, **TINY), tmp_path / "c.pt")
    assert "\n" not in str(error.value)


def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    state = build_model(CONFIG, **TINY).state_dict()
    state["blocks.9.extra.weight"] = state.pop("norm.weight")
    torch.save(state, tmp_path / "c.pt")
    with pytest.raises(ConfigError, match=r"missing keys norm.weight; unexpected keys blocks.9"):
        load_checkpoint(build_model(CONFIG, **TINY), tmp_path / "c.pt")


def test_other_frames_and_size_resize_the_positional_tables(tmp_path: Path) -> None:
    torch.save(build_model(CONFIG, **TINY).state_dict(), tmp_path / "c.pt")
    bigger = build_model(RunConfig(frames=8, size=64, classes=5), **TINY)
    report = load_checkpoint(bigger, tmp_path / "c.pt")
    assert report.resized[0].startswith("positional tables of 4 x 32 resized to 8 x 64")
    assert bigger.pos_embed.shape == (1, 17, 64) and bigger.time_embed.shape == (1, 8, 64)


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    torch.save({"model_state": {}, "hook": Path("x")}, tmp_path / "c.pt")
    with pytest.raises(ConfigError, match="weights_only"):
        read_state_dict(tmp_path / "c.pt")


@pytest.mark.parametrize(
    "data", [b"not a checkpoint\n", bytes(range(256)) * 4, b"\x80\x02]q\x00(K\x01"]
)
def test_a_file_that_is_no_checkpoint_says_so(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "c.pt").write_bytes(data)
    with pytest.raises(ConfigError) as info:
        read_state_dict(tmp_path / "c.pt")
    message = str(info.value)
    assert message.startswith("checkpoint: ") and "\n" not in message
    assert "not a PyTorch checkpoint" in message or "cannot read" in message


def test_a_folder_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        read_state_dict(tmp_path)
