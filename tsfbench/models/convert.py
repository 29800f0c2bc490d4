"""Load other TimeSformer implementations' weights into ours: pure renames of state-dict keys.

Our parameter names are the released checkpoints' (official repository, `vit.py`), so a released
`.pyth` only loses its `model.` prefix. Hugging Face `transformers` (`TimesformerModel`,
`TimesformerForVideoClassification`) names the same tensors differently, with the same shapes and
layouts, so its state dict converts by renaming alone. Neither needs `transformers` installed:
both functions take and return plain dicts of tensors (the tensors are shared, not copied).

Known differences of `transformers` (5.x) from the released code, which renaming cannot fix and
which the caller must know about (`tests/models/test_equivalence.py` checks each one):

- Input layout: it takes (B, T, C, H, W); the released code and ours take (B, C, T, H, W).
- `space_only`: the released code averages the per-frame token sequences over frames before the
  final norm and head (NUMBERS.md, "Details of the released implementation"); `transformers`
  skips that average and returns one logit row per *frame*, shape (B * T, classes). Its weights
  are the same, so ours, loaded from them, gives the released `space` output; that equals
  `transformers`' final norm and classifier applied to the frame-average of its last encoder
  hidden state, not its logits.
- Its `divided_space_time` layers regroup tokens with `config.num_frames` and
  `config.image_size`, so that scheme only runs clips of the configured length and square size;
  ours, like the released code, takes the grid from the input and resizes the positional tables
  (nearest by default).

For side-by-side runs (`benchmarks/vs_reference.py`, `tests/models/test_equivalence.py`),
`TransformersClip` feeds a `transformers` classifier our input and returns its logits, so it runs
through `build_workload` like any model here, and `randomize_` gives one random weights to copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor, nn

# `transformers`' `config.attention_type` -> our `attention`.
HF_ATTENTION = {
    "space_only": "space",
    "joint_space_time": "joint",
    "divided_space_time": "divided",
}

_HF_TOP = {  # module path in `TimesformerModel` (no `timesformer.` prefix) -> ours
    "embeddings.patch_embeddings.projection": "patch_embed.proj",
    "layernorm": "norm",
    "classifier": "head",  # `TimesformerForVideoClassification` only, outside the prefix
}
_HF_PARAMS = {  # bare parameters (no .weight / .bias)
    "embeddings.cls_token": "cls_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.time_embeddings": "time_embed",
}
_HF_LAYER = {  # module path inside `encoder.layer.N` -> inside our `blocks.N`
    "layernorm_before": "norm1",
    "attention.attention.qkv": "attn.qkv",
    "attention.output.dense": "attn.proj",
    "temporal_layernorm": "temporal_norm1",
    "temporal_attention.attention.qkv": "temporal_attn.qkv",
    "temporal_attention.output.dense": "temporal_attn.proj",
    "temporal_dense": "temporal_fc",
    "layernorm_after": "norm2",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}
_LAYER_KEY = re.compile(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)")
_MODULE_KEY = re.compile(r"(.+)\.(weight|bias)")


def _rename_hf(key: str) -> str | None:
    """Our name for one `transformers` key (prefix already stripped), None if unknown."""
    if key in _HF_PARAMS:
        return _HF_PARAMS[key]
    if match := _LAYER_KEY.fullmatch(key):
        index, module, param = match.groups()
        ours = _HF_LAYER.get(module)
        return None if ours is None else f"blocks.{index}.{ours}.{param}"
    if match := _MODULE_KEY.fullmatch(key):
        module, param = match.groups()
        ours = _HF_TOP.get(module)
        return None if ours is None else f"{ours}.{param}"
    return None


def from_transformers(hf_state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A `transformers` Timesformer state dict (with or without the `timesformer.` prefix of the
    classification model) renamed to ours.

    Build ours with `attention=HF_ATTENTION[config.attention_type]`, `frames=config.num_frames`,
    `size=config.image_size`, `dim`/`depth`/`heads` from the config and `num_classes` from
    `config.num_labels`; a `TimesformerModel` has no classifier, so the result has no `head`.
    Unknown keys raise: a silently dropped tensor would make a wrong model load.
    """
    out: dict[str, Tensor] = {}
    unknown = []
    for key, tensor in hf_state_dict.items():
        name = _rename_hf(key.removeprefix("timesformer."))
        if name is None:
            unknown.append(key)
        else:
            out[name] = tensor
    if unknown:
        raise KeyError(f"keys with no TimeSformer counterpart: {', '.join(unknown)}")
    return out


class TransformersClip(nn.Module):
    """A `transformers` TimeSformer classifier taking our input: a (B, C, T, H, W) clip in, logits
    out (it wants (B, T, C, H, W) `pixel_values` and returns an output object). The transpose is
    a view, so the adapter adds no work; like `SlowFastClip`, it lets every probe run the model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clip: Tensor) -> Tensor:
        return self.model(pixel_values=clip.transpose(1, 2)).logits


@torch.no_grad()
def randomize_(model: nn.Module, std: float = 0.02) -> nn.Module:
    """Fill every parameter of a `transformers` TimeSformer in place: N(0, std), LayerNorm weights
    around 1. Unlike its own init this leaves no bias, LayerNorm shift or `temporal_dense` at
    zero, so a comparison with ours exercises every tensor; on a model built on the meta device
    and given storage with `to_empty`, it is the only init (seconds less at ViT-Base)."""
    for name, param in model.named_parameters():
        param.normal_(0.0, std)
        if "layernorm" in name and name.endswith("weight"):
            param.add_(1.0)
    return model
