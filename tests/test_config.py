"""User input: ranges, choices and configurations, each error naming its parameter."""

from __future__ import annotations

import pytest

from tsfbench.config import (
    ConfigError,
    RunConfig,
    check_overrides,
    clip_name,
    expand,
    parse_choices,
    parse_ints,
)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("8", [8]),
        ("8,16,32", [8, 16, 32]),
        ("8..32", [8, 16, 24, 32]),
        ("2..8:2", [2, 4, 6, 8]),
        ("224..560:112", [224, 336, 448, 560]),
        ("8, 8..16", [8, 16]),
    ],
)
def test_parse_ints(text: str, values: list[int]) -> None:
    assert parse_ints(text, "--frames") == values


@pytest.mark.parametrize("text", ["8..", "..96", "96..8", "8..96:0", "-3", "0", "x", "8:2", ""])
def test_malformed_ranges_name_the_parameter(text: str) -> None:
    with pytest.raises(ConfigError, match="--frames"):
        parse_ints(text, "--frames")


def test_a_range_of_too_many_values_is_refused_before_it_is_built() -> None:
    with pytest.raises(ConfigError, match=r"--frames: '1\.\.1000000000' gives 1000000000 values"):
        parse_ints("1..1000000000", "--frames")
    assert len(parse_ints("1..1000:1", "--frames")) == 1000


@pytest.mark.parametrize(
    ("overrides", "model", "message"),
    [
        ({"depth": 0}, "base", "depth: 0; overrides are positive integers"),
        ({"heads": True}, "base", "heads: True; overrides are positive integers"),
        ({"dim": 64, "heads": 5}, "base", "dim: 64 is not a multiple of heads 5"),
        ({"dim": 100}, "base", "dim: 100 is not a multiple of heads 12"),
        ({"depth": 1}, "x3d_s", "depth: TimeSformer models only; x3d_s is a 3D CNN"),
    ],
)
def test_bad_overrides(overrides: dict[str, object], model: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_overrides(overrides, expand([model]))
    assert str(info.value).startswith(message)
    check_overrides({"depth": 1, "dim": 64, "heads": 4}, expand(["base"]))  # a tiny model


def test_parse_choices() -> None:
    allowed = ["space", "joint", "divided"]
    assert parse_choices("all", "--attention", allowed) == allowed
    assert parse_choices("joint,divided", "--attention", allowed) == ["joint", "divided"]
    with pytest.raises(ConfigError, match=r"--attention.*'axil'.*space, joint, divided"):
        parse_choices("joint,axil", "--attention", allowed)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 100}, "size: 100 is not a multiple of the patch size 16; use e.g. 96 or 112"),
        ({"attention": "sparse"}, "attention: unknown scheme 'sparse'"),
        ({"pos_embed": "time"}, "pos_embed: unknown 'time'"),
        ({"frames": 0}, "frames: 0 must be a positive integer"),
        ({"views": -1}, "views: -1 must be a positive integer"),
        ({"model": "xl"}, "model: unknown 'xl'"),
    ],
)
def test_bad_configurations(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        RunConfig(**kwargs)
    assert str(info.value).startswith(message)


def test_pos_embed_defaults_follow_the_released_code() -> None:
    assert RunConfig(attention="space").pos_embed == "space"
    assert RunConfig(attention="divided").pos_embed == "space_time"


def test_expand_takes_preset_values_for_missing_axes() -> None:
    configs = expand(["base", "hr"], ["joint", "divided"])
    assert [(c.model, c.attention, c.frames, c.size, c.views) for c in configs] == [
        ("base", "joint", 8, 224, 3),
        ("base", "divided", 8, 224, 3),
        ("hr", "joint", 16, 448, 3),
        ("hr", "divided", 16, 448, 3),
    ]


def test_a_device_may_name_one_of_the_gpus_torch_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cuda:N` is checked against the GPUs torch sees (here two, faked), in one line."""
    import torch

    from tsfbench.config import AccuracySettings, ConfigError, ProbeSettings

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert ProbeSettings(device="cuda:1").target == "cuda:1"
    assert AccuracySettings(data="x", synthetic=True, device="cuda:1").device == "cuda:1"
    assert AccuracySettings(data="x", synthetic=True, device="auto").device is None
    with pytest.raises(
        ConfigError, match=r"^device: cuda:2, but torch sees 2 GPU\(s\); .*cuda:0..cuda:1$"
    ):
        ProbeSettings(device="cuda:2")
    for bad in ("gpu", "cuda:", "cuda:x", "cuda:-1"):
        with pytest.raises(ConfigError, match="accepted: auto, cpu, cuda, cuda:N"):
            ProbeSettings(device=bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
        ProbeSettings(device="cuda:0")


def test_a_configuration_is_named_the_same_from_a_config_or_a_stored_record() -> None:
    """A 3D CNN has no scheme: no `-` in its name (flops' progress and profile's title printed
    `i3d_r50 - 8x256`); a record of an older store without the field reads the same."""
    (cnn,) = expand(["i3d_r50"])
    assert cnn.describe() == "i3d_r50 8x256" == clip_name("i3d_r50", "-", 8, 256)
    assert clip_name("i3d_r50", None, 8, 256) == "i3d_r50 8x256"
    vit = RunConfig(attention="divided", frames=8, size=224)
    assert vit.describe() == "base divided 8x224" == clip_name("base", "divided", 8, 224)
