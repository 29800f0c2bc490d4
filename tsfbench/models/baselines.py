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

from tsfbench.models.registry import BUILDERS, NOT_APPLICABLE, Preset, get_preset, register

if TYPE_CHECKING:
    from tsfbench.config import RunConfig

SLOWFAST_ALPHA = 4  # fast / slow frame-rate ratio of every SlowFast here
# torchvision's video transforms (resize 128 x 171, crop 112): Kinetics per-channel statistics
TORCHVISION_MEAN = (0.43216, 0.394666, 0.37645)
TORCHVISION_STD = (0.22803, 0.22145, 0.216989)


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


def _no_overrides(config: RunConfig, overrides: dict[str, object]) -> None:
    if overrides:
        from tsfbench.config import ConfigError

        raise ConfigError(
            f"{', '.join(overrides)}: size overrides apply to TimeSformer models only; "
            f"{config.model} is a 3D CNN (use frames / size for a smaller run)"
        )


def build_pytorchvideo(config: RunConfig, **overrides: object) -> nn.Module:
    """`pytorchvideo.models.hub.<name>(pretrained=False)` returning logits, on any clip."""
    _no_overrides(config, overrides)
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


def build_torchvision(config: RunConfig, **overrides: object) -> nn.Module:
    """`torchvision.models.video.<name>(weights=None)`; S3D's fixed head pool made to fit."""
    _no_overrides(config, overrides)
    from torchvision.models import video

    model = getattr(video, config.model)(weights=None, num_classes=config.classes)
    return fit_head_pools(model, whole_clip=False)


BUILDERS["pytorchvideo"] = build_pytorchvideo
BUILDERS["torchvision"] = build_torchvision


def _cnn(
    name: str,
    description: str,
    family: str,
    frames: int,
    size: int,
    rate: int,
    clips: int,
    crops: int,
    *,
    frame_multiple: int = 1,
    min_frames: int = 1,
    min_size: int = 1,
    torchvision_stats: bool = False,
) -> None:
    register(
        Preset(
            name, description, family, frames, size, rate, clips, crops,
            attention=NOT_APPLICABLE, frame_multiple=frame_multiple, min_frames=min_frames,
            min_size=min_size, mean=TORCHVISION_MEAN if torchvision_stats else None,
            std=TORCHVISION_STD if torchvision_stats else None,
        )
    )  # fmt: skip


# pytorchvideo: frames x rate as in its model zoo; 30 views; size = PySlowFast's TEST_CROP_SIZE
# (256 for the R50/R101 models, trained at 224; paper Table 2 compares at these inputs).
# SlowFast 8x8: slow 8 frames every 8 = fast 32 frames every 2 (alpha 4), so frames = 32.
_cnn(
    "slowfast_r50",
    "SlowFast 8x8 R50: slow 8 / fast 32 x 256 (Table 2)",
    "pytorchvideo",
    32,
    256,
    2,
    10,
    3,
    frame_multiple=SLOWFAST_ALPHA,
    min_frames=SLOWFAST_ALPHA,
)
# SlowFast 16x8 R101+R50: slow 16 frames every 8 = fast 64 every 2
_cnn(
    "slowfast_16x8_r101_50_50",
    "SlowFast 16x8 R101-50-50: slow 16 / fast 64 x 256",
    "pytorchvideo",
    64,
    256,
    2,
    10,
    3,
    frame_multiple=SLOWFAST_ALPHA,
    min_frames=SLOWFAST_ALPHA,
)
_cnn("slow_r50", "Slow 8x8 R50: 8 x 256, sampling 1/8", "pytorchvideo", 8, 256, 8, 10, 3)
# I3D's stage-1 max pool halves time with a kernel of 2, so 2 frames at least
_cnn(
    "i3d_r50",
    "I3D 8x8 R50: 8 x 256, sampling 1/8 (Table 2)",
    "pytorchvideo",
    8,
    256,
    8,
    10,
    3,
    min_frames=2,
)
_cnn("r2plus1d_r50", "R(2+1)D 16x4 R50: 16 x 256, sampling 1/4", "pytorchvideo", 16, 256, 4, 10, 3)
_cnn("csn_r101", "CSN 32x2 R101: 32 x 256, sampling 1/2", "pytorchvideo", 32, 256, 2, 10, 3)
# X3D: PySlowFast's X3D configs test at their own crops (S 182, M 256, L 356; trained at 160,
# 224, 312), as does pytorchvideo's X3D hub example.
_cnn("x3d_s", "X3D-S: 13 x 182, sampling 1/6", "pytorchvideo", 13, 182, 6, 10, 3)
_cnn("x3d_m", "X3D-M: 16 x 256, sampling 1/5", "pytorchvideo", 16, 256, 5, 10, 3)
_cnn("x3d_l", "X3D-L: 16 x 356, sampling 1/5", "pytorchvideo", 16, 356, 5, 10, 3)

# torchvision: the weights' meta (`_docs`): 16-frame clips at 15 fps (every 2nd frame of 30 fps
# Kinetics), 5 clips a video, a 112 centre crop (transforms: resize 128 x 171, crop 112).
_cnn(
    "r3d_18",
    "R3D-18 (torchvision): 16 x 112, sampling 1/2, 5 clips",
    "torchvision",
    16,
    112,
    2,
    5,
    1,
    torchvision_stats=True,
)
_cnn(
    "mc3_18",
    "MC3-18 (torchvision): 16 x 112, sampling 1/2, 5 clips",
    "torchvision",
    16,
    112,
    2,
    5,
    1,
    torchvision_stats=True,
)
_cnn(
    "r2plus1d_18",
    "R(2+1)D-18 (torchvision): 16 x 112, sampling 1/2, 5 clips",
    "torchvision",
    16,
    112,
    2,
    5,
    1,
    torchvision_stats=True,
)
# S3D: meta `_docs`: one 128-frame clip at 15 fps; transforms: resize 256, crop 224. Its last
# max pool (2 x 2 x 2, no padding) needs 2 positions after 4x in time and 16x in space.
_cnn(
    "s3d",
    "S3D (torchvision): 128 x 224, sampling 1/2, 1 clip",
    "torchvision",
    128,
    224,
    2,
    1,
    1,
    min_frames=5,
    min_size=17,
    torchvision_stats=True,
)
