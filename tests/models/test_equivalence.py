"""Ours and Hugging Face `transformers`' TimeSformer give the same logits for the same weights.

`transformers` is a test dependency only; without it these tests skip. Its weights load into
ours through `tsfbench.models.convert.from_transformers` with `strict=True`, so every tensor is
used and none is missing. Both sides run fp32 on CPU in eval mode; ours with SDPA (the default)
and with the eager `math` backend.

Where `transformers` departs from the released code (`space_only` skips the per-frame average
of NUMBERS.md), the test of its logits is an expected failure with the reason, and ours is
checked instead against the released computation rebuilt from `transformers`' own modules.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tsfbench.models.convert import HF_ATTENTION, TransformersClip, from_transformers, randomize_
from tsfbench.models.timesformer import TimeSformer

transformers = pytest.importorskip("transformers")

OURS = {value: key for key, value in HF_ATTENTION.items()}  # our name -> transformers' name
# ViT-Base body at the released crop, on a 2-frame clip so the pair runs in seconds on a CPU.
BASE = {"dim": 768, "depth": 12, "heads": 12, "frames": 2, "size": 224, "num_classes": 400}
TOL = {"rtol": 1e-5, "atol": 1e-5}  # fp32; observed differences are ~1e-7 tiny, ~2e-6 base


@pytest.fixture
def configs(tiny: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """By name: the shared tiny body on a 4-frame 32 px clip with 5 classes, and `BASE`."""
    return {"tiny": tiny | {"frames": 4, "size": 32, "num_classes": 5}, "base": BASE}


def build_pair(attention: str, config: dict[str, Any]) -> tuple[torch.nn.Module, TimeSformer]:
    """A random `transformers` classifier and ours holding the very same tensors."""
    hf_config = transformers.TimesformerConfig(
        attention_type=OURS[attention],
        num_frames=config["frames"],
        image_size=config["size"],
        hidden_size=config["dim"],
        num_hidden_layers=config["depth"],
        num_attention_heads=config["heads"],
        intermediate_size=4 * config["dim"],
        num_labels=config["num_classes"],
    )
    # Built on meta and filled here: skips both inits (seconds at base size) and gives every
    # tensor, biases, LayerNorm affines and every temporal_fc included, non-trivial values.
    with torch.device("meta"):
        hf = transformers.TimesformerForVideoClassification(hf_config)
        ours = TimeSformer(attention=attention, **(config | {"drop_path": 0.0}))
    hf = randomize_(hf.to_empty(device="cpu")).eval()
    ours.load_state_dict(from_transformers(hf.state_dict()), strict=True, assign=True)
    return hf, ours.eval()


def hf_logits(hf: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """`transformers` takes (B, T, C, H, W); ours and the released code (B, C, T, H, W): the
    adapter the benchmark measures it through."""
    return TransformersClip(hf)(video)


def assert_ours_match(ours: TimeSformer, video: torch.Tensor, expected: torch.Tensor) -> None:
    """Both backends on tiny models; at base size only SDPA, the default (keeps the file fast)."""
    backends = ("sdpa", "math") if ours.head.in_features < BASE["dim"] else ("sdpa",)
    for backend in backends:
        ours.set_backend(backend)
        torch.testing.assert_close(
            ours(video), expected, **TOL, msg=lambda m, b=backend: f"{b}: {m}"
        )


def test_random_weights_leave_no_tensor_at_its_init_constant(
    configs: dict[str, dict[str, Any]],
) -> None:
    """Every tensor varies (biases, LayerNorm shifts and `temporal_dense` included), so a
    conversion that drops or swaps one cannot go unnoticed in the logits."""
    hf, _ = build_pair("divided", configs["tiny"])
    for name, param in hf.named_parameters():
        assert param.std() > 0.01, name
        centre = 1.0 if "layernorm" in name and name.endswith("weight") else 0.0
        assert abs(param.mean().item() - centre) < 0.05, name


@torch.inference_mode()
@pytest.mark.parametrize(
    ("attention", "name", "batch"),
    [
        ("joint", "tiny", 2),
        ("divided", "tiny", 2),
        ("joint", "base", 1),
        ("divided", "base", 1),
    ],
    ids=["joint-tiny", "divided-tiny", "joint-base", "divided-base"],
)
def test_logits_equal_transformers(
    attention: str, name: str, batch: int, configs: dict[str, dict[str, Any]]
) -> None:
    config = configs[name]
    hf, ours = build_pair(attention, config)
    video = torch.randn(batch, 3, config["frames"], config["size"], config["size"])
    assert_ours_match(ours, video, hf_logits(hf, video))


@torch.inference_mode()
@pytest.mark.xfail(
    reason="transformers' space_only skips the released per-frame average: it returns one "
    "logit row per frame, (B*T, classes), where the released code returns (B, classes)",
    raises=AssertionError,
    strict=True,
)
def test_space_logits_equal_transformers(configs: dict[str, dict[str, Any]]) -> None:
    config = configs["tiny"]
    hf, ours = build_pair("space", config)
    video = torch.randn(2, 3, config["frames"], config["size"], config["size"])
    torch.testing.assert_close(ours(video), hf_logits(hf, video), **TOL)


@torch.inference_mode()
@pytest.mark.parametrize("name", ["tiny", "base"])
def test_space_equals_released_average_of_transformers_frames(
    name: str, configs: dict[str, dict[str, Any]]
) -> None:
    """With the released average put back (frames averaged before the final norm), `space`
    agrees: the blocks, embeddings and weights are the same; only that last step differs."""
    config = configs[name]
    hf, ours = build_pair("space", config)
    batch, frames = 2 if name == "tiny" else 1, config["frames"]
    video = torch.randn(batch, 3, frames, config["size"], config["size"])
    out = hf.timesformer(pixel_values=video.transpose(1, 2), output_hidden_states=True)
    last = out.hidden_states[-1]  # (B*T, 1 + N, D), before the final LayerNorm
    averaged = last.view(batch, frames, *last.shape[1:]).mean(dim=1)
    expected = hf.classifier(hf.timesformer.layernorm(averaged)[:, 0])
    assert hf_logits(hf, video).shape == (batch * frames, config["num_classes"])
    assert_ours_match(ours, video, expected)
