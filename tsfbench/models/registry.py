"""Every model tsfbench knows, as data: presets (paper Sec. 4.2, Table 2) and the vocabulary of
the TimeSformer's options (attention schemes, positional tables).

A leaf: it imports neither torch nor any other tsfbench module, so option parsing, suites and
reports know the models without loading torch. `models/build.py` turns a preset into a module.
"""

from __future__ import annotations

from dataclasses import dataclass

NOT_APPLICABLE = "-"  # `attention` / `pos_embed` of a model without attention (the 3D CNNs)
ATTENTIONS = ("space", "joint", "divided", "local_global", "axial")
POS_EMBEDS = ("none", "space", "space_time")
# The TimeSformer's size (ViT-Base); `depth`, `dim`, `heads` overrides give tiny CPU models.
TIMESFORMER_SIZE = {"depth": 12, "dim": 768, "heads": 12}
SLOWFAST_ALPHA = 4  # fast / slow frame-rate ratio of every SlowFast here
# torchvision's video weights are normalised with Kinetics' per-channel statistics
TORCHVISION_MEAN = (0.43216, 0.394666, 0.37645)
TORCHVISION_STD = (0.22803, 0.22145, 0.216989)


def default_pos_embed(attention: str) -> str:
    """The released code gives `space` no temporal table and the other schemes both tables;
    a model without attention has no table at all."""
    if attention == NOT_APPLICABLE:
        return NOT_APPLICABLE
    return "space" if attention == "space" else "space_time"


@dataclass(frozen=True)
class Preset:
    """A named model with its paper input and test protocol."""

    name: str
    description: str
    family: str  # how it is built: "timesformer", "pytorchvideo" or "torchvision"
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


def _timesformer(name: str, description: str, frames: int, size: int, rate: int) -> Preset:
    """The three variants: 1 temporal clip x 3 spatial crops at test (paper Sec. 4.2)."""
    return Preset(
        name=name,
        description=description,
        family="timesformer",
        frames=frames,
        size=size,
        sampling_rate=rate,
        temporal_clips=1,
        spatial_crops=3,
    )


def _pytorchvideo(name: str, description: str, **protocol: int) -> Preset:
    """PySlowFast's test protocol: 10 temporal clips x 3 spatial crops."""
    return Preset(
        name=name,
        description=description,
        family="pytorchvideo",
        temporal_clips=10,
        spatial_crops=3,
        attention=NOT_APPLICABLE,
        **protocol,  # type: ignore[arg-type]
    )


def _torchvision(name: str, description: str, **protocol: int) -> Preset:
    """The weights' `meta`: a 112 centre crop (resize 128 x 171), single crop, Kinetics stats."""
    return Preset(
        name=name,
        description=description,
        family="torchvision",
        spatial_crops=1,
        attention=NOT_APPLICABLE,
        mean=TORCHVISION_MEAN,
        std=TORCHVISION_STD,
        **protocol,  # type: ignore[arg-type]
    )


_ALL = (
    _timesformer("base", "TimeSformer, 8 x 224, sampling 1/32", frames=8, size=224, rate=32),
    _timesformer("hr", "TimeSformer-HR, 16 x 448, sampling 1/16", frames=16, size=448, rate=16),
    _timesformer("l", "TimeSformer-L, 96 x 224, sampling 1/4", frames=96, size=224, rate=4),
    # pytorchvideo: frames x rate as in its model zoo; size = PySlowFast's TEST_CROP_SIZE (256
    # for the R50/R101 models, trained at 224; paper Table 2 compares at these inputs).
    # SlowFast 8x8: slow 8 frames every 8 = fast 32 frames every 2 (alpha 4), so frames = 32.
    _pytorchvideo(
        "slowfast_r50",
        "SlowFast 8x8 R50: slow 8 / fast 32 x 256 (Table 2)",
        frames=32,
        size=256,
        sampling_rate=2,
        frame_multiple=SLOWFAST_ALPHA,
        min_frames=SLOWFAST_ALPHA,
    ),
    # SlowFast 16x8 R101+R50: slow 16 frames every 8 = fast 64 every 2
    _pytorchvideo(
        "slowfast_16x8_r101_50_50",
        "SlowFast 16x8 R101-50-50: slow 16 / fast 64 x 256",
        frames=64,
        size=256,
        sampling_rate=2,
        frame_multiple=SLOWFAST_ALPHA,
        min_frames=SLOWFAST_ALPHA,
    ),
    _pytorchvideo(
        "slow_r50", "Slow 8x8 R50: 8 x 256, sampling 1/8", frames=8, size=256, sampling_rate=8
    ),
    # I3D's stage-1 max pool halves time with a kernel of 2, so 2 frames at least
    _pytorchvideo(
        "i3d_r50",
        "I3D 8x8 R50: 8 x 256, sampling 1/8 (Table 2)",
        frames=8,
        size=256,
        sampling_rate=8,
        min_frames=2,
    ),
    _pytorchvideo(
        "r2plus1d_r50",
        "R(2+1)D 16x4 R50: 16 x 256, sampling 1/4",
        frames=16,
        size=256,
        sampling_rate=4,
    ),
    _pytorchvideo(
        "csn_r101", "CSN 32x2 R101: 32 x 256, sampling 1/2", frames=32, size=256, sampling_rate=2
    ),
    # X3D: PySlowFast's X3D configs test at their own crops (S 182, M 256, L 356; trained at
    # 160, 224, 312), as does pytorchvideo's X3D hub example.
    _pytorchvideo("x3d_s", "X3D-S: 13 x 182, sampling 1/6", frames=13, size=182, sampling_rate=6),
    _pytorchvideo("x3d_m", "X3D-M: 16 x 256, sampling 1/5", frames=16, size=256, sampling_rate=5),
    _pytorchvideo("x3d_l", "X3D-L: 16 x 356, sampling 1/5", frames=16, size=356, sampling_rate=5),
    # torchvision: the weights' meta (`_docs`): 16-frame clips at 15 fps (every 2nd frame of
    # 30 fps Kinetics), 5 clips a video, a 112 centre crop.
    _torchvision(
        "r3d_18",
        "R3D-18 (torchvision): 16 x 112, sampling 1/2, 5 clips",
        frames=16,
        size=112,
        sampling_rate=2,
        temporal_clips=5,
    ),
    _torchvision(
        "mc3_18",
        "MC3-18 (torchvision): 16 x 112, sampling 1/2, 5 clips",
        frames=16,
        size=112,
        sampling_rate=2,
        temporal_clips=5,
    ),
    _torchvision(
        "r2plus1d_18",
        "R(2+1)D-18 (torchvision): 16 x 112, sampling 1/2, 5 clips",
        frames=16,
        size=112,
        sampling_rate=2,
        temporal_clips=5,
    ),
    # S3D: meta `_docs`: one 128-frame clip at 15 fps; resize 256, crop 224. Its last max pool
    # (2 x 2 x 2, no padding) needs 2 positions after 4x in time and 16x in space.
    _torchvision(
        "s3d",
        "S3D (torchvision): 128 x 224, sampling 1/2, 1 clip",
        frames=128,
        size=224,
        sampling_rate=2,
        temporal_clips=1,
        min_frames=5,
        min_size=17,
    ),
)
PRESETS: dict[str, Preset] = {preset.name: preset for preset in _ALL}
TIMESFORMER = tuple(name for name, preset in PRESETS.items() if preset.family == "timesformer")


def get_preset(name: str) -> Preset:
    return PRESETS[name]
