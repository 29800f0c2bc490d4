"""`tsfbench ab`: two sides of one configuration timed alternately in one run, so that their
difference is judged against the same machine at the same moment.

Why: on a VM whose speed drifts 10-40% over minutes with nothing visible in the guest, two
stores of the same code measured minutes apart disagree (`compare` flagged 1-3 of 6 rows
`slower`). Timed in ABBA rounds (base, new, new, base, then new, base, base, new; one step a
turn, one side computing at a time), each round gives a paired ratio (B1 + B2) / (A1 + A2) in
which a drift that is linear over the round cancels exactly: both sides' steps sit at the same
mean position in time.

The verdict is the median paired ratio with its order-statistic 95% interval
(`stats.median_ci`), judged by `compare.verdict` (the same rule as `tsfbench compare`). Each side
runs in its own worker process (`measure/ab_worker.py`), which may import `tsfbench` from
another checkout (`tree=`), run with other step settings or another number of intra-op threads.

Torch-free: the coordinator only sends lines to the workers and reads their step times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from tsfbench import stats
from tsfbench.compare import FAIL_ON, THRESHOLD, Verdict, ratio_text, verdict
from tsfbench.config import DTYPES, SDPA_BACKENDS, ProbeSettings, RunConfig
from tsfbench.errors import ConfigError
from tsfbench.store import Status, atomic_write, digest

MIN_ROUNDS = 6  # the fewest paired ratios with a 95% order-statistic interval of their median
MAX_ROUNDS = 2500  # 10,000 steps: the kept samples stay a few thousand floats a side
TARGET_CI = 0.01
MAX_TIME = 60.0
# ABBA, then BAAB: whatever happens between rounds (the coordinator's stop check, a thread pool
# waking) precedes base's first step in one round and new's in the next, so it cannot favour a
# side. Measured: with ABBA alone, an A/A run of a tiny model gave 0.87 [0.38, 0.97] (the first
# step of a round the slowest); the pair of orders is also the Thue-Morse sequence, whose two
# rounds cancel a quadratic drift as one round cancels a linear one.
ORDERS = (("base", "new", "new", "base"), ("new", "base", "base", "new"))
# The keys a side may change, and what each takes. `mode` is not one: infer and train are two
# different tasks, not two ways to run one (compare two `latency` runs for that).
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
KEYS = {
    "dtype": ", ".join(DTYPES),
    "backend": ", ".join(SDPA_BACKENDS),
    "compile": "true or false",
    "checkpointing": "true or false",
    "threads": "a positive integer (intra-op threads)",
    "tree": "a path to another tsfbench checkout",
}
# Only the waiting side's OpenMP threads would spin after its step, on the cores the working
# side needs (see docs/ab.md for the measured cost); a policy already in the environment wins.
WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE"}
# Run the worker file by path with TREE first on sys.path: `import tsfbench` is the tree's.
BOOT = (
    "import runpy, sys; sys.path[0] = sys.argv[2]; runpy.run_path(sys.argv[1], run_name='__main__')"
)
WORKER = Path(__file__).resolve().parent / "measure" / "ab_worker.py"
HERE = Path(__file__).resolve().parents[1]  # the running checkout: a side without `tree`
STEP_FIELDS = ("mode", "dtype", "batch", "backend", "compile", "checkpointing")


@dataclass(frozen=True)
class SideSettings:
    """What one side changes from the shared configuration (None: as shared)."""

    dtype: str | None = None
    backend: str | None = None
    compile: bool | None = None
    checkpointing: bool | None = None
    threads: int | None = None
    tree: str | None = None

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def text(self) -> str:
        """`threads=1, dtype=bf16`, or `as shared`."""
        return ", ".join(f"{k}={v}" for k, v in self.changes().items()) or "as shared"

    def probe(self, shared: ProbeSettings) -> ProbeSettings:
        """The shared step settings with this side's changes (checked again when built)."""
        step = {k: v for k, v in self.changes().items() if k in STEP_FIELDS}
        return replace(shared, **step)

    @property
    def root(self) -> Path:
        return Path(self.tree) if self.tree else HERE


def parse_side(items: Sequence[str], option: str) -> SideSettings:
    """`--base/--new KEY=VALUE` (repeatable) -> SideSettings; bad input is one ConfigError."""
    given: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key == "mode":
            raise ConfigError(
                f"{option}: mode is shared, not a side's: infer and train are different tasks; "
                "run `tsfbench latency` for each"
            )
        if not sep or key not in KEYS:
            raise ConfigError(
                f"{option}: {item!r}; give KEY=VALUE with KEY one of {', '.join(KEYS)}"
            )
        given[key] = _value(key, value, option)
    return SideSettings(**given)


def _value(key: str, value: str, option: str) -> Any:
    bad = ConfigError(f"{option}: {key}={value!r}; {key} takes {KEYS[key]}")
    if key == "dtype" and value not in DTYPES:
        raise bad
    if key == "backend" and value not in SDPA_BACKENDS:
        raise bad
    if key in ("compile", "checkpointing"):
        if value.lower() not in BOOLEANS:
            raise bad
        return BOOLEANS[value.lower()]
    if key == "threads":
        if not value.isdigit() or int(value) <= 0:
            raise bad
        return int(value)
    if key == "tree":
        return str(check_tree(Path(value).expanduser(), option))
    return value


def check_tree(path: Path, option: str) -> Path:
    """A checkout whose `tsfbench` package has what the worker imports."""
    needed = ("tsfbench/__init__.py", "tsfbench/config.py", "tsfbench/measure/workload.py")
    if not all((path / name).is_file() for name in needed):
        raise ConfigError(
            f"{option}: tree={path} is not a tsfbench checkout (no {needed[2]}); give the "
            "folder that holds the tsfbench package"
        )
    return path.resolve()


@dataclass(frozen=True)
class AbSettings:
    """How long each configuration is timed and how its ratio is judged."""

    rounds: int | None = None  # None: auto (MIN_ROUNDS, then until target_ci or max_time)
    target_ci: float = TARGET_CI  # the median ratio's interval half-width to reach
    max_time: float = MAX_TIME  # seconds of rounds per configuration (auto)
    threshold: float = THRESHOLD
    fail_on: str = "slower"

    def __post_init__(self) -> None:
        if self.rounds is not None and (not isinstance(self.rounds, int) or self.rounds <= 0):
            raise ConfigError(f"--rounds: {self.rounds!r}; give a positive integer or auto")
        if not 0 < self.target_ci < 1:
            raise ConfigError(f"--target-ci: {self.target_ci!r}; give a fraction in (0, 1)")
        if not self.max_time > 0:
            raise ConfigError(f"--max-time: {self.max_time!r}; give seconds > 0")
        if not 0 <= self.threshold < 1:
            raise ConfigError(f"--threshold: {self.threshold!r}; give a fraction in [0, 1)")
        if self.fail_on not in FAIL_ON:
            raise ConfigError(
                f"--fail-on: unknown {self.fail_on!r}; accepted: {', '.join(FAIL_ON)}"
            )


def parse_rounds(text: str) -> int | None:
    """`auto` -> None, else a positive count."""
    if text.strip() == "auto":
        return None
    if not text.strip().isdigit() or int(text) <= 0:
        raise ConfigError(f"--rounds: {text!r}; give a positive integer or auto")
    return int(text)


# --- The statistic ------------------------------------------------------------------------------


def paired_ratios(base_ms: Sequence[float], new_ms: Sequence[float]) -> list[float]:
    """Per ABBA round r: (new[2r] + new[2r+1]) / (base[2r] + base[2r+1]). Each side's times are
    in measurement order, two a round; a drift linear over a round cancels from the ratio."""
    rounds = min(len(base_ms), len(new_ms)) // 2
    return [
        (new_ms[2 * r] + new_ms[2 * r + 1]) / (base_ms[2 * r] + base_ms[2 * r + 1])
        for r in range(rounds)
    ]


def ratio_figures(ratios: Sequence[float], threshold: float) -> dict[str, Any]:
    """The median paired ratio, its order-statistic 95% interval and half-width, the verdict
    (`compare.verdict`; without an interval: too few rounds)."""
    if not ratios:
        return {"ratio": None, "ratio_low": None, "ratio_high": None, "ratio_half_width": None,
                "verdict": Verdict.FEW_SAMPLES.value}  # fmt: skip
    summary = stats.summarize(ratios)  # its keys say ms; here the values are ratios
    low, high = summary["ci_low_ms"], summary["ci_high_ms"]
    judged = Verdict.FEW_SAMPLES if low is None else verdict(low, high, threshold)  # type: ignore[arg-type]
    return {
        "ratio": summary["median_ms"],
        "ratio_low": low,
        "ratio_high": high,
        "ratio_half_width": stats.half_width(summary),
        "verdict": judged.value,
    }


def stop_reason(ratios: Sequence[float], elapsed: float, settings: AbSettings) -> str | None:
    """Why the rounds stop now, or None to go on: a fixed count (`rounds`); auto: at least
    MIN_ROUNDS, then the interval within `target_ci` (`target_ci`), else `max_time`, else
    `max_rounds`."""
    count = len(ratios)
    if settings.rounds is not None:
        return "rounds" if count >= settings.rounds else None
    if count < MIN_ROUNDS:
        return None
    width = stats.half_width(stats.summarize(ratios))
    if width is not None and width <= settings.target_ci:
        return "target_ci"
    if elapsed >= settings.max_time:
        return "max_time"
    return "max_rounds" if count >= MAX_ROUNDS else None


def alternate(
    steps: Mapping[str, Callable[[], float]],
    settings: AbSettings,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[dict[str, list[float]], list[float], str]:
    """Rounds of `steps['base']` and `steps['new']` (each returns its step's ms; `ORDERS`) until
    `stop_reason` says; returns each side's times in order, the paired ratios and the reason."""
    times: dict[str, list[float]] = {"base": [], "new": []}
    ratios: list[float] = []
    begin = clock()
    while True:
        for side in ORDERS[len(ratios) % 2]:
            times[side].append(steps[side]())
        ratios = paired_ratios(times["base"], times["new"])
        reason = stop_reason(ratios, clock() - begin, settings)
        if reason is not None:
            return times, ratios, reason


# --- The workers --------------------------------------------------------------------------------


class WorkerError(Exception):
    """A side's worker failed or died; the message is the configuration's one-line error."""


class Worker:
    """One side's process: sends a line, reads a JSON line; stderr kept in a file for errors."""

    def __init__(self, role: str, side: SideSettings) -> None:
        self.role = role
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        env = {**WAIT_POLICY, **os.environ}  # the user's own policy wins
        self.process = subprocess.Popen(
            [sys.executable, "-c", BOOT, str(WORKER), str(side.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
            env=env,
        )

    def send(self, message: str) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(message + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died() from None

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise self._died()
        try:
            answer = json.loads(line)
        except ValueError:
            raise WorkerError(
                f"{self.role} side: not a protocol line: {line.strip()[:80]}"
            ) from None
        if "error" in answer:
            raise WorkerError(f"{self.role} side: {answer['error']}")
        return answer

    def step(self) -> float:
        self.send("step")
        return float(self.receive()["ms"])

    def _died(self) -> WorkerError:
        code = self.process.wait()
        self.log.seek(0)
        lines = [line.strip() for line in self.log.read().splitlines() if line.strip()]
        why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        tail = f": {lines[-1]}" if lines else ""
        return WorkerError(f"{self.role} side: worker ended ({why}){tail}")

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("quit")
                self.process.wait(timeout=10)
            except (WorkerError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.log.close()


@contextmanager
def workers(sides: Mapping[str, SideSettings]) -> Iterator[dict[str, Worker]]:
    """Both sides' processes, started together (their imports overlap), always ended."""
    started: dict[str, Worker] = {}
    try:
        for role, side in sides.items():
            started[role] = Worker(role, side)
        yield started
    finally:
        for worker in started.values():
            worker.close()


# --- One configuration, many configurations ---------------------------------------------------


def task_key(
    config: RunConfig,
    probe: ProbeSettings,
    overrides: Mapping[str, Any],
    sides: Mapping[str, SideSettings],
    settings: AbSettings,
) -> str:
    """What a saved result must share to be resumed: everything that changes the timing."""
    shared = {k: getattr(probe, k) for k in (*STEP_FIELDS, "warmup")} | {"device": probe.target}
    plan = {k: getattr(settings, k) for k in ("rounds", "target_ci", "max_time")}
    return digest(
        {"config": config.as_dict(), "probe": shared, "overrides": dict(overrides), "plan": plan}
        | {role: side.changes() for role, side in sides.items()}
    )


def setup(
    config: RunConfig, probe: ProbeSettings, overrides: Mapping[str, Any], side: SideSettings
) -> dict[str, Any]:
    """A worker's first line: what it builds and how (only fields every checkout knows)."""
    side_probe = side.probe(probe)
    step = {k: getattr(side_probe, k) for k in STEP_FIELDS} | {"device": probe.target}
    return {"config": config.as_dict(), "probe": step, "overrides": dict(overrides)} | {
        "threads": side.threads,
        "device": probe.target,
    }


def measure(
    config: RunConfig,
    probe: ProbeSettings,
    overrides: Mapping[str, Any],
    sides: Mapping[str, SideSettings],
    settings: AbSettings,
) -> dict[str, Any]:
    """One configuration's A/B: a flat record (an `error` row if a side fails)."""
    from tsfbench.measure.contention import ContentionTracker, nvml_gpu

    record: dict[str, Any] = {"what": config.describe(), **config.as_dict()}
    record |= {"device": probe.target, "base": sides["base"].text(), "new": sides["new"].text()}
    began = time.perf_counter()
    try:
        with workers(sides) as running:
            for role, worker in running.items():
                worker.send(json.dumps(setup(config, probe, overrides, sides[role])))
            uuids = set()
            for role, worker in running.items():
                ready = worker.receive()
                record |= {
                    f"{role}_threads": ready["threads"],
                    f"{role}_tsfbench": ready["tsfbench"],
                }
                uuids.add(ready.get("gpu_uuid"))  # an older tree's worker does not say: None
            steps = {role: worker.step for role, worker in running.items()}
            warm: dict[str, list[float]] = {"base": [], "new": []}
            for _ in range(int(probe.warmup)):  # alternating too: both sides warm alike
                for role in ("base", "new"):
                    warm[role].append(steps[role]())
            # on a GPU: other processes on the device (both workers are ours), clocks, throttling
            (uuid,) = uuids if len(uuids) == 1 else (None,)
            on_gpu = uuid is not None
            tracker = ContentionTracker(gpu=nvml_gpu(uuid), on_gpu=on_gpu, gpu_processes=2)
            with tracker.track():
                times, ratios, reason = alternate(steps, settings)
    except WorkerError as error:
        record |= {"status": Status.ERROR, "error": str(error), "verdict": None}
        return record | {"seconds": time.perf_counter() - began}
    record |= {"status": Status.OK, "error": None, "rounds": len(ratios), "stop_reason": reason}
    record |= ratio_figures(ratios, settings.threshold)
    for role in ("base", "new"):
        summary = stats.summarize(times[role])
        record |= {f"{role}_median_ms": summary["median_ms"]}
        record |= {
            f"{role}_ci_low_ms": summary["ci_low_ms"],
            f"{role}_ci_high_ms": summary["ci_high_ms"],
        }
        record |= {f"{role}_samples_ms": times[role], f"{role}_warmup_ms": warm[role]}
    record |= {"ratios": ratios, **tracker.contention.as_record()}
    return record | {"seconds": time.perf_counter() - began}


def load_saved(path: Path | None) -> dict[str, dict[str, Any]]:
    """Finished results of an earlier run with `--save` (key -> record); none without a file."""
    if path is None or not path.exists():
        return {}
    try:
        document = json.loads(path.read_text())
        return {r["key"]: r for r in document["results"] if r.get("status") == Status.OK}
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"--save: {path} is not an ab results file; give a new file or remove it"
        ) from None


def run_ab(
    configs: Sequence[RunConfig],
    probe: ProbeSettings,
    overrides: Mapping[str, Any],
    sides: Mapping[str, SideSettings],
    settings: AbSettings,
    save: Path | None = None,
    progress: Callable[[int, int, RunConfig, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every configuration's A/B, in order; with `save`, written after each one and resumed
    (a configuration already there with the same key is not measured again)."""
    for side in sides.values():
        side.probe(probe)  # a side's step settings checked before any process starts
    if isinstance(probe.warmup, str):
        raise ConfigError("--warmup: a count for ab (both sides warm up alternately), e.g. 3")
    saved = load_saved(save)
    results: list[dict[str, Any]] = []
    for done, config in enumerate(configs):
        key = task_key(config, probe, overrides, sides, settings)
        if key in saved:
            record = saved[key] | {"resumed": True}
        else:
            record = measure(config, probe, overrides, sides, settings) | {"key": key}
        results.append(record)
        if save is not None:  # this run's results, and any others the file held, kept
            done_keys = {r["key"] for r in results}
            kept = [r for k, r in saved.items() if k not in done_keys]
            atomic_write(save, json.dumps({"results": results + kept}, indent=1))
        if progress is not None:
            progress(done + 1, len(configs), config, record)
    failed = settings.fail_on == "slower" and any(
        r["verdict"] == Verdict.SLOWER or r["status"] == Status.ERROR for r in results
    )
    plan = {f.name: getattr(settings, f.name) for f in fields(settings)}
    policy = os.environ.get("OMP_WAIT_POLICY", WAIT_POLICY["OMP_WAIT_POLICY"])
    return {"results": results, "settings": plan, "wait_policy": policy, "failed": failed}


# --- Text ---------------------------------------------------------------------------------------


def side_ms(record: Mapping[str, Any], role: str) -> str:
    return stats.median_text(
        record.get(f"{role}_median_ms"), record.get(f"{role}_ci_low_ms"),
        record.get(f"{role}_ci_high_ms"),
    ) or "-"  # fmt: skip


def rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table's cells, one row a configuration (an error in the verdict's place)."""
    shown = []
    for r in result["results"]:
        contention = r.get("contention") or ("-" if r["status"] == Status.ERROR else "quiet")
        shown.append(
            {
                "configuration": r["what"],
                "base_ms": side_ms(r, "base"),
                "new_ms": side_ms(r, "new"),
                "ratio": ratio_text(r) if r["status"] == Status.OK else "-",
                "verdict": r["error"] if r["status"] == Status.ERROR else r["verdict"],
                "rounds": r.get("rounds"),
                "stop": r.get("stop_reason") or "-",
                "contention": contention,
            }
        )
    return shown


COLUMNS = {
    "configuration": "configuration",
    "base_ms": "base ms [95% CI]",
    "new_ms": "new ms [95% CI]",
    "ratio": "new / base [95% CI]",
    "verdict": "verdict",
    "rounds": "rounds",
    "stop": "stop",
    "contention": "contention (both sides)",
}


def caption(result: Mapping[str, Any]) -> str:
    first = result["results"][0] if result["results"] else {}
    plan = result["settings"]
    return (
        f"base: {first.get('base', '-')}; new: {first.get('new', '-')}. ABBA / BAAB rounds, "
        f"ratio = median of (B1 + B2) / (A1 + A2), order-statistic 95% CI; threshold "
        f"{plan['threshold']:.0%}; contention: other work, seen by both sides; "
        f"OMP_WAIT_POLICY={result['wait_policy']}."
    )


def markdown(result: Mapping[str, Any]) -> str:
    """The A/B as a markdown section (`--out`)."""
    lines = ["## A/B: new / base, timed alternately", "", caption(result), ""]
    lines += ["| " + " | ".join(COLUMNS.values()) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows(result):
        lines.append("| " + " | ".join(str(row[k]).replace("|", "/") for k in COLUMNS) + " |")
    return "\n".join(lines) + "\n"
