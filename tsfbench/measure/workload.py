"""The step a probe times: inference, or a training step, at a dtype and with an SDPA kernel.

`infer` runs under `torch.inference_mode`; `train` is forward + cross-entropy + backward + an SGD
step with momentum 0.9 (the paper's optimiser, Sec. 4.1), whose gradients and momentum buffers
are what made joint attention run out of memory. fp16 / bf16 use autocast (weights stay fp32,
as in mixed-precision training), fp16 training a gradient scaler.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from tsfbench.config import ProbeSettings, RunConfig, timesformer_only
from tsfbench.models.build import build_model, example_input

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
KERNELS = {
    "math": SDPBackend.MATH,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
}
# fp16 training: the gradient scaler's step reads its inf check on the host before it steps the
# optimiser, so the host waits for the device every step (on a GPU: it cannot queue ahead).
SCALER_NOTE = "fp16 GradScaler: one host-device sync per step"


@dataclass
class Workload:
    """A ready-to-run step and the tensors it holds between steps (model, clip, labels)."""

    step: Callable[[], None]
    model: nn.Module
    inputs: tuple[torch.Tensor, ...]
    notes: tuple[str, ...] = ()  # what the figures of this step include beyond the step itself
    optimizer: torch.optim.Optimizer | None = None  # train: its state is the step's too


def kernel_context(backend: str) -> Callable[[], contextlib.AbstractContextManager[None]]:
    """`sdpa` lets torch choose; the others allow exactly one kernel (an error if unusable)."""
    if backend == "sdpa":
        return contextlib.nullcontext
    return partial(sdpa_kernel, [KERNELS[backend]])


def build_workload(
    config: RunConfig,
    settings: ProbeSettings,
    device: torch.device | str,
    overrides: Mapping[str, object] | None = None,
    model: nn.Module | None = None,
    scaler: bool = True,
) -> Workload:
    """The step of `settings.mode` for `config`; pass `model` to run a prebuilt (fake) one."""
    device = torch.device(device)
    model = model if model is not None else build_model(config, device, **(overrides or {}))
    clip = example_input(config, settings.batch, device)
    kernel = kernel_context(settings.backend)
    autocast = partial(
        torch.autocast,
        device_type=device.type,
        dtype=TORCH_DTYPES[settings.dtype],
        enabled=settings.dtype != "fp32",
    )
    forward = torch.compile(model) if settings.compile else model

    if settings.mode == "infer":
        model.eval()

        def infer() -> None:
            with torch.inference_mode(), kernel(), autocast():
                forward(clip)

        return Workload(infer, model, (clip,))

    model.train()
    if settings.checkpointing:
        timesformer_only("checkpointing", [config], "leave checkpointing out")
        model.checkpointing = True
    labels = torch.randint(0, config.classes, (settings.batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    grad_scaler = torch.amp.GradScaler(device.type, enabled=scaler and settings.dtype == "fp16")

    def train() -> None:
        # backward inside the kernel choice too: activation checkpointing recomputes the forward
        # there, and a recomputation with another kernel saves other tensors (CheckpointError)
        with kernel():
            with autocast():
                loss = F.cross_entropy(forward(clip), labels)
            grad_scaler.scale(loss).backward()
        grad_scaler.step(optimizer)
        grad_scaler.update()
        optimizer.zero_grad(set_to_none=True)

    notes = (SCALER_NOTE,) if grad_scaler.is_enabled() else ()
    return Workload(train, model, (clip, labels), notes, optimizer)
