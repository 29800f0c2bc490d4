"""The `tsfbench` command: a thin Typer layer that parses, calls the library and renders.

Every table is also available as `--json` on stdout; progress and errors go to stderr. Bad input
raises `ConfigError` anywhere below, and the group turns it into one line and exit code 2.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from tsfbench import __version__
from tsfbench.config import (
    AccuracySettings,
    ConfigError,
    TrainSettings,
    check_device,
    check_overrides,
    clip_name,
    parse_config,
    parse_configs,
    probe_settings,
)
from tsfbench.data.datasets import DATASETS
from tsfbench.models.registry import ATTENTIONS, POS_EMBEDS, PRESETS
from tsfbench.store import DEFAULT_STORE
from tsfbench.terminal import (
    bar_at_first_update,
    config_progress,
    print_sweep_time,
    render_ab,
    render_accuracy,
    render_breakdown,
    render_cards,
    render_comparison,
    render_facts,
    render_fit,
    render_flops,
    render_motion,
    render_plan,
    render_probes,
    render_profile,
    render_report,
    render_run,
    show,
    stderr,
    suite_progress,
    track,
)


class _Group(TyperGroup):
    """Turns bad input into one line on stderr and exit code 2, with no traceback."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Benchmark and profile video transformers (TimeSformer) against 3D CNN baselines.",
)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")
]
Attentions = Annotated[
    str | None, typer.Option(help=f"{', '.join(ATTENTIONS)}, a comma list, or all.")
]
FrameRange = Annotated[str | None, typer.Option(help="8, 8,16,32 or 8..96[:STEP].")]
SizeRange = Annotated[str | None, typer.Option(help="224, 224,448 or 224..560:112.")]
Mode = Annotated[str, typer.Option(help="infer (inference_mode) or train (fwd + bwd + step).")]
Dtype = Annotated[str, typer.Option(help="fp32, fp16 or bf16 (autocast).")]
Backend = Annotated[
    str, typer.Option(help="SDPA kernel: sdpa (torch picks), math, flash, efficient.")
]
MemoryLimit = Annotated[
    str | None, typer.Option(help="Cap memory to emulate a smaller device, e.g. 32GiB.")
]
Device = Annotated[
    str, typer.Option(help="auto (the GPU where there is one), cpu, cuda or cuda:N.")
]
Override = Annotated[int | None, typer.Option(help="Model size override (quick CPU runs).")]
Variants = Annotated[
    str,
    typer.Option("--variant", "--model", help=f"Model(s), comma separated: {', '.join(PRESETS)}."),
]
Batch = Annotated[int, typer.Option(help="Clips per step.")]
Checkpointing = Annotated[
    bool, typer.Option(help="Train mode: recompute each block's activations in backward.")
]
Iterations = Annotated[
    str, typer.Option(help="Timed steps, or auto: until the median's 95% CI is within --target-ci.")
]
TargetCi = Annotated[
    float, typer.Option(help="Auto: the CI half-width to reach, a fraction of the median.")
]
MaxTime = Annotated[float, typer.Option(help="Auto: seconds of timed steps per configuration.")]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tsfbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Benchmark and profile video transformers (TimeSformer) against 3D CNN baselines."""


@app.command()
def env(as_json: JsonOption = False) -> None:
    """Python, torch, CUDA, GPUs, NVML driver, fvcore and decord versions."""
    from tsfbench.environment import environment

    info = environment()
    show(info, as_json, render_facts, "tsfbench environment")


@app.command()
def flops(
    variant: Variants = "base",
    attention: Attentions = None,
    frames: FrameRange = None,
    size: SizeRange = None,
    views: Annotated[int | None, typer.Option(help="Test views (default: the preset's).")] = None,
    pos_embed: Annotated[
        str, typer.Option(help=f"{', '.join(POS_EMBEDS)} (default: the scheme's).")
    ] = "",
    classes: Annotated[int | None, typer.Option(help="Classes of the head.")] = None,
    breakdown: Annotated[bool, typer.Option(help="GFLOPs per part of the model.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Parameters, GFLOPs of one view and inference TFLOPs (fvcore, multiply-adds)."""
    from tsfbench.measure.flops import count_many

    configs = parse_configs(
        variant, attention, frames, size, pos_embed=pos_embed, classes=classes, views=views
    )
    describe = lambda r: clip_name(r["model"], r["attention"], r["frames"], r["size"])  # noqa: E731
    rows = list(track(count_many(configs, breakdown), len(configs), describe))
    show(rows, as_json, render_flops, breakdown)


@app.command()
def synth(
    root: Annotated[
        Path, typer.Argument(help="Folder to write the videos, val.csv and classids.json.")
    ],
    classes: Annotated[int, typer.Option(help="Motion classes (2..8).")] = 4,
    per_class: Annotated[int, typer.Option(help="Videos per class.")] = 8,
    frames: Annotated[int, typer.Option(help="Frames per video.")] = 24,
    height: Annotated[int, typer.Option(help="Frame height (even).")] = 48,
    width: Annotated[int, typer.Option(help="Frame width (even).")] = 64,
    seed: Annotated[int, typer.Option(help="Same seed, same videos.")] = 0,
    codec: Annotated[
        str, typer.Option(help="h264 (.mp4, Kinetics), vp9 (.webm, SSv2) or mpeg4 (.avi).")
    ] = "h264",
    train_per_class: Annotated[
        int, typer.Option(help="Also a disjoint train split (train.csv) of N videos a class.")
    ] = 0,
) -> None:
    """Write a small synthetic video set whose classes differ only in motion (tests, demos)."""
    from tsfbench.data.synth import write_synthetic

    csv = write_synthetic(
        root,
        classes=classes,
        per_class=per_class,
        frames=frames,
        height=height,
        width=width,
        seed=seed,
        codec=codec,
        train_per_class=train_per_class,
    )
    typer.echo(f"wrote {classes * per_class} videos and {csv}")
    if train_per_class:
        typer.echo(f"wrote {classes * train_per_class} videos and {csv.parent / 'train.csv'}")


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="A synthetic set with train.csv and val.csv.")],
    attention: Annotated[str, typer.Option(help="Attention scheme.")] = "divided",
    seed: Annotated[int, typer.Option(help="Seed of the init and the batches.")] = 0,
    steps: Annotated[
        int | None, typer.Option(help="Training steps (default: the scheme's, 300 or 1200).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Checkpoint file (default DATA/ckpt/...).")
    ] = None,
    device: Device = "auto",
    as_json: JsonOption = False,
) -> None:
    """The motion test: train a small TimeSformer from scratch, evaluate it on val (3 crops)."""
    from tsfbench.train import motion_test

    settings = TrainSettings(attention=attention, seed=seed, steps=steps)
    device = check_device(device, "--device")
    checkpoint = out or Path(data) / "ckpt" / f"{attention}-seed{seed}.pt"
    with bar_at_first_update() as update:

        def advance(step: int, total: int, loss: float) -> None:
            update(f"train {attention} loss {loss:.3f}", step, total)

        record = motion_test(settings, data, checkpoint, device=device, progress=advance)
    show(record, as_json, render_motion)


@app.command()
def accuracy(
    data: Annotated[
        str, typer.Argument(help="CSV (kinetics), dataset root (ssv2, diving48) or folder.")
    ],
    variant: Annotated[
        str | None, typer.Option("--variant", "--model", help="Preset (default base).")
    ] = None,
    attention: Annotated[str | None, typer.Option(help="Attention scheme.")] = None,
    frames: Annotated[int | None, typer.Option(help="Frames per clip.")] = None,
    size: Annotated[int | None, typer.Option(help="Crop size.")] = None,
    classes: Annotated[
        int | None, typer.Option(help="Classes of the head (default 400, or the checkpoint's).")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help=".pyth / .pt / state dict, or a transformers folder (config.json)."),
    ] = None,
    data_format: Annotated[
        str, typer.Option("--format", help="kinetics, ssv2, diving48 or folder.")
    ] = "kinetics",
    dataset: Annotated[
        str | None,
        typer.Option(help=f"What the data is: {', '.join(DATASETS)} (paper sets are compared)."),
    ] = None,
    class_index: Annotated[
        str | None, typer.Option(help="Label -> id file (default: classids.json beside a CSV).")
    ] = None,
    subset: Annotated[str | None, typer.Option(help="A stratified fraction, e.g. 10%.")] = None,
    per_class: Annotated[int | None, typer.Option(help="K videos per class instead.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the subset.")] = 0,
    views: Annotated[int | None, typer.Option(help="Test views (clips x crops).")] = None,
    rate: Annotated[int | None, typer.Option(help="Frame sampling rate.")] = None,
    batch: Annotated[int, typer.Option(help="Clips per forward pass.")] = 8,
    workers: Annotated[int, typer.Option(help="Decoding worker processes.")] = 2,
    depth: Override = None,
    dim: Override = None,
    heads: Override = None,
    as_json: JsonOption = False,
) -> None:
    """Video-level top-1 / top-5 on a validation (sub)set, with the paper's test protocol."""
    from tsfbench.evaluate import accuracy as run_accuracy
    from tsfbench.evaluate import distributed, leave_group
    from tsfbench.models.checkpoint import fill_options

    given, trained_sizes = fill_options(
        checkpoint, variant=variant, attention=attention, frames=frames, size=size,
        classes=classes, rate=rate,
    )  # fmt: skip
    config = parse_config(
        given["variant"] or "base", given["attention"], given["frames"], given["size"],
        classes=given["classes"], views=views, command="accuracy",
    )  # fmt: skip
    overrides = check_overrides({"depth": depth, "dim": dim, "heads": heads}, [config])
    settings = AccuracySettings(
        data=data, format=data_format, dataset=dataset, subset=subset, per_class=per_class,
        seed=seed, rate=given["rate"], batch=batch, workers=workers, class_index=class_index,
        checkpoint=None if checkpoint is None else str(checkpoint),
    )  # fmt: skip
    rank = distributed()[0]
    with bar_at_first_update(disable=rank != 0) as update:
        progress = lambda done, total: update("videos", done, total)  # noqa: E731
        record = run_accuracy(config, settings, progress=progress, **trained_sizes | overrides)
    leave_group()
    if rank != 0:
        return
    show(record, as_json, render_accuracy)


# --- Runtime probes: latency, peak memory, energy -------------------------------------------


def _probe_inputs(
    variant: str,
    attention: str | None,
    frames: str | None,
    size: str | None,
    settings: dict[str, Any],
    overrides: dict[str, int | None],
    default_attention: str | None,
) -> tuple[list[Any], dict[str, int], Any]:
    """A probe command's configurations, model overrides and its one probe setting."""
    configs = parse_configs(variant, attention, frames, size, default_attention=default_attention)
    overrides = check_overrides(overrides, configs)
    probes = probe_settings(configs, **settings)
    if len(probes) > 1:
        raise ConfigError("--mode, --dtype, --backend: one value each; a suite crosses them")
    return configs, overrides, probes[0]


def _probe_command(
    variant: str,
    attention: str | None,
    frames: str | None,
    size: str | None,
    settings: dict[str, Any],
    overrides: dict[str, int | None],
    predict_only: bool,
    as_json: bool,
    default_attention: str | None = None,
    hint: bool = False,
) -> None:
    """A latency or memory sweep: the configurations, one probe setting, a bar, the table."""
    from tsfbench.measure.estimate import sweep_clock
    from tsfbench.measure.sweep import sweep

    configs, overrides, probe = _probe_inputs(
        variant, attention, frames, size, settings, overrides, default_attention
    )
    if probe.target == "cpu" and probe.device == "auto":
        stderr.print("no CUDA GPU: measuring on the CPU (host RAM only; no NVML, no energy)")
    clock = None if predict_only else sweep_clock(configs, probe, overrides)
    if clock is not None and (notice := clock.notice(hint)):
        stderr.print(notice, highlight=False)
    began = time.monotonic()
    with config_progress(configs, clock) as advance:
        records = sweep(
            configs, probe, overrides=overrides, progress=advance, predict_only=predict_only
        )
    seconds = time.monotonic() - began
    show(records, as_json, render_probes, predict_only)
    print_sweep_time(records, seconds, predict_only)


@app.command()
def latency(
    variant: Variants = "base",
    attention: Attentions = None,
    frames: FrameRange = None,
    size: SizeRange = None,
    mode: Mode = "infer",
    dtype: Dtype = "fp32",
    batch: Batch = 1,
    backend: Backend = "sdpa",
    compile: Annotated[bool, typer.Option(help="torch.compile the model.")] = False,
    checkpointing: Checkpointing = False,
    memory_limit: MemoryLimit = None,
    warmup: Annotated[
        str, typer.Option(help="Untimed steps first, or auto: until 3 steps agree within 5%.")
    ] = "3",
    iterations: Iterations = "10",
    target_ci: TargetCi = 0.02,
    max_time: MaxTime = 10.0,
    max_warmup: Annotated[int, typer.Option(help="Auto warm-up: at most this many steps.")] = 20,
    device: Device = "auto",
    depth: Override = None,
    dim: Override = None,
    heads: Override = None,
    as_json: JsonOption = False,
) -> None:
    """Latency (median and its 95% CI, p90-p99), throughput, peak memory and energy."""
    settings = {"mode": mode, "dtype": dtype, "batch": batch, "backend": backend}
    settings |= {"compile": compile, "memory_limit": memory_limit, "warmup": warmup}
    settings |= {"iterations": iterations, "checkpointing": checkpointing, "device": device}
    settings |= {"target_ci": target_ci, "max_time": max_time, "max_warmup": max_warmup}
    sizes = {"depth": depth, "dim": dim, "heads": heads}
    _probe_command(variant, attention, frames, size, settings, sizes, False, as_json)


@app.command()
def profile(
    variant: Annotated[
        str, typer.Option("--variant", "--model", help=f"One model: {', '.join(PRESETS)}.")
    ] = "base",
    attention: Annotated[str | None, typer.Option(help="Attention scheme (one).")] = None,
    frames: Annotated[int | None, typer.Option(help="Frames per clip.")] = None,
    size: Annotated[int | None, typer.Option(help="Crop size.")] = None,
    pos_embed: Annotated[
        str, typer.Option(help=f"{', '.join(POS_EMBEDS)} (default: the scheme's).")
    ] = "",
    classes: Annotated[int | None, typer.Option(help="Classes of the head.")] = None,
    mode: Mode = "infer",
    dtype: Dtype = "fp32",
    batch: Batch = 1,
    backend: Backend = "sdpa",
    compile: Annotated[bool, typer.Option(help="torch.compile the model.")] = False,
    checkpointing: Checkpointing = False,
    device: Device = "auto",
    warmup: Annotated[int, typer.Option(help="Untimed steps first.")] = 3,
    iterations: Annotated[int, typer.Option(help="Steps timed, then as many profiled.")] = 10,
    per_block: Annotated[
        str | None, typer.Option(help="Parts also shown per block: a comma list, or all.")
    ] = None,
    trace: Annotated[
        Path | None, typer.Option(help="Write the Chrome / Perfetto trace to this file.")
    ] = None,
    memory: Annotated[
        bool, typer.Option(help="Also the predicted peak memory by category (no run).")
    ] = False,
    depth: Override = None,
    dim: Override = None,
    heads: Override = None,
    as_json: JsonOption = False,
) -> None:
    """Where a step's time goes: time, FLOPs, GFLOP/s and share of peak per part of the model."""
    from tsfbench.measure.profile import profile as run_profile

    config = parse_config(
        variant, attention, frames, size, pos_embed=pos_embed, classes=classes, command="profile"
    )
    overrides = check_overrides({"depth": depth, "dim": dim, "heads": heads}, [config])
    probes = probe_settings(
        [config], mode, dtype, batch, backend, compile=compile, checkpointing=checkpointing,
        device=device, warmup=warmup, iterations=iterations,
    )  # fmt: skip
    if len(probes) > 1:
        raise ConfigError("--mode, --dtype, --batch, --backend: one value each for profile")
    blocks = [part for part in (per_block or "").replace(" ", "").split(",") if part]
    with bar_at_first_update() as update:
        result = run_profile(
            config, probes[0], overrides, per_block=blocks, trace=trace, memory=memory,
            progress=update,
        )  # fmt: skip
    show(result, as_json, render_profile)


@app.command("memory-sweep")
def memory_sweep(
    variant: Variants = "base",
    attention: Annotated[
        str | None,
        typer.Option(help="Scheme(s), a comma list, or all.", show_default="joint,divided"),
    ] = None,
    frames: Annotated[str, typer.Option(help="8, 8,16,32 or 8..96[:STEP].")] = "8,16,32,64,96",
    size: SizeRange = None,
    mode: Mode = "train",
    dtype: Dtype = "fp32",
    batch: Batch = 1,
    backend: Backend = "sdpa",
    checkpointing: Checkpointing = False,
    memory_limit: MemoryLimit = None,
    predict_only: Annotated[
        bool, typer.Option(help="Only predict peak memory (no run): fits on this laptop.")
    ] = False,
    breakdown: Annotated[
        bool,
        typer.Option(help="With --predict-only: what holds each peak, by category and part."),
    ] = False,
    iterations: Iterations = "3",
    target_ci: TargetCi = 0.02,
    max_time: MaxTime = 10.0,
    device: Device = "auto",
    depth: Override = None,
    dim: Override = None,
    heads: Override = None,
    as_json: JsonOption = False,
) -> None:
    """Peak memory and latency across clip lengths and sizes; out-of-memory is a result."""
    settings = {"mode": mode, "dtype": dtype, "batch": batch, "backend": backend}
    settings |= {"memory_limit": memory_limit, "iterations": iterations, "warmup": 1}
    settings |= {"target_ci": target_ci, "max_time": max_time}
    settings |= {"checkpointing": checkpointing, "device": device}
    sizes = {"depth": depth, "dim": dim, "heads": heads}
    if breakdown:
        if not predict_only:
            raise ConfigError("--breakdown explains the prediction: add --predict-only")
        from tsfbench.measure.peak_parts import breakdown_records

        configs, overrides, probe = _probe_inputs(
            variant, attention, frames, size, settings, sizes, "joint,divided"
        )
        with config_progress(configs) as advance:
            records = breakdown_records(configs, probe, overrides, progress=advance)
        show(records, as_json, render_breakdown)
        return
    _probe_command(
        variant, attention, frames, size, settings, sizes, predict_only, as_json, "joint,divided",
        hint=True,
    )  # fmt: skip


@app.command("fit")
def fit_command(
    gpu: Annotated[
        str | None, typer.Option(help="A card by name (its memory); `list` prints the cards.")
    ] = None,
    memory: Annotated[str | None, typer.Option(help="Or the memory itself, e.g. 24GiB.")] = None,
    variant: Variants = "base",
    attention: Annotated[
        str | None,
        typer.Option(help="Scheme(s), a comma list, or all.", show_default="joint,divided"),
    ] = None,
    frames: Annotated[str | None, typer.Option(help="Held while another axis is searched.")] = None,
    size: Annotated[str | None, typer.Option(help="Held while another axis is searched.")] = None,
    batch: Batch = 1,
    mode: Mode = "train",
    dtype: Dtype = "fp32",
    backend: Backend = "sdpa",
    checkpointing: Checkpointing = False,
    axis: Annotated[str, typer.Option(help="frames, size, batch, a comma list, or all.")] = "all",
    margin: Annotated[
        float, typer.Option(help="Allocator margin: this fraction of what the reserve leaves.")
    ] = 0.05,
    reserve: Annotated[
        str | None,
        typer.Option(
            help="CUDA context and workspaces, e.g. 600MiB.",
            show_default="measured on this GPU; without one 512MiB, an estimate",
        ),
    ] = None,
    bounds: Annotated[
        str | None,
        typer.Option(
            help="Search ranges, e.g. frames=8..128,size=224..896.",
            show_default="frames=1..1024,size=16..2048,batch=1..1024",
        ),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Prediction processes.")] = None,
    depth: Override = None,
    dim: Override = None,
    heads: Override = None,
    as_json: JsonOption = False,
) -> None:
    """The largest clip, crop and batch that fit a card's memory, predicted (no GPU needed)."""
    from tsfbench.cards import card_rows
    from tsfbench.fit import check_fixed, fit_settings

    if gpu is not None and gpu.strip().lower() == "list":
        show(card_rows(), as_json, render_cards)
        return
    settings = fit_settings(memory, gpu, margin=margin, reserve=reserve, axes=axis, bounds=bounds)
    configs = parse_configs(variant, attention, frames, size, default_attention="joint,divided")
    for option, value in (("--frames", frames), ("--size", size)):
        if value is not None and len({getattr(c, option[2:]) for c in configs}) > 1:
            raise ConfigError(f"{option}: one value, held while the other axes are searched")
    overrides = check_overrides({"depth": depth, "dim": dim, "heads": heads}, configs)
    probes = probe_settings(
        configs, mode, dtype, batch, backend, checkpointing=checkpointing, warmup=1
    )
    if len(probes) > 1:
        raise ConfigError("--mode, --dtype, --backend: one value each; a suite crosses them")
    for config in configs:
        check_fixed(config, probes[0].batch, settings)
    from tsfbench.measure.fit import fit

    with bar_at_first_update() as update:
        result = fit(
            configs, probes[0], settings, overrides, workers=workers,
            progress=lambda done, total, what: update(f"predicting {what}", done, total),
        )  # fmt: skip
    show(result, as_json, render_fit)


StorePath = Annotated[
    Path, typer.Option("--store", help="Results database (SQLite); created if missing.")
]


@app.command()
def run(
    suite: Annotated[Path, typer.Argument(help="A suite file, e.g. suites/quick.toml.")],
    store: StorePath = DEFAULT_STORE,
    shard: Annotated[
        str, typer.Option(help="Run slice i of n (0 <= i < n), e.g. a SLURM array task.")
    ] = "0/1",
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--force",
            help="Skip tasks already measured in this environment, or redo them all.",
        ),
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the tasks and which are stored; run none.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Measure a suite into the results store; rerunning resumes where it stopped."""
    from tsfbench.runner import bind_rank_gpu, plan_rows, run_suite
    from tsfbench.store import Store
    from tsfbench.suite import load_suite, parse_shard, torchrun_rank

    bind_rank_gpu()  # before anything touches CUDA
    index, count = parse_shard(shard)
    loaded = load_suite(suite, store.parent)
    if dry_run:
        rows = plan_rows(loaded, Store(store) if store.is_file() else None, index, count, resume)
        show(rows, as_json, render_plan, f"{loaded.name} (shard {index}/{count})", store)
        return
    try:
        with suite_progress(loaded.name, disable=torchrun_rank()[0] > 0) as (advance, train):
            summary = run_suite(
                loaded, Store(store), shard_index=index, shard_count=count, resume=resume,
                progress=advance, training=train,
            )  # fmt: skip
    except KeyboardInterrupt:  # the bar has stopped
        stderr.print(
            f"interrupted: every finished task is in {store}; run the same command again to resume"
        )
        raise typer.Exit(130) from None
    show(asdict(summary), as_json, render_run)


@app.command()
def report(
    suite: Annotated[
        str | None,
        typer.Argument(help="Only this suite: its name, or a suite file (every task it lists)."),
    ] = None,
    store: StorePath = DEFAULT_STORE,
    out: Annotated[Path, typer.Option(help="Folder the report is written to.")] = Path("reports"),
    name: Annotated[
        str | None,
        typer.Option(help="File name without extension.", show_default="the suite's name"),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="md (tables and plots), csv or json.")
    ] = "md",
    compare: Annotated[
        str | None,
        typer.Option(help="Add 'Between environments': two of them, base first, e.g. E1,E2."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the stored results as a report beside the paper's numbers; print its summary."""
    from tsfbench.compare import between_environments, parse_pair
    from tsfbench.report import REPORT_FORMATS, build_report, load_results, summary, write_report
    from tsfbench.report.motion import motion_summary

    if fmt not in REPORT_FORMATS:
        raise ConfigError(f"--format: unknown {fmt!r}; accepted: {', '.join(REPORT_FORMATS)}")
    pair = None if compare is None else parse_pair(compare)
    frame = load_results(store, suite)
    built = build_report(frame)
    if pair is not None:  # the report's rows, so E1, E2 are its environment table's labels
        keys = frame[["measurement", "task", "environment"]].itertuples(index=False, name=None)
        built.between = between_environments(store, pair, keys)
    title = name if name is not None else (Path(suite).stem if suite else "tsfbench")
    files = [str(path) for path in write_report(built, out, name=title, fmt=fmt)]
    result = {"files": files, "summary": summary(built), "motion": motion_summary(built.motion)}
    if built.between is not None:
        result["between"] = built.between
    show(result, as_json, render_report)
    if not as_json:
        stderr.print(f"wrote {', '.join(files)}")


@app.command()
def compare(
    base_store: Annotated[
        Path, typer.Argument(metavar="BASE", help="The base results database (or the only one).")
    ],
    new_store: Annotated[
        Path | None, typer.Argument(metavar="NEW", help="The new results database.")
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            help="Base rows: environment id (prefix), E1.. as in the report, commit or suite."
        ),
    ] = None,
    new: Annotated[str | None, typer.Option(help="New rows, chosen as --base.")] = None,
    threshold: Annotated[
        str, typer.Option(help="Latency change that counts, e.g. 5% or 0.05.")
    ] = "5%",
    memory_threshold: Annotated[str, typer.Option(help="Peak-memory change flagged.")] = "2%",
    fail_on: Annotated[
        str, typer.Option(help="slower: exit 1 on a slower row or a new failure; none: never.")
    ] = "slower",
    machine_speed: Annotated[
        str,
        typer.Option(
            help="adjust: divide each step by the machine-speed canary beside it (same host "
            "and software; a verdict must hold divided and raw alike); ignore: raw ratios."
        ),
    ] = "adjust",
    out: Annotated[Path | None, typer.Option(help="Also write a markdown section here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Rows of two runs matched by task: latency ratio with its 95% CI, verdict, memory, FLOPs."""
    from tsfbench.compare import CompareSettings, compare_stores, markdown, parse_fraction

    settings = CompareSettings(
        threshold=parse_fraction(threshold, "--threshold"),
        memory_threshold=parse_fraction(memory_threshold, "--memory-threshold"),
        fail_on=fail_on,
        machine_speed=machine_speed,
    )
    result = compare_stores(base_store, new_store, base=base, new=new, settings=settings)
    if out is not None:
        write_out(out, markdown(result))
    show(result, as_json, render_comparison)
    if out is not None and not as_json:
        stderr.print(f"wrote {out}")
    if result["failed"]:
        raise typer.Exit(1)


@app.command()
def ab(
    variant: Variants = "base",
    attention: Attentions = None,
    frames: FrameRange = None,
    size: SizeRange = None,
    mode: Mode = "infer",
    dtype: Dtype = "fp32",
    batch: Batch = 1,
    backend: Backend = "sdpa",
    compile: Annotated[bool, typer.Option(help="torch.compile the model.")] = False,
    checkpointing: Checkpointing = False,
    device: Device = "auto",
    warmup: Annotated[int, typer.Option(help="Untimed steps a side first (alternating).")] = 3,
    base: Annotated[
        list[str] | None,
        typer.Option(
            help="KEY=VALUE the base side changes: dtype, backend, compile, "
            "checkpointing, threads, tree (another checkout). Repeatable."
        ),
    ] = None,
    new: Annotated[list[str] | None, typer.Option(help="KEY=VALUE the new side changes.")] = None,
    rounds: Annotated[
        str,
        typer.Option(
            help="ABBA / BAAB rounds, or auto: until the ratio's CI is within --target-ci."
        ),
    ] = "auto",
    target_ci: Annotated[
        float, typer.Option(help="Auto: the ratio's 95% CI half-width to reach (fraction).")
    ] = 0.01,
    max_time: Annotated[
        float, typer.Option(help="Auto: seconds of rounds per configuration.")
    ] = 60.0,
    threshold: Annotated[str, typer.Option(help="Ratio change that counts, e.g. 5%.")] = "5%",
    fail_on: Annotated[
        str, typer.Option(help="slower: exit 1 on a slower row; none: never.")
    ] = "slower",
    save: Annotated[
        Path | None, typer.Option(help="Results JSON, written after each configuration; resumed.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write a markdown section here.")] = None,
    depth: Override = None,
    dim: Override = None,
    heads: Override = None,
    as_json: JsonOption = False,
) -> None:
    """Two sides of each configuration timed alternately in one run: ratio, 95% CI, verdict."""
    from tsfbench.ab import AbSettings, parse_rounds, parse_side, run_ab
    from tsfbench.ab import markdown as ab_markdown
    from tsfbench.compare import parse_fraction

    settings = {"mode": mode, "dtype": dtype, "batch": batch, "backend": backend}
    settings |= {"compile": compile, "checkpointing": checkpointing, "device": device}
    sizes = {"depth": depth, "dim": dim, "heads": heads}
    configs, overrides, probe = _probe_inputs(
        variant, attention, frames, size, settings | {"warmup": warmup}, sizes, None
    )
    sides = {"base": parse_side(base or [], "--base"), "new": parse_side(new or [], "--new")}
    plan = AbSettings(
        rounds=parse_rounds(rounds), target_ci=target_ci, max_time=max_time,
        threshold=parse_fraction(threshold, "--threshold"), fail_on=fail_on,
    )  # fmt: skip
    with config_progress(configs) as advance:
        result = run_ab(configs, probe, overrides, sides, plan, save=save, progress=advance)
    if out is not None:
        write_out(out, ab_markdown(result))
    show(result, as_json, render_ab)
    if result["failed"]:
        raise typer.Exit(1)


def write_out(path: Path, text: str) -> None:
    """`--out FILE.md`: written atomically; a path that cannot be written is bad input."""
    from tsfbench.store import atomic_write

    try:
        atomic_write(path, text)
    except OSError as error:
        raise ConfigError(f"--out: cannot write {path} ({error.strerror})") from None


def main() -> None:
    app()
