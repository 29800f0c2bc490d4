"""Peak memory of a step, predicted without running it and without touching the device.

The step runs under `FakeTensorMode` (tensors with shapes and devices, no storage) while
`LiveBytes` keeps a running total of the bytes of the storages alive after each op; the peak of
that total is the prediction. It covers parameters, inputs, activations saved for backward,
gradients and the optimiser's momentum; it misses what kernels allocate internally (workspaces)
and the caching allocator's rounding, which is why it is compared with `max_allocated`, not
`max_reserved`.

Cost: one step under `FakeTensorMode` (about 11,000 dispatched ops for ViT-B training), see
`benchmarks/predict_speed.py`. A storage's free is counted where it happens (a weak-reference
callback), not found by scanning every live storage after every op, and the second step is not
run: its state is set up instead (see `predict_peak`).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch._subclasses import fake_tensor
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.workload import Workload, build_workload
from tsfbench.models.build import build_model

_DEVICE = torch.ops.prim.device.default


class _StorageRef(weakref.ref):
    """A weak reference to a storage that remembers its key and size for the free callback."""

    __slots__ = ("key", "nbytes")


class LiveBytes(TorchDispatchMode):
    """Peak total bytes of the tensor storages alive after each op.

    A storage counts from the op that returns it (or `add`) until its last reference goes; a
    storage shared by views counts once. The tracker holds weak references only, so it never
    extends a lifetime. torch keeps a storage's Python object alive exactly as long as the
    storage itself, so the weak-reference callback fires when the storage is freed. A free is
    applied after the next op's peak is taken: the figure is the one a scan of every live storage
    after each op gives (the reference in `benchmarks/predict_reference.py`), at a cost
    independent of how many storages are alive. Works on real and on fake tensors alike.
    """

    ref_type: type[_StorageRef] = _StorageRef

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, _StorageRef] = {}
        self.current = 0  # bytes alive at the last op, frees since then not yet applied
        self.freed = 0  # bytes freed since the last op
        self.peak = 0
        self.first: int | None = None  # the total at the first op dispatched

    def _on_free(self, ref: _StorageRef) -> None:
        # Popped only if it is still this storage: its address may already be reused.
        if self.live.get(ref.key) is ref:
            del self.live[ref.key]
            self.freed += ref.nbytes

    def add(self, tensors: Iterable[Any]) -> None:
        for tensor in tensors:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage._cdata
            if key not in self.live:
                self._track(storage, key)
        self.peak = max(self.peak, self.current)

    def _track(self, storage: torch.UntypedStorage, key: int) -> _StorageRef:
        """Count a storage seen for the first time (a subclass labels it here)."""
        ref = self.ref_type(storage, self._on_free)
        ref.key, ref.nbytes = key, storage.nbytes()
        self.live[key] = ref
        self.current += ref.nbytes
        return ref

    def watch(self, work: Workload) -> None:
        """Called once the step's model, inputs and state are counted, before any step runs:
        a subclass that labels storages learns here which are which. Nothing to do here."""

    def carry_over(self) -> None:
        """Take as a peak the first op's total plus what was freed after the last op: the state
        at the next step's first op, when the previous step's last frees are still counted."""
        self.peak = max(self.peak, (self.first or 0) + self.freed)

    def settle(self) -> None:
        """Apply the frees since the last op (as the next op would, after its peak)."""
        self.current -= self.freed
        self.freed = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict | None = None
    ) -> Any:
        fake = args[0] if func is _DEVICE and isinstance(args[0], FakeTensor) else None
        if fake is not None and not fake.fake_mode.in_kernel_invocation:
            # Two ops in three of a fake step ask a tensor its device (autograd, device guards):
            # answered here as FakeTensorMode would, 10% of the prediction's time.
            out = fake.fake_device
            self.peak = max(self.peak, self.current)
        else:
            out = func(*args, **(kwargs or {}))
            self.add((out,) if isinstance(out, torch.Tensor) else tree_flatten(out)[0])
        if self.first is None:
            self.first = self.current
        self.settle()
        return out


@contextlib.contextmanager
def no_device_context() -> Iterator[None]:
    """Keep `FakeTensorMode` from allocating a real tensor on a GPU it fakes.

    FakeTensorMode calls `init_gpu_context` for the first fake CUDA tensor, which allocates one
    real tensor there: a CUDA context (about 0.5 GiB) held by the process for good, which would
    be the sweep's parent, where it inflates every child's figures and, under EXCLUSIVE_PROCESS
    compute mode, makes every child fail. (In torch 2.14 a guard comparing a device with a
    string makes it a no-op; pytorch/pytorch#196338 restores it.) It exists for the autograd
    engine, which once failed without a context; it now skips syncing streams on devices that
    have none. Nothing else in a fake step calls the CUDA runtime for more than device
    properties (SDPA's kernel choice), which create no context.
    """
    original = fake_tensor.init_gpu_context
    fake_tensor.init_gpu_context = lambda device: None
    try:
        yield
    finally:
        fake_tensor.init_gpu_context = original


def predict_peak(
    config: RunConfig,
    settings: ProbeSettings,
    device: torch.device | str | None = None,
    overrides: Mapping[str, object] | None = None,
    steps: int = 2,
) -> int:
    """Predicted peak bytes of `steps` steps on `device`, with nothing allocated on it.

    Two steps, because the optimiser's momentum exists from the second step on; every later step
    repeats the second. Only the second is run, from the state the first leaves: the momentum
    buffers, and what the first step freed after its last op (the gradients `zero_grad` drops),
    still counted at the second step's first op. The first step itself cannot hold the peak: it
    runs the same ops with less alive (no momentum yet; creating it costs at most what the
    second step holds at that point). Where a step leaves more alive than the momentum (a model
    caching tensors across steps), a second step follows from there; where a parameter gets no
    gradient (no momentum either), all steps run from the start. `compile` is ignored: the
    prediction is of the eager step.
    """
    return track_peak(config, settings, device, overrides, steps).peak


def track_peak(
    config: RunConfig,
    settings: ProbeSettings,
    device: torch.device | str | None = None,
    overrides: Mapping[str, object] | None = None,
    steps: int = 2,
    tracker_type: type[LiveBytes] = LiveBytes,
) -> LiveBytes:
    """`predict_peak`'s steps, run under a `tracker_type`; its `peak` is the prediction.

    One code path for the prediction and for what explains it (`peak_parts`, a tracker that
    labels every storage), so the two cannot drift apart.
    """
    device = torch.device(device or settings.target)
    meta = build_model(config, "meta", **(overrides or {}))
    tracker = tracker_type()
    eager = replace(settings, compile=False) if settings.compile else settings
    with no_device_context(), FakeTensorMode(allow_non_fake_inputs=True):
        model = _fake_on(meta, device)
        work = build_workload(config, eager, device, model=model, scaler=False)
        tracker.add([*model.parameters(), *model.buffers(), *work.inputs])
        if steps <= 1:
            tracker.watch(work)
            with tracker:
                work.step()
            return tracker
        with_grad = _as_after_one_step(work, tracker)
        tracker.watch(work)
        before = dict(tracker.live)
        with tracker:
            work.step()
        if all(with_grad):
            if all(before.get(key) is ref for key, ref in tracker.live.items()):
                tracker.carry_over()
                return tracker
            with tracker:  # the state a real first step leaves: a real second step
                work.step()
            return tracker
    return _all_steps(config, eager, device, overrides, steps, tracker_type)


def _fake_on(meta: nn.Module, device: torch.device) -> nn.Module:
    """`meta` with every parameter and buffer replaced by an empty (fake) tensor of the same
    shape and strides on `device`: what `to_empty` gives, 3-4x faster under FakeTensorMode
    (no conversion of each meta tensor into the mode, no swap of tensor contents)."""
    for module in meta.modules():
        for name, param in module._parameters.items():
            if param is not None:
                empty = torch.empty_strided(param.shape, param.stride(), dtype=param.dtype,
                                            device=device)  # fmt: skip
                module._parameters[name] = nn.Parameter(empty, param.requires_grad)
        for name, buffer in module._buffers.items():
            if buffer is not None:
                module._buffers[name] = torch.empty_strided(
                    buffer.shape, buffer.stride(), dtype=buffer.dtype, device=device
                )
    return meta


def _as_after_one_step(work: Workload, tracker: LiveBytes) -> list[bool]:
    """Give every parameter the momentum buffer the first SGD step would leave (a copy of its
    gradient); the list returned fills, at each optimiser step, with which parameters had one."""
    with_grad: list[bool] = []
    if work.optimizer is None:
        return with_grad
    params = [p for group in work.optimizer.param_groups for p in group["params"]]
    for param in params:
        work.optimizer.state[param]["momentum_buffer"] = torch.empty_like(param)
    tracker.add(work.optimizer.state[param]["momentum_buffer"] for param in params)
    work.optimizer.register_step_pre_hook(
        lambda *_: with_grad.extend(param.grad is not None for param in params)
    )
    return with_grad


def _all_steps(
    config: RunConfig,
    settings: ProbeSettings,
    device: torch.device,
    overrides: Mapping[str, object] | None,
    steps: int,
    tracker_type: type[LiveBytes],
) -> LiveBytes:
    """The plain way: every step, from a fresh model."""
    meta = build_model(config, "meta", **(overrides or {}))
    tracker = tracker_type()
    with no_device_context(), FakeTensorMode(allow_non_fake_inputs=True):
        model = _fake_on(meta, device)
        work = build_workload(config, settings, device, model=model, scaler=False)
        tracker.add([*model.parameters(), *model.buffers(), *work.inputs])
        tracker.watch(work)
        with tracker:
            for _ in range(steps):
                work.step()
    return tracker


def gpu_total_memory(index: int = 0) -> int | None:
    """Total memory of CUDA device `index` as NVML reports it, or None where it cannot tell.

    NVML initialises nothing in CUDA, where `torch.cuda.get_device_properties` would run
    `torch.cuda.init` in the sweep's parent. A MIG slice or a missing NVML falls back to torch,
    but only if CUDA is initialised in this process anyway.
    """
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda._get_nvml_device_index(index))
            return int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML, or device names (MIG) it cannot map
        if torch.cuda.is_initialized():
            return int(torch.cuda.get_device_properties(index).total_memory)
        return None
