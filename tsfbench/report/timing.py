"""A latency row in the report: every timing field it stores, `median [low, high]`, and the
contended marker with its footnote.

Older stored rows (before samples were kept) lack these keys: their columns are empty, their
cell is the median alone, and they are never marked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from tsfbench.stats import MEDIAN_CI_METHOD, drift_note, median_text
from tsfbench.store import missing

# Numbers a runtime row carries beside its median, p90, throughput (build.py's figures)
FLOATS = [
    "latency_p95_ms", "latency_p99_ms", "latency_mean_ms", "latency_std_ms", "latency_min_ms",
    "latency_ci_low_ms", "latency_ci_high_ms", "ci_half_width", "other_cpu_cores", "load_avg",
    "canary_ms",
]  # fmt: skip
# Kept as stored: the samples (lists), counts, texts
KEPT = [
    "latency_samples_ms", "latency_warmup_ms", "latency_ci_method", "iterations",
    "warmup_steps", "stop_reason", "remeasured", "contended", "contention",
    "other_gpu_processes", "gpu_throttle_reasons", "canary_samples_ms", "canary_steps",
    "canary_kind",
]  # fmt: skip
COLUMNS = [*FLOATS, *KEPT]
MARK = "(c)"  # beside a contended figure; the footnote says what else ran


def timing_columns(rows: pd.DataFrame) -> dict[str, Any]:
    """The timing columns of the runtime rows (missing keys as empty columns)."""
    columns: dict[str, Any] = {}
    for name in FLOATS:
        columns[name] = rows[name].astype(float) if name in rows else None
    for name in KEPT:
        columns[name] = rows.get(name)
    return columns


def contended(row: Mapping[str, Any]) -> bool:
    value = row.get("contended")
    return not missing(value) and bool(value)


def latency_cell(row: Mapping[str, Any]) -> str | None:
    """`123.4 [120.1, 125.0]`, and the contended mark where the machine was busy."""
    median = row.get("latency_median_ms")
    if missing(median):
        return None
    low, high = row.get("latency_ci_low_ms"), row.get("latency_ci_high_ms")
    text = median_text(
        float(median),
        None if missing(low) else float(low),
        None if missing(high) else float(high),
    )
    return f"{text} {MARK}" if contended(row) else text


def timing_notes(configs: pd.DataFrame) -> list[str]:
    """The report's note on latency figures and, where any row was contended, its footnote."""
    if "latency_median_ms" not in configs or configs["latency_median_ms"].isna().all():
        return []
    notes = [
        "- Latency: the median of the timed steps, with its 95% confidence interval in brackets "
        f"({MEDIAN_CI_METHOD} interval: needs 6 or more steps, none shown below that). Every "
        "step's time is in the csv / json (`latency_samples_ms`)."
    ]
    marked = [row for row in configs.to_dict("records") if contended(row)]
    if marked:
        rows = "; ".join(
            f"{_what(row)} {row['frames']}x{row['size']} {row['run']}: {row['contention']}"
            for row in marked
        )
        notes.append(
            f"- {MARK} contended: measured while other work used the machine (more than "
            f"0.1 core on average, another GPU process, or GPU clocks limited); the figure may "
            f"be slower than a quiet run's. {rows}."
        )
    return notes + drift_notes(configs)


def drift_notes(configs: pd.DataFrame) -> list[str]:
    """Per environment (one machine, one canary product), where its rows' machine-speed canary
    spread beyond `stats.DRIFT`: a note that their figures were taken at different speeds."""
    if "canary_ms" not in configs or configs["canary_ms"].isna().all():
        return []
    notes = []
    timed = configs.dropna(subset=["canary_ms"])
    for (env, _), group in timed.groupby(["env", "canary_kind"], sort=True):
        drift = drift_note(group["canary_ms"].astype(float).tolist())
        if drift:
            notes.append(f"- {env}: {drift}.")
    return notes


def _what(row: Mapping[str, Any]) -> str:
    """The scheme of a TimeSformer row, the model of a 3D CNN's (which has no scheme)."""
    attention = row.get("attention")
    return row["model"] if missing(attention) or attention in ("", "-") else str(attention)


def idle_text(group: pd.DataFrame) -> str | None:
    """The machine's state before the runs of one environment: the busiest reading."""
    if "env_idle_cpu_cores" not in group or group["env_idle_cpu_cores"].isna().all():
        return None
    cores = group["env_idle_cpu_cores"].astype(float).max()
    text = f"others {cores:.2f} cores"
    if "env_idle_load" in group and not group["env_idle_load"].isna().all():
        text += f", load {group['env_idle_load'].astype(float).max():.1f}"
    return text
