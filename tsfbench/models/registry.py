"""Named model presets (paper Sec. 4.2) and how to build a model from a `RunConfig`.

Later model families (the 3D CNN baselines) register their presets and a builder here, so that
`flops`, `latency`, `memory` and `accuracy` reach every model through the same two calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from tsfbench.models.timesformer import TimeSformer

if TYPE_CHECKING:
    from tsfbench.config import RunConfig


@dataclass(frozen=True)
class Preset:
    """A named model with its paper input and test protocol."""

    name: str
    description: str
    family: str
    frames: int
    size: int
    sampling_rate: int  # sample one frame every `sampling_rate` frames
    temporal_clips: int
    spatial_crops: int
    attention: str = "divided"
    num_classes: int = 400

    @property
    def views(self) -> int:
        return self.temporal_clips * self.spatial_crops


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


PRESETS: dict[str, Preset] = {}
BUILDERS: dict[str, Callable[..., nn.Module]] = {"timesformer": build_timesformer}


def register(preset: Preset) -> None:
    PRESETS[preset.name] = preset


def get_preset(name: str) -> Preset:
    return PRESETS[name]


def build_model(
    config: RunConfig, device: torch.device | str | None = None, **overrides: object
) -> nn.Module:
    """Build the model of `config` on `device` (`"meta"` allocates nothing), in eval mode."""
    builder = BUILDERS[get_preset(config.model).family]
    with torch.device(device or "cpu"):
        model = builder(config, **overrides)
    return model.eval()


def example_input(
    config: RunConfig, batch: int = 1, device: torch.device | str | None = None
) -> torch.Tensor:
    """A (B, 3, F, H, W) clip of the configuration's shape."""
    return torch.randn(batch, 3, config.frames, config.size, config.size, device=device)


register(Preset("base", "TimeSformer, 8 x 224, sampling 1/32", "timesformer", 8, 224, 32, 1, 3))
register(Preset("hr", "TimeSformer-HR, 16 x 448, sampling 1/16", "timesformer", 16, 448, 16, 1, 3))
register(Preset("l", "TimeSformer-L, 96 x 224, sampling 1/4", "timesformer", 96, 224, 4, 1, 3))
