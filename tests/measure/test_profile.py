"""`tsfbench profile`: a step's time and FLOPs by the model's own parts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tsfbench.cli import app
from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.flops import count_flops, part_macs
from tsfbench.measure.profile import (
    OTHER,
    hooked_ranges,
    module_ranges,
    parameter_parts,
    part_order,
    profile,
    range_part,
)
from tsfbench.models.build import build_model
from tsfbench.models.registry import ATTENTIONS
from tsfbench.models.timesformer import Mlp

TINY_CLIP = RunConfig(attention="divided", frames=4, size=32)
runner = CliRunner()


def run(tiny: dict[str, object], **options: Any) -> dict[str, Any]:
    settings = ProbeSettings(warmup=1, iterations=options.pop("iterations", 3), device="cpu")
    return profile(TINY_CLIP, settings, tiny, **options)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One profile of the tiny divided model, with its trace and every part per block."""
    trace = tmp_path_factory.mktemp("trace") / "step.json"
    tiny = {"dim": 64, "depth": 2, "heads": 4, "drop_path": 0.0}
    return run(tiny, trace=trace, per_block=["all"]), trace


def shares(result: dict[str, Any], key: str) -> float:
    return sum(row[key] for row in result["parts"])


def test_shares_of_time_and_of_flops_each_sum_to_100_percent(profiled: Any) -> None:
    result, _ = profiled
    assert shares(result, "time_share") == pytest.approx(1.0)
    assert shares(result, "flop_share") == pytest.approx(1.0)
    names = [row["part"] for row in result["parts"]]
    assert names[0] == "patch_embed" and names[-1] == OTHER
    assert {"time.fc", "space.attend", "time.grouping", "space", "mlp", "norm"} <= set(names)
    # every part's time is the median of one sample per profiled step
    assert result["profiled_step"]["iterations"] == 3
    assert result["parts_sum_ms"] == pytest.approx(sum(r["time_ms"] for r in result["parts"]))
    # what else used the machine in each window, read as `latency` reads it
    assert set(result["contention"]) == {"timed", "profiled"}
    assert result["contended"] == any(w["contended"] for w in result["contention"].values())


def test_per_block_gives_each_block_its_own_time(profiled: Any) -> None:
    result, _ = profiled
    mlp = [row for row in result["per_block"] if row["part"] == "mlp"]
    assert [row["block"] for row in mlp] == [0, 1]
    assert all(row["time_ms"] > 0 for row in mlp)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_flops_per_part_sum_to_what_tsfbench_flops_counts(attention: str) -> None:
    config = RunConfig(attention=attention, frames=2, size=32)
    total, parts = part_macs(config)
    # one block traced and taken `depth` times: the full trace's count and `tsfbench flops`'
    assert sum(parts.values()) == total == count_flops(config)["flops_per_view"]
    assert total == count_flops(config, shortcut=False)["flops_per_view"]
    assert parts[OTHER] == 0  # every multiply-add lies in a part
    assert parts["mlp"] > 0 and all(value >= 0 for value in parts.values())


def test_a_cnn_splits_into_its_top_level_stages() -> None:
    config = RunConfig(model="r3d_18", frames=8, size=32)
    total, parts = part_macs(config)
    assert total == count_flops(config)["flops_per_view"] == sum(parts.values())
    assert {"stem", "res2", "res5", "head"} <= set(parts)  # torchvision's layer1..4: res2..5
    model = build_model(config, device="meta")
    assert set(parameter_parts(model).values()) <= set(part_order(model, train=True))


def test_a_part_made_slow_takes_a_larger_share_of_the_time(
    tiny: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {row["part"]: row for row in run(tiny)["parts"]}
    forward = Mlp.forward
    pause = 0.2  # well above this busy machine's step-to-step noise (tens of ms)

    def slow(self: Mlp, x: Any) -> Any:
        time.sleep(pause)
        return forward(self, x)

    monkeypatch.setattr(Mlp, "forward", slow)
    after = {row["part"]: row for row in run(tiny)["parts"]}
    # two blocks: the MLP sleeps twice a step, and that time is the MLP's, nobody else's (not
    # the block around it, nor `other`): a busy machine adds noise, never 0.2 s to one part
    slept = 2 * pause * 1e3
    assert after["mlp"]["time_ms"] >= slept
    assert after["mlp"]["time_share"] > before["mlp"]["time_share"]
    assert after["block"]["time_ms"] < slept / 2 and after[OTHER]["time_ms"] < slept / 2


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_every_parameter_belongs_to_exactly_one_part(
    attention: str, tiny: dict[str, object]
) -> None:
    model = build_model(RunConfig(attention=attention, frames=4, size=32), "meta", **tiny)
    parts = parameter_parts(model)
    assert list(parts) == [name for name, _ in model.named_parameters()]
    known = set(part_order(model, train=False)) - {OTHER}
    assert set(parts.values()) <= known
    assert parts["pos_embed"] == parts["patch_embed.proj.weight"] == "patch_embed"
    assert parts["blocks.1.norm2.weight"] == "norm"
    assert parts["blocks.0.mlp.fc2.bias"] == "mlp"
    last = model.blocks[0].steps[-1].name  # the ViT's own attention: the last step's
    assert parts["blocks.1.attn.qkv.weight"] == f"{last}.qkv"
    assert parts["blocks.1.attn.proj.weight"] == f"{last}.proj"
    if attention == "axial":
        assert parts["blocks.0.width_fc.weight"] == "width.fc"


def test_the_trace_names_every_part(profiled: Any) -> None:
    result, trace = profiled
    document = json.loads(trace.read_text())
    events = document["traceEvents"] if isinstance(document, dict) else document
    seen = {range_part(event["name"]) for event in events if "name" in event}
    forward = {row["part"] for row in result["parts"]} - {OTHER}
    assert forward <= seen


def hooked(model: Any) -> list[Any]:
    """The modules carrying a hook, or a method wrapped on the instance (`run_step`, `embed`)."""
    wrapped = ("run_step", "embed")
    return [
        m
        for m in model.modules()
        if m._forward_hooks or m._forward_pre_hooks or any(w in vars(m) for w in wrapped)
    ]


def test_ranges_are_named_only_while_profiling(tiny: dict[str, object]) -> None:
    model = build_model(TINY_CLIP, "meta", **tiny)
    steps = model.blocks[0].steps
    assert hooked(model) == []
    with hooked_ranges(model):
        assert model in hooked(model) and model.blocks[0] in hooked(model)
    assert hooked(model) == [] and model.blocks[0].steps is steps
    assert module_ranges(model)["blocks.0.temporal_attn"] == "time.attend"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--per-block", "mlp,depth.qkv"], "per_block: unknown part 'depth.qkv'"),
        (["--trace", "no-such-folder/trace.json"], "trace: no folder 'no-such-folder'"),
        (["--trace", "."], "trace: '.' is a folder"),
        (["--variant", "i3d_r50", "--mode", "train", "--checkpointing"], "3D CNN"),
        (["--mode", "infer,train"], "one value each"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], named: str) -> None:
    tiny = ["--frames", "2", "--size", "32", "--depth", "1", "--dim", "32", "--heads", "2"]
    base = tiny if "--variant" not in args else ["--frames", "8", "--size", "32"]
    result = runner.invoke(app, ["profile", *base, "--iterations", "1", "--warmup", "0", *args])
    assert result.exit_code == 2, result.output
    assert named in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_table_names_its_units_and_checks_the_sum_against_latency() -> None:
    tiny = ["--frames", "2", "--size", "32", "--depth", "1", "--dim", "32", "--heads", "2"]
    result = runner.invoke(
        app, ["profile", *tiny, "--mode", "train", "--iterations", "2", "--warmup", "0"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "where the time goes" in out and "multiply-adds" in out
    assert "space.qkv backward" in out and "optimizer" in out
    assert "without the profiler" in out and "overhead" in out
    assert "backward FLOPs: 2x" in out  # the estimate is said where it is used


def test_the_profiler_writes_nothing_on_the_terminal_but_the_commands_own_output(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """kineto writes its start and stop lines ("USDT: ... profiler_start") straight to fd 2;
    they must not reach the terminal (a training step, its trace and its memory: every path)."""
    tiny = ["--frames", "2", "--size", "32", "--depth", "1", "--dim", "32", "--heads", "2"]
    options = ["--mode", "train", "--iterations", "1", "--warmup", "0", "--memory"]
    trace = tmp_path / "step.json"
    result = runner.invoke(app, ["profile", *tiny, *options, "--trace", str(trace)])
    assert result.exit_code == 0, result.output
    assert "where the time goes" in result.stdout and trace.exists()
    written = capfd.readouterr()  # what reached file descriptors 1 and 2 behind the runner
    assert written.err == "" and written.out == ""


def test_the_datasheet_peak_is_by_exact_gpu_name_and_dtype() -> None:
    from tsfbench.measure.peaks import datasheet_peak

    assert datasheet_peak("NVIDIA H100 80GB HBM3", "bf16") == pytest.approx(989.5e12)
    assert datasheet_peak("NVIDIA H100 80GB HBM3", "fp16") == pytest.approx(989.5e12)
    assert datasheet_peak("NVIDIA H100 80GB HBM3", "fp32") == pytest.approx(67e12)
    assert datasheet_peak("NVIDIA A100-SXM4-80GB", "fp32") == pytest.approx(19.5e12)
    # a MIG slice or an unlisted GPU has no peak: a share of a wrong one would mislead
    assert datasheet_peak("NVIDIA H100 80GB HBM3 MIG 1g.10gb", "bf16") is None
    assert datasheet_peak("NVIDIA GeForce RTX 4090", "fp32") is None


@pytest.mark.gpu
def test_on_a_gpu_the_parts_cuda_times_sum_to_the_latency_and_their_flops_to_tsfbench_flops() -> (
    None
):
    """Issue 23's acceptance with CUDA time per part (the profiler's device events), run by
    gpu_acceptance.py's pytest phase: batch 8, so the kernels outweigh the launches."""
    from tsfbench.measure.profile import within_tolerance

    config = RunConfig(attention="divided")
    result = profile(config, ProbeSettings(batch=8, warmup=3, iterations=10, device="cuda"))
    assert result["time_source"].startswith("CUDA")
    gap, overhead = result["parts_sum_vs_latency"], result["profiler_overhead"]
    assert within_tolerance(result), f"parts {100 * gap:+.1f}%, overhead {100 * overhead:+.1f}%"
    assert (
        sum(part["macs"] for part in result["parts"]) == 8 * count_flops(config)["flops_per_view"]
    )
    assert result["parts"][-1]["part"] == OTHER and result["parts"][-1]["time_share"] < 0.5
