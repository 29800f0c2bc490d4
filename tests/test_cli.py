"""The command line: JSON output, tables, and bad input as one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tsfbench.cli import app

runner = CliRunner()


def test_flops_json_has_the_documented_keys() -> None:
    result = runner.invoke(
        app, ["flops", "--attention", "joint,divided", "--frames", "8", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["attention"] for row in rows] == ["joint", "divided"]
    required = {"model", "attention", "frames", "size", "views", "params", "gflops_per_view"}
    assert required | {"tflops", "unsupported_ops"} <= set(rows[0])
    assert rows[1]["tflops"] == pytest.approx(0.59, rel=0.01)


def test_flops_table_names_the_convention() -> None:
    result = runner.invoke(app, ["flops", "--variant", "hr", "--breakdown"])
    assert result.exit_code == 0, result.output
    assert "multiply-adds" in result.stdout
    assert "time.*" in result.stdout and "space.*" in result.stdout  # a step's parts summed


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["flops", "--attention", "sparse"], "--attention"),
        (["flops", "--variant", "xl"], "--variant"),
        (["flops", "--frames", "8.."], "--frames"),
        (["flops", "--frames", "96..8"], "--frames"),
        (["flops", "--frames", "-8"], "--frames"),
        (["flops", "--size", "230"], "size"),
        (["flops", "--views", "0"], "views"),
        (["flops", "--pos-embed", "time"], "pos_embed"),
        (["flops", "--frames", ""], "--frames"),  # empty is bad input, not "the default"
        (["flops", "--size", ""], "--size"),
        (["flops", "--attention", ""], "--attention"),
        (["flops", "--frames", "1..1000000000"], "--frames"),  # a typo, not a billion configs
        (["latency", "--memory-limit", "", "--depth", "1"], "--memory-limit"),
        (["latency", "--depth", "0"], "depth"),
        (["latency", "--dim", "64", "--heads", "5"], "heads"),
        (["latency", "--variant", "slowfast_r50", "--depth", "1"], "3D CNN"),
        (["latency", "--variant", "x3d_s", "--mode", "train", "--checkpointing"], "3D CNN"),
        (["latency", "--compile", "--warmup", "0"], "warmup"),  # compilation would be timed
        (["latency", "--iterations", "often"], "iterations"),
        (["latency", "--warmup", "-1"], "warmup"),
        (["latency", "--iterations", "auto", "--target-ci", "0"], "target_ci"),
        (["latency", "--max-warmup", "1"], "max_warmup"),
        (["memory-sweep", "--iterations", "auto", "--max-time", "-1"], "max_time"),
        (["memory-sweep", "--predict-only", "--dim", "100"], "dim"),
        (["latency", "--device", "cuda:7", "--depth", "1"], "cuda:7"),  # no such GPU here
        (["memory-sweep", "--predict-only", "--device", "tpu"], "tpu"),
        (["train", ".", "--device", "cuda:1"], "cuda:1"),
        (["accuracy", "none.csv", "--variant", "base,hr"], "--variant"),
        (["accuracy", "none.csv", "--attention", "all"], "--attention"),
        (["accuracy", "none.csv", "--frames", "0"], "frames"),
        (["accuracy", "none.csv", "--batch", "0"], "batch"),
        (["accuracy", "none.csv", "--workers", "-1"], "workers"),
        (["accuracy", "none.csv", "--rate", "0"], "rate"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], names: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ") and names in lines[0]
    assert "Traceback" not in result.output


def test_the_installed_command_prints_no_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tsfbench", "flops", "--size", "100"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: size: 100 is not a multiple of the patch size 16; use e.g. 96 or 112"
    )


def test_version_and_env() -> None:
    assert runner.invoke(app, ["--version"]).stdout.startswith("tsfbench ")
    info = json.loads(runner.invoke(app, ["env", "--json"]).stdout)
    assert {"python", "torch", "cuda", "gpus", "nvml_driver", "fvcore", "decord"} <= set(info)


def test_synth_then_accuracy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "synth"
    result = runner.invoke(app, ["synth", str(root), "--classes", "2", "--per-class", "2"])
    assert result.exit_code == 0, result.output
    (root / "val.csv").write_text((root / "val.csv").read_text() + "videos/gone.mp4 0\n")
    args = ["accuracy", str(root / "val.csv"), "--frames", "4", "--size", "32", "--classes", "2"]
    args += ["--depth", "1", "--dim", "32", "--heads", "2", "--workers", "0", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["videos"], record["evaluated"], record["skipped"]) == (5, 4, 1)
    assert record["skipped_by_reason"]["missing"] == 1
    assert 0.0 <= record["top1"] <= 100.0


def test_accuracy_bad_input_exits_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["accuracy", str(tmp_path / "none.csv"), "--classes", "2"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_mismatched_checkpoint_exits_2_naming_the_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import torch

    from tsfbench.models.timesformer import TimeSformer

    root = tmp_path / "synth"
    runner.invoke(app, ["synth", str(root), "--classes", "2", "--per-class", "1"])
    other = TimeSformer(frames=4, size=32, num_classes=3, dim=32, depth=1, heads=2)
    torch.save(other.state_dict(), tmp_path / "three_classes.pt")
    args = ["accuracy", str(root / "val.csv"), "--frames", "4", "--size", "32", "--classes", "2"]
    args += ["--depth", "1", "--dim", "32", "--heads", "2", "--workers", "0"]
    result = runner.invoke(app, [*args, "--checkpoint", str(tmp_path / "three_classes.pt")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "head" in lines[0] and "classes" in lines[0]


def test_memory_sweep_json_rows_and_a_bad_limit() -> None:
    args = ["memory-sweep", "--attention", "joint", "--frames", "2", "--size", "32"]
    args += ["--depth", "1", "--dim", "32", "--heads", "2", "--iterations", "1", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["status"] == "ok" and row["latency_median_ms"] > 0 and row["max_ram_bytes"] > 0
    assert "1 configuration in" in result.stderr and "s of overhead" in result.stderr
    bad = runner.invoke(app, ["memory-sweep", "--memory-limit", "lots"])
    assert bad.exit_code == 2 and "--memory-limit" in bad.stderr


def test_memory_sweep_of_a_3d_cnn_needs_no_attention_option() -> None:
    args = ["memory-sweep", "--variant", "x3d_s", "--frames", "4", "--size", "32"]
    result = runner.invoke(app, [*args, "--predict-only", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["model"] == "x3d_s" and row["status"] == "predicted"


@pytest.mark.parametrize("args", [["--height", "0"], ["--width", "-2"]])
def test_synth_refuses_empty_frames(tmp_path, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["synth", str(tmp_path / "s"), *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == result.stderr.strip().splitlines()[0]
    assert "--height/--width" in result.stderr and "positive and even" in result.stderr


@pytest.mark.parametrize("frames", ["1", "2", "7"])
def test_synth_refuses_too_few_frames_to_show_the_motion(tmp_path, frames: str) -> None:  # type: ignore[no-untyped-def]
    """One frame has no motion, and the motion test samples 8 frames a clip: a shorter video
    would only repeat frames. Nothing is written."""
    from tsfbench.config import TrainSettings

    result = runner.invoke(app, ["synth", str(tmp_path / "s"), "--frames", frames])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--frames" in result.stderr and f"at least {TrainSettings().frames}" in result.stderr
    assert not (tmp_path / "s").exists()


def test_synth_into_a_file_names_the_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["synth", str(tmp_path / "file"), "--classes", "2"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: root: cannot create") and "writable" in result.stderr


def test_predict_only_says_what_it_compares_with() -> None:
    """Under a limit it names the largest that fits; with no capacity known it asks for one."""
    import torch

    args = ["memory-sweep", "--frames", "2,4", "--size", "32", "--depth", "1", "--dim", "64"]
    args += ["--heads", "4", "--attention", "divided", "--predict-only"]
    limited = runner.invoke(app, [*args, "--memory-limit", "1GiB"])
    assert limited.exit_code == 0, limited.output
    assert "largest predicted to fit, divided: 4 x 32" in limited.stdout
    assert "ran in its own process" not in limited.stdout  # nothing ran
    if not torch.cuda.is_available():  # a GPU's own memory is the capacity there
        unlimited = runner.invoke(app, args)
        assert unlimited.exit_code == 0, unlimited.output
        assert "give --memory-limit" in unlimited.stdout and "largest" not in unlimited.stdout


def test_the_latency_table_shows_the_median_interval_and_only_contended_rows_say_why() -> None:
    from tsfbench.measure.latency import Latency
    from tsfbench.terminal import render_probes, stdout

    def row(attention: str, contention: str | None) -> dict[str, object]:
        samples = tuple(100.0 * (1 + d / 100) for d in (-3, -2, -1, 0, 0, 0, 0, 1, 2, 3))
        record = {"model": "base", "attention": attention, "frames": 8, "size": 224}
        record |= Latency(samples, stop_reason="max_time").as_record() | {"remeasured": 2}
        return record | {"status": "ok", "contended": bool(contention), "contention": contention}

    busy = "other processes 1.42 cores avg, load 3.1"
    with stdout.capture() as captured:
        render_probes([row("divided", None), row("joint", busy)], False)
    lines = {line.split()[1]: line for line in captured.get().splitlines() if "base" in line}
    assert (
        "100.0 [98.0, 102.0]" in lines["divided"]
        and "10 (max_time, re-timed 2x)" in lines["divided"]
    )
    assert busy not in lines["divided"] and busy in lines["joint"]


def test_memory_sweep_breakdown_rows_sum_to_the_predicted_peak() -> None:
    args = ["memory-sweep", "--attention", "joint", "--frames", "2", "--size", "32"]
    args += ["--depth", "1", "--dim", "32", "--heads", "2", "--predict-only", "--json"]
    (predicted,) = json.loads(runner.invoke(app, args).stdout)
    result = runner.invoke(app, [*args, "--breakdown"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert sum(row["bytes"] for row in rows) == predicted["predicted_peak_bytes"]
    assert {row["predicted_peak_bytes"] for row in rows} == {predicted["predicted_peak_bytes"]}
    assert abs(sum(row["share"] for row in rows) - 1) < 1e-9
    table = runner.invoke(app, [*args[:-1], "--breakdown"])
    assert table.exit_code == 0 and "optimizer_state" in table.stdout
    alone = runner.invoke(app, ["memory-sweep", "--breakdown", "--frames", "2"])
    assert alone.exit_code == 2 and "--predict-only" in alone.stderr
    assert len(alone.stderr.strip().splitlines()) == 1
