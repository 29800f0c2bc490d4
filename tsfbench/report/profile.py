"""The report's "Where the time goes": stored `profile` rows as a table, a figure and sentences.

Each profile row (`measure/profile.py`) holds its parts; here they become one table row per part,
a stacked-bar PNG per run (each scheme's shares of time beside its shares of FLOPs), and one
sentence per scheme worded from the numbers. Like the rest of the report: no model, no torch.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tsfbench.models.parts import kind
from tsfbench.models.registry import ATTENTIONS
from tsfbench.report.plots import data_digest, is_current, stamp
from tsfbench.store import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLUMNS = ["model", "attention", "frames", "size", "run", "part", "params", "time_ms"]
COLUMNS += ["time_share", "macs", "flop_share", "gflops_per_s", "peak_share", "time_per_flop"]
# A part's colour is its kind's (`models.parts.kind`: an attention step's qkv has qkv's colour
# whatever the step; `step` is a step's own code)
COLOURS = {
    "patch_embed": "C0", "qkv": "C1", "attend": "C2", "proj": "C3", "fc": "C4",
    "grouping": "C5", "step": "tan", "norm": "C6", "block": "C7", "mlp": "C8", "head": "C9",
    "optimizer": "black", "other": "lightgrey",
}  # fmt: skip
KINDS = tuple(COLOURS)


def profile_table(records: list[dict[str, Any]], runs: list[str]) -> pd.DataFrame:
    """One row per (profiled configuration, part), in the parts' order; `runs` labels each
    record's run (`infer fp32 b1 cpu`), a shrunken model's with its overrides."""
    rows = []
    for record, run in zip(records, runs, strict=True):
        if isinstance(record.get("overrides"), dict) and record["overrides"]:
            run += " (" + ", ".join(f"{k}={v}" for k, v in record["overrides"].items()) + ")"
        for part in record["parts"]:
            rows.append({**{key: record[key] for key in COLUMNS[:4]}, "run": run, **part})
    return pd.DataFrame(rows, columns=COLUMNS)


def _order(table: pd.DataFrame) -> list[str]:
    known = {attention: i for i, attention in enumerate(ATTENTIONS)}
    keys = table[["attention", "frames", "size"]].drop_duplicates().itertuples(index=False)
    ordered = sorted(keys, key=lambda k: (known.get(k[0], 9), k[1], k[2]))
    return [f"{attention} {frames}x{size}" for attention, frames, size in ordered]


def _label(table: pd.DataFrame) -> pd.Series:
    return table["attention"] + " " + table["frames"].astype(str) + "x" + table["size"].astype(str)


def sentences(table: pd.DataFrame) -> list[str]:
    """Per run and scheme: the part with the largest share of the time, against its FLOP share."""
    lines = []
    for run, points in table.groupby("run", sort=False):
        points = points.assign(label=_label(points))
        for label in _order(points):
            parts = points[points["label"] == label]
            top = parts.loc[parts["time_share"].idxmax()]
            text = (
                f"{label} ({run}): `{top['part']}` takes the largest share of the time, "
                f"{100 * top['time_share']:.0f}%"
            )
            if top["flop_share"] > 0:
                ratio = top["time_share"] / top["flop_share"]
                text += f" for {100 * top['flop_share']:.0f}% of the FLOPs: "
                if ratio >= 1.1:
                    text += f"{ratio:.1f}x its FLOP share, below the model's average rate"
                elif ratio <= 0.9:
                    text += f"{ratio:.2f}x its FLOP share, above the model's average rate"
                else:
                    text += "about its FLOP share"
            else:
                text += ", for none of the FLOPs (data movement or element-wise work)"
            lines.append(text + ".")
    return lines


def draw(points: pd.DataFrame) -> Figure:
    """One run: a pair of stacked bars per scheme, shares of time and shares of FLOPs."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = points.assign(label=_label(points))
    labels = _order(points)
    fig = Figure(figsize=(max(6.4, 1.9 * len(labels) + 3), 5.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    seen: set[str] = set()
    for index, label in enumerate(labels):
        parts = points[points["label"] == label]
        for offset, share in ((-0.2, "time_share"), (0.2, "flop_share")):
            bottom = 0.0
            for part in parts.to_dict("records"):
                height = 100 * float(part[share])
                if height <= 0:
                    continue
                name = kind(part["part"])
                hatch = "//" if part["part"].endswith(" backward") else None
                ax.bar(
                    index + offset, height, width=0.38, bottom=bottom, hatch=hatch,
                    color=COLOURS.get(name, "white"), edgecolor="white", linewidth=0.6,
                    label=None if name in seen else name,
                )  # fmt: skip
                seen.add(name)
                if height >= 6:  # room for the part's own name
                    ax.text(index + offset, bottom + height / 2, part["part"],
                            ha="center", va="center", fontsize=6)  # fmt: skip
                bottom += height
    ax.set_xticks(
        [i + offset for i in range(len(labels)) for offset in (-0.2, 0.2)],
        ["time", "FLOPs"] * len(labels),
        fontsize="x-small",
    )
    below = ax.get_xaxis_transform()  # x in data, y in axes units: the scheme under its pair
    for index, label in enumerate(labels):
        ax.text(index, -0.09, label, transform=below, ha="center", va="top", fontsize="small")
    ax.set(ylabel="share of the step (%)", ylim=(0, 100))
    ax.set_title(f"Where the time goes: {points['run'].iloc[0]}", fontsize="medium")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), title="part")
    fig.tight_layout()
    return fig


def render(points: pd.DataFrame) -> bytes:
    """The PNG of one run's bars, stamped with the digest of its points (`plots.is_current`)."""
    buffer = io.BytesIO()
    draw(points).savefig(
        buffer, format="png", metadata={"Description": stamp(figure_digest(points))}
    )
    return buffer.getvalue()


def figure_digest(points: pd.DataFrame) -> str:
    return data_digest(points, "profile", __file__)


def runs(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The table by run, each a figure of its own."""
    return {str(run): points for run, points in table.groupby("run", sort=False)}


def profile_figures(table: pd.DataFrame, out: Path, name: str) -> list[Path]:
    """`NAME-time-<i>.png` per run, drawn only where its points changed."""
    paths = []
    for index, points in enumerate(runs(table).values(), 1):
        path = out / f"{name}-time-{index}.png"
        if not is_current(path, figure_digest(points)):
            atomic_write(path, render(points))
        paths.append(path)
    return paths


def profile_section(table: pd.DataFrame, images: list[str]) -> str:
    """The markdown section: figures, a sentence per scheme, the parts of each run."""
    if table.empty:
        return ""
    lines = [
        "",
        "## Where the time goes",
        "",
        '`tsfbench profile` (suite `measure = ["profile"]`): each part\'s median time over the '
        "profiled steps (CPU self time; on a GPU, kernel time) beside its FLOPs (multiply-adds, "
        "fvcore). Left bar of a pair: shares of the time; right: shares of the FLOPs. A part "
        "whose time share exceeds its FLOP share runs below the model's average efficiency.",
        "",
        *(f"![Where the time goes]({image})" for image in images),
        "",
        *(f"- {sentence}" for sentence in sentences(table)),
        "",
        "| scheme | run | part | time (ms) | time % | FLOPs % | time / FLOP share | GFLOP/s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in table.assign(label=_label(table)).to_dict("records"):
        ratio = "-" if pd.isna(row["time_per_flop"]) else f"{row['time_per_flop']:.2f}"
        rate = "-" if pd.isna(row["gflops_per_s"]) else f"{row['gflops_per_s']:.1f}"
        lines.append(
            f"| {row['label']} | {row['run']} | {row['part']} | {row['time_ms']:.3g} | "
            f"{100 * row['time_share']:.1f} | {100 * row['flop_share']:.1f} | {ratio} | {rate} |"
        )
    return "\n".join(lines) + "\n"
