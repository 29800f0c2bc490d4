"""FLOP counts: the paper's numbers, an independent counter, and nothing left uncounted."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from tsfbench.config import RunConfig
from tsfbench.measure.flops import analyze, count_flops, count_many
from tsfbench.measure.peak_parts import forward_parts
from tsfbench.models.build import build_model, example_input
from tsfbench.models.parts import OTHER
from tsfbench.models.registry import ATTENTIONS

# NUMBERS.md: inference TFLOPs (3 views) of the presets, and parameters per scheme.
PAPER_TFLOPS = {("base", 8, 224): 0.59, ("hr", 16, 448): 5.11, ("l", 96, 224): 7.14}
PAPER_PARAMS_M = {
    "space": 85.9,
    "joint": 85.9,
    "divided": 121.4,
    "local_global": 121.4,
    "axial": 156.8,
}


@pytest.mark.parametrize(("model", "frames", "size"), list(PAPER_TFLOPS))
def test_presets_match_the_papers_tflops(model: str, frames: int, size: int) -> None:
    row = count_flops(RunConfig(model=model, frames=frames, size=size))
    assert row["tflops"] == pytest.approx(PAPER_TFLOPS[model, frames, size], rel=0.01)
    assert row["unsupported_ops"] == {}
    # 121.4M is the 8 x 224 model; larger inputs add only positional-table entries
    base = count_flops(RunConfig(model="base"))["params"]
    assert base / 1e6 == pytest.approx(121.4, rel=0.005)
    extra_positions = (size // 16) ** 2 - 14**2 + frames - 8
    assert row["params"] - base == extra_positions * 768


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_parameters_match_the_paper(attention: str) -> None:
    row = count_flops(RunConfig(attention=attention))
    assert row["params"] / 1e6 == pytest.approx(PAPER_PARAMS_M[attention], rel=0.005)


def flop_counter_macs(config: RunConfig) -> int:
    """torch's own counter (2 FLOPs per multiply-add), on the same meta model, halved."""
    model = build_model(config, device="meta")
    with FlopCounterMode(display=False) as counter:
        model(example_input(config, device="meta"))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("frames", [8, 16])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_fvcore_agrees_with_torch_flop_counter(attention: str, frames: int) -> None:
    config = RunConfig(attention=attention, frames=frames, size=224)
    row = count_flops(config)
    assert row["unsupported_ops"] == {}
    assert row["flops_per_view"] == pytest.approx(flop_counter_macs(config), rel=0.01)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_sdpa_and_math_backends_count_the_same(attention: str) -> None:
    config = RunConfig(attention=attention, frames=4, size=64)
    model = build_model(config, device="meta")
    clip = (example_input(config, device="meta"),)
    sdpa = analyze(model, clip).total()
    model.set_backend("math")
    assert analyze(model, clip).total() == sdpa


def test_joint_attention_grows_quadratically_divided_linearly_in_frames() -> None:
    def attend_macs(attention: str, frames: int, step: str) -> float:
        row = count_flops(RunConfig(attention=attention, frames=frames), with_breakdown=True)
        return row["breakdown_gflops"][f"{step}.attend"]

    # Figure 3: joint's attention cost per token grows with the clip, divided's does not. The
    # kernel's products scale with tokens squared (1 + 196 T tokens) under joint attention, and
    # with the number of 197-token frames under divided's space step.
    tokens = (1 + 32 * 196) / (1 + 8 * 196)
    joint = attend_macs("joint", 32, "joint") / attend_macs("joint", 8, "joint")
    divided = attend_macs("divided", 32, "space") / attend_macs("divided", 8, "space")
    assert joint == pytest.approx(tokens**2, rel=1e-3)
    assert divided == pytest.approx(4.0, rel=1e-3)


def test_breakdown_accounts_for_the_whole_count_in_the_profiles_part_names() -> None:
    config = RunConfig(attention="axial", frames=4, size=64)
    row = count_flops(config, with_breakdown=True)
    parts = row["breakdown_gflops"]
    steps = ("time", "width", "height")
    named = {f"{step}.{kind}" for step in steps for kind in ("qkv", "attend", "proj")}
    extra_fc = {"time.fc", "width.fc"}  # the last step is the block's own attention: no fc
    assert named | extra_fc | {"patch_embed", "norm", "mlp", "head"} <= set(parts)
    assert set(parts) <= set(forward_parts(build_model(config, device="meta"))) | {OTHER}
    assert sum(parts.values()) == pytest.approx(row["gflops_per_view"], rel=1e-9)
    assert parts["other"] < 1e-3 * row["gflops_per_view"]
    # one block traced and taken `depth` times: the full trace's parts, to the multiply-add
    full = count_flops(config, with_breakdown=True, shortcut=False)["breakdown_gflops"]
    assert full == pytest.approx(parts, rel=1e-12)


def test_huge_configurations_are_counted_without_memory() -> None:
    row = count_flops(RunConfig(attention="joint", frames=96, size=448))
    assert row["tflops"] > 300  # ~332 TFLOPs: far beyond what could be allocated here
    assert row["unsupported_ops"] == {}


def test_unknown_ops_are_reported_not_skipped() -> None:
    class Odd(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cumsum(x, dim=0)

    analysis = analyze(Odd(), (torch.randn(4, 4, device="meta"),))
    assert "aten::cumsum" in analysis.unsupported_ops()


def test_parallel_counting_returns_the_sequential_rows_in_order() -> None:
    configs = [RunConfig(attention=a, frames=4, size=64) for a in ATTENTIONS]
    parallel = list(count_many(configs, workers=2))
    assert parallel == [count_flops(config) for config in configs]


@pytest.mark.parametrize(("frames", "size"), [(1, 32), (3, 48)])  # 48 px: an odd 3 x 3 grid
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_counting_one_block_gives_the_full_traces_count(
    attention: str, frames: int, size: int
) -> None:
    config = RunConfig(attention=attention, frames=frames, size=size)
    model = build_model(config, device="meta")
    full = analyze(model, (example_input(config, device="meta"),)).total()
    assert count_flops(config)["flops_per_view"] == full
    assert count_flops(config) == count_flops(config, shortcut=False)
