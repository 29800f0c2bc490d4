"""Probe settings are validated at the edge, with messages naming the parameter."""

from __future__ import annotations

import pytest
import torch

from tsfbench.config import ConfigError, ProbeSettings, RunConfig, parse_memory
from tsfbench.measure.energy import EnergyTracker
from tsfbench.measure.workload import build_workload


@pytest.mark.parametrize(
    ("text", "expected"),
    [("32GiB", 32 * 2**30), ("512MiB", 512 * 2**20), ("2GB", 2 * 10**9), ("1.5g", 3 * 2**29),
     ("4096", 4096)],
)  # fmt: skip
def test_memory_sizes_parse(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "-1GiB", "12XB", "0MiB"])
def test_bad_memory_sizes_name_the_parameter(text: str) -> None:
    with pytest.raises(ConfigError, match="memory_limit"):
        parse_memory(text)


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [("mode", "eval", "infer, train"), ("dtype", "fp8", "fp32, fp16, bf16"),
     ("backend", "xformers", "sdpa, math, flash, efficient")],
)  # fmt: skip
def test_bad_settings_name_the_accepted_values(field: str, value: str, accepted: str) -> None:
    with pytest.raises(ConfigError, match=f"{field}: .*accepted: {accepted}"):
        ProbeSettings(**{field: value})


def test_batch_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="batch"):
        ProbeSettings(batch=0)


def test_step_counts_are_integers_or_auto_and_the_cli_text_is_read_as_either() -> None:
    settings = ProbeSettings(iterations="auto", warmup="auto", target_ci=0.05, max_time=3)
    assert (settings.iterations, settings.warmup) == ("auto", "auto")
    assert ProbeSettings(iterations="12", warmup="0").iterations == 12  # as the CLI passes it
    for bad in ("0", "-3", "1.5", "many", True):
        with pytest.raises(ConfigError, match=r"iterations: .* or auto"):
            ProbeSettings(iterations=bad)


def test_compile_needs_a_warmup_step_to_compile_in() -> None:
    with pytest.raises(ConfigError, match=r"warmup: 0 with compile .* give warmup 1 or more"):
        ProbeSettings(compile=True, warmup=0)
    assert ProbeSettings(compile=True, warmup=1).compile
    assert ProbeSettings(warmup=0).warmup == 0  # eager steps need none


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU path")
def test_without_a_gpu_auto_is_cpu_and_cuda_is_refused() -> None:
    assert ProbeSettings().target == "cpu"
    with pytest.raises(ConfigError, match="device"):
        ProbeSettings(device="cuda")


def test_energy_is_none_on_cpu() -> None:
    tracker = EnergyTracker("cpu")
    with tracker.track(clips=4):
        pass
    assert tracker.energy.as_record() == {
        "energy_j": None,
        "energy_j_per_clip": None,
        "power_w": None,
    }


def test_checkpointing_is_a_train_setting_for_transformers_only() -> None:
    with pytest.raises(ConfigError, match=r"checkpointing: .* mode train"):
        ProbeSettings(checkpointing=True)
    settings = ProbeSettings(mode="train", checkpointing=True, device="cpu")
    assert settings.as_dict()["checkpointing"] is True  # stored with every result
    cnn = RunConfig(model="x3d_s", frames=4, size=64)
    with pytest.raises(ConfigError, match="checkpointing: TimeSformer models only"):
        build_workload(cnn, settings, "cpu")
