"""3D CNN baselines: published sizes and costs, their standard inputs, and the adaptations."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from tsfbench.config import ConfigError, RunConfig, expand
from tsfbench.evaluate import view_spec
from tsfbench.measure.flops import count_flops
from tsfbench.measure.sweep import miniature
from tsfbench.models.baselines import HeadPool, SlowFastClip
from tsfbench.models.build import build_model, example_input
from tsfbench.models.registry import PRESETS, TORCHVISION_MEAN

CNNS = [name for name, preset in PRESETS.items() if not preset.has_attention]

# Paper Table 2 (NUMBERS.md): inference TFLOPs over 30 views and parameters (M).
PAPER = {"slowfast_r50": (1.97, 34.6), "i3d_r50": (1.11, 28.0)}


@pytest.mark.parametrize("model", list(PAPER))
def test_table_2_baselines_match_the_paper(model: str) -> None:
    row = count_flops(expand([model])[0])
    tflops, params_m = PAPER[model]
    assert row["views"] == 30
    assert row["tflops"] == pytest.approx(tflops, rel=0.02)
    assert row["params"] / 1e6 == pytest.approx(params_m, rel=0.01)
    assert row["counter"] == "torch.utils.flop_counter"


@pytest.mark.parametrize("model", ["r3d_18", "mc3_18", "r2plus1d_18", "s3d"])
def test_torchvision_models_match_their_weights_metadata(model: str) -> None:
    """torchvision publishes parameters and GFLOPs (multiply-adds at 16 frames) per model."""
    from torchvision.models import get_model_weights

    meta = get_model_weights(model).DEFAULT.meta
    row = count_flops(RunConfig(model=model, frames=16, size=PRESETS[model].size))
    assert row["params"] == meta["num_params"]
    assert row["gflops_per_view"] == pytest.approx(meta["_ops"], rel=0.001)


@pytest.mark.parametrize("model", CNNS)
def test_every_baseline_maps_its_standard_clip_to_logits(model: str) -> None:
    (config,) = expand([model])
    net = build_model(config, device="meta")
    logits = net(example_input(config, batch=2, device="meta"))
    assert logits.shape == (2, 400)
    assert (config.attention, config.pos_embed) == ("-", "-")
    row = count_flops(config, with_breakdown=True)
    assert row["flops_per_view"] > 0
    assert sum(row["breakdown_gflops"].values()) == pytest.approx(row["gflops_per_view"])
    assert row["breakdown_gflops"]["other"] < 0.01 * row["gflops_per_view"]


def test_head_pool_runs_any_clip_and_returns_logits_not_probabilities() -> None:
    """Fixed head pools fail off the default clip; ours fit it. Real weights, a small input."""
    config = RunConfig(model="x3d_s", frames=4, size=64)
    net = build_model(config)
    assert not any(type(m) is nn.AvgPool3d for m in net.modules())
    with torch.no_grad():
        logits = net(example_input(config, batch=2))
    assert logits.shape == (2, 400)
    assert not torch.allclose(logits.sum(-1), torch.ones(2))  # no softmax at the end


def test_head_pool_window_is_clamped_to_the_feature_map() -> None:
    pool = HeadPool((None, 7, 7))
    assert pool(torch.ones(1, 2, 4, 8, 8)).shape == (1, 2, 1, 2, 2)  # 256 crop: 2 x 2 positions
    assert pool(torch.ones(1, 2, 3, 5, 5)).shape == (1, 2, 1, 1, 1)  # small crop still runs


class Recorder(nn.Module):
    """A SlowFast stage stand-in: records the pathways it is given, returns a tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Tensor] = []

    def forward(self, x: list[Tensor]) -> Tensor:
        self.seen = x
        return x[0].sum()


def test_slowfast_takes_every_alpha_th_frame_of_one_clip_for_its_slow_pathway() -> None:
    recorder = Recorder()
    net = nn.Module()
    net.blocks = nn.ModuleList([recorder])
    model = SlowFastClip(net, alpha=4)
    clip = torch.arange(32.0).view(1, 1, 32, 1, 1)
    model(clip)
    slow, fast = recorder.seen
    assert fast is clip
    assert slow.flatten().tolist() == [0, 4, 8, 13, 17, 22, 26, 31]  # 8 evenly spaced, ends kept


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"model": "slowfast_r50", "frames": 30}, "frames: slowfast_r50 takes a multiple of 4"),
        ({"model": "s3d", "size": 16}, "size: s3d takes crops of at least 17"),
        ({"model": "i3d_r50", "attention": "joint"}, "attention: i3d_r50 is a 3D CNN"),
        ({"model": "i3d_r50", "pos_embed": "separate"}, "pos_embed: i3d_r50 is a 3D CNN"),
    ],
)
def test_bad_cnn_inputs_name_the_parameter_and_the_rule(kwargs: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        RunConfig(**kwargs)


def test_cnn_sizes_need_not_be_patch_multiples() -> None:
    assert RunConfig(model="x3d_s", frames=13, size=182).size == 182


def test_a_mixed_grid_measures_a_cnn_once_and_cnns_alone_refuse_schemes() -> None:
    configs = expand(["base", "i3d_r50"], attentions=["joint", "divided"])
    assert [(c.model, c.attention) for c in configs] == [
        ("base", "joint"),
        ("base", "divided"),
        ("i3d_r50", "-"),
    ]
    with pytest.raises(ConfigError, match="attention: i3d_r50: 3D CNN without attention"):
        expand(["i3d_r50"], attentions=["joint"])


def test_size_overrides_are_refused_for_cnns() -> None:
    with pytest.raises(ConfigError, match="TimeSformer models only"):
        build_model(RunConfig(model="r3d_18"), device="meta", depth=1)


def test_test_views_follow_each_family() -> None:
    slowfast = view_spec(expand(["slowfast_r50"])[0])
    assert (slowfast.frames, slowfast.size, slowfast.rate, slowfast.views) == (32, 256, 2, 30)
    assert slowfast.mean == (0.45, 0.45, 0.45)
    r3d = view_spec(expand(["r3d_18"])[0])
    assert (r3d.frames, r3d.size, r3d.views, r3d.mean) == (16, 112, 5, TORCHVISION_MEAN)


def test_the_cpu_cap_warm_up_of_a_cnn_keeps_its_layers_and_shrinks_its_clip() -> None:
    from tsfbench.config import ProbeSettings

    config, settings, overrides = miniature(expand(["slowfast_r50"])[0], ProbeSettings())
    assert (config.model, config.frames, config.size, overrides) == ("slowfast_r50", 4, 32, {})
    assert settings.batch == 1
