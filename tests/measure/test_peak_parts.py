"""What holds the predicted peak: categories that sum to the prediction, parts that name the
model's own pieces, and Figure 3's jump where it belongs (math attention's saved weights)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import pytest

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.flops import part_macs
from tsfbench.measure.peak_parts import CATEGORIES, PeakParts, part_names, peak_breakdown
from tsfbench.measure.predict import predict_peak, track_peak
from tsfbench.measure.profile import part_order
from tsfbench.models.build import build_model
from tsfbench.models.parts import OTHER, STEPS, kind
from tsfbench.models.registry import ATTENTIONS
from tsfbench.models.timesformer import SCHEMES


def _by_category(rows: list[dict]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for row in rows:
        totals[row["category"]] += row["bytes"]
    return totals


def _parameter_bytes(config: RunConfig, overrides: dict) -> int:
    model = build_model(config, "meta", **overrides)
    return sum(p.numel() * p.element_size() for p in model.parameters())


CASES = [  # (attention, mode, backend, dtype, checkpointing, drop_path)
    (attention, mode, backend, "fp32", False, 0.0)
    for attention in ("joint", "divided")
    for mode in ("infer", "train")
    for backend in ("sdpa", "math")
] + [
    ("axial", "train", "sdpa", "fp32", True, 0.1),  # recomputed blocks, stochastic depth
    ("local_global", "train", "math", "bf16", False, 0.0),
    ("space", "infer", "sdpa", "bf16", False, 0.0),
]


@pytest.mark.parametrize(
    ("attention", "mode", "backend", "dtype", "checkpointing", "drop_path"), CASES
)
def test_the_rows_sum_exactly_to_the_predicted_peak(
    attention: str,
    mode: str,
    backend: str,
    dtype: str,
    checkpointing: bool,
    drop_path: float,
    tiny: dict[str, object],
) -> None:
    config = RunConfig(attention=attention, frames=4, size=32)
    settings = ProbeSettings(
        mode=mode, backend=backend, dtype=dtype, checkpointing=checkpointing, device="cpu"
    )
    overrides = tiny | {"drop_path": drop_path}
    rows = peak_breakdown(config, settings, overrides)
    assert sum(row["bytes"] for row in rows) == predict_peak(config, settings, overrides=overrides)
    assert {row["category"] for row in rows} <= set(CATEGORIES)
    assert _by_category(rows)["parameters"] == _parameter_bytes(config, overrides)
    (temporaries,) = [row for row in rows if row["category"] == "temporaries"]
    assert temporaries["op"].startswith("aten.")  # the op running at the peak is named


def test_training_holds_gradients_and_one_momentum_buffer_per_parameter(
    tiny: dict[str, object],
) -> None:
    config = RunConfig(attention="divided", frames=4, size=32)
    rows = peak_breakdown(config, ProbeSettings(mode="train", device="cpu"), tiny)
    totals, parameters = _by_category(rows), _parameter_bytes(config, tiny)
    assert totals["optimizer_state"] == parameters  # SGD with momentum: a buffer per parameter
    # the peak falls in the backward: the gradients computed so far, never more than all
    assert 0 < totals["gradients"] <= parameters
    assert totals["activations"] > 0


def test_inference_holds_no_gradients_optimizer_state_or_saved_activations(
    tiny: dict[str, object],
) -> None:
    config = RunConfig(attention="joint", frames=4, size=32)
    rows = peak_breakdown(config, ProbeSettings(mode="infer", backend="math", device="cpu"), tiny)
    categories = {row["category"] for row in rows}
    assert not categories & {"gradients", "optimizer_state", "activations"}
    assert {"parameters", "inputs", "temporaries"} <= categories


def test_math_attention_saves_the_attention_weights_that_sdpa_does_not(
    tiny: dict[str, object],
) -> None:
    """Figure 3's jump: the math kernel keeps each block's softmax (heads x T^2) for backward."""
    config = RunConfig(attention="joint", frames=8, size=64)
    settings = ProbeSettings(mode="train", device="cpu")
    attend = {}
    for backend in ("sdpa", "math"):
        rows = peak_breakdown(config, replace(settings, backend=backend), tiny)
        attend[backend] = sum(r["bytes"] for r in rows if r["part"] == "joint.attend")
    tokens = 8 * (64 // 16) ** 2 + 1
    weights = int(tiny["heads"]) * tokens**2 * 4  # one block's fp32 softmax output
    assert attend["math"] >= attend["sdpa"] + weights


def test_activations_are_attributed_to_the_schemes_own_parts(tiny: dict[str, object]) -> None:
    config = RunConfig(attention="divided", frames=4, size=64)  # a peak early in the backward
    rows = peak_breakdown(config, ProbeSettings(mode="train", device="cpu"), tiny)
    parts = {row["part"] for row in rows if row["category"] == "activations"}
    steps = {f"{step}{sub}" for step in ("time", "space") for sub in ("", ".qkv", ".attend")}
    steps |= {f"{step}.{sub}" for step in ("time", "space") for sub in ("proj", "grouping")}
    allowed = steps | {"time.fc", "patch_embed", "norm", "block", "mlp", "head", "other"}
    assert parts <= allowed
    assert {"time.qkv", "time.attend", "space.qkv", "space.attend", "mlp", "norm"} <= parts


def test_a_3d_cnn_breaks_down_by_stage() -> None:
    config = RunConfig(model="x3d_s", frames=4, size=32)
    settings = ProbeSettings(mode="train", device="cpu")
    rows = peak_breakdown(config, settings)
    assert sum(row["bytes"] for row in rows) == predict_peak(config, settings)
    parts = {row["part"] for row in rows if row["category"] == "activations"}
    assert parts and parts <= {"stem", "res2", "res3", "res4", "res5", "head", "other"}
    assert set(part_names(build_model(config, "meta")).values()) == {
        "stem", "res2", "res3", "res4", "res5", "head"
    }  # fmt: skip


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_the_memory_breakdown_and_the_profile_name_the_same_parts(
    attention: str, tiny: dict[str, object]
) -> None:
    """One vocabulary (`models/parts.py`): a training step's storages are labelled with the
    names of `tsfbench profile`'s rows, and every part that multiplies makes its output there."""
    config = RunConfig(attention=attention, frames=4, size=32)
    settings = ProbeSettings(mode="train", device="cpu")
    tracker = track_peak(config, settings, overrides=tiny, tracker_type=PeakParts)
    # every part that created a storage in the forward, at any moment of the step (a total,
    # once opened, is kept at zero)
    memory = {
        part for category, part in tracker.totals if category in ("activations", "intermediates")
    }
    profile = set(part_order(build_model(config, "meta", **tiny), train=False))
    assert memory <= profile
    # the profile's parts the memory never sees are groupings made of views alone (a space
    # step's groups are the frames as they lie): no data moved, no storage made
    assert all(kind(part) == "grouping" for part in profile - memory), profile - memory
    flops = {part for part, macs in part_macs(config, tiny)[1].items() if macs}
    assert flops <= memory and OTHER in memory  # the loss
    assert {step.name for step in SCHEMES[attention]} <= set(STEPS)
