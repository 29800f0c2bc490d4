"""Checkpoints load only into a model they fit, through `weights_only`, or fail in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tsfbench.config import ConfigError, RunConfig
from tsfbench.models.build import build_model, example_input
from tsfbench.models.checkpoint import load_checkpoint, read_state_dict

CONFIG = RunConfig(frames=4, size=32, classes=5)


@pytest.mark.parametrize("layout", ["plain", "released"])
def test_a_saved_model_loads_into_another_with_identical_logits(
    tmp_path: Path, layout: str, tiny: dict[str, object]
) -> None:
    source = build_model(CONFIG, **tiny)
    state = source.state_dict()
    if layout == "released":  # .pyth: the wrapper's state under `model_state`, keys `model.*`
        state = {"model_state": {f"model.{k}": v for k, v in state.items()}, "epoch": 15}
    torch.save(state, tmp_path / "ckpt.pyth")
    target = build_model(CONFIG, **tiny)
    report = load_checkpoint(target, tmp_path / "ckpt.pyth")
    assert report.layout == layout and not report.resized
    clip = example_input(CONFIG, batch=2)
    with torch.inference_mode():
        assert torch.equal(source(clip), target(clip))


def test_wrong_class_count_is_one_clear_line(tmp_path: Path, tiny: dict[str, object]) -> None:
    torch.save(
        build_model(RunConfig(frames=4, size=32, classes=7), **tiny).state_dict(), tmp_path / "c.pt"
    )
    with pytest.raises(ConfigError, match=r"has 7 classes .* built for 5") as error:
        load_checkpoint(build_model(CONFIG, **tiny), tmp_path / "c.pt")
    assert "\n" not in str(error.value)


def test_missing_and_unexpected_keys_are_named(tmp_path: Path, tiny: dict[str, object]) -> None:
    state = build_model(CONFIG, **tiny).state_dict()
    state["blocks.9.extra.weight"] = state.pop("norm.weight")
    torch.save(state, tmp_path / "c.pt")
    with pytest.raises(ConfigError, match=r"missing keys norm.weight; unexpected keys blocks.9"):
        load_checkpoint(build_model(CONFIG, **tiny), tmp_path / "c.pt")


def test_other_frames_and_size_resize_the_positional_tables(
    tmp_path: Path, tiny: dict[str, object]
) -> None:
    torch.save(build_model(CONFIG, **tiny).state_dict(), tmp_path / "c.pt")
    bigger = build_model(RunConfig(frames=8, size=64, classes=5), **tiny)
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


# --- Hugging Face `transformers` folders (config.json + model.safetensors) -------------------

# Class names in an order unlike the synthetic set's sorted classids.json: the data's ids must
# be renumbered to these, or every prediction is scored against the wrong class.
HF_LABELS = ("right_slow", "left_fast", "right_fast", "left_slow")


def save_hf(folder: Path, attention: str = "divided_space_time") -> torch.nn.Module:
    """A tiny random `transformers` classifier written by its own `save_pretrained`."""
    transformers = pytest.importorskip("transformers")
    config = transformers.TimesformerConfig(
        attention_type=attention,
        num_frames=4,
        image_size=32,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        id2label=dict(enumerate(HF_LABELS)),
        label2id={name: i for i, name in enumerate(HF_LABELS)},
    )
    torch.manual_seed(0)
    hf = transformers.TimesformerForVideoClassification(config).eval()
    with torch.no_grad():  # non-trivial values everywhere (temporal_fc starts at zero)
        for param in hf.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    hf.save_pretrained(folder)
    return hf


@pytest.mark.parametrize("attention", ["divided_space_time", "joint_space_time"])
def test_a_transformers_folder_loads_with_its_logits(
    tmp_path: Path, attention: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsfbench.models.checkpoint import read_hf_config

    hf = save_hf(tmp_path / "hf", attention)
    assert (tmp_path / "hf/model.safetensors").is_file()
    config = read_hf_config(tmp_path / "hf")
    assert (config.frames, config.size, config.classes, config.labels) == (4, 32, 4, HF_LABELS)
    assert config.overrides() == {"depth": 2, "dim": 64, "heads": 4}
    ours = build_model(
        RunConfig(attention=config.attention, frames=4, size=32, classes=4),
        **config.overrides(),
        drop_path=0.0,
    )

    def no_pickle(*args: object, **kwargs: object) -> None:
        raise AssertionError("safetensors must be read without torch.load")

    monkeypatch.setattr(torch, "load", no_pickle)
    report = load_checkpoint(ours, tmp_path / "hf")
    assert report.layout == "transformers"
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.inference_mode():
        expected = hf(pixel_values=clip.transpose(1, 2)).logits  # (B, T, C, H, W) there
        torch.testing.assert_close(ours(clip), expected, rtol=1e-5, atol=1e-5)


def test_a_transformers_folder_is_scored_end_to_end_by_the_cli(tmp_path: Path) -> None:
    """No --frames, --size, --classes or sizes: config.json gives them; id2label maps classes."""
    pytest.importorskip("decord")
    pytest.importorskip("av")
    import json

    from typer.testing import CliRunner

    from tsfbench.cli import app
    from tsfbench.data.synth import write_synthetic
    from tsfbench.data.video import ViewSpec, decode_views

    hf = save_hf(tmp_path / "hf")
    csv = write_synthetic(tmp_path / "synth", classes=4, per_class=2, frames=8, seed=3)
    args = ["accuracy", str(csv), "--checkpoint", str(tmp_path / "hf"), "--rate", "2"]
    result = CliRunner().invoke(app, [*args, "--workers", "0", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["attention"], record["frames"], record["size"]) == ("divided", 4, 32)
    assert record["classes"] == 4 and record["checkpoint_layout"] == "transformers"
    assert record["evaluated"] == 8 and record["dataset"] == "synthetic"
    spec = ViewSpec(frames=4, size=32, rate=2, clips=1, crops=3)
    for video, label, predicted in record["predictions"]:
        assert HF_LABELS[label] == Path(video).parent.name  # renumbered by name
        with torch.inference_mode():
            views = decode_views(str(csv.parent / video), spec)
            scores = hf(pixel_values=views.transpose(1, 2)).logits.softmax(-1).mean(0)
        assert predicted == int(scores.argmax())  # the checkpoint's own prediction
    hits = sum(label == predicted for _, label, predicted in record["predictions"])
    assert record["top1"] == pytest.approx(100 * hits / 8)


def test_a_two_class_transformers_folder_reads_num_labels_as_its_default(tmp_path: Path) -> None:
    """transformers 5 leaves `num_labels` (default 2) and `id2label` out of a binary
    classifier's config.json: such a folder is a two-class model, scored end to end."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("decord")
    import json

    from typer.testing import CliRunner

    from tsfbench.cli import app
    from tsfbench.data.synth import write_synthetic
    from tsfbench.models.checkpoint import read_hf_config

    config = transformers.TimesformerConfig(
        num_frames=4, image_size=32, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=256, num_labels=2,
    )  # fmt: skip
    transformers.TimesformerForVideoClassification(config).save_pretrained(tmp_path / "hf")
    written = json.loads((tmp_path / "hf/config.json").read_text())
    assert written.get("num_labels", 2) == 2 and written.get("id2label") in (None, {})
    read = read_hf_config(tmp_path / "hf")
    assert (read.classes, read.labels) == (2, ())
    csv = write_synthetic(tmp_path / "synth", classes=2, per_class=1, frames=8)
    args = ["accuracy", str(csv), "--checkpoint", str(tmp_path / "hf"), "--rate", "2"]
    result = CliRunner().invoke(app, [*args, "--workers", "0", "--views", "1", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["classes"] == 2 and record["evaluated"] == 2


def test_missing_config_values_read_as_the_installed_transformers_defaults() -> None:
    transformers = pytest.importorskip("transformers")
    from tsfbench.models.checkpoint import HF_DEFAULTS

    default = transformers.TimesformerConfig()
    assert {name: getattr(default, name) for name in HF_DEFAULTS} == HF_DEFAULTS


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "has no config.json; give a transformers TimeSformer folder"),
        ('{"model_type": "videomae"}', "describes a 'videomae' model, not 'timesformer'"),
        ("{not json", "is not valid JSON"),
        ('{"model_type": "timesformer", "patch_size": 8}', "patch_size 8; tsfbench builds 16"),
        ('{"model_type": "timesformer", "num_labels": 0}', "num_labels 0 is not a positive"),
    ],
)
def test_a_folder_with_a_missing_or_foreign_config_is_one_line_exit_2(
    tmp_path: Path, config: str | None, message: str
) -> None:
    from typer.testing import CliRunner

    from tsfbench.cli import app

    (tmp_path / "hf").mkdir()
    if config is not None:
        (tmp_path / "hf/config.json").write_text(config)
    args = ["accuracy", str(tmp_path / "val.csv"), "--checkpoint", str(tmp_path / "hf")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_transformers_folder_without_weights_or_of_another_scheme_says_so(
    tmp_path: Path, tiny: dict[str, object]
) -> None:
    import json

    folder = tmp_path / "hf"
    folder.mkdir()
    config = {"model_type": "timesformer", "attention_type": "joint_space_time"}
    config |= {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    config |= {"intermediate_size": 256, "num_frames": 4, "image_size": 32, "num_labels": 5}
    (folder / "config.json").write_text(json.dumps(config))
    joint = build_model(RunConfig(attention="joint", frames=4, size=32, classes=5), **tiny)
    with pytest.raises(ConfigError, match=r"has no weights; expected model.safetensors"):
        load_checkpoint(joint, folder)
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(ConfigError, match=r"cannot read .*model.safetensors"):
        load_checkpoint(joint, folder)
    with pytest.raises(ConfigError, match=r"holds a joint TimeSformer, the model is divided"):
        load_checkpoint(build_model(CONFIG, **tiny), folder)
