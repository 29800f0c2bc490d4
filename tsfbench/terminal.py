"""How the terminal looks: the progress bar, tables, and the runtime probes' table.

Tables go to stdout (wide when piped, so a table is never cut), progress and messages to
stderr; every command that prints a table here also has `--json`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from tsfbench.config import GIB, clip_name
from tsfbench.models.parts import PATCH_EMBED, by_step
from tsfbench.store import Status

if TYPE_CHECKING:
    from tsfbench.measure.estimate import SweepClock

T = TypeVar("T")
stdout = Console(width=None if sys.stdout.isatty() else 200)  # piped tables are not cut
stderr = Console(stderr=True)


def progress_bar(disable: bool = False) -> Progress:
    """The progress bar of every long command: what runs, bar, count, elapsed, ETA; on stderr."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=stderr, transient=True, disable=disable)


@contextmanager
def bar_at_first_update(disable: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar that appears at the first `update(description, done, total)`: an error
    raised before any work is done stays one line (rich prints a newline when a bar stops)."""
    progress = progress_bar(disable)
    task = None

    def update(description: str, done: int, total: int) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task(description, total=total)
        progress.update(task, completed=done, total=total, description=description)

    try:
        yield update
    finally:
        if task is not None:
            progress.stop()


class EstimateColumn(ProgressColumn):
    """The time left by a sweep's estimate (`task.fields["finish"]`, a monotonic deadline),
    counting down between configurations, never below what the ones after it need."""

    def render(self, task: Any) -> Text:
        finish = task.fields.get("finish")
        if finish is None:
            return Text("-:--:--", style="progress.remaining")
        left = max(finish - time.monotonic(), task.fields.get("floor", 0.0))
        return Text(str(timedelta(seconds=round(left))), style="progress.remaining")


@contextmanager
def config_progress(
    configs: list[Any], clock: SweepClock | None = None
) -> Iterator[Callable[..., None]]:
    """A sweep's bar over its configurations, naming the one in flight; yields the sweep's
    `progress(done, total, config, record)` callback. With a `measure.estimate.SweepClock`
    the bar runs in estimated seconds and the ETA is the estimate's, from the first
    configuration on (rich's own needs a few finished steps)."""
    name = lambda config: f"{config.attention} {config.frames}x{config.size}"  # noqa: E731
    if clock is not None:
        with _estimated_progress(configs, clock, name) as advance:
            yield advance
        return
    with progress_bar() as progress:
        task = progress.add_task(name(configs[0]), total=len(configs))

        def advance(done: int, total: int, config: Any, record: dict[str, Any]) -> None:
            following = configs[done] if done < total else config
            progress.update(task, completed=done, description=name(following))

        yield advance


@contextmanager
def _estimated_progress(
    configs: list[Any], clock: SweepClock, name: Callable[[Any], str]
) -> Iterator[Callable[..., None]]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        EstimateColumn(),
    )
    with Progress(*columns, console=stderr, transient=True) as progress:
        clock.start()

        def refresh(done: int) -> None:
            now, left = time.monotonic(), clock.remaining(done)
            progress.update(
                task,
                completed=clock.spent,
                total=clock.spent + left,
                description=name(configs[min(done, len(configs) - 1)]),
                count=f"{done}/{len(configs)}",
                finish=now + left,
                floor=clock.remaining(done + 1),
            )

        task = progress.add_task("", total=None, count="", finish=None)
        refresh(0)

        def advance(done: int, total: int, config: Any, record: dict[str, Any]) -> None:
            clock.finished(done - 1, record)
            refresh(done)

        yield advance


def track(items: Iterable[T], total: int, describe: Callable[[T], str]) -> Iterable[T]:
    """Yield `items` under the progress bar; `describe` names the last one done."""
    with progress_bar() as progress:
        task = progress.add_task("", total=total)
        for item in items:
            progress.update(task, description=describe(item), advance=1)
            yield item


def show(data: Any, as_json: bool, render: Callable[..., None], *args: Any) -> None:
    """A command's result: JSON on stdout with `--json` (a value JSON lacks as its text), else
    `render(data, *args)`."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        render(data, *args)


def render(rows: list[dict[str, Any]], columns: dict[str, str], title: str, caption: str) -> None:
    """A rich table of `rows`; `columns` maps a row key to its header."""
    table = Table(title=title, caption=caption, header_style="bold", box=box.SIMPLE_HEAD)
    for key, header in columns.items():
        numeric = isinstance(rows[0].get(key), int | float) if rows else False
        table.add_column(
            header, justify="right" if numeric else "left", min_width=len(header), no_wrap=True
        )
    for row in rows:
        table.add_row(*(cell(row.get(key)) for key in columns))
    stdout.print(table)


def render_facts(facts: dict[str, Any], title: str) -> None:
    """A two-column table: each fact's name and value."""
    table = Table(show_header=False, title=title)
    for key, value in facts.items():
        table.add_row(key, cell(value))
    stdout.print(table)


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} x{v}" for k, v in value.items()) or "-"
    return "-" if value is None else str(value)


def render_probes(records: list[dict[str, Any]], predict_only: bool) -> None:
    """The table of a `latency` / `memory-sweep` run, its errors, and what fitted."""
    from tsfbench.measure.sweep import largest_fitting

    for record in records:
        for key in [k for k in record if k.endswith("_bytes")]:
            record[key.removesuffix("_bytes") + "_gib"] = (
                None if record[key] is None else record[key] / GIB
            )
    columns = {
        "model": "model",
        "attention": "attention",
        "frames": "Frames",
        "size": "Size",
        "mode": "mode",
        "dtype": "dtype",
        "batch": "Batch",
        "status": "status",
        "latency_median_ci": "Median ms [95% CI]",
        "latency_p90_ms": "P90 ms",
        "iterations_run": "Iters",
        "throughput": "Clips/s",
        "max_allocated_gib": "Alloc GiB",
        "max_reserved_gib": "Reserved GiB",
        "max_process_vram_gib": "NVML proc GiB",
        "max_global_vram_gib": "NVML dev GiB",
        "max_ram_gib": "RSS GiB",
        "predicted_peak_gib": "Predicted GiB",
        "energy_j_per_clip": "J/clip",
        "power_w": "W",
        "contended_by": "contended",
    }
    for record in records:
        record |= timing_cells(record)
    shown = {k: v for k, v in columns.items() if any(r.get(k) is not None for r in records)}
    caption = (
        "Predicted without running (FakeTensorMode): tensor bytes at the allocator's peak."
        if predict_only
        else "Each configuration ran in its own process; peaks reset before each. RSS includes"
        " the runtime; Predicted counts tensor bytes (allocator peak)."
    )
    render(records, shown, "Runtime", caption)
    from tsfbench.stats import drift_note

    drift = drift_note([r["canary_ms"] for r in records if r.get("canary_ms") is not None])
    if drift:
        stdout.print(f"note: {drift}.", highlight=False, soft_wrap=True)
    for record in records:
        if record.get("error"):
            stderr.print(
                f"{record['attention']} {record['frames']}x{record['size']}: "
                f"{record['status']}: {record['error']}",
                highlight=False,
                soft_wrap=True,
            )
    if predict_only and all(record.get("predicted_fits") is None for record in records):
        stdout.print("fits: no device memory to compare with; give --memory-limit, e.g. 24GiB")
        return
    for scheme, best in largest_fitting(records, predicted=predict_only).items():
        what = "predicted to fit" if predict_only else "that ran"
        fits = f"{best['frames']} x {best['size']}" if best else "nothing"
        stdout.print(f"largest {what}, {scheme}: {fits}", highlight=False)


def timing_cells(record: dict[str, Any]) -> dict[str, Any]:
    """A latency row's terminal cells: `median [low, high]`, the steps timed and why it
    stopped (where not a fixed count), and what else used the machine if it was contended."""
    from tsfbench.stats import median_text

    digits = 1 if (record.get("latency_median_ms") or 0) >= 10 else 3
    low, high = record.get("latency_ci_low_ms"), record.get("latency_ci_high_ms")
    count = record.get("iterations") if record.get("latency_median_ms") is not None else None
    why = [] if record.get("stop_reason") in (None, "iterations") else [record["stop_reason"]]
    why += [f"re-timed {record['remeasured']}x"] if record.get("remeasured") else []
    return {
        "latency_median_ci": median_text(record.get("latency_median_ms"), low, high, digits),
        "iterations_run": None
        if count is None
        else f"{count}" + (f" ({', '.join(why)})" * bool(why)),
        "contended_by": record.get("contention") if record.get("contended") else None,
    }


def render_breakdown(records: list[dict[str, Any]]) -> None:
    """`memory-sweep --predict-only --breakdown`: each configuration's peak by category and part."""
    mib = [record | {"mib": record["bytes"] / 2**20, "percent": 100 * record["share"]}
           for record in records]  # fmt: skip
    columns = {"model": "model", "attention": "attention", "frames": "Frames", "size": "Size"}
    columns |= {"mode": "mode", "backend": "backend", "category": "category", "part": "part"}
    columns |= {"mib": "MiB", "percent": "% of peak", "op": "op running at the peak"}
    caption = (
        "Tensor bytes held at the predicted peak (FakeTensorMode); each configuration's rows sum"
        " exactly to its `memory-sweep --predict-only` peak. Activations: saved for backward."
    )
    render(mib, columns, "What holds the predicted peak", caption)


def print_sweep_time(records: list[dict[str, Any]], seconds: float, predict_only: bool) -> None:
    """How long a sweep took and, when it ran steps, how much of it the tool spent besides the
    steps it timed (process start, model build, warm-up, prediction, exit)."""
    timed = sum(
        r["latency_mean_ms"] * r["iterations"] / 1e3
        for r in records
        if r.get("latency_mean_ms") is not None
    )
    summary = f"{len(records)} configuration{'s' * (len(records) != 1)} in {seconds:.1f} s"
    if not predict_only:  # what the tool spends besides the steps it times
        overhead = seconds - timed
        summary += (
            f": {timed:.1f} s of timed steps, {overhead:.1f} s of overhead"
            f" ({overhead / len(records):.1f} s each: start, model, warm-up, prediction, exit)"
        )
    stderr.print(summary, highlight=False)


def render_flops(rows: list[dict[str, Any]], breakdown: bool) -> None:
    """`tsfbench flops`: parameters and costs per configuration, and by part if asked."""
    key = {"model": "model", "attention": "attention", "frames": "Frames", "size": "Size"}
    caption = "FLOPs are multiply-adds (fvcore convention); TFLOPs = views x GFLOPs of one view."
    columns = key | {
        "pos_embed": "pos_embed",
        "params_m": "Params M",
        "gflops_per_view": "GFLOPs/view",
        "views": "Views",
        "tflops": "TFLOPs",
        "unsupported_ops": "unsupported",
    }
    render([row | {"params_m": row["params"] / 1e6} for row in rows], columns, "FLOPs", caption)
    if breakdown:  # a step's parts summed (`time.*`); --json has each part
        steps = [by_step(row["breakdown_gflops"]) for row in rows]
        seen = [part for row in steps for part, value in row.items() if value]
        # the patch embedding, every row's steps, then the parts each block ends with
        ranked = sorted(
            dict.fromkeys(seen),
            key=lambda part: 0 if part == PATCH_EMBED else 2 - part.endswith(".*"),
        )
        parts = {part: part for part in ranked}
        table_rows = [row | step for row, step in zip(rows, steps, strict=True)]
        render(table_rows, key | parts, "GFLOPs of one view by part", caption)


def render_profile(result: dict[str, Any]) -> None:
    """`tsfbench profile`: a row per part, the check against `latency`, per block, memory."""
    pct = lambda value: None if value is None else 100 * value  # noqa: E731
    rows = [
        row
        | {
            "params_m": row["params"] / 1e6,
            "ci": "-"
            if row["ci_low_ms"] is None
            else f"{row['ci_low_ms']:.3g}..{row['ci_high_ms']:.3g}",
            "time_pct": pct(row["time_share"]),
            "gmacs": row["macs"] / 1e9,
            "flop_pct": pct(row["flop_share"]),
            "peak_pct": pct(row["peak_share"]),
        }
        for row in result["parts"]
    ]
    columns = {
        "part": "part", "params_m": "Params M", "time_ms": "ms", "ci": "95% CI ms",
        "time_pct": "time %", "gmacs": "GFLOPs", "flop_pct": "FLOPs %",
        "gflops_per_s": "GFLOP/s", "peak_pct": "% peak", "time_per_flop": "time/FLOP share",
    }  # fmt: skip
    title = (
        f"{clip_name(result['model'], result['attention'], result['frames'], result['size'])} "
        f"{result['mode']} {result['dtype']} b{result['batch']} {result['backend']} on "
        f"{result['device']}: where the time goes"
    )
    caption = (
        f"ms: median over {result['profiled_step']['iterations']} profiled steps "
        f"({result['time_source']}). GFLOPs are multiply-adds ({result['counter']}); "
        f"GFLOP/s: 2 per multiply-add, like the peak: {result['peak_how']}."
    )
    render(rows, columns, title, caption)
    latency, profiled = result["latency"]["median_ms"], result["profiled_step"]["median_ms"]
    stdout.print(
        f"step median {latency:.4g} ms without the profiler, {profiled:.4g} ms with it "
        f"(overhead {100 * result['profiler_overhead']:+.1f}%); parts sum to "
        f"{result['parts_sum_ms']:.4g} ms ({100 * result['parts_sum_vs_latency']:+.1f}% of the "
        "median without the profiler)"
    )
    for note in result["notes"]:
        stdout.print(f"note: {note}")
    if result.get("per_block"):
        render(result["per_block"], {"block": "block", "part": "part", "time_ms": "ms"},
               "Per block (median ms)", "")  # fmt: skip
    if result.get("memory"):
        memory = [row | {"mib": row["bytes"] / 2**20} for row in result["memory"]]
        columns = {"category": "category", "part": "part", "mib": "MiB", "op": "op at the peak"}
        render(memory, columns, "Predicted peak memory by category", "no run: predicted")


def render_accuracy(record: dict[str, Any]) -> None:
    """`tsfbench accuracy`: one row, then each skipped video with its reason on stderr."""
    columns_shown = {
        "model": "model",
        "attention": "attention",
        "dataset": "dataset",
        "evaluated": "Videos",
        "skipped": "Skipped",
        "views": "Views",
        "top1": "Top-1 %",
        "top5": "Top-5 %",
        "decode_clips_per_s": "Decode clips/s",
        "model_clips_per_s": "Model clips/s",
        "bound": "bound by",
    }
    render([record], columns_shown, "Accuracy", "Softmax averaged over the views of a video.")
    for skip in record["skipped_videos"]:
        stderr.print(
            f"skipped {skip['video']}: {skip['reason']} ({skip['detail']})", highlight=False
        )
    if record.get("pyav_videos"):  # decord cannot decode them (AV1): `pyav_videos` names them
        stderr.print(f"read by PyAV where decord cannot: {len(record['pyav_videos'])} video(s)")


def render_report(report: dict[str, Any]) -> None:
    """`tsfbench report` ({files, summary, motion}): Table 1 and 2 rows in a few columns, and
    the motion test's table; the files have the rest."""
    rows, motion = report["summary"], report["motion"]
    columns = {
        "table": "Table",
        "model": "model",
        "attention": "attention",
        "frames": "Frames",
        "size": "Size",
        "run": "run",
        "params_m": "Params M",
        "gflops_per_view": "GFLOPs/view",
        "gflops_per_view_paper": "paper",
        "tflops": "TFLOPs",
        "latency": "Median ms [95% CI]",
        "peak_memory_gib": "Peak GiB",
        "top1": "Top-1 %",
        "dataset": "on",
    }
    if rows:
        rows = [_predicted_peak(row) for row in rows]
        caption = f"Full report: {report['files'][0]}"
        if any(str(row.get("latency") or "").endswith("(c)") for row in rows):
            caption += " | (c): measured while other work used the machine (its footnote says what)"
        render(rows, columns, "Report summary", caption)
    if motion["rows"]:
        columns = {"scheme": "Motion test", "recipe": "recipe", "data_seed": "data seed"}
        columns |= {"n": "seeds"}
        columns |= {"top1_mean": "Top-1 %", "top1_sd": "s.d.", "ceiling": "ceiling"}
        columns |= {"expected": "expected", "result": "result", "top1_paper_ssv2": "paper SSv2"}
        render(motion["rows"], columns, "Motion test (synthetic)", " ".join(motion["findings"]))


def _predicted_peak(row: dict[str, Any]) -> dict[str, Any]:
    """A predicted peak is marked as one: no step ran for it."""
    if row.get("runtime_status") != Status.PREDICTED or row.get("peak_memory_gib") is None:
        return row
    return row | {"peak_memory_gib": f"{cell(row['peak_memory_gib'])} (predicted)"}


def render_comparison(result: dict[str, Any]) -> None:
    """`tsfbench compare`: one row per pair with its verdict, the unmatched rows, a summary."""
    from tsfbench.compare import (
        caption,
        changes_text,
        machine_text,
        ratio_text,
        side_text,
        summary_text,
        verdict_text,
    )

    rows = [
        pair
        | {
            "ratio_text": ratio_text(pair),
            "machine_text": machine_text(pair),
            "verdict_text": verdict_text(pair),
            "memory_text": changes_text(pair["memory"], pair["memory_flags"]),
            "model_text": changes_text(pair["model"], None),
        }
        for pair in result["pairs"]
    ]
    columns = {"what": "task", "device": "device", "base_median_ms": "Base ms"}
    columns |= {"new_median_ms": "New ms", "ratio_text": "new / base [95% CI]"}
    columns |= {"machine_text": "machine"}
    columns |= {"verdict_text": "verdict", "memory_text": "memory", "model_text": "model"}
    title = "Comparison" + (" between devices" if result["between_devices"] else "")
    stdout.print(f"base: {side_text(result['base'])}", highlight=False, soft_wrap=True)
    stdout.print(f"new:  {side_text(result['new'])}", highlight=False, soft_wrap=True)
    render(rows, columns, title, caption(result))
    if result["unmatched"]:
        columns = {"side": "side", "what": "task", "reason": "why"}
        render(result["unmatched"], columns, "Unmatched rows", "Listed, never dropped.")
    stdout.print(summary_text(result), highlight=False)


def render_ab(result: dict[str, Any]) -> None:
    """`tsfbench ab`: one row per configuration, its ratio, verdict, rounds and stop reason."""
    from tsfbench.ab import COLUMNS, caption, rows

    render(rows(result), COLUMNS, "A/B: new / base, timed alternately", caption(result))


def render_motion(record: dict[str, Any]) -> None:
    """`tsfbench train`: the trained model's settings, loss, time and val top-1."""
    columns = {
        "attention": "attention",
        "seed": "seed",
        "params": "Params",
        "train_steps": "Steps",
        "final_loss": "Loss",
        "train_seconds": "Train s",
        "evaluated": "Videos",
        "top1": "Top-1 %",
        "ceiling": "Direction-blind %",
        "checkpoint": "checkpoint",
    }
    caption = "Val top-1, test protocol; `space` should reach the direction-blind ceiling, no more."
    render([record], columns, "Motion test", caption)


@contextmanager
def suite_progress(
    name: str, disable: bool = False
) -> Iterator[tuple[Callable[..., None], Callable[..., None]]]:
    """`tsfbench run`'s bars: one over the tasks, and one over the steps of a motion task in
    training (each task its own elapsed time and ETA). Yields `runner.run_suite`'s `progress`
    and `training` callbacks."""
    with progress_bar(disable=disable) as progress:
        bar = progress.add_task(f"{name}: checking the store", total=None)
        steps = progress.add_task("", total=None, visible=False)
        training: list[str] = []  # the motion task whose steps the second bar shows

        def advance(done: int, total: int, task: Any, status: str) -> None:
            label = f"{name}: {task.describe()}" + ("" if status == Status.OK else f" {status}")
            progress.update(bar, completed=done, total=total, description=label)
            progress.update(steps, visible=False)

        def train(task: Any, step: int, total: int, loss: float) -> None:
            label = f"  training {task.describe()}: loss {loss:.3f}"
            if training[-1:] != [task.key]:  # a new task: its own elapsed time and ETA
                training.append(task.key)
                progress.reset(steps, total=total, visible=True)
            progress.update(steps, completed=step, total=total, description=label, visible=True)

        yield advance, train


def render_run(summary: dict[str, Any]) -> None:
    """`tsfbench run`'s last lines: what was measured, how it ended, and each failure."""
    statuses = summary["statuses"]
    outcomes = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    stdout.print(
        f"{summary['suite']}: {summary['tasks']} tasks (shard {summary['shard']}): "
        f"{sum(statuses.values())} measured{f' ({outcomes})' if outcomes else ''}, "
        f"{summary['skipped']} already in the store; {summary['seconds']:.0f} s. "
        f"Store: {summary['store']}"
    )
    for failure in summary["failures"]:
        stdout.print(f"  {failure['status']}: {failure['task']}: {failure['error']}")
    for row in summary.get("contended", []):
        stdout.print(f"  contended: {row['task']}: {row['contention']}", highlight=False)
    from tsfbench.stats import drift_note

    drift = drift_note(summary.get("canary_ms", []))
    if drift:
        stdout.print(f"  note: {drift}.", highlight=False, soft_wrap=True)


def render_plan(rows: list[dict[str, Any]], title: str, store: object) -> None:
    """`tsfbench run --dry-run`: this shard's tasks, each stored or to run."""
    todo = sum(row["state"] == "to run" for row in rows)
    caption = f"{todo} to run, {len(rows) - todo} stored in {store}"
    render(rows, {"task": "task", "state": "state"}, title, caption)


def render_cards(rows: list[dict[str, Any]]) -> None:
    """`tsfbench fit --gpu list`: the cards and the memory a fit plans with."""
    columns = {"gpu": "--gpu", "product": "product", "datasheet": "datasheet"}
    columns |= {"memory_gib": "Planned GiB", "ecc": "ECC (GDDR)"}
    caption = "Datasheet GB read as GiB; 1/16 less where GDDR ECC is on by default (docs/fit.md)."
    render(rows, columns, "GPUs", caption)


def render_fit(result: dict[str, Any]) -> None:
    """`tsfbench fit`: per scheme and axis the boundary pair with its peaks, then the budget."""

    def shown(value: Any, peak: Any) -> str:
        return "-" if value is None else f"{value} ({peak / GIB:.2f} GiB)"

    rows = []
    for r in result["answers"]:
        held = {"frames": f"{r['frames']} frames", "size": f"{r['size']} px"}
        held["batch"] = f"batch {r['batch']}"
        answer = r["answer"]
        if answer == "all fit":
            answer = f"all fit up to the bound {r['axis_high']}"
        elif answer == "none fits":
            answer = f"none fits (from {r['axis_low']})"
        rows.append(
            {
                "attention": r["attention"],
                "axis": r["axis"],
                "held": ", ".join(text for axis, text in held.items() if axis != r["axis"]),
                "run": f"{r['mode']} {r['dtype']} {r['backend']}"
                + (" checkpointed" if r["checkpointing"] else ""),
                "largest": shown(r["largest"], r["largest_peak_bytes"]),
                "next": shown(r["next"], r["next_peak_bytes"]),
                "answer": r["error"] or answer,
                "range": f"{r['axis_low']}..{r['axis_high']} step {r['axis_step']}",
            }
        )
    columns = {"attention": "attention", "axis": "axis", "held": "held", "run": "run"}
    columns |= {"largest": "largest that fits (peak)", "next": "next, over (peak)"}
    columns |= {"answer": "answer", "range": "searched"}
    device = result["answers"][0]["device"] if result["answers"] else "cpu"
    caption = (
        f"Predicted peaks (FakeTensorMode, the step as it runs on {device}); "
        "not counted: other processes, the data loader's pinned memory, fragmentation beyond "
        "the margin."
    )
    render(rows, columns, "What fits", caption)
    stdout.print(result["budget"]["line"], highlight=False, soft_wrap=True)
    made = result["predictions"]
    stderr.print(
        f"{made['made']} predictions ({made['reused']} answers reused) in {made['seconds']:.1f} s"
        f" on {made['workers']} worker(s); predicting every value searched: "
        f"{made['brute_force']}",
        highlight=False,
    )
