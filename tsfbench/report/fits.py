"""The report's "What fits" table: stored `fit` answers beside the paper's out-of-memory points.

A fit answer (suite `measure = ["fit"]`, `tsfbench fit`) is predicted, not run: the largest
clip length (or crop, or batch) whose training or inference step fits a card's budget. The
paper's Figure 3 tested 8, 32, 64 and 96 frames at 224 px and crops of 224 to 560 at 8 frames on
a 32 GB V100 with its released code (eager attention); where it ran out of memory is
`reference.PAPER_OOM`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from tsfbench.config import GIB
from tsfbench.models.registry import TIMESFORMER
from tsfbench.report.reference import FIGURE3_FRAMES, FIGURE3_SIZES, PAPER_GPU, PAPER_OOM
from tsfbench.store import Status, missing

COLUMNS = [
    "model", "attention", "backend", "run", "card", "budget_gib", "axis", "held", "largest",
    "largest_peak_gib", "next", "next_peak_gib", "answer", "paper", "env",
]  # fmt: skip


def paper_outcome(model: str, attention: str, axis: str, held: Mapping[str, Any]) -> str | None:
    """What the paper's V100 did on this axis (the points of its Figure 3), or None where it
    tested none: the clip length at 224 px and the crop at 8 frames, batch 1."""
    if model not in TIMESFORMER or held.get("batch", 1) != 1:
        return None
    if axis == "frames" and held.get("size") == 224:
        tested, at = FIGURE3_FRAMES, lambda x: (attention, x, 224)
    elif axis == "size" and held.get("frames") == 8:
        tested, at = FIGURE3_SIZES, lambda x: (attention, 8, x)
    else:
        return None
    oom = [x for x in tested if at(x) in PAPER_OOM]
    ran = [x for x in tested if at(x) not in PAPER_OOM]
    if not oom:
        return f"ran all tested, up to {max(tested)}"
    return f"ran {max(ran) if ran else 'none'}; out of memory from {min(oom)}"


def fits_table(rows: pd.DataFrame, env_labels: Mapping[str, str]) -> pd.DataFrame:
    """One row per stored fit answer (the newest of each task), readable."""
    rows = rows[rows["status"] == Status.PREDICTED]
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = rows.sort_values("created", kind="stable").drop_duplicates(["task"], keep="last")
    table = []
    for r in rows.to_dict("records"):
        # integers: in a store of mixed measurements pandas reads these columns as floats
        held = {key: int(r[key]) for key in ("frames", "size", "batch")}
        del held[r["axis"]]
        answer = r["answer"]
        if answer == "all fit":
            answer = f"all fit up to {r['axis_high']}"
        table.append(
            {
                "model": r["model"],
                "attention": r["attention"],
                "backend": r["backend"],
                "run": f"{r['mode']} {r['dtype']} b{int(r['batch'])} predicted on {r['device']}"
                + (" checkpointed" if r.get("checkpointing") is True else ""),
                "card": r["card"] if not missing(r.get("card")) else None,
                "budget_gib": r["budget_bytes"] / GIB,
                "axis": r["axis"],
                "held": ", ".join(f"{k} {v}" for k, v in held.items()),
                "largest": r["largest"],
                "largest_peak_gib": _gib(r["largest_peak_bytes"]),
                "next": r["next"],
                "next_peak_gib": _gib(r["next_peak_bytes"]),
                "answer": answer,
                "paper": paper_outcome(r["model"], r["attention"], r["axis"], held),
                "env": env_labels.get(r["environment"]),
            }
        )
    order = {"frames": 0, "size": 1, "batch": 2}
    frame = pd.DataFrame(table, columns=COLUMNS)
    frame = frame.assign(_axis=frame["axis"].map(order))
    keys = ["_axis", "budget_gib", "card", "attention", "backend", "run"]
    return frame.sort_values(keys).drop(columns="_axis").reset_index(drop=True)


def _gib(value: Any) -> float | None:
    return None if missing(value) else float(value) / GIB


def fits_rows(frame: pd.DataFrame) -> list[list[str]]:
    """The markdown rows: the boundary pair with its predicted peaks, and the paper's outcome."""

    def value(v: Any, peak: Any) -> str:
        return "-" if missing(v) else f"{int(v)} ({peak:.1f} GiB)"

    return [
        [
            r["attention"],
            r["backend"],
            r["run"],
            f"{r['card'] or '-'} ({r['budget_gib']:.1f} GiB)",
            f"{r['axis']} ({r['held']})",
            value(r["largest"], r["largest_peak_gib"]),
            value(r["next"], r["next_peak_gib"]),
            r["answer"],
            r["paper"] or "-",
        ]
        for r in frame.to_dict("records")
    ]


NOTE = (
    "Predicted, not run (`tsfbench fit`, docs/fit.md): per scheme, the largest value of the axis "
    "whose step fits the budget, and the next one, over it, each with its predicted peak. The "
    "budget is the card's memory less a context reserve and a 5% allocator margin. The paper "
    f"column is what its {PAPER_GPU} did on the Figure 3 points it tested (the released code: "
    "eager attention), so compare it with the `math` rows."
)
HEADER = [
    "attention", "backend", "run", "card (budget)", "axis (held)", "largest that fits (peak)",
    "next, over (peak)", "answer", f"paper ({PAPER_GPU})",
]  # fmt: skip
