"""What holds the predicted peak: its bytes by category and, for activations, by model part.

The prediction's own steps (`predict.track_peak`) run under `PeakParts`, a `LiveBytes` that
labels every storage when it is created and keeps a running total per label, so the figures at
the peak are a copy of a few dozen totals taken when a new peak is reached. Every storage the
predictor counts at its peak is in exactly one row, so the rows sum to `predict_peak` exactly
(checked on every call).

Categories (the rule that puts a storage in one):
- `parameters`, `buffers`, `inputs` (clip and labels), `optimizer_state` (SGD's momentum),
  `gradients` (a parameter's `.grad`): the storages of those objects, whatever created them.
- `activations`: created in the forward, and held at the peak by the autograd graph for the
  backward. A saved-tensor pack hook counts a storage in when a node saves it and its release
  counts it out, so this is exactly what the graph references, not a guess from op names.
- `temporaries`: what the op running at the peak has just returned (`op` names it). Autograd
  saves an op's outputs only after the op returns, so they are never `activations` yet.
- `intermediates`: created in the forward, alive, not saved and not the running op's: tensors
  the model's code still holds (inference's residual stream, the qkv attention is reading), and
  storages freed since the previous op (the predictor counts a free after the next op's peak).
- `activation_gradients`: created in the backward and not a parameter's gradient: the gradients
  flowing back through the activations (part: none; backward ops run outside the modules).

Parts (for storages the forward creates; `part_names` maps modules to them) are the vocabulary
of `models/parts.py`, which `tsfbench profile` names its times by too: TimeSformer
`patch_embed` (with the positional tables), per attention step `<step>.qkv`, `<step>.attend`
(the kernel and the head split / merge around it), `<step>.proj`, `<step>.fc` (an extra step's
Linear), `<step>.grouping` (forming and undoing the groups), `<step>` (the step's residual add
and class-token average), `norm`, `block` (the block's token join and MLP residual), `mlp`,
`head`; a 3D CNN's top-level stages (`stem`, `res2`..`res5`, `head`, else the module's name);
anything else is `other` (the loss).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.predict import LiveBytes, _StorageRef, track_peak
from tsfbench.measure.workload import Workload
from tsfbench.models.parts import (
    BLOCK,
    HEAD,
    MLP,
    NORM,
    OTHER,
    PATCH_EMBED,
    step_part,
    timesformer_parts,
)
from tsfbench.models.timesformer import Block, TimeSformer

CATEGORIES = (
    "parameters",
    "buffers",
    "gradients",
    "optimizer_state",
    "inputs",
    "activations",
    "temporaries",
    "intermediates",
    "activation_gradients",
)
_FORWARD, _BACKWARD = "forward", "backward"  # kinds of storages the step's ops create
_CNN_HEADS = ("head", "fc", "avgpool", "classifier")


class _LabelledRef(_StorageRef):
    """A storage's weak reference with its label: what it is, which part made it, saved by how
    many autograd nodes."""

    __slots__ = ("kind", "part", "saved")


def _bucket(ref: _LabelledRef) -> tuple[str, str]:
    """The (category, part) row a storage counts in, from its label as it stands."""
    if ref.kind == _FORWARD:
        return ("activations" if ref.saved else "intermediates", ref.part)
    if ref.kind == _BACKWARD:
        return ("activation_gradients", "")
    return (ref.kind, "")


class _Saved:
    """What the pack hook gives autograd to hold: the tensor, and a note to the tracker when
    autograd lets go of it (the node ran its backward, or the graph was freed)."""

    __slots__ = ("ref", "tensor", "tracker")

    def __init__(self, tensor: torch.Tensor, ref: _LabelledRef, tracker: PeakParts) -> None:
        self.tensor, self.ref, self.tracker = tensor, ref, tracker

    def __del__(self) -> None:
        self.tracker.unsaved.append(self.ref)


@dataclass
class _Snapshot:
    """The running totals at one moment, with the running op's outputs set apart."""

    totals: dict[tuple[str, str], int]
    temporaries: dict[str, int]
    op: str


class PeakParts(LiveBytes):
    """`LiveBytes` that also knows, at its peak, which category and part holds every byte.

    Totals per (category, part) change when a storage is created, freed, saved, released by
    autograd or relabelled (a gradient, a momentum buffer), each at the same moment `LiveBytes`
    counts it (a free or a release after the next op's peak), so their sum is `current` at all
    times; a copy is kept at each new peak, and at the first op for `carry_over`.
    """

    ref_type = _LabelledRef

    def __init__(self) -> None:
        super().__init__()
        self.totals: dict[tuple[str, str], int] = defaultdict(int)
        self.parts = [OTHER]  # the part running now; module hooks push and pop
        self.op: Any = None
        self.fresh: list[_LabelledRef] = []  # created by the op running now
        self.freed_refs: list[_LabelledRef] = []  # freed since the last op, still counted
        self.unsaved: list[_LabelledRef] = []  # released by autograd since the last op
        self.at_peak: _Snapshot | None = None
        self.at_first: _Snapshot | None = None
        self._hooks: saved_tensors_hooks | None = None

    # --- counting ------------------------------------------------------------------------

    def _track(self, storage: torch.UntypedStorage, key: int) -> _StorageRef:
        ref = super()._track(storage, key)
        assert isinstance(ref, _LabelledRef)
        backward = len(self.parts) == 1 and torch._C._current_autograd_node() is not None
        ref.kind, ref.part, ref.saved = _BACKWARD if backward else _FORWARD, self.parts[-1], 0
        self.totals[_bucket(ref)] += ref.nbytes
        self.fresh.append(ref)
        return ref

    def _on_free(self, ref: _StorageRef) -> None:
        if self.live.get(ref.key) is ref:
            assert isinstance(ref, _LabelledRef)
            self.freed_refs.append(ref)
        super()._on_free(ref)

    def add(self, tensors: Iterable[Any]) -> None:
        peak = self.peak
        self.fresh = []
        super().add(tensors)
        if self.peak > peak:
            self.at_peak = self._snapshot()

    def settle(self) -> None:
        if self.first is not None and self.at_first is None:
            self.at_first = self._snapshot()
        # releases before frees: a storage autograd let go of may be freed by the same release
        unsaved, self.unsaved = self.unsaved, []
        for ref in unsaved:
            self._relabel(ref, saved=ref.saved - 1)
        for ref in self.freed_refs:
            self.totals[_bucket(ref)] -= ref.nbytes
        self.freed_refs = []
        super().settle()

    def carry_over(self) -> None:
        peak = self.peak
        super().carry_over()
        if self.peak > peak and self.at_first is not None:
            totals = defaultdict(int, self.at_first.totals)
            for ref in self.freed_refs:
                totals[_bucket(ref)] += ref.nbytes
            self.at_peak = replace(self.at_first, totals=totals)

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict | None = None
    ) -> Any:
        self.op, self.fresh = func, []
        try:
            return super().__torch_dispatch__(func, types, args, kwargs)
        finally:
            self.op = None

    def _relabel(self, ref: _LabelledRef, **label: Any) -> None:
        self.totals[_bucket(ref)] -= ref.nbytes
        for name, value in label.items():
            setattr(ref, name, value)
        self.totals[_bucket(ref)] += ref.nbytes

    def _snapshot(self) -> _Snapshot:
        totals = dict(self.totals)
        temporaries: dict[str, int] = defaultdict(int)
        for ref in self.fresh:
            if ref.kind in (_FORWARD, _BACKWARD):
                totals[_bucket(ref)] -= ref.nbytes
                temporaries[ref.part if ref.kind == _FORWARD else ""] += ref.nbytes
        op = "" if self.op is None else str(self.op)
        node = torch._C._current_autograd_node()
        if op and node is not None:
            op += f" (backward: {node.name()})"
        return _Snapshot(totals, dict(temporaries), op)

    # --- labels --------------------------------------------------------------------------

    def label(self, tensors: Iterable[torch.Tensor | None], kind: str) -> None:
        """Count the storages of `tensors` as `kind` from now on (a category of their own)."""
        for tensor in tensors:
            ref = None if tensor is None else self.live.get(tensor.untyped_storage()._cdata)
            if ref is not None and ref.kind != kind:
                self._relabel(ref, kind=kind)

    def watch(self, work: Workload) -> None:
        model, optimizer = work.model, work.optimizer
        self.label(model.parameters(), "parameters")
        self.label(model.buffers(), "buffers")
        self.label(work.inputs, "inputs")
        for param in model.parameters():
            if param.requires_grad:
                param.register_post_accumulate_grad_hook(
                    lambda param: self.label([param.grad], "gradients")
                )
        if optimizer is not None:
            self.label(_state_tensors(optimizer), "optimizer_state")
            optimizer.register_step_post_hook(
                lambda optimizer, *_: self.label(_state_tensors(optimizer), "optimizer_state")
            )
        names = part_names(model)
        for name, module in model.named_modules():
            part = names.get(name)
            if part is not None:
                module.register_forward_pre_hook(lambda *_, part=part: self.parts.append(part))
                module.register_forward_hook(self._leave_part)  # a hook's return replaces output
        if isinstance(model, TimeSformer):
            label_timesformer_code(model, self.in_part)
        if self.at_peak is not None:  # the peak so far is the state set up: relabelled now
            assert self.peak == self.current and not self.freed_refs
            self.fresh, self.at_peak = [], self._snapshot()

    def _leave_part(self, *_: Any) -> None:
        self.parts.pop()

    @contextmanager
    def in_part(self, part: str) -> Iterator[None]:
        self.parts.append(part)
        try:
            yield
        finally:
            self.parts.pop()

    # --- saved for backward ----------------------------------------------------------------

    def _pack(self, tensor: torch.Tensor) -> Any:
        ref = self.live.get(tensor.untyped_storage()._cdata)
        if not isinstance(ref, _LabelledRef):
            return tensor
        self._relabel(ref, saved=ref.saved + 1)
        return _Saved(tensor, ref, self)

    @staticmethod
    def _unpack(packed: Any) -> torch.Tensor:
        return packed.tensor if isinstance(packed, _Saved) else packed

    def __enter__(self) -> PeakParts:
        self._hooks = saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        try:
            super().__exit__(*exc)
        finally:
            assert self._hooks is not None
            self._hooks.__exit__(*exc)

    # --- the result ------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """The peak's bytes, one row per (category, part), in `CATEGORIES` order; the
        `temporaries` rows name the op running at the peak."""
        snapshot = self.at_peak
        assert snapshot is not None, "no op ran"
        rows = []
        for category in CATEGORIES:
            if category == "temporaries":
                parts = snapshot.temporaries or {"": 0}  # the op is named even if it made none
                rows += [_row(category, part, n, snapshot.op) for part, n in _largest(parts)]
                continue
            found = {part: n for (cat, part), n in snapshot.totals.items() if cat == category}
            rows += [_row(category, part, n) for part, n in _largest(found) if n]
        total = sum(row["bytes"] for row in rows)
        if total != self.peak:  # an internal error: a storage counted twice or not at all
            raise RuntimeError(f"peak parts sum to {total} bytes, the peak is {self.peak}")
        return rows


def _row(category: str, part: str, nbytes: int, op: str = "") -> dict[str, Any]:
    return {"category": category, "part": part, "bytes": nbytes, "op": op}


def _largest(amounts: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(amounts.items(), key=lambda item: (-item[1], item[0]))


def _state_tensors(optimizer: torch.optim.Optimizer) -> Iterator[torch.Tensor]:
    for state in optimizer.state.values():
        yield from (value for value in state.values() if isinstance(value, torch.Tensor))


def part_names(model: nn.Module) -> dict[str, str]:
    """Qualified module name -> part, for the modules that start one (their submodules belong
    to it too; a module not listed runs in its caller's part)."""
    if isinstance(model, TimeSformer):
        return _timesformer_parts(model)
    return _cnn_parts(model)


def nearest_owner(name: str, owners: Mapping[str, str]) -> str | None:
    """The deepest of `owners`' module names that `name` (a module or parameter) lies in."""
    while name:
        if name in owners:
            return name
        name = name.rpartition(".")[0]
    return None


def forward_parts(model: nn.Module) -> list[str]:
    """Every part of `model`'s forward in the order it runs (`other` not included): the rows
    `tsfbench profile` and the memory breakdown can have."""
    if isinstance(model, TimeSformer):
        steps = model.blocks[0].steps
        return timesformer_parts([(step.name, bool(step.prefix)) for step in steps])
    return list(dict.fromkeys(_cnn_parts(model).values()))


def _timesformer_parts(model: TimeSformer) -> dict[str, str]:
    parts = {"patch_embed": PATCH_EMBED, "norm": NORM, "head": HEAD}
    for index, block in enumerate(model.blocks):
        assert isinstance(block, Block)
        at = f"blocks.{index}."
        parts |= {f"blocks.{index}": BLOCK, f"{at}norm2": NORM, f"{at}mlp": MLP}
        for step in block.steps:
            prefix = at + step.prefix
            parts |= {f"{prefix}norm1": NORM, f"{prefix}attn": step_part(step.name, "attend")}
            parts |= {f"{prefix}attn.qkv": step_part(step.name, "qkv")}
            parts |= {f"{prefix}attn.proj": step_part(step.name, "proj")}
            if step.prefix:
                parts[f"{prefix}fc"] = step_part(step.name, "fc")
    return parts


def _cnn_parts(model: nn.Module) -> dict[str, str]:
    """Top-level stages: stem, res2.. (in order), head; pytorchvideo's `blocks` list unpacked."""
    children = list(model.named_children())
    if len(children) == 1 and isinstance(children[0][1], nn.ModuleList):
        children = [(f"{children[0][0]}.{n}", m) for n, m in children[0][1].named_children()]
    parts, stage = {}, 2
    for name, module in children:
        kind = type(module).__name__.lower()
        if "stem" in kind or name == "stem":
            parts[name] = "stem"
        elif "head" in kind or name in _CNN_HEADS:
            parts[name] = "head"
        elif "stage" in kind or name.startswith("layer"):
            parts[name], stage = f"res{stage}", stage + 1
        else:
            parts[name] = name
    return parts


def label_timesformer_code(
    model: TimeSformer, in_part: Callable[[str], contextlib.AbstractContextManager[Any]]
) -> Callable[[], None]:
    """Parts for the code outside any submodule: the embedding's positional tables, each step
    and its grouping, each run inside `in_part(part)` (a memory label, or a profiler range).
    Instance attributes wrap the methods, so only this model is affected, until the returned
    function takes them off again."""
    model.embed = _within(in_part, PATCH_EMBED, model.embed)  # type: ignore[method-assign]
    steps = []
    for block in model.blocks:
        assert isinstance(block, Block)
        names = [step.name for step in block.steps]
        run_step = block.run_step

        def labelled(index: int, *args: Any, run_step: Any = run_step, names: Any = names) -> Any:
            with in_part(step_part(names[index])):
                return run_step(index, *args)

        block.run_step = labelled  # type: ignore[method-assign]
        steps.append(block.steps)
        block.steps = tuple(
            replace(
                step, grouping=_Grouping(step.grouping, in_part, step_part(step.name, "grouping"))
            )
            for step in block.steps
        )

    def restore() -> None:
        del model.embed
        for block, original in zip(model.blocks, steps, strict=True):
            del block.run_step
            block.steps = original

    return restore


class _Grouping:
    """A scheme's grouping whose split and merge run in the step's `grouping` part."""

    def __init__(self, grouping: Any, in_part: Callable, part: str) -> None:
        self.grouping, self.part = grouping, part
        self.split = _within(in_part, part, grouping.split)
        self.merge = _within(in_part, part, grouping.merge)


def _within(in_part: Callable, part: str, function: Callable) -> Callable:
    def run(*args: Any, **kwargs: Any) -> Any:
        with in_part(part):
            return function(*args, **kwargs)

    return run


def peak_breakdown(
    config: RunConfig,
    settings: ProbeSettings,
    overrides: Mapping[str, object] | None = None,
) -> list[dict[str, Any]]:
    """Bytes held at `predict_peak`'s peak, by category and part: rows of `category`, `part`,
    `bytes` and `op` (the op running at the peak, on the `temporaries` rows), summing exactly
    to `predict_peak(config, settings, overrides=overrides)`. One prediction's time, plus the
    labelling (see `benchmarks/predict_speed.py`)."""
    tracker = track_peak(config, settings, overrides=overrides, tracker_type=PeakParts)
    assert isinstance(tracker, PeakParts)
    return tracker.rows()


def breakdown_records(
    configs: Sequence[RunConfig],
    settings: ProbeSettings,
    overrides: Mapping[str, object] | None = None,
    progress: Callable[[int, int, RunConfig, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """`peak_breakdown` of each configuration as flat records: the configuration, the step's
    settings, the predicted peak, one row and its share of the peak."""
    step = {key: getattr(settings, key) for key in ("mode", "dtype", "batch", "backend")}
    step["checkpointing"] = settings.checkpointing
    records: list[dict[str, Any]] = []
    for done, config in enumerate(configs, start=1):
        rows = peak_breakdown(config, settings, overrides)
        peak = sum(row["bytes"] for row in rows)
        head = config.as_dict() | step | {"predicted_peak_bytes": peak}
        records += [head | row | {"share": row["bytes"] / peak} for row in rows]
        if progress is not None:
            progress(done, len(configs), config, records[-1])
    return records
