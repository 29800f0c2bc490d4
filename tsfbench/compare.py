"""`tsfbench compare`: two sets of stored rows, matched by task, each difference judged.

The base and the new rows are two stores, or two selections of one store (an environment id or
its prefix, an `E<n>` label as the report numbers environments, a git commit, a suite name).
Each side must come from one environment. Rows pair by (measurement, task): the task digest
covers the configuration and every run setting (dtype, batch, backend, device as written), so
rows that differ in any of them never pair. A runtime row measured on a GPU pairs with one
measured on a CPU only when both sides were chosen by environment, and the comparison then says
it is between devices.

For each runtime pair: the ratio of median latencies new / base with its 95% percentile
bootstrap interval (`stats.ratio_ci`, fixed seed). `slower` only when the whole interval lies
above 1 + threshold, `faster` only when it lies below 1 / (1 + threshold): the same factor both
ways, so swapping base and new swaps the two verdicts (up to the bootstrap's resampling noise at
the interval's ends). Anything else is `same`. Without kept
samples on both sides (rows stored before samples were kept) there is no interval and no verdict
(`no samples`); with fewer than `MIN_SAMPLES` on a side neither (`too few samples`). Peak memory
is near deterministic, so a change beyond the memory threshold is flagged without an interval;
FLOPs and parameters are compared exactly, and any difference is a model change.

Torch- and pandas-free: it answers in a fraction of a second.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from tsfbench.config import GIB, clip_name
from tsfbench.errors import ConfigError
from tsfbench.stats import CONFIDENCE, RATIO_CI_METHOD, RESAMPLES, SEED, ratio_ci, step_speeds
from tsfbench.store import MEASURED, Row, Status, Store, missing

THRESHOLD = 0.05
MEMORY_THRESHOLD = 0.02
FAIL_ON = ("slower", "none")
MACHINE_SPEED = ("adjust", "ignore")
# What must agree for two rows' canaries to measure the same machine's speed: another host, CPU,
# torch (its matmul), GPU or canary product makes their ratio another quantity.
SAME_MACHINE = ("env_host", "env_cpu", "env_cpu_count", "env_torch", "env_gpus", "canary_kind")
CANARY = "canary_samples_ms"
# The percentile bootstrap of a median from fewer samples than this cannot be trusted: the
# resampled medians take a handful of values, and even the exact order-statistic interval of
# one median needs 6 samples at 95% (`stats.median_ci`).
MIN_SAMPLES = 6
SAMPLES = "latency_samples_ms"
# Peak-memory figures compared, with the names the tables use
MEMORY = {
    "max_process_vram_bytes": "NVML process",
    "max_reserved_bytes": "reserved",
    "max_allocated_bytes": "allocated",
    "max_global_vram_bytes": "NVML device",
    "max_ram_bytes": "RSS",
    "predicted_peak_bytes": "predicted",
    "measured_cpu_alloc_bytes": "CPU heap",
}
MODEL = {"params": "params", "flops_per_view": "FLOPs/view"}  # exact: multiply-adds, as stored
ORDER = {"runtime": 0, "flops": 1, "accuracy": 2, "motion": 3}  # how pairs are listed


class Verdict(StrEnum):
    """What a pair's comparison says; one vocabulary for the table, the JSON and the gate."""

    FASTER = "faster"
    SLOWER = "slower"
    SAME = "same"  # latency within the threshold, or not known to be beyond it
    NO_SAMPLES = "no samples"  # a side kept no timing samples: no interval, no verdict
    FEW_SAMPLES = "too few samples"
    STATUS = "status changed"  # e.g. ok -> oom
    MODEL = "model change"  # FLOPs or params differ
    UNCHANGED = "unchanged"  # exact comparisons (FLOPs, params) that agree; nothing timed
    NOT_COMPARED = "not compared"  # accuracy and motion rows: shown, not judged


@dataclass(frozen=True)
class CompareSettings:
    """How differences are judged; checked when built (bad input is a `ConfigError`)."""

    threshold: float = THRESHOLD  # a latency change smaller than this is `same`
    memory_threshold: float = MEMORY_THRESHOLD  # a peak-memory change beyond this is flagged
    fail_on: str = "slower"  # `slower`: the gate fails on a slower row or a new failure
    machine_speed: str = "adjust"  # adjust: each step divided by the canary beside it

    def __post_init__(self) -> None:
        for name in ("threshold", "memory_threshold"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 <= value < 1:
                option = "--" + name.replace("_", "-")
                raise ConfigError(
                    f"{option}: {value!r}; give a fraction in [0, 1) or a percentage, e.g. 5%"
                )
        for option, value, accepted in (
            ("--fail-on", self.fail_on, FAIL_ON),
            ("--machine-speed", self.machine_speed, MACHINE_SPEED),
        ):
            if value not in accepted:
                raise ConfigError(f"{option}: unknown {value!r}; accepted: {', '.join(accepted)}")


def parse_fraction(text: str, option: str) -> float:
    """`5%` or `0.05` -> 0.05. A bare number of 1 or more is refused: `5` could mean 5% or 500%."""
    value = text.strip()
    percent = value.endswith("%")
    try:
        number = float(value.removesuffix("%"))
    except ValueError:
        number = float("nan")
    if percent:
        number /= 100
    if not 0 <= number < 1 or (not percent and number >= 1):
        raise ConfigError(f"{option}: {text!r}; give a fraction in [0, 1) or a percentage, e.g. 5%")
    return number


def verdict(low: float, high: float, threshold: float) -> Verdict:
    """The verdict of a ratio new / base whose interval is [low, high]: beyond the threshold
    only when the whole interval is (a ratio of 1.07 whose interval reaches 1.03 is `same`)."""
    if low > 1 + threshold:
        return Verdict.SLOWER
    if high < 1 / (1 + threshold):
        return Verdict.FASTER
    return Verdict.SAME


# --- Choosing the two sides -------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """The rows of one side: from one environment of one store."""

    role: str  # base | new
    store: str
    selector: str | None  # as given (--base / --new), None: the whole store
    kind: str  # what the selector matched: store, environment, commit, suite
    environment: str
    label: str  # E<n> in its store, numbered as the report numbers them
    rows: tuple[Row, ...]

    @property
    def by_environment(self) -> bool:
        return self.kind == "environment"

    def facts(self) -> dict[str, Any]:
        """Where the side was measured, in a few fields (from its first row's `env_*`)."""
        record = self.rows[0].record
        commits = sorted(
            {str(r.record["env_git_commit"]) for r in self.rows if _has(r, "env_git_commit")}
        )
        devices = sorted({_device(r) for r in self.rows if r.measurement == "runtime"} - {None})
        return {
            "store": self.store,
            "selector": self.selector,
            "matched": self.kind,
            "environment": self.environment,
            "label": self.label,
            "host": record.get("env_host"),
            "cpu": record.get("env_cpu"),
            "gpus": record.get("env_gpus") or None,
            "torch": record.get("env_torch"),
            "commit": ", ".join(commits) or None,
            "suites": sorted({row.suite for row in self.rows if row.suite}),
            "devices": devices,
            "rows": len(self.rows),
        }


def _has(row: Row, key: str) -> bool:
    return not missing(row.record.get(key))


def _device(row: Row) -> str | None:
    """`cuda` or `cpu` for a runtime row (where it ran), else None."""
    device = row.record.get("device")
    if missing(device):
        return None
    return "cuda" if str(device).startswith("cuda") else "cpu"


def environments(rows: Iterable[Row]) -> dict[str, str]:
    """Environment id -> E<n>, oldest first by their first row, as the report labels them."""
    first: dict[str, float] = {}
    for row in rows:
        first[row.environment] = min(first.get(row.environment, row.created), row.created)
    ordered = sorted(first, key=lambda env: (first[env], env))
    return {env: f"E{number}" for number, env in enumerate(ordered, 1)}


def _listing(rows: Sequence[Row], labels: Mapping[str, str]) -> str:
    """`E1 3fa2c1d0 (host, commit abc1234), E2 ...`: what a selector can name."""
    parts = []
    for env, label in labels.items():
        record = next(row.record for row in rows if row.environment == env)
        where = ", ".join(
            str(record[key])
            for key in ("env_host", "env_git_commit")
            if not missing(record.get(key))
        )
        parts.append(f"{label} {env[:8]}" + (f" ({where})" if where else ""))
    suites = sorted({row.suite for row in rows if row.suite})
    return "; ".join(parts) + (f"; suites: {', '.join(suites)}" if suites else "")


def _commit_matches(stored: Any, given: str) -> bool:
    """A stored short commit and a given one (shorter or longer): one a prefix of the other."""
    if missing(stored) or len(given) < 4:
        return False
    stored = str(stored).lower()
    return stored.startswith(given) or (len(stored) >= 7 and given.startswith(stored))


def _matches(rows: Sequence[Row], selector: str, labels: Mapping[str, str]) -> dict[str, list[Row]]:
    """What `selector` names among `rows`, by kind: environment, commit, suite."""
    text = selector.strip().lower()
    by_label = {label.lower(): env for env, label in labels.items()}
    envs = {by_label[text]} if text in by_label else {e for e in labels if e.startswith(text)}
    if len(envs) > 1:
        listed = ", ".join(f"{labels[e]} {e[:8]}" for e in sorted(envs, key=labels.get))
        raise ConfigError(
            f"{selector!r}: matches {len(envs)} environments ({listed}); give more of the id"
        )
    found = {
        "environment": [row for row in rows if row.environment in envs] if text else [],
        "commit": [r for r in rows if _commit_matches(r.record.get("env_git_commit"), text)],
        "suite": [row for row in rows if row.suite == selector.strip()],
    }
    return {kind: matched for kind, matched in found.items() if matched}


def select(store: str, rows: Sequence[Row], role: str, selector: str | None) -> Side:
    """The rows of one side: the store's, or those `selector` names; one environment."""
    option = f"--{role}"
    labels = environments(rows)
    if selector is None:
        kind, chosen = "store", list(rows)
    else:
        found = _matches(rows, selector, labels)
        if not found:
            raise ConfigError(
                f"{option}: {selector!r} is no environment id, E label, commit or suite in "
                f"{store}; it has {_listing(rows, labels)}"
            )
        if len(found) > 1:
            raise ConfigError(
                f"{option}: {selector!r} is ambiguous in {store} (an {' and a '.join(found)}); "
                "give a longer id or commit"
            )
        ((kind, chosen),) = found.items()
    envs = {row.environment for row in chosen}
    if len(envs) > 1:
        named = {env: label for env, label in labels.items() if env in envs}
        what = f"{option} {selector!r}" if selector else f"{role} store {store}"
        raise ConfigError(
            f"{what}: rows of {len(envs)} environments ({_listing(chosen, named)}); "
            f"choose one with {option} E<n> or an environment id"
        )
    (env,) = envs
    return Side(role, store, selector, kind, env, labels[env], tuple(chosen))


def read_store(path: Path | str, role: str) -> list[Row]:
    """Every row of the store at `path`; a missing file (never created here) or an empty
    store is a `ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{role} store: no results database at {path}; give a .sqlite file that "
            "`tsfbench run --store` wrote"
        )
    rows = Store(path).rows()
    if not rows:
        raise ConfigError(
            f"{role} store: {path} holds no results; run `tsfbench run SUITE --store {path}` first"
        )
    return rows


# --- Judging pairs ----------------------------------------------------------------------------


def describe(row: Row) -> str:
    """One line naming a row's task: measurement, configuration and, for a run, its settings."""
    record = row.record
    fields = (record.get(key) for key in ("model", "attention", "frames", "size"))
    text = f"{row.measurement} {clip_name(*fields)}"
    if row.measurement == "runtime":
        text += f" {record.get('mode')} {record.get('dtype')} b{record.get('batch')}"
        backend = record.get("backend")
        text += "" if backend in (None, "sdpa") else f" {backend}"
        text += " compiled" if record.get("compile") is True else ""
        text += " predicted" if row.status == Status.PREDICTED else ""
    if row.measurement == "motion" and not missing(record.get("seed")):
        text += f" seed {record['seed']}"
    overrides = record.get("overrides")
    if isinstance(overrides, dict) and overrides:
        text += " (" + ", ".join(f"{k}={v}" for k, v in overrides.items()) + ")"
    return text


def _samples(row: Row, key: str = SAMPLES) -> list[float]:
    samples = row.record.get(key)
    return [float(x) for x in samples] if isinstance(samples, list) else []


def _median(row: Row) -> float | None:
    value = row.record.get("latency_median_ms")
    return None if missing(value) else float(value)


def _changes(
    base: Mapping[str, Any], new: Mapping[str, Any], figures: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Each figure both records have: its values and the relative change."""
    changes = []
    for key, name in figures.items():
        before, after = base.get(key), new.get(key)
        if missing(before) or missing(after):
            continue
        change = (after / before - 1) if before else (0.0 if after == before else float("inf"))
        changes.append(
            {"figure": key, "name": name, "base": before, "new": after, "change": change}
        )
    return changes


def _in_canary_units(row: Row) -> list[float] | None:
    """The row's step times divided by the machine-speed canary beside each (`stats.step_speeds`);
    None where the row kept no readings with their positions."""
    readings, positions = _samples(row, CANARY), row.record.get("canary_steps")
    steps = _samples(row)
    if not readings or not steps or not isinstance(positions, list):
        return None
    if len(positions) != len(readings):
        return None
    speeds = step_speeds(len(steps), readings, [int(p) for p in positions])
    return [ms / speed for ms, speed in zip(steps, speeds, strict=True)]


def _machine(
    base: Row, new: Row, settings: CompareSettings
) -> tuple[list[float], list[float]] | str:
    """Both rows' steps in canary units where the canary measured one machine's change of
    speed; else why not (in words, for the table's note)."""
    if settings.machine_speed == "ignore":
        return "not adjusted (--machine-speed ignore)"
    scaled = _in_canary_units(base), _in_canary_units(new)
    if scaled[0] is None or scaled[1] is None:
        return "not adjusted: a side has no canary readings (measured before they were kept)"
    differ = [key for key in SAME_MACHINE if base.record.get(key) != new.record.get(key)]
    if differ:
        names = ", ".join(key.removeprefix("env_").replace("_", " ") for key in differ)
        return f"not adjusted: another machine or software ({names} differ)"
    return scaled[0], scaled[1]


def _latency(base: Row, new: Row, settings: CompareSettings) -> dict[str, Any]:
    """The ratio of medians, its interval where both sides kept enough samples, the verdict;
    where both rows read the machine-speed canary on one machine, the ratio of their steps in
    canary units (each step divided by the canary beside it: the machine's drift divided out)."""
    before, after = _samples(base), _samples(new)
    medians = _median(base), _median(new)
    machine = _machine(base, new, settings)
    readings = _samples(base, CANARY), _samples(new, CANARY)
    figures: dict[str, Any] = {
        "base_median_ms": medians[0],
        "new_median_ms": medians[1],
        "base_samples": len(before),
        "new_samples": len(after),
        "ratio": None,
        "ratio_low": None,
        "ratio_high": None,
        "raw_ratio": None,
        "machine_ratio": (
            statistics.median(readings[1]) / statistics.median(readings[0])
            if all(readings) and not isinstance(machine, str)
            else None
        ),
        "adjusted": False,
        "adjustment": machine if isinstance(machine, str) else None,
        "raw_ratio_low": None,
        "raw_ratio_high": None,
        "disagrees": None,  # adjusted and raw verdicts differ: what the one not `same` says
    }
    if medians[0] and medians[1] is not None:
        figures["ratio"] = figures["raw_ratio"] = medians[1] / medians[0]
    if not before or not after:
        return figures | {"verdict": Verdict.NO_SAMPLES}
    if min(len(before), len(after)) < MIN_SAMPLES:
        return figures | {"verdict": Verdict.FEW_SAMPLES}
    raw, low, high = ratio_ci(before, after)
    figures |= {"raw_ratio": raw, "ratio": raw, "ratio_low": low, "ratio_high": high}
    figures |= {"raw_ratio_low": low, "raw_ratio_high": high}
    raw_verdict = verdict(low, high, settings.threshold)
    if isinstance(machine, str):
        return figures | {"verdict": raw_verdict}
    ratio, low, high = ratio_ci(machine[0], machine[1])
    figures |= {"ratio": ratio, "ratio_low": low, "ratio_high": high, "adjusted": True}
    adjusted_verdict = verdict(low, high, settings.threshold)
    # A step's speed follows the canary's only in part (docs/compare.md: a row moved 3% when the
    # canary moved 11%, another 17% for 10%), so a verdict must hold both ways, in canary units
    # and raw; where they differ it is `same` and the row says what each way alone would say.
    if adjusted_verdict == raw_verdict:
        return figures | {"verdict": adjusted_verdict}
    ways = (("raw", raw_verdict), ("adjusted", adjusted_verdict))
    disagrees = ", ".join(f"{way}: {said}" for way, said in ways if said != Verdict.SAME)
    return figures | {"verdict": Verdict.SAME, "disagrees": disagrees}


def _contended(base: Row, new: Row) -> str | None:
    """Which side was measured with other work on the machine: base, new, both or None."""
    sides = [name for name, row in (("base", base), ("new", new)) if row.record.get("contended")]
    return "both" if len(sides) == 2 else (sides[0] if sides else None)


def judge(base: Row, new: Row, settings: CompareSettings) -> dict[str, Any]:
    """One pair, judged: latency (runtime), peak memory (runtime), FLOPs and params (flops)."""
    devices = _device(base), _device(new)
    pair: dict[str, Any] = {
        "measurement": base.measurement,
        "task": base.task,
        "what": describe(base),
        "device": devices[0] if devices[0] == devices[1] else f"{devices[0]} -> {devices[1]}",
        "base_status": base.status,
        "new_status": new.status,
        "contended": _contended(base, new),
        "contention": {
            name: row.record.get("contention")
            for name, row in (("base", base), ("new", new))
            if row.record.get("contended")
        },
        "verdict": Verdict.NOT_COMPARED,
        "memory": [],
        "memory_flags": [],
        "model": [],
    }
    if base.status != new.status:
        return pair | {"verdict": Verdict.STATUS}
    if base.measurement == "flops":
        changed = [c for c in _changes(base.record, new.record, MODEL) if c["change"] != 0]
        return pair | {"verdict": Verdict.MODEL if changed else Verdict.UNCHANGED, "model": changed}
    if base.measurement != "runtime" or base.status not in MEASURED:
        return pair
    if base.status == Status.OK:
        pair |= _latency(base, new, settings)
    else:  # predicted: nothing was timed
        pair["verdict"] = Verdict.UNCHANGED
    if devices[0] == devices[1]:  # another device's memory is another quantity
        memory = _changes(base.record, new.record, MEMORY)
        pair["memory"] = memory
        pair["memory_flags"] = [
            c["figure"] for c in memory if abs(c["change"]) > settings.memory_threshold
        ]
    return pair


def _regression(pair: Mapping[str, Any]) -> bool:
    """What fails the gate: a slower row, or a task that ran before and fails now."""
    if pair["verdict"] == Verdict.SLOWER:
        return True
    return pair["base_status"] in MEASURED and pair["new_status"] not in MEASURED


def compare_sides(base: Side, new: Side, settings: CompareSettings) -> dict[str, Any]:
    """Pair the two sides' rows by task and judge each pair; plain data (JSON-able)."""
    if base.rows == new.rows:
        raise ConfigError("--base and --new select the same rows; choose two environments")
    by_task = {(row.measurement, row.task): row for row in new.rows}
    explicit = base.by_environment and new.by_environment
    pairs, unmatched, paired = [], [], set()
    for row in base.rows:
        other = by_task.get((row.measurement, row.task))
        if other is None:
            continue
        devices = _device(row), _device(other)
        if devices[0] != devices[1] and not explicit:
            reason = (
                f"measured on {devices[0]} in base and {devices[1]} in new: rows of two devices "
                "pair only when both sides are chosen by environment (--base ENV --new ENV)"
            )
            for side, kept in (("base", row), ("new", other)):
                unmatched.append(
                    {"side": side, "task": kept.task, "what": describe(kept), "reason": reason}
                )
            paired.add((row.measurement, row.task))
            continue
        pairs.append(judge(row, other, settings))
        paired.add((row.measurement, row.task))
    for side, rows in (("base", base.rows), ("new", new.rows)):
        unmatched += [
            {"side": side, "task": row.task, "what": describe(row), "reason": f"only in {side}"}
            for row in rows
            if (row.measurement, row.task) not in paired
        ]
    if not pairs:
        hint = (
            "; their common tasks ran on different devices: choose both sides by environment id"
            if paired
            else "; compare rows measured with the same suite and settings"
        )
        raise ConfigError(
            f"no common tasks: base has {len(base.rows)} rows, new {len(new.rows)}, none of the "
            f"same task (configuration and run settings){hint}"
        )
    pairs.sort(key=lambda pair: (ORDER.get(pair["measurement"], 9), pair["what"]))
    counts: dict[str, int] = {}
    for pair in pairs:
        counts[pair["verdict"]] = counts.get(pair["verdict"], 0) + 1
    regressions = sum(_regression(pair) for pair in pairs)
    return {
        "base": base.facts(),
        "new": new.facts(),
        "between_devices": any(" -> " in str(pair["device"]) for pair in pairs),
        "settings": {
            "threshold": settings.threshold,
            "memory_threshold": settings.memory_threshold,
            "fail_on": settings.fail_on,
            "machine_speed": settings.machine_speed,
            "confidence": CONFIDENCE,
            "interval": f"{RATIO_CI_METHOD}, {RESAMPLES} resamples, seed {SEED}",
            "min_samples": MIN_SAMPLES,
        },
        "pairs": pairs,
        "unmatched": unmatched,
        "counts": counts,
        "regressions": regressions,
        "failed": settings.fail_on == "slower" and regressions > 0,
    }


def compare_stores(
    base_store: Path | str,
    new_store: Path | str | None = None,
    *,
    base: str | None = None,
    new: str | None = None,
    settings: CompareSettings | None = None,
) -> dict[str, Any]:
    """`tsfbench compare`: two stores (each side one environment, or the one `base` / `new`
    names in it), or one store and two selections (`base` and `new` both required)."""
    settings = settings or CompareSettings()
    base_rows = read_store(base_store, "base")
    if new_store is None:
        if base is None or new is None:
            raise ConfigError(
                "compare: one store needs --base and --new (environment ids or their prefixes, "
                "E1.. as in the report, commits or suite names)"
            )
        new_rows, new_store = base_rows, base_store
    else:
        new_rows = read_store(new_store, "new")
    return compare_sides(
        select(str(base_store), base_rows, "base", base),
        select(str(new_store), new_rows, "new", new),
        settings,
    )


def parse_pair(text: str) -> tuple[str, str]:
    """`E1,E2` -> ("E1", "E2"): the report's `--compare`."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(
            f"--compare: {text!r}; give two environments, base first: E1,E2 (labels of the "
            "report's environment table), environment ids, commits or suite names"
        )
    return parts[0], parts[1]


def between_environments(
    store: Path | str,
    pair: tuple[str, str],
    keys: Iterable[tuple[str, str, str]] | None = None,
    settings: CompareSettings | None = None,
) -> dict[str, Any]:
    """The report's "Between environments": two environments of one store, among the rows
    whose (measurement, task, environment) is in `keys` (default: all; the report passes the
    rows it reports, so that E1, E2 are the labels of its environment table)."""
    rows = read_store(store, "report")
    if keys is not None:
        wanted = set(keys)
        rows = [row for row in rows if (row.measurement, row.task, row.environment) in wanted]
    return compare_sides(
        select(str(store), rows, "base", pair[0]),
        select(str(store), rows, "new", pair[1]),
        settings or CompareSettings(),
    )


# --- Markdown ---------------------------------------------------------------------------------


def _ms(value: Any) -> str:
    return "-" if missing(value) else f"{float(value):,.1f}"


def ratio_text(pair: Mapping[str, Any]) -> str:
    """`1.071 [1.032, 1.110]`, or the bare ratio where there is no interval."""
    if missing(pair.get("ratio")):
        return "-"
    text = f"{pair['ratio']:.3f}"
    if not missing(pair.get("ratio_low")):
        text += f" [{pair['ratio_low']:.3f}, {pair['ratio_high']:.3f}]"
    return text


def machine_text(pair: Mapping[str, Any]) -> str:
    """The canary's new / base (1.25: the machine ran 1.25x slower for new), and whether the
    steps were divided by it."""
    machine = pair.get("machine_ratio")
    if missing(machine):
        return "-"
    return f"{machine:.3f}" + ("" if pair.get("adjusted") else " (not used)")


def verdict_text(pair: Mapping[str, Any]) -> str:
    """The verdict with what qualifies it: the status change, a contended side."""
    text = str(pair["verdict"])
    if pair["verdict"] == Verdict.STATUS:
        text = f"{pair['base_status']} -> {pair['new_status']}"
    if pair.get("disagrees"):
        text += f" ({pair['disagrees']})"
    if pair.get("contended"):
        text += f" (contended: {pair['contended']})"
    return text


def changes_text(changes: Sequence[Mapping[str, Any]], flagged: Iterable[str] | None) -> str:
    """Memory (flagged figures only) or model changes: `RSS +3.4% (1.21 -> 1.25 GiB)`."""
    shown = [c for c in changes if flagged is None or c["figure"] in set(flagged)]
    parts = []
    for change in shown:
        if change["figure"].endswith("_bytes"):
            values = f"{change['base'] / GIB:.3f} -> {change['new'] / GIB:.3f} GiB"
        else:
            values = f"{change['base']:,} -> {change['new']:,}"
        parts.append(f"{change['name']} {change['change'] * 100:+.1f}% ({values})")
    return "; ".join(parts) or "-"


def side_text(side: Mapping[str, Any]) -> str:
    """`E1 3fa2c1d0 (host, CPU, commit abc1234, suite quick) in results.sqlite`."""
    facts = [side["host"], side["gpus"] or side["cpu"], side["torch"] and f"torch {side['torch']}"]
    facts += [side["commit"] and f"commit {side['commit']}"]
    facts += [f"suite {', '.join(side['suites'])}" if side["suites"] else None]
    where = ", ".join(str(fact) for fact in facts if fact)
    return f"{side['label']} {side['environment'][:8]} ({where}) in {side['store']}"


def summary_text(result: Mapping[str, Any]) -> str:
    """`3 same, 1 slower, 1 no samples; 2 unmatched; gate: fails (1 regression)`."""
    counts = ", ".join(f"{n} {verdict}" for verdict, n in result["counts"].items())
    text = f"{len(result['pairs'])} pairs: {counts}; {len(result['unmatched'])} unmatched"
    if result["settings"]["fail_on"] == "none":
        return text + "; no gate (--fail-on none)"
    gate = f"fails ({result['regressions']} regression(s))" if result["failed"] else "passes"
    return f"{text}; gate: {gate}"


def caption(result: Mapping[str, Any]) -> str:
    """How the verdicts were reached, in one paragraph."""
    settings = result["settings"]
    threshold = settings["threshold"]
    text = (
        f"Ratio = new / base median latency with its {settings['confidence']:.0%} interval "
        f"({settings['interval']}); `slower` when the whole interval lies above "
        f"{1 + threshold:.3g}, `faster` when below {1 / (1 + threshold):.3g} (threshold "
        f"{threshold:.1%}), else `same`; no verdict without {settings['min_samples']} kept "
        f"samples a side. Peak memory flagged beyond {settings['memory_threshold']:.1%}; FLOPs "
        "and params compared exactly."
    )
    if any(pair.get("adjusted") for pair in result["pairs"]):
        text += (
            " Machine = the machine-speed canary's new / base (a fixed matmul timed beside each "
            "row, docs/timing.md); where both rows ran it on the same host, CPU and software, each "
            "step is divided by the canary beside it and the ratio is that of the steps in canary "
            "units (`--machine-speed ignore`: raw; `--json` has both). A verdict holds both ways, "
            "in canary units and raw, else it is `same` and names the way that differed (a "
            "step's speed follows the canary's only in part)."
        )
    judged = (Verdict.SAME, Verdict.SLOWER, Verdict.FASTER)
    reasons = sorted(
        {
            str(p["adjustment"])
            for p in result["pairs"]
            if p.get("adjustment") and p["verdict"] in judged
        }
        - {"not adjusted (--machine-speed ignore)"}
    )
    if reasons:
        text += " Ratios " + "; ".join(reasons) + "."
    if result["between_devices"]:
        text = (
            "Between devices: latency and memory compare different hardware, not a change of "
            "code. " + text
        )
    return text


def markdown(result: Mapping[str, Any], title: str = "Comparison") -> str:
    """The comparison as a markdown section (what `--out` writes and the report includes)."""
    heading = title + (" (between devices)" if result["between_devices"] else "")
    lines = [
        f"## {heading}",
        "",
        f"- base: {side_text(result['base'])}",
        f"- new: {side_text(result['new'])}",
        "",
        caption(result),
        "",
        "| task | device | base median (ms) | new median (ms) | new / base [95% CI] | machine "
        "| verdict | memory | model |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for pair in result["pairs"]:
        cells = [
            pair["what"],
            pair["device"] or "-",
            _ms(pair.get("base_median_ms")),
            _ms(pair.get("new_median_ms")),
            ratio_text(pair),
            machine_text(pair),
            verdict_text(pair),
            changes_text(pair["memory"], pair["memory_flags"]),
            changes_text(pair["model"], None),
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    if result["unmatched"]:
        lines += ["", "Unmatched rows:", "", "| side | task | why |", "|---|---|---|"]
        lines += [f"| {u['side']} | {u['what']} | {u['reason']} |" for u in result["unmatched"]]
    lines += ["", summary_text(result) + ".", ""]
    return "\n".join(lines)
