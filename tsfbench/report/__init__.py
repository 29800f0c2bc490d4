"""Reports: the stored results as markdown tables and Figure 3 plots beside the paper's numbers.

The last step of the pipeline (config -> model -> probe -> result -> store -> report): it reads
flat records and never builds a model. Everything the `tsfbench report` command does:

    from tsfbench.report import load_results, build_report, write_report, summary

    frame = load_results("results/tsfbench.sqlite", suite="quick")  # ConfigError if empty
    report = build_report(frame)            # pandas tables: schemes, models, accuracy, curves...
    paths = write_report(report, "reports", name="tsfbench", fmt="md")  # or "csv", "json"
    rows = summary(report)                  # list of dicts: a terminal table or --json

- `load_results(store, suite=None) -> pd.DataFrame`: `suite` is a suite name (the rows it
  measured) or a TOML file (the tasks it lists).
- `build_report(frame) -> Report`: `Report.schemes` (Table 1), `.models` (Table 2),
  `.accuracy`, `.configs` (everything), `.curves` (Figure 3 points), `.shrunken` (rows with
  `overrides`, never compared with the paper), `.failures`, `.environments`; `.tables()` by name.
- `write_report(report, out_dir="reports", name="tsfbench", fmt="md") -> list[Path]`: md writes
  `NAME.md` and `NAME-<figure>.png`; csv one `NAME-<table>.csv` per table; json `NAME.json`.
- `summary(report) -> list[dict]`: Table 1 and 2 rows, few columns, rounded.
- `reference(model, attention, frames, size, pos_embed=None) -> Reference | None`: the paper's
  numbers for a configuration (`tsfbench.report.reference`).
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the module defining it, imported on first use: the paper's numbers (`reference`) are
# read by suites and the CLI, which must not pay for pandas and matplotlib.
_HOMES = {
    "Report": "build",
    "build_report": "build",
    "load_results": "build",
    "summary": "build",
    "REFERENCES": "reference",
    "Reference": "reference",
    "reference": "reference",
    "REPORT_FORMATS": "write",
    "write_report": "write",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'tsfbench.report' has no attribute {name!r}")
    return getattr(importlib.import_module(f"tsfbench.report.{_HOMES[name]}"), name)
