"""State-dict converters: released checkpoints and `transformers` names map onto ours exactly."""

from __future__ import annotations

import pytest
import torch

from tsfbench.models.checkpoint import unwrap
from tsfbench.models.convert import from_transformers
from tsfbench.models.timesformer import TimeSformer


@pytest.mark.parametrize("attention", ["space", "joint", "divided"])
def test_released_checkpoint_loads_strictly_and_keeps_outputs(
    attention: str, tiny: dict[str, object]
) -> None:
    config = tiny | {"frames": 4, "size": 32, "num_classes": 5}
    source = TimeSformer(attention=attention, **config).eval()
    checkpoint = {
        "model_state": {f"model.{k}": v for k, v in source.state_dict().items()},
        "optimizer_state": {},
        "epoch": 15,
    }
    target = TimeSformer(attention=attention, **config).eval()
    state, layout = unwrap(checkpoint)
    assert layout == "released"
    target.load_state_dict(state, strict=True)
    video = torch.randn(1, 3, 4, 32, 32)
    torch.testing.assert_close(target(video), source(video), rtol=0, atol=0)


def test_transformers_names_map_without_the_library() -> None:
    """Plain dicts in, plain dicts out: the classification model's prefix and head included."""
    hf = {
        "timesformer.embeddings.cls_token": torch.zeros(1),
        "timesformer.embeddings.position_embeddings": torch.zeros(1),
        "timesformer.embeddings.time_embeddings": torch.zeros(1),
        "timesformer.embeddings.patch_embeddings.projection.weight": torch.zeros(1),
        "timesformer.encoder.layer.11.attention.output.dense.bias": torch.zeros(1),
        "timesformer.encoder.layer.0.output.dense.weight": torch.zeros(1),
        "timesformer.encoder.layer.3.temporal_attention.attention.qkv.weight": torch.zeros(1),
        "timesformer.encoder.layer.3.temporal_dense.bias": torch.zeros(1),
        "timesformer.layernorm.weight": torch.zeros(1),
        "classifier.bias": torch.zeros(1),
    }
    assert list(from_transformers(hf)) == [
        "cls_token",
        "pos_embed",
        "time_embed",
        "patch_embed.proj.weight",
        "blocks.11.attn.proj.bias",
        "blocks.0.mlp.fc2.weight",
        "blocks.3.temporal_attn.qkv.weight",
        "blocks.3.temporal_fc.bias",
        "norm.weight",
        "head.bias",
    ]
    # `TimesformerModel` (no classification wrapper) has no prefix and no classifier
    assert list(from_transformers({"layernorm.bias": torch.zeros(1)})) == ["norm.bias"]


def test_unknown_transformers_keys_raise_rather_than_drop_weights() -> None:
    with pytest.raises(KeyError, match=r"pooler\.dense\.weight"):
        from_transformers({"timesformer.pooler.dense.weight": torch.zeros(1)})
