"""The one vocabulary of a TimeSformer's parts, as data (no torch).

`tsfbench profile` (time and FLOPs per part, `measure/profile.py`), the peak-memory breakdown
(bytes per part, `measure/peak_parts.py`) and the report's "Where the time goes" all name parts
from here, so a user reading the time table beside the memory table sees the same names:

- `patch_embed`: the patch embedding with the positional and time tables;
- per attention step, by its scheme's name (`time`, `space`, `joint`, `width`, `height`,
  `local`, `global`): `<step>.qkv`, `<step>.attend` (the attention kernel and the head split and
  merge around it), `<step>.proj`, `<step>.fc` (an extra step's D x D Linear), `<step>.grouping`
  (the permutes, copies and gathers that form and undo its groups) and `<step>` alone (the
  step's own code: the class token joined to each group and averaged back, the residual add);
- `norm` (every LayerNorm), `block` (each block's own code: class token and patches joined, the
  MLP's residual add), `mlp`, `head`; `other`: whatever no part claims (the loss, ...).

A 3D CNN's parts are its top-level stages (`peak_parts.part_names`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

PATCH_EMBED = "patch_embed"
NORM, BLOCK, MLP, HEAD, OTHER = "norm", "block", "mlp", "head", "other"
# The attention steps' names (`timesformer.SCHEMES` builds its schemes from them)
STEPS = ("time", "space", "joint", "width", "height", "local", "global")
# An attention step's sub-parts, in the order they run (the grouping's split comes first and
# its merge last, but its time is one part)
STEP_KINDS = ("qkv", "attend", "proj", "fc", "grouping")
STEP = "step"  # the kind of a step's own code, the part named by the step alone
BACKWARD = " backward"  # training: `<part> backward`, the autograd nodes of the part's ops


def step_part(step: str, kind: str = "") -> str:
    """`time`, `qkv` -> `time.qkv`; `time` alone is the step's own code."""
    return f"{step}.{kind}" if kind else step


def timesformer_parts(steps: Sequence[tuple[str, bool]]) -> list[str]:
    """Every forward part of a TimeSformer whose blocks run `steps` ((name, has its own fc)
    pairs, in order), in the order of the forward pass; `other` not included."""
    parts = [PATCH_EMBED]
    for name, extra in steps:
        kinds = [kind for kind in STEP_KINDS if extra or kind != "fc"]
        parts += [step_part(name, kind) for kind in kinds] + [step_part(name)]
    return [*parts, NORM, BLOCK, MLP, HEAD]


def by_step(values: Mapping[str, float]) -> dict[str, float]:
    """Each attention step's parts (`time.qkv`, `time.attend`, ..., `time`) summed into one
    `time.*` entry, the other parts as they are: `tsfbench flops --breakdown`'s table, narrow
    enough to set five schemes side by side."""
    steps: dict[str, float] = {}
    for part, value in values.items():
        step = part.partition(".")[0]
        key = f"{step}.*" if step in STEPS else part
        steps[key] = steps.get(key, 0) + value
    return steps


def kind(part: str) -> str:
    """What a part is, whatever its step: `time.qkv backward` -> `qkv`, `time` -> `step`,
    `mlp` -> `mlp`. The report colours a part by its kind."""
    base = part.removesuffix(BACKWARD)
    step, _, sub = base.partition(".")
    if step in STEPS:
        return sub or STEP
    return base
