"""Named model presets (paper Sec. 4.2) and how to build a model from a `RunConfig`.

Every model family registers its presets and one builder here: TimeSformer below, the 3D CNN
baselines in `baselines.py` (imported at the end of this module, so `PRESETS` always lists every
model), so that `flops`, `latency`, `memory` and `accuracy` reach every model through the same
two calls, `build_model` and `example_input`.
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

NOT_APPLICABLE = "-"  # `attention` / `pos_embed` of a model without attention (the 3D CNNs)


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
    attention: str = "divided"  # NOT_APPLICABLE for a model without attention
    num_classes: int = 400
    # Inputs a convolutional model accepts (a TimeSformer takes any frames, size % patch == 0):
    frame_multiple: int = 1  # SlowFast: alpha, the fast / slow frame ratio
    min_frames: int = 1
    min_size: int = 1
    # Normalisation of the test views; None keeps PySlowFast's (0.45, 0.225) in every channel
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    @property
    def views(self) -> int:
        return self.temporal_clips * self.spatial_crops

    @property
    def has_attention(self) -> bool:
        """False for the 3D CNNs: their configs carry no attention scheme or positional table."""
        return self.attention != NOT_APPLICABLE


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
# Families whose models' `reset_parameters()` sets every parameter: they are built on the meta
# device, given storage and initialised once, which skips the default init of each layer that
# the model's own init overwrites (a ViT-Base on a CPU: 2.4 s -> 0.9 s of CPU time).
RESETTABLE = {"timesformer"}


def register(preset: Preset) -> None:
    PRESETS[preset.name] = preset


def get_preset(name: str) -> Preset:
    return PRESETS[name]


def build_model(
    config: RunConfig, device: torch.device | str | None = None, **overrides: object
) -> nn.Module:
    """Build the model of `config` on `device` (`"meta"` allocates nothing), in eval mode."""
    family = get_preset(config.model).family
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


register(Preset("base", "TimeSformer, 8 x 224, sampling 1/32", "timesformer", 8, 224, 32, 1, 3))
register(Preset("hr", "TimeSformer-HR, 16 x 448, sampling 1/16", "timesformer", 16, 448, 16, 1, 3))
register(Preset("l", "TimeSformer-L, 96 x 224, sampling 1/4", "timesformer", 96, 224, 4, 1, 3))

# The 3D CNN baselines register themselves; imported last, as they use `Preset` and `register`.
from tsfbench.models import baselines  # noqa: E402, F401
