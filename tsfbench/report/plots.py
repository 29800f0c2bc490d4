"""Figure 3 of the paper as PNGs: GFLOPs and peak memory against frames and crop size.

Drawn on matplotlib's Agg canvas through the object API (no pyplot, no global backend), so a
report can be written on a headless machine and from any thread. An out-of-memory point has
no value to plot: it is an `x` at the top of the axes, measured in the series' colour, the
paper's (joint attention on a 32 GB V100) in grey, each with its own legend entry.

Memory plots also draw predicted runs (dashed: SDPA, dotted: eager `math`; hollow markers) and
their memory limit as a horizontal line, on a log scale where the curves span more than 20x
(quadratic attention matrices beside linear ones), so a CPU-only report shows where a 32 GB
card runs out and with which attention implementation.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tsfbench.config import GIB
from tsfbench.models.registry import ATTENTIONS
from tsfbench.report.reference import PAPER_GPU, PAPER_GPU_BYTES
from tsfbench.store import Status

if TYPE_CHECKING:  # matplotlib (1 s to import) only where a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LINES = ("-", "-.", ":", "--")
PREDICTED_LINES = {"sdpa": "--", "math": ":"}  # other backends: "-."
LOG_SPAN = 20  # max / min of a memory plot above which its y axis is logarithmic
GFLOPS, MEMORY, FRAMES, SIZE = "GFLOPs of one view (MACs)", "peak memory (GiB)", "frames", "px"
FIGURES = {  # name: (title, x label, y label)
    "gflops_vs_frames": ("Cost vs clip length (224 px)", FRAMES, GFLOPS),
    "gflops_vs_size": ("Cost vs crop size (8 frames)", f"crop size ({SIZE})", GFLOPS),
    "memory_vs_frames": ("Peak memory vs clip length (224 px)", FRAMES, MEMORY),
    "memory_vs_size": ("Peak memory vs crop size (8 frames)", f"crop size ({SIZE})", MEMORY),
}


def _short_runs(runs: list[str]) -> tuple[dict[str, str], str]:
    """Each run label without the words every run of the plot shares (`fp32 b1 cpu`), and
    those words (the legend's title): the entries then say only what differs. `cap N GiB` is
    one word."""
    if not runs:
        return {}, ""
    words = {run: re.findall(r"cap \S+ GiB|\S+", run) for run in runs}
    common = set.intersection(*(set(w) for w in words.values()))
    short = {run: " ".join(w for w in words[run] if w not in common) for run in runs}
    return short, " ".join(w for w in words[runs[0]] if w in common)


def _label(points: pd.DataFrame, short: dict[str, str], backends: bool) -> str:
    """`joint, math, train cap 32 GiB (predicted)`: the scheme, the backend where the plot has
    several, what differs in the run."""
    first = points.iloc[0]
    words = [first["attention"]]
    if backends and isinstance(first["backend"], str):
        words.append(first["backend"])
    if isinstance(first["pair"], str) and short.get(first["pair"]):
        words.append(short[first["pair"]])
    return ", ".join(words) + (
        " (predicted)" if (points["status"] == Status.PREDICTED).any() else ""
    )


def _limit_line(ax: Axes, data: pd.DataFrame) -> float:
    """The memory limits of the plotted runs (32 GiB: the paper's V100) as lines; the highest."""
    runs = data[data["source"] != "paper"]  # measured and predicted
    limits = sorted({float(v) for v in runs["limit_gib"].dropna()})
    for limit in limits:
        card = f" (the paper's {PAPER_GPU})" if limit * GIB == PAPER_GPU_BYTES else ""
        ax.axhline(
            limit, color="black", linewidth=1.2, alpha=0.7, label=f"{limit:g} GiB limit{card}"
        )
    return max(limits, default=0.0)


def figure_digest(curves: pd.DataFrame, figure: str) -> str:
    """What one figure's PNG depends on: its points, this module's code, matplotlib's version.
    A PNG that carries the same digest is not drawn again (`is_current`)."""
    return data_digest(curves[curves["figure"] == figure], figure, __file__)


def data_digest(data: pd.DataFrame, name: str, code: str | Path) -> str:
    """The digest of a figure `name` drawn from `data` by the module at `code`."""
    hasher = hashlib.sha256(name.encode())
    hasher.update(data.reset_index(drop=True).to_json(orient="split", double_precision=15).encode())
    hasher.update(Path(code).read_bytes())
    hasher.update(version("matplotlib").encode())
    return hasher.hexdigest()[:16]


def stamp(digest: str) -> str:
    """The PNG text that carries a figure's digest."""
    return f"tsfbench figure {digest}"


def is_current(path: Path, digest: str) -> bool:
    """Whether the PNG at `path` was drawn from the same points by the same code."""
    return path.is_file() and stamp(digest).encode() in path.read_bytes()


def render(curves: pd.DataFrame, figure: str) -> bytes:
    """The PNG of one figure of `Report.curves`, stamped with its digest (a PNG text chunk)."""
    buffer = io.BytesIO()
    metadata = {"Description": stamp(figure_digest(curves, figure))}
    draw(curves, figure).savefig(buffer, format="png", metadata=metadata)
    return buffer.getvalue()


def draw(curves: pd.DataFrame, figure: str) -> Figure:
    """One figure of `Report.curves` as a matplotlib `Figure` on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    title, xlabel, ylabel = FIGURES[figure]
    data = curves[curves["figure"] == figure]
    memory = figure.startswith("memory")
    fig = Figure(figsize=(9.6, 4.8) if memory else (6.4, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    top = ax.get_xaxis_transform()  # x in data, y in axes units: the OOM row along the top
    measured = data[data["source"] != "paper"]  # this tool's points, measured or predicted
    order = {attention: i for i, attention in enumerate(ATTENTIONS)}
    series_names = sorted(
        measured["series"].unique(), key=lambda s: (order.get(s.split(",")[0].split()[0], 9), s)
    )
    short, shared = _short_runs(sorted({r for r in measured["pair"] if isinstance(r, str)}))
    backends = measured["backend"].dropna().nunique() > 1
    styles: dict[str, int] = {}  # a scheme's colour everywhere; its runs differ by line style
    for series in series_names:
        points = measured[measured["series"] == series]
        attention = points["attention"].iloc[0]
        fits = points[points["y"].notna()].sort_values("x")
        color = f"C{order.get(attention, len(ATTENTIONS))}"
        label = _label(points, short, backends) if memory else series
        style = {"color": color, "marker": "o", "label": label}
        if (points["status"] == Status.PREDICTED).any():
            backend = points["backend"].iloc[0]
            style |= {"linestyle": PREDICTED_LINES.get(backend, "-."), "marker": "^"}
            style |= {"markerfacecolor": "none"}  # hollow: nothing was run
        else:
            style["linestyle"] = LINES[styles.setdefault(attention, 0) % len(LINES)]
            styles[attention] += 1
        ax.plot(fits["x"], fits["y"].astype(float), **style)
        oom = points[points["status"] == Status.OOM]
        if len(oom):
            ax.plot(
                oom["x"], [0.95] * len(oom), "x", transform=top, color=color, markersize=10,
                markeredgewidth=2, clip_on=False, label=f"{label}: out of memory",
            )  # fmt: skip
    for series, points in data[data["source"] == "paper"].groupby("series", sort=True):
        ax.plot(
            points["x"], [0.88] * len(points), "x", transform=top, color="grey", markersize=9,
            clip_on=False, label=f"{series}: out of memory on a {PAPER_GPU}",
        )  # fmt: skip
    ax.set_xticks(sorted(data["x"].unique()))
    values = measured["y"].astype(float)
    highest = values.max()
    limit = _limit_line(ax, data) if memory else 0.0
    lowest = values[values > 0].min() if (values > 0).any() else math.nan
    if memory and highest / lowest > LOG_SPAN:  # quadratic next to linear: both readable
        ax.set_yscale("log")
        ax.set_ylim(lowest / 1.5, max(highest, limit) * 4)  # room for the OOM marks on top
        ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))  # 1, 2, 5, 10, 20...: readable
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    elif highest > 0:  # headroom: the OOM marks sit above the highest point
        ax.set_ylim(0, max(highest, limit) * 1.25)
    ax.set(
        title=title,
        xlabel=xlabel,
        ylabel=ylabel + (", log scale" if ax.get_yscale() == "log" else ""),
    )
    ax.grid(alpha=0.3, which="both" if memory else "major")
    if memory:  # many runs: the legend beside the axes, not over the curves
        title = f"runs: {shared}" if shared else None
        ax.legend(
            fontsize="small", title=title, title_fontsize="small", loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
        )  # fmt: skip
    else:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
