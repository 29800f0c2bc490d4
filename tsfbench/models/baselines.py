"""The 3D CNN baselines (paper Table 2 and their neighbours), behind the same registry.

Two families, one builder each, random weights only (nothing is downloaded; a released checkpoint
loads through `load_checkpoint` like a TimeSformer one, as the state-dict keys are unchanged):

- `pytorchvideo`: the PySlowFast models as `pytorchvideo.models.hub` builds them (Slow, SlowFast,
  I3D, R(2+1)D, CSN, X3D). Test input: PySlowFast's, 10 temporal clips x 3 spatial crops of
  TEST_CROP_SIZE (256; X3D its own), the test protocol of Table 2.
- `torchvision`: `torchvision.models.video` (R3D, MC3, R(2+1)D-18, S3D). Test input: what the
  weights' `meta` was measured with (16 frames at 15 fps, a 112 crop, 5 clips; S3D 128 frames
  at 224, 1 clip); their `_ops` are multiply-adds at 16 frames, a cross-check of our counts.

Three adaptations, so that every path (flops, latency, memory, accuracy) still feeds one
(B, 3, T, H, W) clip and gets logits:

- SlowFast takes a [slow, fast] pair. `SlowFastClip` takes the fast clip (T frames) and picks the
  slow one from it as PySlowFast's loader does (T / alpha evenly spaced frames: indexing, no
  FLOPs), so `frames` is the clip length the model sees (32 for SlowFast 8x8).
- Heads end in an average pool with a kernel fixed for the default clip. `HeadPool` sizes it from
  the input, as PySlowFast sizes it from the config: whole clip in time, the training crop's
  window (7 x 7 at 224) in space with stride 1. A 256 test crop (an 8 x 8 map) then gives 2 x 2
  positions the head averages, PySlowFast's fully convolutional test; another clip length or a
  crop below 224 still runs, where the fixed kernel fails.
- The pytorchvideo heads end in a softmax (`head_activation`); it is dropped, so the model
  returns logits as every other model here: training takes cross-entropy of logits, and
  `evaluate` applies the softmax it averages over views.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tsfbench.models.registry import SLOWFAST_ALPHA, get_preset

if TYPE_CHECKING:
    from tsfbench.config import RunConfig


class HeadPool(nn.Module):
    """The head's average pool, its window sized from the input (stride 1).

    `kernel` is (time, height, width); None in time means the whole clip (PySlowFast's
    NUM_FRAMES-derived kernel), and each side is clamped to the feature map, so a short clip or a
    small crop runs. Parameter-free: a checkpoint's keys do not change.
    """

    def __init__(self, kernel: Sequence[int | None]) -> None:
        super().__init__()
        self.kernel = tuple(None if k is None else int(k) for k in kernel)

    def forward(self, x: Tensor) -> Tensor:
        sides = zip(self.kernel, x.shape[2:], strict=True)
        window = [n if k is None else min(k, n) for k, n in sides]
        return F.avg_pool3d(x, window, stride=1)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}"


def fit_head_pools(model: nn.Module, whole_clip: bool) -> nn.Module:
    """Replace each fixed `AvgPool3d` (in these models, only the head pools) with a `HeadPool`."""
    for name, module in list(model.named_modules()):
        if type(module) is nn.AvgPool3d:
            size = module.kernel_size
            time, height, width = size if isinstance(size, tuple) else (size,) * 3
            parent, _, attribute = name.rpartition(".")
            pool = HeadPool((None if whole_clip else time, height, width))
            setattr(model.get_submodule(parent), attribute, pool)
    return model


class SlowFastClip(nn.Module):
    """A pytorchvideo SlowFast fed one clip: the fast pathway's T frames, the slow one's T / alpha.

    The slow frames are T / alpha evenly spaced ones, first and last included (PySlowFast's
    `pack_pathway_output`, the input its checkpoints were tested with). The blocks are the
    network's own, so state-dict keys match a pytorchvideo checkpoint.
    """

    def __init__(self, net: nn.Module, alpha: int = SLOWFAST_ALPHA) -> None:
        super().__init__()
        self.alpha = alpha
        self.blocks = net.blocks

    def forward(self, clip: Tensor) -> Tensor:
        frames = clip.shape[2]
        index = torch.linspace(0, frames - 1, frames // self.alpha, device=clip.device).long()
        x: Tensor | list[Tensor] = [clip.index_select(2, index), clip]
        for block in self.blocks:
            x = block(x)
        assert isinstance(x, Tensor)
        return x


def build_pytorchvideo(config: RunConfig) -> nn.Module:
    """`pytorchvideo.models.hub.<name>(pretrained=False)` returning logits, on any clip."""
    with warnings.catch_warnings():  # pytorchvideo's import uses the deprecated torch.jit.script
        warnings.simplefilter("ignore", FutureWarning)
        from pytorchvideo.models import hub

    net = getattr(hub, config.model)(
        pretrained=False, model_num_class=config.classes, head_activation=None
    )
    fit_head_pools(net, whole_clip=True)
    if config.model.startswith("slowfast"):
        return SlowFastClip(net, get_preset(config.model).frame_multiple)
    return net


def build_torchvision(config: RunConfig) -> nn.Module:
    """`torchvision.models.video.<name>(weights=None)`; S3D's fixed head pool made to fit."""
    from torchvision.models import video

    model = getattr(video, config.model)(weights=None, num_classes=config.classes)
    return fit_head_pools(model, whole_clip=False)
