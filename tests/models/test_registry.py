"""Building a model: through the meta device, with the same initialisation as its constructor."""

from __future__ import annotations

import pytest
import torch

from tsfbench.config import RunConfig
from tsfbench.models.build import build_model
from tsfbench.models.registry import ATTENTIONS
from tsfbench.models.timesformer import TimeSformer, trunc_normal_

WIDE = {"dim": 128, "depth": 2, "heads": 4}  # Linears of 16k-65k weights: stable statistics


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_a_built_model_is_initialised_like_its_constructor(attention: str) -> None:
    """Every parameter: zeros, ones and the zeroed extra-step Linears where the constructor
    puts them, and the same spread for the random ones (trunc normal .02, Conv2d's default)."""
    config = RunConfig(attention=attention, frames=2, size=32)
    torch.manual_seed(0)
    built = dict(build_model(config, **WIDE).named_parameters())
    torch.manual_seed(1)
    reference = dict(TimeSformer(attention=attention, frames=2, size=32, **WIDE).named_parameters())
    assert built.keys() == reference.keys()
    for name, value in built.items():
        expected = reference[name]
        assert value.shape == expected.shape, name
        assert torch.isfinite(value).all(), name
        if expected.std() == 0:  # a constant: zeros or ones
            assert torch.equal(value, expected), name
        else:
            assert not torch.equal(value, expected), name  # drawn, not copied
            assert value.std().item() == pytest.approx(expected.std().item(), rel=0.15), name
            assert value.abs().max() <= 2.0, name


def test_the_fast_truncated_normal_draws_torchs_distribution() -> None:
    torch.manual_seed(0)
    ours = trunc_normal_(torch.empty(1_000_000), std=0.02)
    theirs = torch.nn.init.trunc_normal_(torch.empty(1_000_000), std=0.02)
    for stat in (torch.mean, torch.std):
        assert stat(ours).item() == pytest.approx(stat(theirs).item(), rel=0.01, abs=1e-4)
    quantiles = torch.tensor([0.01, 0.1, 0.5, 0.9, 0.99])
    assert torch.allclose(ours.quantile(quantiles), theirs.quantile(quantiles), atol=5e-4)
    # Bounds close enough to cut: torch's own sampler, inside them
    tight = trunc_normal_(torch.empty(100_000), std=1.0, bound=0.5)
    assert tight.abs().max() <= 0.5 and tight.std() > 0.25


def test_building_on_the_meta_device_fills_nothing() -> None:
    model = build_model(RunConfig(frames=2, size=32), "meta", **WIDE)
    assert all(p.is_meta for p in model.parameters())
