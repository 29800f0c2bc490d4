"""Load weights into a built model: released `.pyth` files, PySlowFast checkpoints, state dicts.

Files are read with `torch.load(weights_only=True)` only: a checkpoint from the internet must not
run code. Any mismatch is a `ConfigError` with one line naming the first keys at fault (the CLI
exits 2), never a silently half-loaded model. TimeSformer positional tables trained at another
clip length or crop are resized (paper Sec. 4.3; `resize_pos_tables`), and the load says so.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from tsfbench.config import ConfigError
from tsfbench.models.timesformer import TimeSformer, resize_pos_tables

WRAPPERS = ("model_state", "state_dict", "model")  # released / PySlowFast, Lightning, others
PREFIXES = ("model.", "module.")  # released wrapper, DistributedDataParallel
POS_TABLES = ("pos_embed", "time_embed")
SHOWN = 3  # keys named in an error message


@dataclass
class LoadReport:
    """What loading did: the file layout found and any table resized (shown to the user)."""

    path: str
    layout: str  # "released", "pyslowfast", "wrapped", "plain"
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
    """Load `path` into `model` (strictly), resizing TimeSformer positional tables if needed."""
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
