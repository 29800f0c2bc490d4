"""The measured step: what runs inside it, and what its record says about it."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.sweep import measure
from tsfbench.measure.workload import SCALER_NOTE, build_workload

CPU_KERNELS = ["sdpa", "math", "flash"]  # `efficient` has no CPU kernel


def trained(settings: ProbeSettings, tiny: dict[str, object]) -> dict[str, torch.Tensor]:
    """The weights after one step from a fixed start (same seed: model, clip and labels)."""
    torch.manual_seed(0)
    config = RunConfig(attention="divided", frames=2, size=32)
    work = build_workload(config, settings, "cpu", tiny)
    work.step()
    return {name: p.detach().clone() for name, p in work.model.named_parameters()}


@pytest.mark.parametrize("backend", CPU_KERNELS)
def test_checkpointing_with_a_forced_kernel_gives_the_same_step(
    backend: str, tiny: dict[str, object]
) -> None:
    """The recomputed forward uses the forced kernel too: no CheckpointError, same update."""
    plain = trained(ProbeSettings(mode="train", backend=backend, device="cpu"), tiny)
    settings = ProbeSettings(mode="train", backend=backend, checkpointing=True, device="cpu")
    checkpointed = trained(settings, tiny)
    assert plain.keys() == checkpointed.keys()
    for name, value in plain.items():
        torch.testing.assert_close(checkpointed[name], value, msg=name)


def test_fp16_training_notes_the_gradient_scalers_sync_in_its_record(
    tiny: dict[str, object],
) -> None:
    config = RunConfig(attention="divided", frames=2, size=32)
    fp16 = ProbeSettings(mode="train", dtype="fp16", iterations=1, warmup=0, device="cpu")
    assert build_workload(config, fp16, "cpu", tiny).notes == (SCALER_NOTE,)
    for quiet in (replace(fp16, dtype="bf16"), replace(fp16, mode="infer")):
        assert build_workload(config, quiet, "cpu", tiny).notes == ()
    noted = measure(config, fp16, overrides=tiny, isolate=False)
    plain = measure(config, replace(fp16, dtype="fp32"), overrides=tiny, isolate=False)
    assert noted["status"] == plain["status"] == "ok", (noted["error"], plain["error"])
    assert (noted["notes"], plain["notes"]) == (SCALER_NOTE, None)
