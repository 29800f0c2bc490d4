"""Figure 3 of the paper as PNGs: GFLOPs and peak memory against frames and crop size.

Drawn on matplotlib's Agg canvas through the object API (no pyplot, no global backend), so a
report can be written on a headless machine and from any thread. An out-of-memory point has
no value to plot: it is an `x` at the top of the axes, measured in the series' colour, the
paper's (joint attention on a 32 GB V100) in grey, each with its own legend entry.
"""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tsfbench.report.reference import ATTENTIONS, PAPER_GPU

LINES = ("-", "-.", ":", "--")
GFLOPS, MEMORY, FRAMES, SIZE = "GFLOPs of one view (MACs)", "peak memory (GiB)", "frames", "px"
FIGURES = {  # name: (title, x label, y label)
    "gflops_vs_frames": ("Cost vs clip length (224 px)", FRAMES, GFLOPS),
    "gflops_vs_size": ("Cost vs crop size (8 frames)", f"crop size ({SIZE})", GFLOPS),
    "memory_vs_frames": ("Peak memory vs clip length (224 px)", FRAMES, MEMORY),
    "memory_vs_size": ("Peak memory vs crop size (8 frames)", f"crop size ({SIZE})", MEMORY),
}


def render(curves: pd.DataFrame, figure: str) -> bytes:
    """The PNG of one figure of `Report.curves`."""
    title, xlabel, ylabel = FIGURES[figure]
    data = curves[curves["figure"] == figure]
    fig = Figure(figsize=(6.4, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    top = ax.get_xaxis_transform()  # x in data, y in axes units: the OOM row along the top
    measured = data[data["source"] == "measured"]
    order = {attention: i for i, attention in enumerate(ATTENTIONS)}
    series_names = sorted(
        measured["series"].unique(), key=lambda s: (order.get(s.split(",")[0].split()[0], 9), s)
    )
    styles: dict[str, int] = {}  # a scheme's colour everywhere; its runs differ by line style
    for series in series_names:
        points = measured[measured["series"] == series]
        attention = points["attention"].iloc[0]
        fits = points[points["y"].notna()].sort_values("x")
        dashes = LINES[styles.setdefault(attention, 0) % len(LINES)]
        styles[attention] += 1
        if str(series).endswith("(predicted)"):
            dashes = "--"
        color = f"C{order.get(attention, len(ATTENTIONS))}"
        ax.plot(fits["x"], fits["y"].astype(float), dashes, marker="o", color=color, label=series)
        oom = points[points["status"] == "oom"]
        if len(oom):
            ax.plot(
                oom["x"], [0.95] * len(oom), "x", transform=top, color=color, markersize=10,
                markeredgewidth=2, clip_on=False, label=f"{series}: out of memory",
            )  # fmt: skip
    for series, points in data[data["source"] == "paper"].groupby("series", sort=True):
        ax.plot(
            points["x"], [0.88] * len(points), "x", transform=top, color="grey", markersize=9,
            clip_on=False, label=f"{series}: out of memory on a {PAPER_GPU}",
        )  # fmt: skip
    ax.set_xticks(sorted(data["x"].unique()))
    highest = measured["y"].astype(float).max()
    if highest > 0:  # headroom: the OOM marks sit above the highest point
        ax.set_ylim(0, highest * 1.25)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
