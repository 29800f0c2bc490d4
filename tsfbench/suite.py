"""Suites: a TOML file of grids, expanded into the tasks `tsfbench run` measures.

A suite is a list of `[[grid]]` tables. Each grid names what to measure and the axes to cross:

    name = "quick"
    [[grid]]
    measure = ["flops"]
    model = ["base", "hr", "l"]
    attention = "all"
    frames = "8..96"          # an int, a list, or a range string as on the command line

Every key is checked here, once: an unknown key, a key that no listed measurement uses, or a bad
value is a `ConfigError` naming the file, the grid, the key and what it accepts. Latency, memory
and energy come from one runtime probe, so they are one measurement ("runtime") in the store.
A task's digest (configuration + settings) is what resume and sharding key on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tsfbench.config import (
    AUTO,
    DEVICES,
    GIB,
    STOPPING,
    AccuracySettings,
    ConfigError,
    RunConfig,
    TrainSettings,
    check_overrides,
    option_text,
    parse_choices,
    parse_configs,
    parse_count,
    parse_ints,
    probe_settings,
    run_config,
)
from tsfbench.data.datasets import dataset_identity, read_dataset
from tsfbench.data.sampling import dataset_sampling
from tsfbench.data.subset import shard
from tsfbench.data.synth import MOTIONS
from tsfbench.fit import AXES, check_fixed, fit_settings
from tsfbench.models.registry import ATTENTIONS, PRESETS
from tsfbench.store import digest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

PROBE_AXES = {"mode": "infer", "dtype": "fp32", "batch": 1, "backend": "sdpa"}  # crossed
MEASUREMENTS = {
    "flops": "flops",
    "latency": "runtime",
    "memory": "runtime",
    "energy": "runtime",
    "accuracy": "accuracy",
    "motion": "motion",
    "profile": "profile",  # `tsfbench profile`: time and FLOPs by part (measure/profile.py)
    "fit": "fit",  # the largest frames / crop / batch that fit a card, predicted (`tsfbench fit`)
}
SYNTHETIC = "synthetic"  # `data = "synthetic"`: a small generated video set next to the store
SPLITS = ("train.csv", "val.csv")  # what a motion task's data folder holds
# The motion test's synthetic set (`write_synthetic`; its frames and sizes are the defaults)
MOTION_SET = {"classes": 4, "train_per_class": 64, "per_class": 32}
ALL = frozenset({"flops", "runtime", "accuracy", "profile"})  # of a paper configuration
PROFILE = frozenset({"profile"})  # a runtime probe's run settings, minus memory and energy's
RUNTIME = frozenset({"runtime"})
ACCURACY = frozenset({"accuracy"})
MOTION = frozenset({"motion"})  # the motion test: trains its own small model (`train`)
# TrainSettings fields a motion grid may set, besides its axes `attention` and `seed`
RECIPE = tuple(f.name for f in fields(TrainSettings) if f.name not in ("attention", "seed"))
# key -> the measurements that use it; every other key is an error
KEYS: dict[str, frozenset[str]] = {
    "measure": ALL | MOTION,
    "model": ALL,
    "attention": ALL | MOTION,
    "frames": ALL,
    "size": ALL,
    "pos_embed": ALL,
    "classes": ALL,
    "views": ALL,
    "overrides": RUNTIME | ACCURACY,
    "mode": RUNTIME,
    "dtype": RUNTIME,
    "batch": RUNTIME | ACCURACY,
    "backend": RUNTIME,
    "compile": RUNTIME,
    "checkpointing": RUNTIME,
    "memory_limit": RUNTIME,
    "warmup": RUNTIME,
    "iterations": RUNTIME,
    "target_ci": RUNTIME,
    "max_time": RUNTIME,
    "max_warmup": RUNTIME,
    "interval": RUNTIME,
    "timeout": RUNTIME | MOTION,
    "predict_only": RUNTIME,
    "cpu_allocations": RUNTIME,
    "device": RUNTIME | ACCURACY,
    "data": ACCURACY | MOTION,
    "format": ACCURACY,
    "dataset": ACCURACY,
    "subset": ACCURACY,
    "per_class": ACCURACY,
    "seed": ACCURACY | MOTION,
    "seeds": MOTION,
    "rate": ACCURACY,
    "workers": ACCURACY,
    "checkpoint": ACCURACY,
}
KEYS |= {key: KEYS.get(key, frozenset()) | MOTION for key in RECIPE}
KEYS |= {"classes": ALL | MOTION, "train_per_class": MOTION, "val_per_class": MOTION}
# a profile runs a step as a runtime probe does, without the memory and energy monitors
PROFILE_KEYS = ("overrides", "mode", "dtype", "batch", "backend", "compile", "checkpointing")
PROFILE_KEYS += ("warmup", "iterations", "device", "timeout")
KEYS |= {key: KEYS[key] | PROFILE for key in PROFILE_KEYS}
FIT = frozenset({"fit"})
FIT_KEYS = ("gpu", "memory", "axis", "margin", "reserve", "bounds")
SHARED_WITH_FIT = ("measure", "model", "attention", "frames", "size", "pos_embed", "classes",
                   "views", "overrides", "mode", "dtype", "batch", "backend", "checkpointing",
                   "device")  # fmt: skip
KEYS |= {key: KEYS.get(key, frozenset()) | FIT for key in (*SHARED_WITH_FIT, *FIT_KEYS)}
KEYS |= {"data_seed": MOTION}  # which synthetic videos: the published table's set is not tuned on
TOP_KEYS = ("name", "description", "grid")
KINDS = {int: "an integer", str: "a string", bool: "true or false", dict: "a table"}


@dataclass(frozen=True)
class Task:
    """One measurement of one configuration with its settings; `key` identifies it."""

    measurement: str  # flops | runtime | accuracy | motion
    config: RunConfig
    settings: Mapping[str, Any] = field(default_factory=dict)  # probe or evaluation settings
    overrides: Mapping[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return digest(
            {
                "measurement": self.measurement,
                "config": self.config.as_dict(),
                "settings": dict(self.settings),
                "overrides": dict(self.overrides),
            }
        )

    def describe(self) -> str:
        """One line for progress and failures: the configuration and, for a probe, its run."""
        config = self.config
        if self.measurement == "motion":
            return f"motion {config.attention} seed {self.settings['train']['seed']}"
        if self.measurement == "fit":
            run, fit = self.settings, self.settings["fit"]
            where = fit["card"] or f"{fit['memory'] / GIB:.3g} GiB"
            return (
                f"fit {config.attention} {','.join(fit['axes'])} on {where} ({config.frames}x"
                f"{config.size} b{run['batch']} {run['mode']} {run['dtype']} {run['backend']})"
            )
        text = f"{self.measurement} {config.describe()}"
        if self.measurement in ("runtime", "profile"):
            run = self.settings
            text += f" {run['mode']} {run['dtype']} b{run['batch']}"
            text += "" if run["backend"] == "sdpa" else f" {run['backend']}"
            text += " predicted" if run.get("predict_only") else ""
        if self.overrides:
            text += " (" + ", ".join(f"{k}={v}" for k, v in self.overrides.items()) + ")"
        return text


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    path: Path | None
    tasks: tuple[Task, ...]


class _Grid:
    """Reads one `[[grid]]` table; every error names the suite file, the grid and the key."""

    def __init__(self, table: Mapping[str, Any], where: str) -> None:
        self.table, self.where = table, where

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.where}: {key}: {message}")

    def get(self, key: str, parse: Callable[[Any], Any], default: Any = None) -> Any:
        if key not in self.table:
            return default
        try:
            return parse(self.table[key])
        except ConfigError as err:  # re-label: the parser names a CLI option, not this key
            raise self.fail(key, str(err).partition(": ")[2] or str(err)) from None

    def choices(self, key: str, allowed: Sequence[str]) -> list[str] | None:
        return self.get(key, lambda value: parse_choices(option_text(value), key, allowed))

    def ints(self, key: str) -> list[int] | None:
        return self.get(key, lambda value: parse_ints(option_text(value), key))

    def typed(self, key: str, kind: type, default: Any) -> Any:
        def check(value: Any) -> Any:
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(f"{key}: {value!r}; expected {KINDS.get(kind, 'a number')}")
            return value

        return self.get(key, check, default)

    def count(self, key: str, default: Any, least: int = 1) -> Any:
        """An integer of at least `least` (1: positive), or `default` when absent."""
        value = self.typed(key, int, default)
        if value is not None and value < least:
            raise self.fail(key, f"{value}; expected an integer >= {least}")
        return value

    def choice(self, key: str, allowed: Sequence[str], default: str) -> str:
        """One of `allowed` (a single value, not a list), or `default` when absent."""
        chosen = self.choices(key, allowed) or [default]
        if len(chosen) > 1:
            raise self.fail(key, f"{chosen}; expected one of {', '.join(allowed)}, not a list")
        return chosen[0]


def _grid_tasks(table: Mapping[str, Any], where: str, store_dir: Path) -> list[Task]:
    grid = _Grid(table, where)
    unknown = [key for key in table if key not in KEYS]
    if unknown:
        raise grid.fail(unknown[0], f"unknown key; accepted: {', '.join(KEYS)}")
    wanted = grid.choices("measure", list(MEASUREMENTS))
    if not wanted:
        raise grid.fail("measure", f"missing; accepted: {', '.join(MEASUREMENTS)}")
    measurements = list(dict.fromkeys(MEASUREMENTS[name] for name in wanted))
    if "motion" in measurements and len(measurements) > 1:
        raise grid.fail("measure", "motion trains models of its own; give it a grid of its own")
    for key in table:
        if not KEYS[key] & set(measurements):
            users = sorted(name for name, kind in MEASUREMENTS.items() if kind in KEYS[key])
            raise grid.fail(key, f"not used by {', '.join(wanted)}; it applies to {users}")
    if measurements == ["motion"]:
        return _motion_tasks(grid, store_dir)
    if "model" not in table:
        raise grid.fail("model", f"missing; accepted: {', '.join(PRESETS)}, all")
    scalars = {
        "pos_embed": grid.typed("pos_embed", str, ""),
        "classes": grid.typed("classes", int, None),
        "views": grid.typed("views", int, None),
    }
    axes = [table.get(key) for key in ("model", "attention", "frames", "size")]
    try:
        configs = parse_configs(*axes, **scalars, name=lambda key: key)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    overrides = grid.typed("overrides", dict, {})
    try:
        check_overrides(overrides, configs)
    except ConfigError as err:
        raise grid.fail("overrides", str(err)) from None
    tasks: list[Task] = []
    for measurement in measurements:
        if measurement == "flops":
            tasks += [Task("flops", config) for config in configs]
        elif measurement == "fit":
            tasks += _fit_tasks(grid, configs, overrides)
        elif measurement in ("runtime", "profile"):
            probes = _probe_settings(grid, configs)
            for key in ("iterations", "warmup"):  # a profile profiles as many steps as it times
                if measurement == "profile" and probes[0][key] == AUTO:
                    raise grid.fail(key, "auto; profile takes a number of steps")
            tasks += [
                Task(measurement, config, settings, overrides)
                for settings in probes
                for config in configs
            ]
        else:
            settings = _accuracy_settings(grid, store_dir)
            sized = _checkpoint_sizes(grid, settings.checkpoint, configs, overrides)
            tasks += [Task("accuracy", config, settings.as_dict(), sized) for config in configs]
    return tasks


def _probe_settings(grid: _Grid, configs: Sequence[RunConfig]) -> list[dict[str, Any]]:
    """Every combination of the runtime axes (mode, dtype, batch, backend), validated."""
    scalars = {
        "compile": grid.typed("compile", bool, False),
        "checkpointing": grid.typed("checkpointing", bool, False),
        "warmup": grid.get("warmup", lambda value: _count(value, "warmup", 0), 3),
        "iterations": grid.get("iterations", lambda value: _count(value, "iterations", 1), 10),
        "device": grid.choice("device", DEVICES, "auto"),
        "interval": float(grid.typed("interval", float | int, 0.01)),
    }
    scalars |= {key: grid.table.get(key, default) for key, default in STOPPING.items()}
    timeout = grid.typed("timeout", float | int, None)
    if timeout is not None and not timeout > 0:
        raise grid.fail("timeout", f"{timeout}; expected a positive number of seconds")
    # Only when set, so that the tasks of suites without them keep their keys (resume)
    extra: dict[str, bool] = {}
    if grid.typed("predict_only", bool, False):
        extra["predict_only"] = True
    if grid.typed("cpu_allocations", bool, False):
        if not extra:
            raise grid.fail("cpu_allocations", "checks a prediction; add predict_only = true")
        extra["cpu_allocations"] = True
    axes = {key: grid.table.get(key, default) for key, default in PROBE_AXES.items()}
    try:
        combos = probe_settings(
            configs, **axes, memory_limit=grid.table.get("memory_limit"), name=lambda key: key,
            **scalars,
        )  # fmt: skip
    except ConfigError as err:  # it names the key
        raise ConfigError(f"{grid.where}: {err}") from None
    # `device` as written (`auto`), not as this process resolves it: the key must not change
    # with the rank or machine that loads the suite (resume, shards, reports)
    return [
        stopping_dropped(asdict(settings)) | {"timeout": timeout} | extra for settings in combos
    ]


def _count(value: Any, name: str, least: int) -> int | str:
    """A step count in a suite: a TOML integer or "auto" (a number in quotes is a typo)."""
    if isinstance(value, str) and value != AUTO:
        raise ConfigError(f'{name}: {value!r}; expected an integer or "auto"')
    return parse_count(value, name, least)


def stopping_dropped(settings: dict[str, Any]) -> dict[str, Any]:
    """Probe settings without the auto plan's limits where the counts are fixed: they change
    nothing then, and the tasks of suites written before them keep their keys (resume)."""
    unused = [] if settings["iterations"] == AUTO else ["target_ci", "max_time"]
    unused += [] if settings["warmup"] == AUTO else ["max_warmup"]
    return {key: value for key, value in settings.items() if key not in unused}


def _fit_tasks(
    grid: _Grid, configs: Sequence[RunConfig], overrides: Mapping[str, int]
) -> list[Task]:
    """A task per configuration, run, card (`gpu`, a name or a list; or `memory`) and axis
    (`axis`, default all three), with `margin`, `reserve` and `bounds` as `tsfbench fit`'s."""
    if ("gpu" in grid.table) == ("memory" in grid.table):
        raise grid.fail("gpu", "give gpu (a card, or a list of them) or memory, one of them")
    kind = "gpu" if "gpu" in grid.table else "memory"
    cards = grid.get(kind, lambda value: value if isinstance(value, list) else [value])
    margin = float(grid.typed("margin", float | int, 0.05))
    runs = [
        {key: run[key] for key in (*PROBE_AXES, "checkpointing", "device")}
        for run in _probe_settings(grid, configs)
    ]
    tasks = []
    for value in cards:
        try:
            fit = fit_settings(
                **{kind: value}, margin=margin, reserve=grid.table.get("reserve"),
                axes=option_text(grid.table.get("axis", ",".join(AXES))),
                bounds=grid.table.get("bounds"), name=lambda key: key,
            )  # fmt: skip
            for config, run in ((config, run) for config in configs for run in runs):
                check_fixed(config, run["batch"], fit, name=lambda key: key)
        except ConfigError as err:  # it names the key
            raise ConfigError(f"{grid.where}: {err}") from None
        for axis in fit.axes:
            one = {**fit.as_dict(), "axes": [axis]}
            tasks += [
                Task("fit", config, {**run, "fit": one}, overrides)
                for run in runs
                for config in configs
            ]
    return tasks


def _checkpoint_sizes(
    grid: _Grid, checkpoint: str | None, configs: Sequence[RunConfig], overrides: Mapping[str, int]
) -> Mapping[str, Any]:
    """The overrides of a grid whose checkpoint is a `transformers` folder: its `config.json`
    must fit every configuration (checked now, not after the run) and fixes the model's size,
    so a smaller-than-base model is stored, and reported, as the shrunken model it is."""
    sized: Mapping[str, Any] = overrides
    if checkpoint is None or not Path(checkpoint).is_dir():
        return sized
    from tsfbench.models.checkpoint import hf_setup  # torch: only for a grid with a checkpoint

    for config in configs:
        try:
            sized = hf_setup(config, checkpoint, overrides)[0]
        except ConfigError as err:  # names its key: checkpoint, attention, classes or a size
            raise ConfigError(f"{grid.where}: {err}") from None
    return sized


def _accuracy_settings(grid: _Grid, store_dir: Path) -> AccuracySettings:
    """The grid's accuracy keys as `AccuracySettings` (which checks them); `data = "synthetic"`
    (the default) is a small set written next to the store on first use."""
    data = grid.typed("data", str, SYNTHETIC)
    batches = grid.ints("batch") or [8]
    if len(batches) > 1:  # a runtime axis; accuracy would silently take the first
        raise grid.fail("batch", f"{batches}; accuracy takes one (runtime batches: a grid apart)")
    device = grid.choice("device", DEVICES, "auto")
    synthetic = data == SYNTHETIC
    try:
        return AccuracySettings(
            data=str(store_dir / SYNTHETIC / "val.csv") if synthetic else data,
            synthetic=synthetic,
            format=grid.typed("format", str, "kinetics"),
            dataset=grid.typed("dataset", str, SYNTHETIC if synthetic else None),
            subset=grid.typed("subset", str, None),
            per_class=grid.typed("per_class", int, None),
            seed=grid.typed("seed", int, 0),
            rate=grid.typed("rate", int, None),
            batch=batches[0],
            workers=grid.typed("workers", int, 2),
            checkpoint=grid.typed("checkpoint", str, None),
            device=None if device == "auto" else device,
        )
    except ConfigError as err:  # it names the key; a suite may also generate its data
        hint = ", or 'synthetic'" if str(err).startswith("data:") else ""
        raise ConfigError(f"{grid.where}: {err}{hint}") from None


def _seeds(grid: _Grid) -> list[int]:
    """`seed = 0` or `[0, 1, 2]` (each >= 0), or `seeds = 3` (0, 1, 2); seed 0 by default."""
    if "seed" in grid.table and "seeds" in grid.table:
        raise grid.fail("seeds", "give either seed (a list) or seeds (a count), not both")
    count = grid.count("seeds", None)
    if count is not None:
        return list(range(count))

    def check(value: Any) -> list[int]:
        seeds = value if isinstance(value, list) else [value]
        if not seeds or any(type(seed) is not int or seed < 0 for seed in seeds):
            raise ConfigError(f"seed: {value!r}; expected an integer >= 0 or a list of them")
        return list(dict.fromkeys(seeds))

    return grid.get("seed", check, [0])


def _like(default: Any, name: str) -> Callable[[Any], Any]:
    """A check that a value has the type of `default` (a float takes an integer: TOML reads
    `lr = 1` as one); any scalar where the default is None."""
    kind = type(default)

    def check(value: Any) -> Any:
        number = kind is float and type(value) is int
        if default is not None and type(value) is not kind and not number:
            raise ConfigError(f"{name}: {value!r}; expected {KINDS.get(kind, 'a number')}")
        return float(value) if number else value

    return check


def _recipe(grid: _Grid) -> dict[str, Any]:
    """The grid's recipe keys, each checked against its `TrainSettings` field's type; their
    ranges are `TrainSettings`' to check."""
    return {
        spec.name: grid.get(spec.name, _like(spec.default, spec.name))
        for spec in fields(TrainSettings)
        if spec.name in RECIPE and spec.name in grid.table
    }


def recipe_id(recipe: Mapping[str, Any]) -> str:
    """The recipe a motion grid trains with, whatever the scheme and seed: what the report
    groups rows by. A field whose default differs by scheme (`steps`) counts as that table, so
    a scheme's own default does not make it another recipe, and a changed default does."""
    runs = []
    for attention in ATTENTIONS:
        try:
            runs.append((attention, TrainSettings(attention=attention, **recipe).as_dict()))
        except ConfigError:  # a recipe one scheme refuses: the others still define it
            continue
    identity = {}
    for name in RECIPE:
        values = {attention: run[name] for attention, run in runs}
        same = len({repr(value) for value in values.values()}) == 1
        identity[name] = next(iter(values.values())) if same else values
    return digest(identity)


def _motion_set(grid: _Grid, store_dir: Path) -> tuple[Path, dict[str, int] | None, int]:
    """The motion data: (folder, how to write it if it is the synthetic set, classes)."""
    data = grid.typed("data", str, SYNTHETIC)
    if data == SYNTHETIC:
        options = {
            "classes": grid.typed("classes", int, MOTION_SET["classes"]),
            "train_per_class": grid.count("train_per_class", MOTION_SET["train_per_class"]),
            "per_class": grid.count("val_per_class", MOTION_SET["per_class"]),
        }
        if not 2 <= options["classes"] <= len(MOTIONS):
            raise grid.fail("classes", f"{options['classes']}; expected 2..{len(MOTIONS)}")
        data_seed = grid.count("data_seed", 0, least=0)
        if data_seed:  # seed 0 left out: the set written before the key keeps its folder
            options["seed"] = data_seed
        # one folder per way of writing it: a changed set is never mistaken for the stored one
        root = store_dir / f"{SYNTHETIC}-motion-{digest(options)[:8]}"
        return root, options, options["classes"]
    for key in ("classes", "train_per_class", "val_per_class", "data_seed"):
        if key in grid.table:
            raise grid.fail(key, "describes the synthetic set; a data folder has its own")
    root = Path(data)
    missing = [name for name in SPLITS if not (root / name).is_file()]
    if missing:
        raise grid.fail(
            "data",
            f"{data!r} has no {' or '.join(missing)}; give a folder with both splits "
            "(`tsfbench synth ROOT --train-per-class 64`) or 'synthetic'",
        )
    try:
        classes = len(read_dataset(root / "val.csv", "kinetics").classes)
    except ConfigError as err:
        raise grid.fail("data", str(err)) from None
    return root, None, classes


def _motion_tasks(grid: _Grid, store_dir: Path) -> list[Task]:
    """A task per (scheme, seed): train the recipe's model on the data's train split, evaluate
    it on its val split. `data = "synthetic"` (the default) generates both next to the store."""
    attentions = grid.choices("attention", ATTENTIONS) or list(ATTENTIONS)
    seeds = _seeds(grid)
    recipe = _recipe(grid)
    timeout = grid.typed("timeout", float | int, None)
    if timeout is not None and not timeout > 0:
        raise grid.fail("timeout", f"{timeout}; expected a positive number of seconds")
    try:
        runs = [
            TrainSettings(attention=attention, seed=seed, **recipe)
            for attention in attentions
            for seed in seeds
        ]
    except ConfigError as err:  # it names the recipe key
        raise ConfigError(f"{grid.where}: {err}") from None
    root, synthetic, classes = _motion_set(grid, store_dir)
    dataset = SYNTHETIC if synthetic else dataset_identity(root / "val.csv", "kinetics")
    common = {
        "recipe": recipe_id(recipe),
        "data": str(root),
        "synthetic": synthetic,  # write_synthetic's options, or None: a folder of the user's
        # how the clips are sampled: rows trained on the synthetic set's former dense sampling
        # are other tasks (re-run), not stand-ins for these
        "sampling": dataset_sampling("kinetics", dataset),
        "checkpoints": str(store_dir / "checkpoints"),
        "timeout": timeout,
    }
    return [
        Task("motion", run_config(run, classes), {"train": run.as_dict(), **common}) for run in runs
    ]


def load_suite(path: str | Path, store_dir: str | Path = "results") -> Suite:
    """Read and validate a suite file into its tasks (duplicates across grids dropped)."""
    path = Path(path)
    if not path.is_file():
        known = sorted(p.name for p in Path("suites").glob("*.toml"))
        hint = f"; suites here: {', '.join(known)}" if known else ""
        raise ConfigError(f"suite: {str(path)!r} is not a file{hint}")
    try:
        document = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    unknown = [key for key in document if key not in TOP_KEYS]
    if unknown:
        accepted = "name, description, [[grid]] tables"
        raise ConfigError(f"{path}: {unknown[0]}: unknown key; accepted: {accepted}")
    grids = document.get("grid", [])
    if not isinstance(grids, list) or not grids or not all(isinstance(g, dict) for g in grids):
        raise ConfigError(f"{path}: needs at least one [[grid]] table")
    tasks: dict[str, Task] = {}
    for number, table in enumerate(grids, 1):
        for task in _grid_tasks(table, f"{path} [[grid]] {number}", Path(store_dir)):
            tasks.setdefault(task.key, task)
    return Suite(
        name=str(document.get("name", path.stem)),
        description=str(document.get("description", "")),
        path=path,
        tasks=tuple(tasks.values()),
    )


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n: the slice a SLURM array task takes."""
    index, _, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        shard = (-1, 0)
    if not 0 <= shard[0] < shard[1]:
        raise ConfigError(
            f"shard: {text!r}; expected i/n with 0 <= i < n, e.g. 0/4 "
            "(SLURM: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with ids from 0)"
        )
    return shard


def torchrun_rank() -> tuple[int, int]:
    """(rank, world size) when started by `torchrun`, else (0, 1)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def my_tasks(tasks: Sequence[Task], index: int = 0, count: int = 1) -> list[Task]:
    """Slice `index` of `count` (`--shard i/n`), then this `torchrun` rank's slice of it; the
    n slices of `my_tasks(tasks, i, n)` cover every task exactly once."""
    rank, world = torchrun_rank()
    return shard(shard(tasks, index, count), rank, world)
