"""Write a `Report` as markdown (with Figure 3 PNGs beside it), csv or json.

Every file is written to a temporary file in its own folder and renamed into place, so a
reader (or a report interrupted halfway) never sees a half-written file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tsfbench.compare import markdown as compare_markdown
from tsfbench.config import GIB
from tsfbench.errors import ConfigError
from tsfbench.models.registry import PRESETS
from tsfbench.report import fits
from tsfbench.report.build import Report
from tsfbench.report.motion import NOISE_SE, PAPER_SET, TARGET, motion_findings
from tsfbench.report.plots import FIGURES, figure_digest, is_current, render
from tsfbench.report.profile import profile_figures, profile_section
from tsfbench.report.reference import PAPER, PAPER_GPU, PAPER_GPU_BYTES, SCHEME_NAMES
from tsfbench.report.timing import latency_cell, timing_notes
from tsfbench.store import MEASURED, Status, atomic_write, missing

REPORT_FORMATS = ("md", "csv", "json")
NONE = "-"


def write_report(
    report: Report, out_dir: str | Path = "reports", name: str = "tsfbench", fmt: str = "md"
) -> list[Path]:
    """Write `report` into `out_dir`; returns the files written, the main one first.

    md: `NAME.md` and its figures `NAME-<figure>.png`; csv: `NAME-<table>.csv` per non-empty
    table; json: `NAME.json` holding every table.
    """
    if fmt not in REPORT_FORMATS:
        raise ConfigError(f"format: unknown {fmt!r}; accepted: {', '.join(REPORT_FORMATS)}")
    if not name or Path(name).name != name or name.startswith("."):
        raise ConfigError(f"name: {name!r} must be a plain file name such as 'tsfbench'")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"out: cannot create {out} ({error.strerror}); give a writable folder"
        ) from None
    if fmt == "csv":
        return [
            atomic_write(out / f"{name}-{table}.csv", frame.to_csv(index=False))
            for table, frame in report.tables().items()
            if not frame.empty
        ]
    if fmt == "json":
        document = {
            "name": name,
            "created": report.created,
            "suites": report.suites,
            "statuses": report.statuses,
            "findings": {"motion": motion_findings(report.motion)},
            "between": report.between,
            "tables": {
                table: json.loads(frame.to_json(orient="records"))
                for table, frame in report.tables().items()
            },
        }
        return [atomic_write(out / f"{name}.json", json.dumps(document, indent=2) + "\n")]
    figures = [f for f in FIGURES if (report.curves["figure"] == f).any()]
    images = {f: out / f"{name}-{f}.png" for f in figures}
    for figure, path in images.items():  # a figure drawn from the same points is not drawn again
        if not is_current(path, figure_digest(report.curves, figure)):
            atomic_write(path, render(report.curves, figure))
    time_images = profile_figures(report.profile, out, name)
    text = markdown(report, name, {f: path.name for f, path in images.items()})
    text += profile_section(report.profile, [path.name for path in time_images])
    return [atomic_write(out / f"{name}.md", text), *images.values(), *time_images]


# --- markdown -------------------------------------------------------------------------------


def _num(value: Any, digits: int = 1) -> str:
    return NONE if missing(value) else f"{float(value):,.{digits}f}"


def _times(ratio: Any) -> str:
    return NONE if missing(ratio) else f"{float(ratio):.2f}x"


def _diff(value: Any, paper: Any) -> float:
    return math.nan if missing(value) or missing(paper) else float(value) - float(paper)


def _vs(value: Any, paper: Any, delta: Any, digits: int = 1, unit: str = "%") -> str:
    """`196.1 (paper 196.7, -0.3%)`: a measurement beside the paper's value, if it has one."""
    if missing(paper):
        return _num(value, digits)
    if missing(value):
        return f"{NONE} (paper {paper})"
    return f"{_num(value, digits)} (paper {paper}, {delta:+.1f}{unit})"


def _table(headers: Sequence[str], rows: list[list[str]], keep: int = 1) -> str:
    """A markdown table; columns past the first `keep` with nothing measured are left out."""
    shown = [i for i in range(len(headers)) if i < keep or any(row[i] != NONE for row in rows)]
    lines = [
        "| " + " | ".join(headers[i] for i in shown) + " |",
        "|" + "---|" * len(shown),
        *("| " + " | ".join(str(row[i]).replace("|", "/") for i in shown) + " |" for row in rows),
    ]
    return "\n".join(lines)


def _runtime_cells(row: Mapping[str, Any]) -> list[str]:
    """run, latency, throughput, the allocator's and NVML's peak memory, energy; a failed run
    shows its status instead."""
    status = row.get("runtime_status")
    if missing(status):
        return [NONE] * 6
    if status not in MEASURED:
        return [row["run"], status.upper(), NONE, NONE, NONE, NONE]
    notes = row.get("notes")
    return [
        row["run"] if missing(notes) else f"{row['run']} ({notes})",
        latency_cell(row) or NONE,
        _num(row["throughput"], 2),
        _num(row["allocator_peak_gib"], 2) + (" (predicted)" if status == Status.PREDICTED else ""),
        _num(row["nvml_process_gib"], 2),
        _num(row["energy_j_per_clip"], 2),
    ]


def _cost_cells(row: Mapping[str, Any]) -> list[str]:
    tflops = _vs(row["tflops"], row["tflops_paper"], row["tflops_delta_pct"], 3)
    views = "" if missing(row["views"]) else f" x{int(row['views'])}"
    return [
        _vs(row["params_m"], row["params_m_paper"], row["params_m_delta_pct"]),
        _vs(row["gflops_per_view"], row["gflops_per_view_paper"], row["gflops_per_view_delta_pct"]),
        tflops + views if tflops != NONE else NONE,
    ]


def _top1(row: Mapping[str, Any]) -> str:
    cell = _vs(row["top1"], row["top1_paper"], row["top1_delta_pt"], 1, " pt")
    dataset = row.get("dataset") if not missing(row.get("accuracy_on")) else row["top1_dataset"]
    return cell if cell == NONE else f"{cell} {dataset or ''}".strip()


# The model zoo's top-1 of the released checkpoint: a figure published, not measured here
RELEASED = "released checkpoint's top-1 (model zoo; reference, not measured)"
RUNTIME = ["run", "latency (ms, median [95% CI])", "clips/s"]
RUNTIME += ["peak GiB: allocator (CPU: RSS)", "peak GiB: NVML process", "energy (J/clip)"]
COST = ["params (M)", "GFLOPs / view", "TFLOPs x views"]
ENVIRONMENT = ["env", "host", "CPU", "GPU", "torch", "CUDA", "commit", "measured", "rows"]
ENVIRONMENT += ["idle before run"]  # other work on the machine just before its runs


def _scheme_rows(frame: pd.DataFrame) -> list[list[str]]:
    return [
        [
            SCHEME_NAMES.get(row["attention"], row["attention"]),
            row["pos_embed"],
            *_cost_cells(row),
            *_runtime_cells(row),
            _top1(row),
        ]
        for row in frame.to_dict("records")
    ]


def _model_name(row: Mapping[str, Any]) -> str:
    """The paper's name for a model, else the registry's (its description up to the colon)."""
    if not missing(row["paper"]):
        return str(row["paper"])
    preset = PRESETS.get(row["model"])
    return preset.description.partition(":")[0] if preset else "-"


def _model_rows(frame: pd.DataFrame) -> list[list[str]]:
    return [
        [
            f"{row['model']} ({_model_name(row)})",
            f"{int(row['frames'])} x {int(row['size'])}",
            *_cost_cells(row),
            *_runtime_cells(row),
            _top1(row),
        ]
        for row in frame.to_dict("records")
    ]


def _config_rows(frame: pd.DataFrame) -> list[list[str]]:
    return [
        [
            row["model"],
            row["attention"],
            row["pos_embed"],
            f"{int(row['frames'])} x {int(row['size'])}",
            *_cost_cells(row),
            *_runtime_cells(row),
            _top1(row),
        ]
        for row in frame.to_dict("records")
    ]


def _accuracy_rows(frame: pd.DataFrame) -> list[list[str]]:
    return [
        [
            row["model"],
            row["attention"],
            f"{int(row['frames'])} x {int(row['size'])}",
            row["accuracy_on"],
            _vs(row["top1"], row["top1_paper"], row["top1_delta_pt"], 1, " pt"),
            _vs(row["top5"], row["top5_paper"], _diff(row["top5"], row["top5_paper"]), 1, " pt"),
            _num(row["released_top1"]),
        ]
        for row in frame.to_dict("records")
    ]


def _shrunken_rows(frame: pd.DataFrame) -> list[list[str]]:
    def gib(row: Mapping[str, Any]) -> str:
        peak = row["max_allocated_bytes"]
        peak = row["max_ram_bytes"] if missing(peak) else peak
        return _num(None if missing(peak) else peak / GIB, 3)

    return [
        [
            row["measurement"],
            row["model"],
            row["attention"],
            f"{int(row['frames'])} x {int(row['size'])}",
            row["overrides"],
            row["status"],
            _num(None if missing(row["params"]) else row["params"] / 1e6, 3),
            _num(row["gflops_per_view"], 3),
            _num(row["latency_median_ms"]),
            gib(row),
            _num(row["top1"]),
        ]
        for row in frame.to_dict("records")
    ]


def _environment_rows(frame: pd.DataFrame) -> list[list[str]]:
    def text(value: Any) -> str:
        return NONE if missing(value) or value == "" else str(value)

    return [
        [
            row["env"],
            text(row["host"]),
            f"{text(row['cpu'])} ({text(row['cpu_count'])} cores)",
            text(row["gpus"]),
            text(row["torch"]),
            text(row["cuda"]),
            text(row["commit"]),
            f"{row['first']} .. {row['last']} UTC",
            str(row["rows"]),
            text(row.get("idle")),
        ]
        for row in frame.to_dict("records")
    ]


def _backend_rows(frame: pd.DataFrame) -> list[list[str]]:
    return [
        [r["model"], r["attention"], f"{r['frames']} x {r['size']}", r["run_any_backend"],
         _num(r["latency_median_ms"]), _num(r["latency_median_ms_math"]),
         _times(r["speedup"]), _num(r["peak_memory_gib"], 3),
         _num(r["peak_memory_gib_math"], 3), _times(r["memory_ratio"])]
        for r in frame.to_dict("records")
    ]  # fmt: skip


def _prediction_rows(frame: pd.DataFrame) -> list[list[str]]:
    return [
        [r["model"], r["attention"], f"{r['frames']} x {r['size']}", r["run"],
         _num(r["predicted_peak_gib"], 3), _num(r["cpu_alloc_gib"], 3), f"{r['error_pct']:+.1f}%"]
        for r in frame.to_dict("records")
    ]  # fmt: skip


def _motion_rows(frame: pd.DataFrame) -> list[list[str]]:
    def top1(row: Mapping[str, Any]) -> str:
        spread = "" if missing(row["top1_sd"]) else f" +- {row['top1_sd']:.1f}"
        return f"{row['top1_mean']:.1f}{spread} (n={row['n']})"

    def group(row: Mapping[str, Any]) -> str:
        return f" ({row['recipe']}, data seed {row['data_seed']}, {row['env']})"

    several = any(frame[column].nunique() > 1 for column in ("recipe", "data_seed", "env"))
    return [
        [
            row["scheme"] + (group(row) if several else ""),
            _num(row["params"] / 1e6, 3),
            _num(row["patch"], 0),
            _num(row["steps"], 0),
            top1(row),
            f"{row['top1_min']:.1f} .. {row['top1_max']:.1f}",
            str(row["videos"]),
            _num(row["ceiling"]),
            row["expected"],
            row["result"],
            _num(row["train_seconds"], 0),
            _num(row["top1_paper_ssv2"]),
        ]
        for row in frame.to_dict("records")
    ]


def _section(title: str, frame: pd.DataFrame, note: str, body: Callable[[], str]) -> list[str]:
    return [] if frame.empty else [f"## {title}", "", note, "", body(), ""]


def markdown(report: Report, name: str, images: Mapping[str, str]) -> str:
    """The markdown text; `images` maps a figure to its PNG's file name, beside the text."""
    counts = ", ".join(f"{status} {n}" for status, n in sorted(report.statuses.items()))
    suites = ", ".join(report.suites) or NONE
    lines = [
        f"# tsfbench report: {name}",
        "",
        f"Built {report.created} from {sum(report.statuses.values())} stored results "
        f"({counts}); suites: {suites}.",
        "",
        "- FLOPs are multiply-adds (the fvcore / paper convention); TFLOPs = views x GFLOPs of "
        "one view.",
        f"- Paper values ({PAPER}) stand in parentheses beside a measurement, with the relative "
        "difference (accuracy: in points).",
        "- Peak memory, two columns: the torch allocator's peak (reserved) on a GPU, the resident "
        "set size on a CPU; and NVML's memory of the process (context and kernels included), `-` "
        "where NVML cannot tell (no NVML, a container's PIDs). A run is `mode dtype batch "
        "device`; runs with other settings or on other machines are separate rows, never averaged.",
        *_memory_notes(report.configs),
        *timing_notes(report.configs),
        *_nvml_notes(report.environments),
        "",
        "## Environments",
        "",
        _table(
            ENVIRONMENT,
            _environment_rows(report.environments),
            keep=9,
        ),
        "",
    ]
    header = ["scheme", "pos. embed", *COST, *RUNTIME, "top-1 (%)"]
    lines += _section(
        "Table 1: attention schemes (TimeSformer, 8 x 224)",
        report.schemes,
        "Paper Table 1: K400 top-1 as the target where no accuracy was measured; a top-1 "
        "measured on another dataset is shown with its name and no paper value.",
        lambda: _table(header, _scheme_rows(report.schemes), keep=2),
    )
    header = ["model", "frames x size", *COST, *RUNTIME, "top-1 (%)"]
    lines += _section(
        "Table 2: TimeSformer vs 3D CNNs",
        report.models,
        "Paper Table 2 and Sec. 4.2. TimeSformer tests 3 views, the 3D CNNs 30.",
        lambda: _table(header, _model_rows(report.models), keep=2),
    )
    header = ["model", "attention", "frames x size", "measured on", "top-1 (%)", "top-5 (%)"]
    lines += _section(
        "Accuracy",
        report.accuracy,
        "Compared with the paper only on a declared dataset it reports (K400, K600, SSv2, "
        "Diving-48; `--dataset` or a suite's `dataset`) at its test protocol (all classes, "
        "the paper's views and frame rate).",
        lambda: _table([*header, RELEASED], _accuracy_rows(report.accuracy), keep=4),
    )
    header = ["scheme", "params (M)", "patch", "steps", "top-1 (%) mean +- s.d.", "min .. max"]
    header += ["val videos", "ceiling (%)"]
    header += ["expected", "result", "train (s)", f"paper {PAPER_SET} top-1 (other dataset)"]
    lines += _section(
        "Motion test (synthetic set, trained from scratch)",
        report.motion,
        "Small TimeSformers of each scheme trained on the synthetic train split and evaluated "
        "on its val split (3 crops). The classes differ only in motion and a left video is a "
        "right one reversed, so `space` (blind to frame order) should reach the direction-blind "
        "ceiling (what appearance tells apart: speed) and no more, within the noise "
        f"({NOISE_SE} binomial standard errors) either way, and the others should reach "
        f"{TARGET:.0f}%. The last column is the paper's Table 1 on "
        f"{PAPER_SET}, a different dataset: the same lesson, not a value to compare with.",
        lambda: "\n\n".join(
            [_table(header, _motion_rows(report.motion), keep=10), *motion_findings(report.motion)]
        ),
    )
    lines += _section(
        "What fits",
        report.fits,
        fits.NOTE,
        lambda: _table(fits.HEADER, fits.fits_rows(report.fits)),
    )
    if images:
        lines += ["## Figure 3: joint vs divided attention", ""]
        lines += [f"![{FIGURES[f][0]}]({file})" for f, file in images.items()]
        lines += ["", _oom_note(report.curves), ""]
        lines += [f"{text}\n" for text in _memory_findings(report.curves)]
    header = ["model", "attention", "frames x size", "run", "latency (ms): SDPA", "math"]
    header += ["math / SDPA", "peak memory (GiB): SDPA", "math", "SDPA / math"]
    lines += _section(
        "Implementation: SDPA vs eager attention",
        report.backends,
        "The same model, weights and run with fused SDPA kernels and with the released code's "
        "explicit softmax(QK^T)V (`backend = math`): the difference is the implementation's, "
        "not the architecture's. `benchmarks/vs_reference.py` adds `transformers`' model.",
        lambda: _table(header, _backend_rows(report.backends), keep=4),
    )
    header = [
        "model",
        "attention",
        "frames x size",
        "run",
        "predicted (GiB)",
        "measured heap (GiB)",
    ]
    lines += _section(
        "Memory prediction vs measured CPU allocations",
        report.prediction,
        "The prediction counts the bytes of live tensors without running the step; on a CPU the "
        "C heap (glibc `mallinfo2`), measured over the same two steps in a child process, holds "
        "the same tensors (suite key `cpu_allocations`). Target: within 10%. "
        "`benchmarks/predict_vs_measured.py` prints this for any configuration.",
        lambda: _table([*header, "error"], _prediction_rows(report.prediction), keep=7),
    )
    if report.between is not None:
        lines += [compare_markdown(report.between, "Between environments")]
    header = ["measurement", "model", "attention", "frames x size", "overrides", "status"]
    header += ["params (M)", "GFLOPs / view", "latency (ms)", "peak memory (GiB)", "top-1 (%)"]
    lines += _section(
        "Shrunken models (overrides)",
        report.shrunken,
        "Test-size models (e.g. depth=1): shown as measured, never compared with the paper.",
        lambda: _table(header, _shrunken_rows(report.shrunken), keep=6),
    )
    failed = [
        [r["measurement"], f"{r['model']} {r['attention']} {r['frames']} x {r['size']}",
         r["status"], NONE if missing(r["error"]) else str(r["error"])[:160]]
        for r in report.failures.to_dict("records")
    ]  # fmt: skip
    lines += _section(
        "Failures",
        report.failures,
        "Out of memory, timeouts and errors (an error is retried by the next `tsfbench run`).",
        lambda: _table(["measurement", "config", "status", "error"], failed, keep=4),
    )
    header = ["model", "attention", "pos. embed", "frames x size", *COST, *RUNTIME, "top-1 (%)"]
    lines += _section(
        "All configurations",
        report.configs,
        "Every configuration measured at full size, one row per run.",
        lambda: _table(header, _config_rows(report.configs), keep=4),
    )
    return "\n".join(lines).rstrip() + "\n"


def _memory_notes(configs: pd.DataFrame) -> list[str]:
    """A footnote per memory figure that some rows lack (`memory_note`: `figure: why; ...`),
    e.g. NVML's process memory inside a container, whose PIDs NVML does not know."""
    if "memory_note" not in configs:
        return []
    rows: dict[str, int] = {}
    why: dict[str, str] = {}
    for note in configs["memory_note"].dropna():
        for part in str(note).split("; "):
            figure, _, reason = part.partition(": ")
            rows[figure] = rows.get(figure, 0) + 1
            why.setdefault(figure, reason)
    return [
        f"- `{figure}` missing or partial in {n} row(s): {why[figure]}. Its column shows `-`; "
        "the allocator's peak is measured without NVML."
        for figure, n in rows.items()
    ]


def _nvml_notes(environments: pd.DataFrame) -> list[str]:
    """A footnote per environment whose GPU ran without NVML (a container without libnvidia-ml)."""
    if "nvml_unavailable" not in environments:
        return []
    return [
        f"- {row['env']}: NVML unavailable ({row['nvml_unavailable']})."
        for row in environments.to_dict("records")
        if not missing(row["nvml_unavailable"])
    ]


def _oom_note(curves: pd.DataFrame) -> str:
    """The out-of-memory points in words, measured and the paper's."""
    oom = curves[curves["status"] == Status.OOM]
    measured = oom[oom["source"] == "measured"].drop_duplicates(["series", "x", "figure"])
    unit = {"frames": " frames", "size": " px"}
    words = [
        f"{row['series']} at {row['x']}{unit[row['figure'].rsplit('_', 1)[1]]}"
        for row in measured.to_dict("records")
    ]
    text = "Out of memory here: " + ("; ".join(words) if words else "none") + "."
    paper = oom[oom["source"] == "paper"].drop_duplicates(["figure", "x"])
    if len(paper):
        text += (
            f" In the paper, joint attention ran out of memory on a {PAPER_GPU} at crop 448 "
            "and at 32 frames (grey x); divided kept going."
        )
    return text


# --- Figure 3's memory, in words, from the predicted curves -------------------------------------


def _predicted(pred: pd.DataFrame, figure: str, attention: str, backend: str) -> dict[Any, dict]:
    """{pair (the run but its backend): {x: GiB}} of one predicted curve."""
    rows = pred[
        (pred["figure"] == figure) & (pred["attention"] == attention) & (pred["backend"] == backend)
    ]
    curves: dict[Any, dict] = {}
    for row in rows.to_dict("records"):
        curves.setdefault(row["pair"], {})[row["x"]] = float(row["y"])
    return curves


def _train(pair: Any) -> bool:
    """Figure 3 is about training memory: a train run first where several were predicted."""
    return str(pair).startswith("train")


def _where(figure: str, x: Any) -> str:
    return f"{x} frames at 224 px" if figure.endswith("frames") else f"a {x} px crop at 8 frames"


def _both(texts: list[str], unit: str = "") -> str:
    """`28.99 and 30.50 GiB`, or `28.99 GiB at each` where the points agree (32 frames at 224
    and 8 frames at 448 are the same 6,272 tokens)."""
    if len(texts) > 1 and len(set(texts)) == 1:
        return f"{texts[0]}{unit} at each"
    return " and ".join(texts) + unit


def _oom_sentence(curves: pd.DataFrame, pred: pd.DataFrame) -> str | None:
    """Joint attention with `math` vs `sdpa` where the paper first ran out of memory."""
    paper = curves[curves["source"] == "paper"].sort_values("x").drop_duplicates("figure")
    found: dict[Any, list[tuple[str, Any, float, float]]] = {}
    for figure, x in paper[["figure", "x"]].itertuples(index=False):
        math_, sdpa = (_predicted(pred, figure, "joint", b) for b in ("math", "sdpa"))
        for pair in math_.keys() & sdpa.keys():
            if x in math_[pair] and x in sdpa[pair]:
                found.setdefault(pair, []).append((figure, x, math_[pair][x], sdpa[pair][x]))
    if not found:
        return None
    pair, points = max(sorted(found.items()), key=lambda item: (len(item[1]), _train(item[0])))
    limits = pred.loc[pred["pair"] == pair, "limit_gib"].dropna()
    limit = float(limits.iloc[0]) if len(limits) else PAPER_GPU_BYTES / GIB
    materialised = [m for _, _, m, _ in points]
    fused = [f for _, _, _, f in points]
    where = "; ".join(_where(figure, x) for figure, x, _, _ in points)
    needs = _both([f"{m:.2f}" for m in materialised], " GiB")
    fused_needs = _both([f"{f:.2f}" for f in fused], " GiB")
    ratios = {f"{m / f:.1f}" for m, f in zip(materialised, fused, strict=True)}
    less = ("" if len(ratios) == 1 else "at least ") + f"{min(ratios, key=float)}x less"
    return (
        f"Where the paper's joint attention first ran out of memory on a {PAPER_GPU} ({where}), "
        f"a step of `{pair}` is predicted to need {needs} with materialised attention (`math`, "
        f"the released code's softmax(QK^T)V: {_shares(materialised, limit)} of the {limit:g} "
        f"GiB limit) and {fused_needs} with fused attention (`sdpa`: {_shares(fused, limit)}), "
        f"{less}. {_against_limit(materialised, fused, limit)}."
    )


def _shares(gib: list[float], limit: float) -> str:
    return " and ".join(dict.fromkeys(f"{value / limit:.0%}" for value in gib))


def _against_limit(materialised: list[float], fused: list[float], limit: float) -> str:
    """What the predictions imply, from a comparison with the limit itself and nothing else:
    the prediction counts tensors, not the CUDA context, kernel workspaces or the allocator's
    rounding, so a step under the limit says how much of the card those would have to take."""
    if any(f > limit for f in fused):
        return "Fused attention exceeds the limit there too: joint attention itself does not fit"
    if all(m > limit for m in materialised):
        return "Materialised attention alone exceeds the limit there"
    if any(m > limit for m in materialised):
        return "Materialised attention exceeds the limit at some of these points, fused at none"
    left = _both([f"{limit - m:.2f}" for m in materialised], " GiB")
    return (
        "Both stay under the limit in the prediction, which counts tensors only (not the CUDA "
        "context, kernel workspaces or the allocator's rounding): materialised attention leaves "
        f"{left} of the card for them"
    )


def _growth(curves: pd.DataFrame, attention: str, xs: list[Any]) -> float | None:
    cost = curves[
        (curves["figure"] == "gflops_vs_frames")
        & (curves["attention"] == attention)
        & (curves["source"] == "measured")
    ]
    by_x = dict(zip(cost["x"], cost["y"].astype(float), strict=True))
    if xs[0] not in by_x or xs[-1] not in by_x:
        return None
    return by_x[xs[-1]] / by_x[xs[0]]


def _fused_sentence(curves: pd.DataFrame, pred: pd.DataFrame) -> str | None:
    """Joint vs divided with `sdpa`, by clip length, and how their GFLOPs grow."""
    figure = "memory_vs_frames"
    joint, divided = (_predicted(pred, figure, a, "sdpa") for a in ("joint", "divided"))
    pairs = {p: sorted(joint[p].keys() & divided[p].keys()) for p in joint.keys() & divided.keys()}
    pairs = {p: xs for p, xs in pairs.items() if len(xs) >= 2}
    if not pairs:
        return None
    pair, xs = max(sorted(pairs.items()), key=lambda item: (len(item[1]), _train(item[0])))
    j, d = joint[pair], divided[pair]
    less = [x for x in xs if j[x] < d[x]]
    if len(less) == len(xs):
        how = "less memory than divided at every predicted clip length"
    elif not less:
        how = "more memory than divided at every predicted clip length"
    else:
        more = [x for x in xs if x not in less]
        how = (
            f"less memory than divided at {', '.join(map(str, less))} frames and more at "
            f"{', '.join(map(str, more))}"
        )
    shown = sorted({x for x in (32, xs[-1]) if x in xs})
    examples = ", ".join(f"{j[x]:.2f} vs {d[x]:.2f} GiB at {x} frames" for x in shown)
    text = f"With fused attention (`sdpa`) joint attention needs {how} ({examples})"
    gj, gd = _growth(curves, "joint", xs), _growth(curves, "divided", xs)
    if gj is not None and gd is not None:
        faster = "still grow faster" if gj > 1.1 * gd else "grow no faster than divided's"
        text += (
            f", while its GFLOPs {faster} ({gj:.1f}x from {xs[0]} to {xs[-1]} frames, divided "
            f"{gd:.1f}x: *{FIGURES['gflops_vs_frames'][0]}*)"
        )
    return text + "."


def _memory_findings(curves: pd.DataFrame) -> list[str]:
    """Two sentences from the predicted memory curves, or none: what the paper's out-of-memory
    points come from, and how joint and divided compare with fused attention. Worded from the
    numbers, so other numbers give other words."""
    memory = curves["figure"].str.startswith("memory")
    pred = curves[memory & (curves["status"] == Status.PREDICTED) & curves["y"].notna()]
    if pred.empty:
        return []
    sentences = [_oom_sentence(curves, pred), _fused_sentence(curves, pred)]
    text = " ".join(s for s in sentences if s)
    if not text:
        return []
    return [
        f"{text} Predicted curves are dashed (`sdpa`) and dotted (`math`) with hollow markers "
        f"(*{FIGURES['memory_vs_frames'][0]}*, *{FIGURES['memory_vs_size'][0]}*); measured runs "
        "are solid; a GPU run of `suites/paper.toml` adds measured SDPA points to check them."
    ]
