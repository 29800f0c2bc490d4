"""Build the model of a `RunConfig`: one call for every family, so that `flops`, `latency`,
`memory` and `accuracy` reach every preset of `registry.py` the same way."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tsfbench.config import RunConfig, timesformer_only
from tsfbench.models.baselines import build_pytorchvideo, build_torchvision
from tsfbench.models.registry import get_preset
from tsfbench.models.timesformer import TimeSformer


def build_timesformer(config: RunConfig, **overrides: object) -> nn.Module:
    """A TimeSformer for `config`; `overrides` (depth, dim, heads, ...) make tiny test models."""
    kwargs: dict[str, object] = {
        "attention": config.attention,
        "frames": config.frames,
        "size": config.size,
        "pos_embed": config.pos_embed,
        "num_classes": config.classes,
    }
    return TimeSformer(**{**kwargs, **overrides})


BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "timesformer": build_timesformer,
    "pytorchvideo": build_pytorchvideo,
    "torchvision": build_torchvision,
}
# Families whose models' `reset_parameters()` sets every parameter: they are built on the meta
# device, given storage and initialised once, which skips the default init of each layer that
# the model's own init overwrites (a ViT-Base on a CPU: 2.4 s -> 0.9 s of CPU time).
RESETTABLE = {"timesformer"}


def build_model(
    config: RunConfig, device: torch.device | str | None = None, **overrides: object
) -> nn.Module:
    """Build the model of `config` on `device` (`"meta"` allocates nothing), in eval mode."""
    family = get_preset(config.model).family
    if overrides:  # callers check first (`config.check_overrides`); a library call may not
        timesformer_only(", ".join(overrides), [config], "use frames / size for a smaller run")
    device = torch.device(device or "cpu")
    if family in RESETTABLE and device.type != "meta":
        with torch.device("meta"):
            model = BUILDERS[family](config, **overrides)
        model = model.to_empty(device=device)
        model.reset_parameters()
        return model.eval()
    with device:
        model = BUILDERS[family](config, **overrides)
    return model.eval()


def example_input(
    config: RunConfig, batch: int = 1, device: torch.device | str | None = None
) -> torch.Tensor:
    """A (B, 3, F, H, W) clip of the configuration's shape (every model takes one clip)."""
    return torch.randn(batch, 3, config.frames, config.size, config.size, device=device)
