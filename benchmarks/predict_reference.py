"""The memory prediction as it was before it counted frees where they happen: a scan of every live
storage after every op (live storages x ops), two full steps. Kept as the reference that the fast
`tsfbench.measure.predict.predict_peak` must match byte for byte (tests/measure/test_predict.py)
and is timed against (benchmarks/predict_speed.py); not part of the package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.workload import build_workload
from tsfbench.models.build import build_model


class LiveBytes(TorchDispatchMode):
    """Peak total bytes of the tensor storages alive after each op (found by a scan)."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = 0
        self.peak = 0

    def add(self, tensors: Iterable[Any]) -> None:
        for tensor in tensors:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            ref = StorageWeakRef(storage)
            if ref.cdata not in self.live:
                self.live[ref.cdata] = (ref, storage.nbytes())
                self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict | None = None
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        self.add(tree_flatten(out)[0])
        for key, (ref, nbytes) in list(self.live.items()):
            if ref.expired():
                del self.live[key]
                self.current -= nbytes
        return out


def predict_peak(
    config: RunConfig,
    settings: ProbeSettings,
    device: torch.device | str | None = None,
    overrides: Mapping[str, object] | None = None,
    steps: int = 2,
) -> int:
    """Predicted peak bytes of `steps` steps on `device` (the reference: slow, exact)."""
    device = torch.device(device or settings.target)
    meta = build_model(config, "meta", **(overrides or {}))
    tracker = LiveBytes()
    eager = ProbeSettings(**{**asdict(settings), "compile": False})
    with FakeTensorMode(allow_non_fake_inputs=True):
        model = meta.to_empty(device=device)
        work = build_workload(config, eager, device, model=model, scaler=False)
        tracker.add([*model.parameters(), *model.buffers(), *work.inputs])
        with tracker:
            for _ in range(steps):
                work.step()
    return tracker.peak
