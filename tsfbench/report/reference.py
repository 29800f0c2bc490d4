"""The paper's reference numbers (`shared/paper/NUMBERS.md`), as data a measured row can find.

Source: Bertasius, Wang, Torresani, "Is Space-Time Attention All You Need for Video
Understanding?", ICML 2021 (arXiv:2102.05095v4): Table 1 (schemes), Sec. 4.2 (variants),
Sec. 4.4 (positional embeddings), Table 2 (3D CNNs), Figure 3 (cost and memory limits), and the
released checkpoints. Costs are multiply-adds: GFLOPs of one view; TFLOPs = views x GFLOPs.

A TimeSformer's cost depends on (attention, frames, size, pos_embed), not on the preset's name:
`base` at 96 frames is `l`. So every TimeSformer preset looks up the same entries, while a
3D CNN is found by its own name at its paper input (its registry preset).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tsfbench.config import GIB
from tsfbench.models.registry import (
    NOT_APPLICABLE,
    PRESETS,
    TIMESFORMER,
    default_pos_embed,
)

PAPER = "Bertasius et al., ICML 2021 (arXiv:2102.05095v4)"
SCHEME_NAMES = {
    "space": "Space (S)",
    "joint": "Joint Space-Time (ST)",
    "divided": "Divided Space-Time (T+S)",
    "local_global": "Sparse Local-Global (L+G)",
    "axial": "Axial (T+W+H)",
}
# A declared dataset (`data.datasets.DATASETS`) -> the paper's name for it and its classes.
# Declared, never inferred from a file format: any videos can sit in a Kinetics-style CSV.
PAPER_DATASETS = {
    "k400": ("K400", 400),
    "k600": ("K600", 600),
    "ssv2": ("SSv2", 174),
    "diving48": ("Diving-48", 48),
}

Key = tuple[str, str, int, int, str]


def reference_key(
    model: str, attention: str, frames: int, size: int, pos_embed: str | None = None
) -> Key:
    """The lookup key of a configuration: TimeSformer presets share one architecture."""
    arch = "timesformer" if model in TIMESFORMER else model
    return (arch, attention, int(frames), int(size), pos_embed or default_pos_embed(attention))


@dataclass(frozen=True)
class Reference:
    """One configuration the paper reports; None / absent where it gives no number."""

    name: str  # as the paper names it
    model: str
    attention: str
    frames: int
    size: int
    pos_embed: str = ""  # "" = the scheme's default
    views: int | None = None  # test views behind `tflops`
    params_m: float | None = None
    gflops_per_view: float | None = None
    tflops: float | None = None
    top1: Mapping[str, float] = field(default_factory=dict)  # dataset -> paper top-1 (%)
    top5: Mapping[str, float] = field(default_factory=dict)
    released_top1: Mapping[str, float] = field(default_factory=dict)  # the model zoo's
    released_top5: Mapping[str, float] = field(default_factory=dict)
    train_gpu_hours: float | None = None  # V100 hours, Table 2
    note: str = ""

    @property
    def key(self) -> Key:
        return reference_key(self.model, self.attention, self.frames, self.size, self.pos_embed)


def _scheme(attention: str, params_m: float, k400: float, ssv2: float, note: str = "") -> Reference:
    """A Table 1 row: 8 x 224, K400 / SSv2 top-1."""
    name = SCHEME_NAMES[attention]
    top1 = {"K400": k400, "SSv2": ssv2}
    return Reference(name, "base", attention, 8, 224, params_m=params_m, top1=top1, note=note)


REFERENCES: tuple[Reference, ...] = (
    # Table 1: the five schemes at 8 x 224 (the divided row is TimeSformer itself, below)
    _scheme("space", 85.9, 76.9, 36.6),
    _scheme("joint", 85.9, 77.4, 58.5),
    _scheme("local_global", 121.4, 72.2, 56.3, note="K400 72.2 is marked (verify) in NUMBERS.md"),
    _scheme("axial", 156.8, 73.5, 56.2),
    # Sec. 4.2 variants, Table 2 and the headline accuracy (divided, space-time embedding)
    Reference(
        "TimeSformer",
        "base",
        "divided",
        8,
        224,
        views=3,
        params_m=121.4,
        gflops_per_view=196.7,
        tflops=0.59,
        top1={"K400": 78.0, "SSv2": 59.5, "Diving-48": 75.0, "K400 (ImageNet-1K pretrain)": 75.8},
        top5={"K400": 93.7},
        released_top1={"K400": 77.9, "K600": 79.1, "SSv2": 59.1},
        released_top5={"K400": 93.2, "K600": 94.4, "SSv2": 85.6},
        train_gpu_hours=416,
    ),
    Reference(
        "TimeSformer-HR",
        "hr",
        "divided",
        16,
        448,
        views=3,
        params_m=121.4,
        gflops_per_view=1703,
        tflops=5.11,
        top1={"K400": 79.7, "Diving-48": 78.0},
        top5={"K400": 94.4},
        released_top1={"K400": 79.6, "K600": 81.8, "SSv2": 61.8},
        released_top5={"K400": 94.0, "K600": 95.8, "SSv2": 86.9},
    ),
    Reference(
        "TimeSformer-L",
        "l",
        "divided",
        96,
        224,
        views=3,
        params_m=121.4,
        gflops_per_view=2380,
        tflops=7.14,
        top1={"K400": 80.7, "SSv2": 62.3, "Diving-48": 81.0},
        top5={"K400": 94.7},
        released_top1={"K400": 80.6, "K600": 82.2},
        released_top5={"K400": 94.7, "K600": 95.6},
    ),
    Reference(
        "TimeSformer (released SSv2, 64 frames)",
        "base",
        "divided",
        64,
        224,
        released_top1={"SSv2": 62.0},
        released_top5={"SSv2": 87.5},
    ),
    # Sec. 4.4: positional embeddings of the divided model at 8 x 224
    Reference(
        "TimeSformer, no positional embedding",
        "base",
        "divided",
        8,
        224,
        pos_embed="none",
        top1={"K400": 75.4, "SSv2": 45.8},
    ),
    Reference(
        "TimeSformer, space positional embedding only",
        "base",
        "divided",
        8,
        224,
        pos_embed="space",
        top1={"K400": 77.8, "SSv2": 52.5},
    ),
    # Table 2: 3D CNNs at their test input (registry presets), 10 clips x 3 crops
    Reference(
        "I3D 8x8 R50",
        "i3d_r50",
        NOT_APPLICABLE,
        8,
        256,
        views=30,
        params_m=28.0,
        gflops_per_view=37,
        tflops=1.11,
        top1={"K400": 73.4},
        train_gpu_hours=1440,
    ),
    Reference(
        "SlowFast 8x8 R50",
        "slowfast_r50",
        NOT_APPLICABLE,
        32,
        256,
        views=30,
        params_m=34.6,
        gflops_per_view=65.7,
        tflops=1.97,
        top1={"K400": 75.6},
        train_gpu_hours=3840,
        note="slow 8 / fast 32 frames",
    ),
)
BY_KEY: dict[Key, Reference] = {ref.key: ref for ref in REFERENCES}

# Figure 3: joint vs divided cost, by clip length at 224 and by crop at 8 frames
FIGURE3_FRAMES = (8, 32, 64, 96)
FIGURE3_SIZES = (224, 336, 448, 560)
PAPER_GPU = "32 GB V100"
PAPER_GPU_BYTES = 32 * GIB
PAPER_MAX_FRAMES = 96  # "not able to test our model on clips longer than 96 frames"
# (attention, frames, size) the paper could not run: joint from crop 448 and from 32 frames on
PAPER_OOM: tuple[tuple[str, int, int], ...] = (
    *(("joint", 8, size) for size in FIGURE3_SIZES if size >= 448),
    *(("joint", frames, 224) for frames in FIGURE3_FRAMES if frames >= 32),
)


def reference(
    model: str, attention: str, frames: int, size: int, pos_embed: str | None = None
) -> Reference | None:
    """The paper's entry for this configuration, or None where the paper has none."""
    return BY_KEY.get(reference_key(model, attention, frames, size, pos_embed))


def dataset_name(dataset: str) -> str | None:
    """The paper's name for a declared dataset (`k400` -> `K400`); None for any other."""
    return PAPER_DATASETS[dataset][0] if dataset in PAPER_DATASETS else None


def off_protocol(ref: Reference, dataset: str, record: Mapping[str, object]) -> str:
    """Why an accuracy record on a paper dataset is not at the paper's test protocol ("" if it
    is): the dataset's full class count, the reference's test views (TimeSformer 1 x 3, the 3D
    CNNs 10 x 3) and, for dense sampling, the reference model's frame rate (HR: 1/16)."""
    preset = PRESETS.get(ref.model)
    views = ref.views or (preset.views if preset else None)
    segment = dataset == "ssv2"  # the released SSv2 loader: one frame per segment, no rate
    checks = (
        ("classes", record.get("classes"), PAPER_DATASETS[dataset][1]),
        ("views", record.get("views"), views),
        ("sampling", record.get("sampling"), "segment" if segment else "dense"),
        ("rate", record.get("rate"), None if segment or not preset else preset.sampling_rate),
    )
    for name, value, paper in checks:
        if paper is not None and value is not None and value == value and value != paper:
            shown = int(value) if isinstance(value, float) else value
            return f"{name} {shown}, paper {paper}"
    return ""
