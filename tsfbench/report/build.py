"""Aggregate stored results into the report's tables: a pandas frame in, a `Report` out.

Nothing here writes files or builds models. Measured numbers sit beside the paper's
(`reference`), except for rows of shrunken models (non-empty `overrides`), which are kept apart
and never compared. Runtime rows stay apart by their run settings and environment: each table
row names its `run`, so a fp16 GPU latency is never averaged with a fp32 CPU one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from tsfbench.config import GIB
from tsfbench.errors import ConfigError
from tsfbench.models.registry import (
    ATTENTIONS,
    NOT_APPLICABLE,
    PRESETS,
    TIMESFORMER,
    default_pos_embed,
)
from tsfbench.report.fits import fits_table
from tsfbench.report.motion import motion_table
from tsfbench.report.profile import profile_table
from tsfbench.report.reference import (
    FIGURE3_FRAMES,
    FIGURE3_SIZES,
    PAPER_GPU_BYTES,
    PAPER_OOM,
    dataset_name,
    off_protocol,
    reference,
)
from tsfbench.report.timing import idle_text, latency_cell, timing_columns
from tsfbench.store import MEASURED, Status, Store, missing

KEY = ["model", "attention", "frames", "size", "pos_embed"]
SETTINGS = ["mode", "dtype", "batch", "backend", "compile", "memory_limit", "device"]
# Peak memory on a GPU, best first: the allocator's (every CUDA run has it, NVML or not), then
# NVML's, for rows that lack it. The tables show the allocator's and NVML's in columns of their own.
ALLOCATOR = (("max_reserved_bytes", "torch reserved"), ("max_allocated_bytes", "torch allocated"))
GPU_MEMORY = (
    *ALLOCATOR,
    ("max_process_vram_bytes", "NVML process"),
    ("max_global_vram_bytes", "NVML device"),
)
HINT = "run `tsfbench run suites/quick.toml` first"


@dataclass
class Report:
    """The aggregated tables; every frame has plain columns, ready for csv / json / markdown."""

    environments: pd.DataFrame  # one row per environment, labelled E1, E2, ...
    configs: pd.DataFrame  # every measured configuration x run, with the paper's values
    schemes: pd.DataFrame  # Table 1: attention schemes at 8 x 224
    models: pd.DataFrame  # Table 2: TimeSformer variants vs the 3D CNNs
    accuracy: pd.DataFrame  # every accuracy row, with the paper's and the released top-1
    curves: pd.DataFrame  # Figure 3 points: figure, series, x, y, status, source, backend...
    shrunken: pd.DataFrame  # rows of models with overrides: never compared with the paper
    failures: pd.DataFrame  # rows whose status is oom, timeout or error
    backends: pd.DataFrame  # SDPA vs the eager `math` attention, same configuration and run
    prediction: pd.DataFrame  # predicted peak memory vs the CPU heap measured over the same steps
    motion: pd.DataFrame  # the motion test (synthetic set): never compared with the paper
    profile: pd.DataFrame  # where the time goes: a row per profiled configuration and part
    fits: pd.DataFrame  # what fits a card, predicted (`fit`), beside the paper's OOM points
    statuses: dict[str, int] = field(default_factory=dict)
    suites: list[str] = field(default_factory=list)
    created: str = ""  # when the report was built (UTC)
    between: dict[str, Any] | None = None  # `--compare E1,E2`: `compare.compare_sides`' result

    def tables(self) -> dict[str, pd.DataFrame]:
        """The machine-readable tables by name (what csv and json write)."""
        names = ("environments", "schemes", "models", "accuracy", "configs", "curves")
        tables = {name: getattr(self, name) for name in names}
        tables |= {"backends": self.backends, "prediction": self.prediction, "motion": self.motion}
        tables["profile"] = self.profile
        tables |= {"fits": self.fits}
        tables |= {"shrunken": self.shrunken, "failures": self.failures}
        if self.between is not None:
            tables["between"] = pd.DataFrame(self.between["pairs"] + self.between["unmatched"])
        return tables


def load_results(store: Store | str | Path, suite: str | None = None) -> pd.DataFrame:
    """The stored rows, optionally of one suite: a name (the rows it measured) or a TOML file
    (every task it lists, whichever suite measured it). No results is a `ConfigError`."""
    path = store.path if isinstance(store, Store) else Path(store)
    toml = suite if suite and suite.endswith(".toml") else "suites/quick.toml"
    hint = f"run `tsfbench run {toml}`"
    if not path.is_file():  # opening a Store would create an empty one
        raise ConfigError(f"no results in {path}; {hint} first")
    store = store if isinstance(store, Store) else Store(path)
    if suite and suite.endswith(".toml"):
        from tsfbench.suite import load_suite

        tasks = load_suite(suite, path.parent).tasks  # as `tsfbench run` read it for this store
        frame = store.frame(tasks=[task.key for task in tasks])
    else:
        frame = store.frame()
        if suite and not frame.empty:
            frame = frame[frame["suite"] == suite]
    if frame.empty:
        where = f"{path} for suite {suite!r}" if suite else str(path)
        raise ConfigError(f"no results in {where}; {hint} first")
    return frame.reset_index(drop=True)


def _with_columns(frame: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    missing = [name for name in names if name not in frame]
    return frame.assign(**dict.fromkeys(missing)) if missing else frame


def _latest(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The newest row of each group (a rerun replaces what it measured again)."""
    return frame.sort_values("created", kind="stable").drop_duplicates(by, keep="last")


def _environments(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per environment, oldest first, and each environment's label (E1, E2, ...)."""
    columns = ["env_host", "env_cpu", "env_cpu_count", "env_gpus", "env_torch", "env_cuda"]
    frame = _with_columns(frame, [*columns, "env_tsfbench", "env_git_commit", "env_nvml_driver"])
    frame = _with_columns(frame, ["env_nvml_unavailable"])
    rows = []
    for env, group in sorted(frame.groupby("environment"), key=lambda item: item[1].created.min()):
        first = group.iloc[0]
        commits = sorted({str(c) for c in group["env_git_commit"] if not missing(c)})

        def when(stamp: float) -> str:
            return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M")

        rows.append(
            {
                "env": f"E{len(rows) + 1}",
                "environment": env,
                "host": first["env_host"],
                "cpu": first["env_cpu"],
                "cpu_count": first["env_cpu_count"],
                "gpus": first["env_gpus"] or None,
                "torch": first["env_torch"],
                "cuda": first["env_cuda"],
                "driver": first["env_nvml_driver"],
                "nvml_unavailable": first["env_nvml_unavailable"],  # why, and what it costs
                "tsfbench": first["env_tsfbench"],
                "commit": ", ".join(commits) or None,
                "first": when(group.created.min()),
                "last": when(group.created.max()),
                "rows": len(group),
                "idle": idle_text(group),  # other work on the machine before the runs
            }
        )
    table = pd.DataFrame(rows)
    return table, dict(zip(table["environment"], table["env"], strict=True))


def _run_label(row: Mapping[str, Any], env: str | None) -> str:
    """How a runtime row was run, short: `infer fp32 b1 cpu` (+ backend, compile, cap, env)."""
    text = f"{row['mode']} {row['dtype']} b{int(row['batch'])} {row['device']}"
    if not missing(row["backend"]) and row["backend"] != "sdpa":
        text += f" {row['backend']}"
    if row["compile"] is True:
        text += " compiled"
    if row.get("checkpointing") is True:
        text += " checkpointed"
    if not missing(row["memory_limit"]):
        text += f" cap {row['memory_limit'] / GIB:.3g} GiB"
    return f"{text} {env}" if env else text


def _peak_memory(row: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """Peak memory in GiB and what it is: GPU memory on a GPU, resident set size on a CPU."""
    if row["status"] == Status.PREDICTED:
        peak = row.get("predicted_peak_bytes")
        return (None, None) if missing(peak) else (peak / GIB, "predicted")
    sources = GPU_MEMORY if str(row["device"]).startswith("cuda") else (("max_ram_bytes", "RSS"),)
    for column, kind in sources:
        if not missing(row.get(column)):
            return row[column] / GIB, kind
    return None, None


def _allocator_peak(row: Mapping[str, Any]) -> float | None:
    """The torch allocator's peak (reserved, else allocated) in GiB on a GPU, the resident set
    size on a CPU, the prediction (of allocated tensor bytes) for a predicted row."""
    if row["status"] == Status.PREDICTED or not str(row["device"]).startswith("cuda"):
        return _peak_memory(row)[0]
    return next((row[c] / GIB for c, _ in ALLOCATOR if not missing(row.get(c))), None)


def _runtime(rows: pd.DataFrame, env_labels: dict[str, str]) -> pd.DataFrame:
    figures = ["latency_median_ms", "latency_p90_ms", "throughput", "energy_j_per_clip", "power_w"]
    memory = ["predicted_peak_bytes", "measured_cpu_alloc_bytes", "memory_note", "notes"]
    memory += ["max_process_vram_bytes", "max_reserved_bytes", "max_allocated_bytes"]
    rows = _with_columns(rows, [*SETTINGS, *figures, *memory])
    # A prediction and a measurement of the same run are both kept: the plot sets them side by side
    rows = rows.assign(predicted=rows["status"] == Status.PREDICTED)
    rows = _latest(rows, [*KEY, *SETTINGS, "environment", "predicted"])
    records = rows.to_dict("records")
    envs = [env_labels[row["environment"]] if len(env_labels) > 1 else None for row in records]
    out = rows[KEY].copy()
    out["run"] = [_run_label(row, env) for row, env in zip(records, envs, strict=True)]
    out["env"] = rows["environment"].map(env_labels)
    out["backend"] = rows["backend"].map(lambda value: value if isinstance(value, str) else "sdpa")
    # The run but for its attention backend: rows that differ only in it pair up (`_backends`)
    out["run_any_backend"] = [
        _run_label({**row, "backend": "sdpa"}, env) for row, env in zip(records, envs, strict=True)
    ]
    out["runtime_status"] = rows["status"]
    out["mode"] = rows["mode"]  # infer / train: the paper's top-1 is an inference's
    out["notes"] = rows["notes"]  # what the figures include beyond the model (a sync per step)
    for column in figures:
        out[column] = rows[column].astype(float)
    out = out.assign(**timing_columns(rows))  # the CI, every sample, contention (report/timing)
    peaks = [_peak_memory(row) for row in records]
    out["peak_memory_gib"] = [value for value, _ in peaks]
    out["memory_kind"] = [kind for _, kind in peaks]
    # one meaning per column: the allocator's peak (CPU: RSS) and NVML's for this process
    out["allocator_peak_gib"] = [_allocator_peak(row) for row in records]
    out["nvml_process_gib"] = rows["max_process_vram_bytes"].astype(float) / GIB
    out["memory_note"] = rows["memory_note"]  # why a memory figure is missing (NVML)
    out["memory_limit_gib"] = rows["memory_limit"].astype(float) / GIB
    out["predicted_peak_gib"] = rows["predicted_peak_bytes"].astype(float) / GIB
    out["cpu_alloc_gib"] = rows["measured_cpu_alloc_bytes"].astype(float) / GIB
    return out


def _backends(configs: pd.DataFrame) -> pd.DataFrame:
    """Each configuration and run measured with SDPA and with the eager `math` reference (the
    released code's softmax(QK^T)V): what the implementation, not the architecture, costs."""
    ok = configs[(configs["runtime_status"] == Status.OK) & configs["model"].isin(TIMESFORMER)]
    pairs = ok[ok["backend"] == "sdpa"].merge(
        ok[ok["backend"] == "math"], on=[*KEY, "run_any_backend"], suffixes=("", "_math")
    )
    pairs["speedup"] = pairs["latency_median_ms_math"] / pairs["latency_median_ms"]
    pairs["memory_ratio"] = pairs["peak_memory_gib"] / pairs["peak_memory_gib_math"]
    columns = ["latency_median_ms", "peak_memory_gib"]
    columns = [*columns, *(f"{c}_math" for c in columns), "speedup", "memory_ratio"]
    return pairs[[*KEY, "run_any_backend", *columns, "memory_kind"]].reset_index(drop=True)


def _paper_set(dataset: Any) -> str | None:
    """The paper's name of a declared dataset (K400, ...); None for others and missing ones."""
    return dataset_name(dataset) if isinstance(dataset, str) else None


def _prediction(configs: pd.DataFrame) -> pd.DataFrame:
    """Predicted peak memory beside the glibc heap's peak measured on the CPU over the same
    steps (suite key `cpu_allocations`): both count tensor bytes, so they should agree."""
    both = configs.dropna(subset=["predicted_peak_gib", "cpu_alloc_gib"])
    out = both[[*KEY, "run", "predicted_peak_gib", "cpu_alloc_gib"]].copy()
    out["error_pct"] = _pct(out["predicted_peak_gib"], out["cpu_alloc_gib"])
    return out.reset_index(drop=True)


def _accuracy_label(row: Mapping[str, Any]) -> str:
    """What an accuracy was measured on, in words: the dataset (or that none was declared),
    its size and views, and why a paper dataset is not compared, if it is not."""
    declared = row["dataset"] if isinstance(row["dataset"], str) else None  # None: an old row
    what = _paper_set(declared)
    if what is None:
        what = f"{declared or 'undeclared dataset'}: {row['format']} format"
        what += f", {int(row['classes'])} classes"
    subset = f", subset {row['subset']}" if row.get("subset") else ""
    off = f"; not compared: {row['off_protocol']}" if row.get("off_protocol") else ""
    return f"{what} ({int(row['evaluated'])} videos, {int(row['views'])} views{subset}{off})"


def _accuracy(rows: pd.DataFrame) -> pd.DataFrame:
    """Every finished accuracy row with the paper's top-1 / top-5 and the released checkpoint's
    (failed evaluations are in `failures`). Only a declared paper dataset at the paper's test
    protocol is compared; the `dataset` column says what every row was measured on."""
    columns = ["dataset", "format", "classes", "data", "subset", "evaluated", "views", "top1"]
    columns += ["top5", "sampling", "rate", "error"]
    rows = _with_columns(rows, columns)
    rows = rows[rows["status"] == Status.OK]
    group = [*KEY, "dataset", "format", "classes", "data", "subset", "views", "environment"]
    rows = _latest(rows, group)
    out = rows[[*KEY, "status", *columns[:-1]]].copy()
    refs = [reference(*key) for key in out[KEY].itertuples(index=False)]
    out["off_protocol"] = [
        off_protocol(ref, row["dataset"], row) if ref and _paper_set(row["dataset"]) else ""
        for ref, row in zip(refs, out.to_dict("records"), strict=True)
    ]
    out["paper_dataset"] = [
        _paper_set(row["dataset"]) if not row["off_protocol"] else None
        for row in out.to_dict("records")
    ]
    out["accuracy_on"] = [_accuracy_label(row) for row in out.to_dict("records")]
    for column, source in (("top1", "top1"), ("top5", "top5"), ("released_top1", "released_top1")):
        out[f"{column}_paper" if column != "released_top1" else column] = [
            getattr(ref, source).get(dataset) if ref and isinstance(dataset, str) else None
            for ref, dataset in zip(refs, out["paper_dataset"], strict=True)
        ]
    out["top1_delta_pt"] = out["top1"].astype(float) - out["top1_paper"].astype(float)
    return out.reset_index(drop=True)


def _pct(measured: pd.Series, paper: pd.Series) -> pd.Series:
    return (measured.astype(float) / paper.astype(float) - 1) * 100


def _with_paper(table: pd.DataFrame) -> pd.DataFrame:
    """Add the paper's value and the relative delta (%) beside every number it reports."""
    refs = [reference(*key) for key in table[KEY].itertuples(index=False)]
    table = table.copy()
    table["paper"] = [ref.name if ref else None for ref in refs]
    table["params_m_paper"] = [ref.params_m if ref else None for ref in refs]
    table["gflops_per_view_paper"] = [ref.gflops_per_view if ref else None for ref in refs]
    # TFLOPs add up views: compare only at the paper's number of views
    table["tflops_paper"] = [
        ref.tflops if ref and ref.views == views else None
        for ref, views in zip(refs, table["views"], strict=True)
    ]
    for column in ("params_m", "gflops_per_view", "tflops"):
        table[f"{column}_delta_pct"] = _pct(table[column], table[f"{column}_paper"])
    # The paper's K400 top-1 stands beside an unmeasured accuracy as the target, on the rows of
    # the paper's run only: a cost row (no run) or an inference run; a training step or a
    # predicted memory is not what that top-1 measured. A measured one is compared only on a
    # paper dataset at its protocol (`_accuracy`), never with K400 by default
    measured = table["top1"].notna()
    status = table["runtime_status"]
    papers_run = status.isna() | ((table["mode"] == "infer") & (status != Status.PREDICTED))
    target = pd.Series("K400", index=table.index).where(papers_run)
    table["top1_dataset"] = table["paper_dataset"].where(measured, target)
    table["top1_paper"] = [
        ref.top1.get(dataset) if ref and isinstance(dataset, str) else None
        for ref, dataset in zip(refs, table["top1_dataset"], strict=True)
    ]
    table["top1_delta_pt"] = table["top1"].astype(float) - table["top1_paper"].astype(float)
    return table


def _configs(flops: pd.DataFrame, runtime: pd.DataFrame, accuracy: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration and run: its cost, its runtime figures, its accuracy."""
    cost_columns = ["views", "params", "gflops_per_view", "tflops"]
    flops = _latest(_with_columns(flops, cost_columns), KEY)
    cost = flops[KEY + cost_columns].copy()
    cost["params_m"] = cost.pop("params").astype(float) / 1e6
    # Prefer an accuracy compared with the paper, then the newest; `dataset` becomes the name
    # shown beside a top-1 (K400, synthetic, other, ...)
    best = accuracy[accuracy["status"] == Status.OK]
    best = best.assign(known=best["paper_dataset"].notna())
    best = best.sort_values("known", kind="stable").drop_duplicates(KEY, keep="last")
    shown = [_paper_set(d) or (d if isinstance(d, str) else "undeclared") for d in best["dataset"]]
    best = best.assign(dataset=shown)
    best = best[[*KEY, "top1", "top5", "dataset", "paper_dataset", "accuracy_on"]]
    keys = pd.concat([cost[KEY], runtime[KEY], best[KEY]]).drop_duplicates()
    table = keys.merge(cost, on=KEY, how="left").merge(runtime, on=KEY, how="left")
    table = table.merge(best, on=KEY, how="left")
    table = _with_paper(table)
    order = table["attention"].map({a: i for i, a in enumerate(ATTENTIONS)}).fillna(len(ATTENTIONS))
    table = table.assign(_order=order).sort_values(["model", "_order", "frames", "size", "run"])
    return table.drop(columns="_order").reset_index(drop=True)


def _is_transformer(table: pd.DataFrame) -> pd.Series:
    return table["model"].isin(TIMESFORMER) & table["attention"].isin(ATTENTIONS)


def _measured_first(configs: pd.DataFrame) -> pd.Series:
    """Rows to show in Tables 1 and 2: a predicted-only run (the Figure 3 memory predictions)
    only where its configuration has no other row, so the tables stay one row per real run."""
    predicted = configs["runtime_status"] == Status.PREDICTED
    others = set(configs.loc[~predicted, KEY].itertuples(index=False, name=None))
    keys = configs[KEY].itertuples(index=False, name=None)
    return pd.Series(
        [not p or key not in others for p, key in zip(predicted, keys, strict=True)],
        index=configs.index,
        dtype=bool,
    )


def _schemes(configs: pd.DataFrame) -> pd.DataFrame:
    """Table 1: every scheme and positional table measured at 8 x 224."""
    rows = _is_transformer(configs) & (configs["frames"] == 8) & (configs["size"] == 224)
    return configs[rows & _measured_first(configs)].reset_index(drop=True)


def _standard_input(configs: pd.DataFrame) -> pd.Series:
    """Whether each row is its model's own preset input (base 8 x 224, i3d_r50 8 x 256, ...):
    the same network at another input (base at 96 frames) is a curve point, not a Table 2 row."""
    standard = [
        model in PRESETS and (frames, size) == (PRESETS[model].frames, PRESETS[model].size)
        for model, frames, size in zip(
            configs["model"], configs["frames"], configs["size"], strict=True
        )
    ]
    return pd.Series(standard, index=configs.index, dtype=bool)


def _models(configs: pd.DataFrame) -> pd.DataFrame:
    """Table 2: the divided TimeSformer variants, then every 3D CNN, each at its own input."""
    variant = (
        _is_transformer(configs)
        & (configs["attention"] == "divided")
        & (configs["pos_embed"] == default_pos_embed("divided"))
    )
    cnn = configs["attention"] == NOT_APPLICABLE
    standard = _standard_input(configs) & _measured_first(configs)
    table = pd.concat(
        [configs[variant & standard].sort_values(["frames", "size"]), configs[cnn & standard]]
    )
    return table.reset_index(drop=True)


def _curves(configs: pd.DataFrame) -> pd.DataFrame:
    """Figure 3 points: GFLOPs and peak memory against frames (at 224) and size (at 8 frames).

    Each series is a scheme (and a run, for memory, where several were measured); predicted
    runs (`predict_only`) are series of their own, marked "(predicted)" (`source` predicted,
    not measured), with their memory
    limit (`limit_gib`) and the run but for its backend (`pair`), so SDPA and math pair up. The
    paper's out-of-memory points ride along as their own series, so a plot can mark both.
    """
    rows = configs[
        _is_transformer(configs)
        & (configs["pos_embed"] == configs["attention"].map(default_pos_embed))
    ]
    runs = rows["run"].dropna().unique()
    points: list[dict[str, Any]] = []
    for axis, fixed, value in (("frames", "size", 224), ("size", "frames", 8)):
        on_axis = rows[rows[fixed] == value]
        cost = on_axis.dropna(subset=["gflops_per_view"]).drop_duplicates(["attention", axis])
        for row in cost.to_dict("records"):
            points.append(
                {
                    "figure": f"gflops_vs_{axis}",
                    "series": row["attention"],
                    "attention": row["attention"],
                    "run": None,
                    "x": row[axis],
                    "y": row["gflops_per_view"],
                    "status": Status.OK,
                    "source": "measured",
                    "backend": None,
                    "pair": None,
                    "limit_gib": None,
                }
            )
        for row in on_axis.dropna(subset=["runtime_status"]).to_dict("records"):
            fits = row["runtime_status"] in MEASURED
            series = row["attention"] + (f", {row['run']}" if len(runs) > 1 else "")
            predicted = row["runtime_status"] == Status.PREDICTED
            if predicted:
                series += " (predicted)"
            points.append(
                {
                    "figure": f"memory_vs_{axis}",
                    "series": series,
                    "attention": row["attention"],
                    "run": row["run"],
                    "x": row[axis],
                    "y": row["peak_memory_gib"] if fits else None,
                    "status": row["runtime_status"],
                    "source": "predicted" if predicted else "measured",
                    "backend": row["backend"],
                    "pair": row["run_any_backend"],
                    "limit_gib": row["memory_limit_gib"],
                }
            )
    figures = {point["figure"] for point in points}
    for attention, frames, size in PAPER_OOM:
        axis = "frames" if size == 224 and frames in FIGURE3_FRAMES else "size"
        if axis == "size" and not (frames == 8 and size in FIGURE3_SIZES):
            continue
        for figure in sorted(f for f in figures if f.endswith(f"_vs_{axis}")):
            x = frames if axis == "frames" else size
            points.append(
                {
                    "figure": figure,
                    "series": f"{attention} (paper)",
                    "attention": attention,
                    "run": None,
                    "x": x,
                    "y": None,
                    "status": Status.OOM,
                    "source": "paper",
                    "backend": None,
                    "pair": None,
                    "limit_gib": PAPER_GPU_BYTES / GIB,
                }
            )
    columns = ["figure", "series", "attention", "run", "x", "y", "status", "source"]
    columns += ["backend", "pair", "limit_gib"]  # memory: to pair SDPA and math, the cap line
    return pd.DataFrame(points, columns=columns)


def _shrunken(rows: pd.DataFrame) -> pd.DataFrame:
    """Shrunken-model rows as they are: config, overrides, status and the main figures."""
    columns = [
        "measurement", *KEY, "overrides", "status", "params", "gflops_per_view",
        "latency_median_ms", "throughput", "max_ram_bytes", "max_allocated_bytes", "top1",
    ]  # fmt: skip
    out = _with_columns(rows, columns)[columns].copy()
    out["overrides"] = out["overrides"].map(
        lambda value: ", ".join(f"{k}={v}" for k, v in value.items())
    )
    return out.reset_index(drop=True)


def _failures(frame: pd.DataFrame) -> pd.DataFrame:
    failed = _with_columns(frame, ["error"])
    failed = failed[~failed["status"].isin(MEASURED)]
    columns = ["measurement", *KEY, "status", "error"]
    return failed[columns].reset_index(drop=True)


def _motion(frame: pd.DataFrame, env_labels: dict[str, str]) -> pd.DataFrame:
    """The motion test's finished rows, by scheme over seeds (`report.motion`). Its own
    measurement, so its synthetic top-1 never reaches the tables compared with the paper."""
    columns = ["recipe", "seed", "params", "patch", "train_steps", "top1", "evaluated", "ceiling"]
    columns += ["train_seconds", "data_seed"]
    rows = _with_columns(frame[frame["measurement"] == "motion"], columns)
    return motion_table(rows[rows["status"] == Status.OK], env_labels)


def _profile(frame: pd.DataFrame, env_labels: dict[str, str]) -> pd.DataFrame:
    """The `profile` rows that finished, a row per part (`report.profile`)."""
    rows = _with_columns(frame[frame["measurement"] == "profile"], [*SETTINGS, "parts"])
    records = rows[rows["status"] == Status.OK].to_dict("records")
    envs = [env_labels[row["environment"]] if len(env_labels) > 1 else None for row in records]
    runs = [_run_label(row, env) for row, env in zip(records, envs, strict=True)]
    return profile_table(records, runs)


def build_report(frame: pd.DataFrame) -> Report:
    """Aggregate a results frame (`Store.frame()` or `load_results`) into a `Report`."""
    if frame.empty:
        raise ConfigError(f"no results to report; {HINT}")
    frame = _with_columns(frame, [*KEY, "overrides", "suite"])
    shrunk = frame["overrides"].map(lambda value: isinstance(value, dict) and bool(value))
    environments, env_labels = _environments(frame)
    full = frame[~shrunk]
    by = {name: full[full["measurement"] == name] for name in ("flops", "runtime", "accuracy")}
    flops = by["flops"][by["flops"]["status"] == Status.OK]
    accuracy = _accuracy(by["accuracy"])
    configs = _configs(flops, _runtime(by["runtime"], env_labels), accuracy)
    return Report(
        environments=environments,
        configs=configs,
        schemes=_schemes(configs),
        models=_models(configs),
        accuracy=accuracy,
        curves=_curves(configs),
        shrunken=_shrunken(frame[shrunk]),
        failures=_failures(frame),
        backends=_backends(configs),
        prediction=_prediction(configs),
        motion=_motion(frame, env_labels),
        profile=_profile(frame, env_labels),
        fits=fits_table(_with_columns(full[full["measurement"] == "fit"], ["task"]), env_labels),
        statuses=frame["status"].value_counts().to_dict(),
        suites=sorted({str(s) for s in frame["suite"] if not missing(s) and s}),
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


SUMMARY = [
    "model", "attention", "frames", "size", "run", "params_m", "gflops_per_view",
    "gflops_per_view_paper", "gflops_per_view_delta_pct", "tflops", "latency_median_ms",
    "peak_memory_gib", "runtime_status", "top1", "top1_paper", "dataset",
]  # fmt: skip


def summary(report: Report) -> list[dict[str, Any]]:
    """Table 1 and Table 2 rows, a few columns, rounded: for a terminal table or `--json`."""
    rows = []
    for table, frame in (("1", report.schemes), ("2", report.models)):
        for full, row in zip(
            frame.to_dict("records"), frame[SUMMARY].to_dict("records"), strict=True
        ):
            clean = {
                key: None if missing(v) else round(v, 3) if isinstance(v, float) else v
                for key, v in row.items()
            }
            # the median with its interval and the contended mark, as the markdown shows it
            rows.append({"table": table, **clean, "latency": latency_cell(full)})
    return rows
