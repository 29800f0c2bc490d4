"""The motion test: a small TimeSformer trained from scratch on the synthetic set, then evaluated.

The synthetic classes differ only in motion and a left video is a right one played backwards
(`data/synth.py`) and its clips are sampled symmetrically in time (`data/sampling.py`), so a
scheme that sees frame order can learn every class and `space`, which cannot, stops at the
direction-blind ceiling: a mini Table 1 (paper: SSv2, space 36.6 vs divided 59.5) that runs on
a CPU in minutes. Training reads `train.csv`, the checkpoint is
saved, and the reported top-1 is that checkpoint evaluated on `val.csv` by `evaluate.accuracy`
with the full test protocol (3 crops), so `tsfbench accuracy --checkpoint` gives the same number.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tsfbench.config import (
    AccuracySettings,
    ConfigError,
    TrainSettings,
    check_device,
    resolve_device,
    run_config,
)
from tsfbench.data.datasets import dataset_identity, read_dataset
from tsfbench.data.sampling import dataset_sampling
from tsfbench.data.synth import direction_blind_ceiling, reversed_class
from tsfbench.data.video import VideoError, ViewSpec, read_frames, resized_frames

TrainProgress = Callable[[int, int, float], None]  # (step, steps, smoothed loss)
CHECKPOINT_KEY = "tsfbench"  # the checkpoint's metadata entry (`models/checkpoint.py` reads it)
TABLES = ("pos_embed", "time_embed", "cls_token")  # no weight decay, their own learning rate


def load_clips(csv: Path, settings: TrainSettings) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    """Every training video's clip, decoded once: (N, F, 3, H, W) normalised, labels, names.

    The clip is the test protocol's (same frames, shorter side scaled to `size`), uncropped:
    training takes a random square crop of it at each step.
    """
    videos = read_dataset(csv, "kinetics")
    sampling = dataset_sampling("kinetics", dataset_identity(csv, "kinetics"))
    spec = ViewSpec(
        frames=settings.frames, size=settings.size, rate=settings.rate, clips=1, sampling=sampling
    )
    clips, labels = [], []
    for item in videos.items:
        try:
            frames, (indices,) = read_frames(item.path, spec)
        except VideoError as error:
            raise ConfigError(f"data: cannot train on {item.path} ({error})") from None
        clips.append(resized_frames(frames[indices], spec))  # as the test views, uncropped
        labels.append(item.label)
    if not clips:
        raise ConfigError(f"data: {csv} lists no videos")
    return torch.stack(clips), torch.tensor(labels), videos.classes


def swap_table(names: tuple[str, ...], swap: Callable[[str], str | None]) -> Tensor:
    """Class id -> id of its swapped class, or -1 where the set has none (not augmented)."""
    ids = {name: i for i, name in enumerate(names)}
    return torch.tensor([ids.get(swap(name) or "", -1) for name in names])


def _mirrored(name: str) -> str | None:
    """The class of a left-right mirrored video: left and right swap, up and down stay."""
    if name.startswith(("left", "right")):
        return reversed_class(name)
    return name if reversed_class(name) is not None else None


def make_batch(
    clips: Tensor,
    labels: Tensor,
    settings: TrainSettings,
    reverse: Tensor,
    mirror: Tensor,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """A random batch (B, 3, F, S, S): random videos, one random crop, label-aware flips."""
    n = torch.randint(len(clips), (settings.batch,), generator=generator)
    x, y = clips[n], labels[n].clone()
    height, width = x.shape[-2:]
    y0 = int(torch.randint(height - settings.size + 1, (1,), generator=generator))
    x0 = int(torch.randint(width - settings.size + 1, (1,), generator=generator))
    x = x[..., y0 : y0 + settings.size, x0 : x0 + settings.size]
    for enabled, table, dim in ((settings.reverse, reverse, 1), (settings.flip, mirror, -1)):
        if not enabled:
            continue
        chosen = (torch.rand(len(y), generator=generator) < 0.5) & (table[y] >= 0)
        x = torch.where(chosen.view(-1, 1, 1, 1, 1), x.flip(dim), x)
        y = torch.where(chosen, table[y], y)
    return x.permute(0, 2, 1, 3, 4).contiguous(), y


def optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """AdamW; the positional tables and the class token get `table_lr` x the rate and no decay,
    as do biases and norms (the order of frames enters only through `time_embed`)."""
    tables, decay, other = [], [], []
    for name, parameter in model.named_parameters():
        if name in TABLES:
            tables.append(parameter)
        elif parameter.ndim >= 2:
            decay.append(parameter)
        else:
            other.append(parameter)
    groups = [
        {"params": decay, "weight_decay": settings.weight_decay, "lr": settings.lr},
        {"params": other, "weight_decay": 0.0, "lr": settings.lr},
        {"params": tables, "weight_decay": 0.0, "lr": settings.lr * settings.table_lr},
    ]
    return torch.optim.AdamW(groups, lr=settings.lr)


def schedule(step: int, settings: TrainSettings) -> float:
    """Learning-rate factor of `step`: linear warm-up, then cosine to zero."""
    warmup = round(settings.warmup * settings.steps)
    if step < warmup:
        return (step + 1) / warmup
    done = (step - warmup) / max(1, settings.steps - warmup)
    return 0.5 * (1 + math.cos(math.pi * done))


def train(
    settings: TrainSettings,
    clips: Tensor,
    labels: Tensor,
    names: tuple[str, ...],
    *,
    device: torch.device | str = "cpu",
    progress: TrainProgress | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train a TimeSformer of `settings` on the clips on `device`; returns it (eval mode, on
    `device`) and figures. The weights are initialised and the batches drawn on the CPU, so a
    GPU starts from the same model and sees the same batches as a CPU."""
    from tsfbench.models.build import build_model

    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    config = run_config(settings, len(names))
    model = build_model(config, "cpu", **settings.overrides(), drop_path=0.0)
    init_time_embed(model, settings.time_init)
    if settings.weight_init == "fan_in":
        init_fan_in(model, settings.init_gain)
    model.to(device).train()
    opt = optimizer(model, settings)
    rates = [group["lr"] for group in opt.param_groups]
    reverse = swap_table(names, reversed_class)
    mirror = swap_table(names, _mirrored)
    smooth = float("nan")
    start = time.perf_counter()
    for step in range(settings.steps):
        factor = schedule(step, settings)
        for group, rate in zip(opt.param_groups, rates, strict=True):
            group["lr"] = rate * factor
        x, y = make_batch(clips, labels, settings, reverse, mirror, generator)
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        smooth = value if step == 0 else 0.9 * smooth + 0.1 * value
        if progress:
            progress(step + 1, settings.steps, smooth)
    seconds = time.perf_counter() - start
    model.eval()
    figures = {
        "params": sum(p.numel() for p in model.parameters()),
        "train_seconds": seconds,
        "train_steps": settings.steps,
        "final_loss": smooth,
        "train_videos": len(clips),
    }
    return model, figures


def init_time_embed(model: nn.Module, kind: str) -> None:
    """`sinusoidal`: the fixed encoding of Vaswani et al. (2017) as the starting `time_embed`.

    The released init is zero, which leaves a from-scratch model blind to frame order at the
    start: reversing a clip changes its logits by ~1e-4 and the table's gradient is ~50x
    smaller than `pos_embed`'s. Sinusoids give every frame a distinct, unit-scale code from
    step 0; the table stays trainable. A model without a time table (`space`) is unchanged.
    """
    table = getattr(model, "time_embed", None)
    if table is None or kind == "zero":
        return
    frames, dim = table.shape[1:]
    position = torch.arange(frames, dtype=torch.float32)[:, None]
    angle = position / 10_000 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    with torch.no_grad():
        table[0, :, 0::2] = angle.sin()
        table[0, :, 1::2] = angle.cos()


def init_fan_in(model: nn.Module, gain: float) -> None:
    """Every Linear but the head: normal with std gain/sqrt(fan in) (1: variance-preserving).

    The released std 0.02 suits ViT-Base (1/sqrt(768) = 0.036); at width 64 it is 6x below
    variance-preserving, and frame order reaches the head only through products of several
    attention matrices (query, key, value of successive steps), whose gradients all start near
    zero: training sat at the direction-blind plateau. The extra steps' `_fc` Linears are
    included (the released init zeroes them after block 0).
    """
    head = getattr(model, "head", None)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear) and module is not head:
                module.weight.normal_(0.0, gain * module.in_features**-0.5)


def save_checkpoint(
    model: nn.Module, settings: TrainSettings, names: tuple[str, ...], path: str | Path
) -> Path:
    """`{"model_state": weights, "tsfbench": {what builds the model and how it was trained}}`:
    plain values only, so `torch.load(weights_only=True)` reads it, and `tsfbench accuracy
    --checkpoint` rebuilds the model from it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "attention": settings.attention,
        "frames": settings.frames,
        "size": settings.size,
        "classes": len(names),
        "class_names": list(names),
        "rate": settings.rate,
        **settings.overrides(),
        "train": settings.as_dict(),
    }
    weights = {name: value.cpu() for name, value in model.state_dict().items()}  # loads anywhere
    torch.save({"model_state": weights, CHECKPOINT_KEY: meta}, path)
    return path


def data_root(data: str | Path) -> Path:
    """The synthetic set's folder (a `val.csv` or `train.csv` given stands for its folder)."""
    root = Path(data)
    if root.suffix == ".csv":
        root = root.parent
    for name in ("train.csv", "val.csv"):
        if not (root / name).is_file():
            raise ConfigError(
                f"data: {root} has no {name}; write the set with "
                f"`tsfbench synth {root} --train-per-class 64`"
            )
    return root


def motion_test(
    settings: TrainSettings,
    data: str | Path,
    checkpoint: str | Path,
    *,
    device: str = "auto",
    progress: TrainProgress | None = None,
) -> dict[str, Any]:
    """Train on data/train.csv, save `checkpoint`, evaluate it on data/val.csv with
    `evaluate.accuracy` (the test protocol, `settings.views` crops); one flat record:
    the accuracy record, the settings, and {params, train_seconds, train_steps, final_loss,
    checkpoint, ceiling, data_seed, ...}. `device` (auto, cpu, cuda, cuda:N) trains and
    evaluates; `auto` is the GPU where there is one. `progress(step, steps, loss)` after each
    step."""
    from tsfbench.data.datasets import synthetic_marker
    from tsfbench.evaluate import accuracy

    root = data_root(data)
    target = resolve_device(check_device(device))
    clips, labels, names = load_clips(root / "train.csv", settings)
    model, figures = train(settings, clips, labels, names, device=target, progress=progress)
    path = save_checkpoint(model, settings, names, checkpoint)
    config = run_config(settings, len(names))
    evaluation = AccuracySettings(
        data=str(root / "val.csv"), rate=settings.rate, batch=32, workers=0, device=target,
        checkpoint=str(path),
    )  # fmt: skip
    record = accuracy(config, evaluation, distributed_eval=False, **settings.overrides())
    marker = synthetic_marker(root / "val.csv")
    ceiling = direction_blind_ceiling(len(names)) if marker is not None else None
    return {
        **record,
        **settings.as_dict(),
        **figures,
        "checkpoint": str(path),
        "ceiling": ceiling,
        # which synthetic videos: tuning and published figures come from different sets
        "data_seed": json.loads(marker.read_text()).get("seed") if marker is not None else None,
        "eval_seconds": record["wall_s"],
    }
