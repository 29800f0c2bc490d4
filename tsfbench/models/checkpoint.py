"""Load weights into a built model: released `.pyth` files, PySlowFast checkpoints, state dicts,
and Hugging Face `transformers` folders (`config.json` + `model.safetensors`).

Files are read with `torch.load(weights_only=True)` or `safetensors` only: a checkpoint from the
internet must not run code. Any mismatch is a `ConfigError` with one line naming the first keys
at fault (the CLI exits 2), never a silently half-loaded model. TimeSformer positional tables
trained at another clip length or crop are resized (paper Sec. 4.3; `resize_pos_tables`), and
the load says so.
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from tsfbench.config import OVERRIDES, PATCH, ConfigError, RunConfig
from tsfbench.models.convert import HF_ATTENTION, from_transformers
from tsfbench.models.registry import PRESETS, TIMESFORMER_SIZE
from tsfbench.models.timesformer import TimeSformer, resize_pos_tables

WRAPPERS = ("model_state", "state_dict", "model")  # released / PySlowFast, Lightning, others
PREFIXES = ("model.", "module.")  # released wrapper, DistributedDataParallel
POS_TABLES = ("pos_embed", "time_embed")
SHOWN = 3  # keys named in an error message


@dataclass
class LoadReport:
    """What loading did: the file layout found and any table resized (shown to the user)."""

    path: str
    layout: str  # "released", "pyslowfast", "wrapped", "plain", "transformers"
    tensors: int
    resized: list[str] = field(default_factory=list)  # "pos_embed (1, 197, 768) -> (1, 785, 768)"

    def as_dict(self) -> dict[str, object]:
        return {
            "checkpoint": self.path,
            "checkpoint_layout": self.layout,
            "checkpoint_tensors": self.tensors,
            "pos_resized": "; ".join(self.resized),
        }


def read_state_dict(path: str | Path) -> tuple[dict[str, Tensor], str]:
    """The weights in a checkpoint file, unwrapped and unprefixed, and the layout they had."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"checkpoint: {path} {what}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message is a paragraph; the reason follows "WeightsUnpickler error:"
        text = str(error).partition("WeightsUnpickler error:")[2].strip() or str(error).strip()
        first = (text or type(error).__name__).splitlines()[0][:160]
        if first.startswith(("Unsupported operand", "invalid load key")):
            raise ConfigError(
                f"checkpoint: {path} is not a PyTorch checkpoint ({first}); "
                f"give a .pyth / .pt file written by torch.save"
            ) from None
        raise ConfigError(
            f"checkpoint: {path} holds more than tensors and plain values and is not loaded "
            f"(weights_only=True refused it: {first})"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        text = str(error).strip() or type(error).__name__  # a truncated file: a bare EOFError
        first = text.splitlines()[0].split(". ")[0][:160]
        raise ConfigError(f"checkpoint: cannot read {path} ({first})") from None
    except Exception as error:  # arbitrary bytes can fail anywhere in torch's legacy reader
        raise ConfigError(
            f"checkpoint: {path} is not a PyTorch checkpoint ({type(error).__name__}: "
            f"{str(error)[:80]}); give a .pyth / .pt file written by torch.save"
        ) from None
    return unwrap(obj, str(path))


HF_CONFIG = "config.json"
HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
# `transformers`' own defaults (`TimesformerConfig()`, and `num_labels` of every config):
# `save_pretrained` may leave a value equal to its default out of config.json (transformers 5
# writes neither `num_labels` nor `id2label` for a two-class model), so a missing key reads as
# this. tests/models/test_checkpoint.py checks it against the installed `transformers`.
HF_DEFAULTS: dict[str, object] = {
    "attention_type": "divided_space_time",
    "num_frames": 8,
    "image_size": 224,
    "patch_size": 16,
    "num_channels": 3,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-6,
    "qkv_bias": True,
    "num_labels": 2,
}
# `transformers` config fields that our TimeSformer fixes, with the value it builds
HF_FIXED = {
    "patch_size": PATCH,
    "num_channels": 3,
    "qkv_bias": True,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-6,
}


@dataclass(frozen=True)
class HFConfig:
    """What a `transformers` TimeSformer folder's `config.json` says about the model."""

    path: str
    attention: str  # ours (HF_ATTENTION)
    frames: int
    size: int
    classes: int
    labels: tuple[str, ...]  # class names by id; () when `id2label` holds only LABEL_<i>
    sizes: Mapping[str, int]  # depth, dim, heads

    def overrides(self) -> dict[str, int]:
        """The model-size overrides that build this model (none for ViT-Base bodies)."""
        return {name: v for name, v in self.sizes.items() if v != TIMESFORMER_SIZE[name]}

    def fill(self, **given: object) -> dict[str, object]:
        """Options left out (None) taken from `config.json`: the preset of the same clip and
        crop (HR is 16 x 448: its sampling rate differs from base's), scheme, frames, size,
        classes. Options given stay, and are checked against it by `hf_setup`."""
        clip = (self.frames, self.size)
        same = [p.name for p in PRESETS.values() if p.family == "timesformer"]
        preset = next((n for n in same if (PRESETS[n].frames, PRESETS[n].size) == clip), "base")
        found = {"variant": preset, "attention": self.attention, "frames": self.frames}
        found |= {"size": self.size, "classes": self.classes}
        return {name: found[name] if value is None else value for name, value in given.items()}


def _square(value: object) -> object:
    """`transformers` may write a square side as [224, 224]; ours are square."""
    if isinstance(value, list) and len(value) == 2 and value[0] == value[1]:
        return value[0]
    return value


def is_hf_folder(path: str | Path | None) -> bool:
    """A checkpoint given as a folder is a `transformers` one (the only folder layout read)."""
    return path is not None and Path(path).is_dir()


def read_hf_config(folder: str | Path) -> HFConfig:
    """Read and check `folder/config.json` of a `transformers` TimeSformer; one line on error."""
    folder = Path(folder)
    path = folder / HF_CONFIG
    expected = "a transformers TimeSformer folder (config.json + model.safetensors)"
    if not path.is_file():
        raise ConfigError(f"checkpoint: {folder} has no {HF_CONFIG}; give {expected} or a file")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"checkpoint: {path} is not valid JSON ({error})") from None
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind != "timesformer":
        raise ConfigError(
            f"checkpoint: {path} describes a {kind!r} model, not 'timesformer'; give {expected}"
        )
    scheme = config.get("attention_type", HF_DEFAULTS["attention_type"])
    if scheme not in HF_ATTENTION:
        raise ConfigError(
            f"checkpoint: {path}: attention_type {scheme!r}; accepted: {', '.join(HF_ATTENTION)}"
        )
    sizes = ("num_frames", "image_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
    values = {name: _square(config.get(name, HF_DEFAULTS[name])) for name in sizes}
    bad = next((name for name, v in values.items() if type(v) is not int or v <= 0), None)
    if bad is not None:
        raise ConfigError(f"checkpoint: {path}: {bad} {values[bad]!r} is not a positive integer")
    fixed = {**HF_FIXED, "intermediate_size": 4 * values["hidden_size"]}  # MLP ratio 4
    for name, built in fixed.items():
        value = _square(config.get(name, HF_DEFAULTS[name]))
        if value != built:
            raise ConfigError(
                f"checkpoint: {path}: {name} {value!r}; tsfbench builds {built!r} only"
            )
    id2label = config.get("id2label") or {}
    try:
        by_id = {int(key): str(name) for key, name in id2label.items()}
    except (AttributeError, TypeError, ValueError):
        raise ConfigError(f"checkpoint: {path}: id2label must map integer ids to names") from None
    if sorted(by_id) != list(range(len(by_id))):
        raise ConfigError(f"checkpoint: {path}: id2label ids must be 0..{len(by_id) - 1}")
    labels = tuple(by_id[i] for i in range(len(by_id)))
    if labels == tuple(f"LABEL_{i}" for i in range(len(labels))):  # transformers' placeholders
        labels = ()
    classes = len(by_id) or config.get("num_labels", HF_DEFAULTS["num_labels"])
    if type(classes) is not int or classes <= 0:
        raise ConfigError(
            f"checkpoint: {path}: num_labels {classes!r} is not a positive integer (and no "
            "id2label)"
        )
    return HFConfig(
        path=str(folder),
        attention=HF_ATTENTION[scheme],
        frames=values["num_frames"],
        size=values["image_size"],
        classes=classes,
        labels=labels,
        sizes={
            "depth": values["num_hidden_layers"],
            "dim": values["hidden_size"],
            "heads": values["num_attention_heads"],
        },
    )


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    """A `.safetensors` file: a JSON header and raw tensor bytes, nothing executable."""
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except Exception as error:  # SafetensorError, OSError: a truncated or foreign file
        first = (str(error).strip() or type(error).__name__).splitlines()[0][:160]
        raise ConfigError(f"checkpoint: cannot read {path} ({first})") from None


def read_hf_state_dict(folder: str | Path) -> dict[str, Tensor]:
    """The weights of a `transformers` folder, renamed to ours (`convert.from_transformers`):
    `model.safetensors`, its shards (`model.safetensors.index.json`), else `pytorch_model.bin`
    (through `weights_only=True`)."""
    folder = Path(folder)
    found = next((folder / name for name in HF_WEIGHTS if (folder / name).is_file()), None)
    if found is None:
        raise ConfigError(f"checkpoint: {folder} has no weights; expected {', '.join(HF_WEIGHTS)}")
    if found.suffix == ".safetensors":
        state = _read_safetensors(found)
    elif found.suffix == ".json":
        try:
            shards = sorted(set(json.loads(found.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
            raise ConfigError(f"checkpoint: {found} has no weight_map of shard files") from None
        state = {}
        for shard in shards:
            state |= _read_safetensors(folder / shard)
    else:
        state, _ = read_state_dict(found)
    try:
        return from_transformers(state)
    except KeyError as error:
        raise ConfigError(f"checkpoint: {found}: {error.args[0]}") from None


def unwrap(obj: object, name: str = "checkpoint") -> tuple[dict[str, Tensor], str]:
    """Find the state dict in a loaded checkpoint object and strip a shared wrapper prefix."""
    layout = "plain"
    if isinstance(obj, Mapping):
        for key in WRAPPERS:
            if isinstance(obj.get(key), Mapping):
                obj, layout = obj[key], "pyslowfast" if key == "model_state" else "wrapped"
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ConfigError(
            f"checkpoint: {name} has no state dict (looked for {', '.join(WRAPPERS)})"
        )
    state = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not state:
        raise ConfigError(f"checkpoint: {name} has no tensors")
    for prefix in PREFIXES:
        if all(key.startswith(prefix) for key in state):
            state = {key.removeprefix(prefix): value for key, value in state.items()}
            if prefix == "model." and layout == "pyslowfast":
                layout = "released"
    return state, layout


def table_geometry(state: Mapping[str, Tensor], patch: int = 16) -> tuple[int | None, int | None]:
    """(frames, size) a TimeSformer checkpoint was trained at, from its positional tables."""
    frames = state["time_embed"].shape[1] if "time_embed" in state else None
    size = None
    if "pos_embed" in state:
        side = math.isqrt(state["pos_embed"].shape[1] - 1)
        size = side * patch
    return frames, size


def _names(keys: list[str]) -> str:
    more = f" (+{len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def check_state(model: nn.Module, state: Mapping[str, Tensor], name: str) -> None:
    """Raise one `ConfigError` line if `state` does not fit `model` exactly."""
    expected = model.state_dict()
    head = "head.weight"
    if head in state and head in expected and state[head].shape[0] != expected[head].shape[0]:
        raise ConfigError(
            f"checkpoint: {name} has {state[head].shape[0]} classes ({head} "
            f"{tuple(state[head].shape)}) but the model is built for {expected[head].shape[0]}; "
            f"set the number of classes to {state[head].shape[0]}"
        )
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    shapes = [
        f"{key} {tuple(state[key].shape)} vs model {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_names(unexpected)}")
    if shapes:
        problems.append(f"wrong shapes {_names(shapes)}")
    if problems:
        raise ConfigError(f"checkpoint: {name} does not match the model: {'; '.join(problems)}")


def load_checkpoint(model: nn.Module, path: str | Path) -> LoadReport:
    """Load `path` into `model` (strictly), resizing TimeSformer positional tables if needed.

    A folder is a `transformers` one: its `config.json` must describe `model`'s scheme."""
    if is_hf_folder(path):
        hf = read_hf_config(path)
        scheme = model.attention if isinstance(model, TimeSformer) else "not a TimeSformer"
        if scheme != hf.attention:
            raise ConfigError(
                f"checkpoint: {path} holds a {hf.attention} TimeSformer, the model is {scheme}; "
                f"give --attention {hf.attention} or leave it out"
            )
        state, layout = read_hf_state_dict(path), "transformers"
    else:
        state, layout = read_state_dict(path)
    report = LoadReport(str(path), layout, len(state))
    if isinstance(model, TimeSformer):
        expected = model.state_dict()
        differ = [
            key
            for key in POS_TABLES
            if key in state and key in expected and state[key].shape != expected[key].shape
        ]
        if differ:
            before = {key: tuple(state[key].shape) for key in differ}
            frames, size = table_geometry(state, model.patch)
            state = resize_pos_tables(
                state,
                frames=model.frames,
                size=model.size,
                patch=model.patch,
                mode=model.pos_interp,
            )
            report.resized = [f"{key} {before[key]} -> {tuple(state[key].shape)}" for key in differ]
            report.resized.insert(
                0,
                f"positional tables of {frames or '-'} x {size or '-'} resized to "
                f"{model.frames} x {model.size} ({model.pos_interp})",
            )
    check_state(model, state, str(path))
    model.load_state_dict(state, strict=True)
    return report


def hf_setup(
    config: RunConfig, folder: str | Path, overrides: Mapping[str, object]
) -> tuple[dict[str, object], tuple[str, ...]]:
    """Check `config` against a `transformers` folder; return the model-size overrides that
    build its model and its class names. Frames and crop may differ (tables are resized)."""
    hf = read_hf_config(folder)
    if config.attention != hf.attention:
        raise ConfigError(
            f"attention: {config.attention}, but {folder} holds a {hf.attention} TimeSformer; "
            f"give {hf.attention} or leave it out"
        )
    if config.classes != hf.classes:
        raise ConfigError(
            f"classes: {config.classes}, but {folder} has {hf.classes} (config.json id2label); "
            f"give {hf.classes} or leave it out"
        )
    sizes = hf.overrides()
    clash = [name for name in OVERRIDES if name in overrides and overrides[name] != hf.sizes[name]]
    if clash:
        name = clash[0]
        raise ConfigError(
            f"{name}: {overrides[name]}, but {folder} has {name} {hf.sizes[name]}; leave it out"
        )
    return {**overrides, **sizes}, hf.labels


TRAINED_KEY = "tsfbench"  # metadata `tsfbench train` saves beside the weights (`train.py`)
TRAINED_SIZES = ("depth", "dim", "heads", "patch")


@dataclass(frozen=True)
class TrainedModel:
    """What a checkpoint written by `tsfbench train` says about its model."""

    attention: str
    frames: int
    size: int
    classes: int
    rate: int
    sizes: Mapping[str, int]  # depth, dim, heads, patch: `build_model` overrides

    def fill(self, **given: object) -> dict[str, object]:
        """Options left out (None) taken from the checkpoint; options given stay (a mismatch
        is then the usual one-line load error)."""
        found = {"attention": self.attention, "frames": self.frames, "size": self.size}
        found |= {"classes": self.classes, "rate": self.rate}
        return {name: found[name] if value is None else value for name, value in given.items()}


def read_trained(path: str | Path | None) -> TrainedModel | None:
    """The metadata of a `tsfbench train` checkpoint file; None for any other checkpoint."""
    if path is None or not Path(path).is_file():
        return None
    try:  # memory-mapped: a released ViT-Base file is not read twice just to find no metadata
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not ours, or not a checkpoint: `load_checkpoint` reports it
        return None
    meta = obj.get(TRAINED_KEY) if isinstance(obj, Mapping) else None
    if not isinstance(meta, Mapping):
        return None
    names = ("attention", "frames", "size", "classes", "rate", *TRAINED_SIZES)
    missing = [name for name in names if name not in meta]
    if missing:
        raise ConfigError(f"checkpoint: {path}: its {TRAINED_KEY} entry lacks {', '.join(missing)}")
    return TrainedModel(
        attention=str(meta["attention"]),
        frames=int(meta["frames"]),
        size=int(meta["size"]),
        classes=int(meta["classes"]),
        rate=int(meta["rate"]),
        sizes={name: int(meta[name]) for name in TRAINED_SIZES},
    )


def fill_options(
    checkpoint: str | Path | None, **given: object
) -> tuple[dict[str, object], dict[str, int]]:
    """The options a user left out (None) taken from the checkpoint: a `transformers` folder's
    `config.json` (variant, attention, frames, size, classes) or a `tsfbench train` file's
    metadata (attention, frames, size, classes, rate); and the size overrides that build a
    trained model. Options given stay, and a mismatch is the load's one-line error."""
    if is_hf_folder(checkpoint):
        hf = read_hf_config(checkpoint)  # type: ignore[arg-type]
        known = ("variant", "attention", "frames", "size", "classes")
        given |= hf.fill(**{name: given[name] for name in known if name in given})
    trained = read_trained(checkpoint)
    if trained is None:
        return given, {}
    known = ("attention", "frames", "size", "classes", "rate")
    given |= trained.fill(**{name: given[name] for name in known if name in given})
    return given, dict(trained.sizes)
