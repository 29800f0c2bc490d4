"""FLOPs (multiply-adds, the fvcore / paper convention) of one view, counted on the meta device.

The model and its input are built on the meta device, so fvcore's trace sees every op and its
shapes while nothing is allocated: joint attention at 96 x 448 counts in about a second. fvcore
has no handle for `aten::scaled_dot_product_attention` and warns about element-wise ops; we
register handles for both, so that `unsupported_ops` lists only what is truly unknown.

The 3D CNN baselines are counted by `torch.utils.flop_counter` instead: fvcore's JIT trace
cannot follow their ops on the meta device (a data-dependent check in a meta kernel), and on
real tensors a SlowFast R101 at 64 x 256 is a slow forward pass. The torch counter dispatches
each op on meta and counts convolutions and matrix products, 2 FLOPs per multiply-add; halved,
that is the same convention (element-wise ops and batch norm are 0; fvcore would add 0.5% for
batch norm). Every row names its `counter`.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

with warnings.catch_warnings():  # fvcore's import uses the deprecated torch.jit.script
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import get_shape

from tsfbench.config import RunConfig
from tsfbench.measure.peak_parts import forward_parts, nearest_owner, part_names
from tsfbench.models.build import build_model, example_input
from tsfbench.models.parts import OTHER
from tsfbench.models.timesformer import TimeSformer


def sdpa_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """QK^T plus attention-weighted V: batch x L x S x (E + Ev) multiply-adds."""
    q, k, v = (get_shape(value) for value in inputs[:3])
    return math.prod(q[:-1]) * k[-2] * (q[-1] + v[-1])


def no_macs(inputs: list[Any], outputs: list[Any]) -> int:
    return 0


# Element-wise and data-movement ops: not multiply-adds, hence 0 by the paper's convention
# (fvcore already ignores views, copies and concatenation). Naming them keeps any *other*
# unknown op visible in `unsupported_ops`.
ELEMENTWISE_OPS = (
    "aten::add", "aten::add_", "aten::sub", "aten::mul", "aten::mul_", "aten::div", "aten::div_",
    "aten::gelu", "aten::gelu_", "aten::softmax", "aten::mean", "aten::neg", "aten::exp",
    "aten::sum",
    "aten::bernoulli_", "aten::repeat_interleave", "aten::empty_like", "aten::expand_as",
    "aten::upsample_nearest1d", "aten::upsample_linear1d", "aten::upsample_bicubic2d",
    "aten::sigmoid", "aten::silu", "aten::hardswish", "aten::pad", "aten::adaptive_avg_pool3d",
    "aten::avg_pool3d", "aten::max_pool3d", "aten::dropout", "aten::rsub", "aten::index_select",
    "aten::view_as", "aten::argsort",
)  # fmt: skip
OP_HANDLES = {"aten::scaled_dot_product_attention": sdpa_macs} | dict.fromkeys(
    ELEMENTWISE_OPS, no_macs
)


def analyze(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> FlopCountAnalysis:
    """fvcore analysis with our op handles and without its warnings (we report instead)."""
    analysis = FlopCountAnalysis(model, inputs).set_op_handle(**OP_HANDLES)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation notices from the trace
        analysis.total()
    return analysis


def cnn_macs(model: nn.Module, clip: torch.Tensor) -> tuple[int, dict[str, int]]:
    """Multiply-adds of a 3D CNN on `clip` and per top-level part (`blocks.<i>`, `layer1`, ...)."""
    with FlopCounterMode(display=False) as counter:
        model(clip)
    root = type(model).__name__ + "."
    parts: Counter[str] = Counter()
    for name, ops in counter.get_flop_counts().items():
        part = name.removeprefix(root)
        if name.startswith(root) and ("." not in part or is_block(part)) and part != "blocks":
            parts[part] += sum(ops.values()) // 2
    total = counter.get_total_flops() // 2
    parts["other"] = total - sum(parts.values())
    return total, dict(parts)


def is_block(part: str) -> bool:
    """`blocks.3`: an element of a model's top-level ModuleList, the pytorchvideo stages."""
    head, _, index = part.partition(".")
    return head == "blocks" and index.isdigit()


def traced_blocks(
    config: RunConfig, model: TimeSformer, shortcut: bool = True, **overrides: object
) -> tuple[FlopCountAnalysis, TimeSformer, int]:
    """fvcore's analysis of `model` (a TimeSformer of `config`), the model it traced and how
    many times its block `blocks.0` stands for the model's blocks.

    Every block runs the same ops on the same shapes (blocks differ only in their weights'
    values and drop-path rate, which counts ignore at inference), so the full model's count is
    a one-block copy's plus `depth - 1` times its block: the same number as a full trace
    (`benchmarks/flops_grid.py` checks the whole grid) in about a sixth of the time. The whole
    model is traced (and stands for itself) where `shortcut` is False or fvcore met an op it
    cannot count: then only a full trace says how often.
    """
    clip = (example_input(config, device="meta"),)
    depth = len(model.blocks)
    if shortcut and depth > 1:
        single = build_model(config, device="meta", **{**overrides, "depth": 1})
        analysis = analyze(single, clip)
        if not analysis.unsupported_ops():
            return analysis, single, depth
    return analyze(model, clip), model, 1


def own_counts(counts: Mapping[str, int], parts: Mapping[str, str]) -> Counter[str]:
    """Per part, its modules' counts less those of the mapped modules nested in them (a module
    not mapped counts in its nearest mapped ancestor's part)."""
    own: Counter[str] = Counter()
    for name, part in parts.items():
        inner = [
            m for m in parts if m != name and nearest_owner(m.rpartition(".")[0], parts) == name
        ]
        own[part] += counts.get(name, 0) - sum(counts.get(m, 0) for m in inner)
    return own


def part_macs(
    config: RunConfig, overrides: Mapping[str, object] | None = None, shortcut: bool = True
) -> tuple[int, dict[str, int]]:
    """Multiply-adds of one clip, in all and per forward part (`models/parts.py`'s names, which
    `tsfbench profile` and the memory breakdown use too; `other`: what no part holds)."""
    return _counted(config, dict(overrides or {}), shortcut, by_part=True)[1:3]


def _counted(
    config: RunConfig, overrides: dict[str, object], shortcut: bool, by_part: bool
) -> tuple[nn.Module, int, dict[str, int], str, dict[str, int]]:
    """(model, multiply-adds, per part if `by_part`, counter, unsupported ops) of one clip."""
    model = build_model(config, device="meta", **overrides)
    parts: Counter[str] = Counter()
    if not isinstance(model, TimeSformer):
        total, stages = cnn_macs(model, example_input(config, device="meta"))
        if by_part:
            names = part_names(model)
            for name, macs in stages.items():
                if name != OTHER:
                    parts[names.get(name, name)] += macs
            parts[OTHER] = total - sum(parts.values())
        return model, total, in_order(parts, model), "torch.utils.flop_counter", {}
    analysis, traced, depth = traced_blocks(config, model, shortcut, **overrides)
    by_module = analysis.by_module()
    total = int(analysis.total()) + (depth - 1) * by_module.get("blocks.0", 0)
    if by_part:
        in_block = lambda name: name == "blocks.0" or name.startswith("blocks.0.")  # noqa: E731
        counts = {
            name: value * (depth if in_block(name) else 1) for name, value in by_module.items()
        }
        parts = own_counts(counts, part_names(traced))
        parts[OTHER] = total - sum(parts.values())
    return model, total, in_order(parts, model), "fvcore", dict(analysis.unsupported_ops())


def in_order(parts: Mapping[str, int], model: nn.Module) -> dict[str, int]:
    """`parts` in the order of `model`'s forward pass, `other` last."""
    order = [*forward_parts(model), OTHER]
    return {part: parts[part] for part in sorted(parts, key=order.index)}


def count_flops(
    config: RunConfig, with_breakdown: bool = False, shortcut: bool = True
) -> dict[str, Any]:
    """Parameters and multiply-adds of one view of `config`, and inference TFLOPs over its views;
    with `with_breakdown`, GFLOPs per part (`part_macs`).

    `shortcut` counts a TimeSformer from one block (`traced_blocks`); False traces the whole
    model.
    """
    model, macs, parts, counter, unsupported = _counted(config, {}, shortcut, with_breakdown)
    row: dict[str, Any] = {
        **config.as_dict(),
        "params": sum(p.numel() for p in model.parameters()),
        "flops_per_view": macs,
        "gflops_per_view": macs / 1e9,
        "tflops": macs * config.views / 1e12,
        "counter": counter,
        "unsupported_ops": unsupported,
    }
    if with_breakdown:
        row["breakdown_gflops"] = {k: v / 1e9 for k, v in parts.items()}
    return row


def count_many(
    configs: Sequence[RunConfig],
    with_breakdown: bool = False,
    workers: int | None = None,
    shortcut: bool = True,
) -> Iterator[dict[str, Any]]:
    """`count_flops` of each configuration, in order, spread over `workers` processes.

    Tracing is Python-bound, so processes (not threads) scale it; this process counts a share
    itself, so `workers` processes hold a copy of torch, not `workers + 1`.
    """
    workers = max(1, min(workers or os.cpu_count() or 1, len(configs)))
    if workers == 1 or len(configs) < 4:
        yield from (count_flops(config, with_breakdown, shortcut) for config in configs)
        return
    spawn = multiprocessing.get_context("spawn")  # no fork of a process that has torch threads
    with ProcessPoolExecutor(workers - 1, mp_context=spawn) as pool:
        elsewhere = {
            i: pool.submit(count_flops, config, with_breakdown, shortcut)
            for i, config in enumerate(configs)
            if i % workers
        }
        for i, config in enumerate(configs):
            yield (
                elsewhere[i].result()
                if i in elsewhere
                else count_flops(config, with_breakdown, shortcut)
            )
