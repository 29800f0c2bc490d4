"""The first minutes on a GPU: one command that answers every open GPU question (issue 13).

    python benchmarks/gpu_acceptance.py OUT              # one NVIDIA GPU; at most ~9 minutes
    python benchmarks/gpu_acceptance.py OUT --cpu-smoke  # tiny configurations on the CPU (CI)

Everything lands under OUT: `summary.md` (each target, its goal, the measured value and
pass / fail / not run with the reason, then every phase's wall time), `summary.json` (the same,
for programs), `env.json`, the JSON records of each phase, `report/` (the markdown report of the
quick suite with its plots), `store/` (its SQLite store) and `logs/` (each command's output).

Phases, in order; each runs in its own process group under its own time budget, and a phase
that fails or overruns is recorded as `fail` with a one-line reason while the next one starts:
1. `pytest`: `pytest -m gpu tests` (the smoke run: `tests/gpu`, collected and skipped);
2. `vs_reference`: `benchmarks/vs_reference.py`, divided, bf16 inference at batch 8 on 8x224
   and 16x448, with its MFU run (divided 8x224, batch 32, bf16): ours >= 1.5x `transformers`'
   clips/s at 8x224, <= 0.6x its peak memory at 16x448, MFU >= 45%;
3. `memory`: `tsfbench memory-sweep --json`, joint and divided, train, 8, 16, 32 frames at 224:
   the predicted peak against `max_allocated`, within 10% on every row;
4. `figure3`: the paper's Figure 3 clip lengths (8, 32, 64, 96 frames at 224), train, under
   `--memory-limit 32GiB`, SDPA and the eager `math` attention, joint and divided, through
   `tsfbench.measure.sweep.measure` (a child per configuration); a series stops at its first
   non-`ok` row, since longer clips need more memory. The largest clip that runs; with `math`
   (the released code's attention) it is compared with the paper's V100 (joint out of memory
   from 32 frames, divided never);
5. `fit`: `tsfbench fit` of divided, train bf16, frames at 224 on a 32 GiB card with no margin,
   then `memory-sweep` of its boundary pair under `--memory-limit 32GiB`: the largest clip that
   fits runs, the next one is `oom` (issue 24; its budget, 60 s, comes on top of the bound below);
6. `quick`: `tsfbench run suites/quick.toml` into OUT/store, then `tsfbench report` into
   OUT/report.
`--cpu-smoke` runs the same phases and commands with tiny configurations and
`CUDA_VISIBLE_DEVICES=""`: `tests/gpu` collected (all skipped), `vs_reference` with one
ViT-Base block at 2x32 batch 2, joint at 2 x 32 px (depth 2, width 64, 4 heads) for the
prediction, Figure 3's math-joint and SDPA-divided series at 2 frames, and a three-grid suite
(FLOPs, runtime with SDPA and math, synthetic accuracy) instead of quick.toml. CUDA-only
targets show as "not run: no GPU". It checks code paths, not timings, so its phases run two at
a time (`--jobs`); on a GPU they run one after the other.

How long on a GPU: an estimate (no GPU has run this yet), with a bound. The bound: the phase
budgets (`BUDGETS`) sum to 520 s and `tsfbench env` gets at most 30 s; a command past its
phase's budget is killed with its children, so the run ends within 9.5 minutes. The estimate,
that every phase finishes inside its budget on an H100 / H200 host, comes from the smoke run:
nearly all of a phase's time is process start-up (each measured configuration is a fresh
interpreter that imports torch, plus two monitor processes and the parent's prediction), and
that is what the smoke run measures. Its CPU seconds per phase on this 2-core machine (busy
with other jobs, 210 s wall for 80 s of CPU): pytest 5.4, vs_reference 11.8 (transformers
imported), memory 15.7 (the CLI, ~5, and one configuration), figure3 24.7 (a worker and two
configurations), quick 23.1 (2 runtime configurations, FLOPs, 4 videos, the report): about 10 s
per configuration. A GPU host's unshared server cores take 5-7 s, and a child's CUDA context
and cuBLAS set-up add 1-2 s. The GPU work per phase is small beside that:
- pytest (budget 130 s): about 40 gpu tests of tiny models, most in-process (< 1 s each after
  the first CUDA initialisation); `torch.compile` twice (cold inductor: 30-60 s); three
  memory-limit children and four subprocesses (25-35 s); collecting tests/ (10 s): 65-105 s.
- vs_reference (55 s): one process; 3 implementations x 2 clips x 7 steps, the heaviest
  (`transformers`' 16x448 batch 8 bf16 forward, ~27 TFLOP) 0.1-0.2 s; MFU 7 steps of ~13
  TFLOP: 20-35 s.
- memory (60 s): the CLI and 6 configurations of 5 steps, the largest (joint 32x224 fp32
  training, ~8 TFLOP with TF32 off at 30-60 TFLOP/s) 0.2-0.3 s a step: 45-60 s.
- figure3 (115 s): a worker and at most 14 configurations of 3 steps (the miniature, one
  warm-up, one timed); joint 96x224 with the efficient kernel (~46 TFLOP fp32) takes 1-3 s a
  step; joint math stops at its first OOM: 90-115 s.
- quick (160 s): 44 FLOPs counts spread over the cores (10-15 s), 6 runtime configurations of 4
  steps at 8x224 (7-9 s each), the motion test's two small models (`space`, `divided`: 300
  steps each, trained on the host's CPU in a child; 2 x 35-45 s with the evaluation; 70-90 s on
  this 2-core machine), the report (~10 s): 130-160 s.
Total 350-480 s. pytest and figure3 are the tight ones; where a phase overruns, its summary
line says so, what it measured before is kept, and `--budget-scale 1.5` gives every phase half
as much again.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# No torch at module level: the spawned children of the figure3 worker re-import this module as
# their `__main__`, and the parent never touches CUDA (a context would hold GPU memory).

ROOT = Path(__file__).resolve().parents[1]
PASS, FAIL, NOT_RUN = "pass", "fail", "not run"
PHASES = ("pytest", "vs_reference", "memory", "figure3", "fit", "quick")
# Seconds per phase on the GPU (see the module docstring); their sum bounds the run
BUDGETS = {"pytest": 130, "vs_reference": 55, "memory": 60, "figure3": 115, "quick": 160}
BUDGETS["fit"] = 60  # the CLI with its workers, the reserve's child, two capped steps
ENV_TIMEOUT = 30  # `tsfbench env` before the phases: with the budgets, at most 550 s in all
SMOKE_BUDGETS = {"pytest": 120, "vs_reference": 120, "memory": 150, "figure3": 200, "quick": 240}
SMOKE_BUDGETS["fit"] = 150
TINY = {"depth": 2, "dim": 64, "heads": 4}
MEMORY_FRAMES, SMOKE_MEMORY_FRAMES = "8,16,32", "2"
MEMORY_SCHEMES, SMOKE_MEMORY_SCHEMES = "joint,divided", "joint"
FIGURE3_FRAMES, SMOKE_FIGURE3_FRAMES = (8, 32, 64, 96), (2,)
# The paper's comparison first, SDPA's divided last: if the budget runs out, the least is lost
FIGURE3_SERIES = (("math", "joint"), ("sdpa", "joint"), ("math", "divided"), ("sdpa", "divided"))
SMOKE_FIGURE3_SERIES = (("sdpa", "joint"), ("math", "divided"))  # both kernels, both schemes
FIGURE3_LIMIT = "32GiB"
# The paper's V100 (Sec. 4.2, Figure 3) with the released code's eager attention
PAPER_LARGEST = {"joint": 8, "divided": 96}
SPEED_GOAL, MEMORY_GOAL, PREDICTION_GOAL = 1.5, 0.6, 0.10
STOP = threading.Event()  # Ctrl-C: phases running in pool threads kill their commands and stop


@dataclass
class Target:
    """One line of summary.md: what is checked, against what, and how it came out."""

    name: str
    goal: str
    value: str = "-"
    result: str = ""  # pass | fail | not run
    note: str = ""

    def set(self, result: str, value: str = "-", note: str = "") -> None:
        self.result, self.value, self.note = result, value, note


@dataclass
class PhaseRecord:
    name: str
    budget_s: float
    status: str = NOT_RUN  # pass (it ran to the end) | fail
    wall_s: float = 0.0
    cpu_s: float = 0.0  # user + system seconds of its processes (load-independent, unlike wall)
    reason: str = ""
    commands: list[str] = field(default_factory=list)


class PhaseFailed(Exception):
    """A phase cannot go on; the message is the one-line reason shown in summary.md."""


@dataclass
class Context:
    out: Path
    smoke: bool
    cuda: bool
    env: dict[str, Any]
    phase: PhaseRecord
    deadline: float = 0.0  # time.monotonic() at which this phase's budget is spent

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, argv: list[str], log: str, stdout: Path | None = None) -> int:
        """`argv` in its own process group, killed with all its children past the phase's
        budget; its output goes to logs/`log`.log (stdout to `stdout` when given)."""
        timeout = self.remaining()
        if STOP.is_set():
            raise PhaseFailed("interrupted")
        if timeout < 1:
            raise PhaseFailed("no time left in the phase's budget")
        self.phase.commands.append(" ".join(argv))
        logs = self.out / "logs"
        logs.mkdir(exist_ok=True)
        with open(logs / f"{log}.log", "w") as err, open(stdout or os.devnull, "w") as std:
            sink = std if stdout else err
            process = subprocess.Popen(
                argv, cwd=ROOT, stdout=sink, stderr=err, env=child_env(self.smoke),
                start_new_session=True,
            )  # fmt: skip
            deadline = time.monotonic() + timeout
            try:
                while not STOP.is_set() and time.monotonic() < deadline:
                    # wait4, not Popen.wait: the CPU time of this command and its children
                    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                    if pid:
                        self.phase.cpu_s += usage.ru_utime + usage.ru_stime
                        process.returncode = os.waitstatus_to_exitcode(status)
                        return process.returncode
                    time.sleep(0.05)
            finally:  # past the budget, interrupted or Ctrl-C: no process may outlive the phase
                if process.returncode is None:
                    os.killpg(process.pid, signal.SIGKILL)  # it and every child it started
                    _, _, usage = os.wait4(process.pid, 0)
                    self.phase.cpu_s += usage.ru_utime + usage.ru_stime
                    process.returncode = -signal.SIGKILL
            if STOP.is_set():
                raise PhaseFailed("interrupted")
            raise PhaseFailed(
                f"`{log}` timed out after {timeout:.0f} s (phase budget "
                f"{self.phase.budget_s:.0f} s)"
            )

    def check(self, rc: int, log: str) -> None:
        """A non-zero exit is the phase's failure, with the log's last line as the reason."""
        if rc != 0:
            lines = (self.out / "logs" / f"{log}.log").read_text(errors="replace").splitlines()
            last = next((line.strip() for line in reversed(lines) if line.strip()), "")
            raise PhaseFailed(f"`{log}` exited with {rc}: {last[:300]}")


def child_env(smoke: bool) -> dict[str, str]:
    """The children's environment: this checkout first on the path; no GPU in the smoke run."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if smoke:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def tsfbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "tsfbench", *args]


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise PhaseFailed(f"{path.name} was not written")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PhaseFailed(f"{path.name} is not JSON ({error})") from None


def gib(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:.1f} MiB"


# --- Phases ----------------------------------------------------------------------------------


def phase_pytest(ctx: Context, targets: dict[str, Target]) -> None:
    """`pytest -m gpu`, summed up from its JUnit XML: passed, failed, skipped."""
    xml = ctx.out / "pytest.xml"
    paths = ["tests/gpu"] if ctx.smoke else ["tests"]
    argv = [sys.executable, "-m", "pytest", "-m", "gpu", *paths, "-q", "-p", "no:cacheprovider",
            "--durations=10", f"--junitxml={xml}"]  # fmt: skip
    rc = ctx.run(argv, "pytest", stdout=ctx.out / "logs" / "pytest-stdout.log")
    if not xml.is_file():
        raise PhaseFailed(f"pytest exited with {rc} without writing {xml.name}")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failed: list[str] = []
    for suite in ET.parse(xml).getroot().iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}")
    bad = counts["failures"] + counts["errors"]
    passed = counts["tests"] - bad - counts["skipped"]
    value = f"{passed} passed, {bad} failed, {counts['skipped']} skipped"
    target = targets["pytest -m gpu"]
    if bad:
        target.set(FAIL, value, "failed: " + ", ".join(failed[:6]) + (" ..." if bad > 6 else ""))
    elif passed == 0 and not ctx.cuda:
        target.set(NOT_RUN, value, f"no GPU ({counts['tests']} collected, all skipped)")
    elif passed == 0:
        target.set(FAIL, value, f"pytest exited with {rc}: nothing ran")
    else:
        target.set(PASS, value, "skipped: see logs/pytest-stdout.log" if counts["skipped"] else "")


def phase_vs_reference(ctx: Context, targets: dict[str, Target]) -> None:
    """benchmarks/vs_reference.py as a user runs it; the targets from its --json records."""
    path = ctx.out / "vs_reference.json"
    if ctx.smoke:  # one clip for both targets: each clip builds three models
        clips, batch, depth = ("2x32", "2x32"), 2, "1"
    else:
        clips, batch, depth = ("8x224", "16x448"), 8, "12"
    argv = [sys.executable, "benchmarks/vs_reference.py", "--attention", "divided",
            "--clips", ",".join(dict.fromkeys(clips)), "--batches", str(batch), "--modes", "infer",
            "--dtypes", "bf16", "--depth", depth, "--repeats", "1" if ctx.smoke else "5",
            "--profile-rows", "0", "--json", str(path)]  # fmt: skip
    ctx.check(ctx.run(argv, "vs_reference"), "vs_reference")
    payload = read_json(path)

    def row(impl: str, clip: str) -> dict[str, Any]:
        frames, size = map(int, clip.split("x"))
        for record in payload["records"]:
            if (record["impl"], record["frames"], record["size"], record["batch"]) == (
                impl, frames, size, batch
            ) and (record["mode"], record["dtype"]) == ("infer", "bf16"):  # fmt: skip
                return record
        raise PhaseFailed(f"no {impl} record for {clip} batch {batch} in {path.name}")

    for name, clip, key, goal in (
        ("speed", clips[0], "clips_per_s", SPEED_GOAL),
        ("memory", clips[1], "peak_mib", MEMORY_GOAL),
    ):
        ours, hf = row("ours", clip), row("hf", clip)
        target = targets[f"vs_reference {name}"]
        if ours["status"] != "ok" or hf["status"] != "ok":
            target.set(FAIL, "-", f"ours {ours['status']}, hf {hf['status']} at {clip}")
            continue
        ratio = ours[key] / hf[key] if hf[key] else None
        shown = "-" if ratio is None else f"{ratio:.2f}x hf ({ours[key]:.1f} vs {hf[key]:.1f})"
        if not ctx.cuda:
            target.set(NOT_RUN, shown, f"no GPU (CPU smoke, depth 1, {clip} batch {batch})")
        elif ratio is None:
            target.set(FAIL, shown, f"hf's {key} is 0")
        else:
            met = ratio >= goal if name == "speed" else ratio <= goal
            target.set(PASS if met else FAIL, shown)
    mfu = targets["vs_reference MFU"]
    if not ctx.cuda:
        mfu.set(NOT_RUN, "-", "no GPU (vs_reference runs MFU with CUDA only)")
        return
    record = payload.get("mfu")
    if not record:
        raise PhaseFailed(f"{path.name} has no 'mfu' record")
    achieved = f"{record['achieved_tflops']:.0f} TFLOP/s on {record['gpu']}"
    if record.get("mfu") is None:
        mfu.set(NOT_RUN, achieved, f"no dense bf16 peak known for {record['gpu']!r}")
    else:
        value = f"{100 * record['mfu']:.1f}% ({achieved})"
        mfu.set(PASS if record["mfu"] >= record.get("target", 0.45) else FAIL, value)


def phase_memory(ctx: Context, targets: dict[str, Target]) -> None:
    """`tsfbench memory-sweep --json`: predicted peak against measured max_allocated per row."""
    path = ctx.out / "memory_sweep.json"
    size, frames = ("32", SMOKE_MEMORY_FRAMES) if ctx.smoke else ("224", MEMORY_FRAMES)
    schemes = SMOKE_MEMORY_SCHEMES if ctx.smoke else MEMORY_SCHEMES
    argv = tsfbench("memory-sweep", "--attention", schemes, "--frames", frames,
                    "--size", size, "--mode", "train", "--json")  # fmt: skip
    if ctx.smoke:
        argv += ["--iterations", "1", *(f"--{k}={v}" for k, v in TINY.items())]
    ctx.check(ctx.run(argv, "memory_sweep", stdout=path), "memory_sweep")
    records = read_json(path)
    if not records:
        raise PhaseFailed(f"{path.name} holds no rows")
    for record in records:
        name = f"prediction {record['attention']} {record['frames']}x{record['size']} train"
        target = targets.setdefault(name, Target(name, f"within {100 * PREDICTION_GOAL:.0f}%"))
        predicted, measured = record["predicted_peak_bytes"], record["max_allocated_bytes"]
        if record["status"] != "ok":
            target.set(FAIL, "-", f"{record['status']}: {record['error']}")
        elif predicted is None:
            target.set(FAIL, "-", "no prediction (an op without a fake kernel)")
        elif measured is None:
            target.set(NOT_RUN, f"predicted {gib(predicted)}", "no GPU (no max_allocated)")
        else:
            error = predicted / measured - 1
            value = f"{100 * error:+.1f}% ({gib(predicted)} vs {gib(measured)})"
            target.set(PASS if abs(error) <= PREDICTION_GOAL else FAIL, value)
    del targets["prediction rows"]  # it stood for the rows until there were some


def figure3_worker(out: Path, smoke: bool, seconds: float) -> None:
    """In its own process: every Figure 3 series, a child per configuration, one JSON line per
    record as soon as it is measured (a killed worker keeps what it measured)."""
    from tsfbench.config import ProbeSettings, RunConfig, parse_memory
    from tsfbench.environment import environment
    from tsfbench.measure.sweep import measure

    deadline = time.monotonic() + seconds
    frames, size = (SMOKE_FIGURE3_FRAMES, 32) if smoke else (FIGURE3_FRAMES, 224)
    overrides = TINY if smoke else None
    env = environment()
    with open(out / "figure3.jsonl", "w") as sink:
        for backend, attention in SMOKE_FIGURE3_SERIES if smoke else FIGURE3_SERIES:
            settings = ProbeSettings(
                mode="train", backend=backend, memory_limit=parse_memory(FIGURE3_LIMIT),
                warmup=1, iterations=1,
            )  # fmt: skip
            for count in frames:
                timeout = min(90.0, deadline - time.monotonic())
                if timeout < 5:
                    return
                config = RunConfig(attention=attention, frames=count, size=size)
                record = measure(config, settings, overrides=overrides, env=env, timeout=timeout)
                sink.write(json.dumps(record, default=str) + "\n")
                sink.flush()
                if record["status"] != "ok":
                    break  # a longer clip needs more memory: it cannot run either


def phase_figure3(ctx: Context, targets: dict[str, Target]) -> None:
    path = ctx.out / "figure3.jsonl"
    argv = [sys.executable, str(Path(__file__).resolve()), str(ctx.out), "--worker", "figure3",
            "--worker-seconds", f"{max(ctx.remaining() - 10, 1):.0f}"]  # fmt: skip
    if ctx.smoke:
        argv.append("--cpu-smoke")
    failure: PhaseFailed | None = None
    try:
        ctx.check(ctx.run(argv, "figure3"), "figure3")
    except PhaseFailed as error:  # keep what the worker measured before it failed
        failure = error
    lines = path.read_text().splitlines() if path.is_file() else []
    records = [json.loads(line) for line in lines]
    (ctx.out / "figure3.json").write_text(json.dumps(records, indent=2))
    frames = SMOKE_FIGURE3_FRAMES if ctx.smoke else FIGURE3_FRAMES
    for backend, attention in SMOKE_FIGURE3_SERIES if ctx.smoke else FIGURE3_SERIES:
        rows = [r for r in records if (r["backend"], r["attention"]) == (backend, attention)]
        target = targets[f"figure3 {attention} {backend}"]
        if not rows:
            target.set(FAIL, "-", str(failure or "not measured: the phase's budget ran out"))
            continue
        ran = [r["frames"] for r in rows if r["status"] == "ok"]
        stopped = next((r for r in rows if r["status"] != "ok"), None)
        largest = f"{max(ran)} frames" if ran else "none"
        value = largest + (f" ({stopped['frames']}: {stopped['status']})" if stopped else "")
        agreed = sum(
            r["predicted_fits"] == (r["status"] == "ok")
            for r in rows
            if r["predicted_fits"] is not None and r["status"] in ("ok", "oom")
        )
        note = f"prediction agreed on {agreed} of {len(rows)} rows"
        if stopped is not None and stopped["status"] != "oom":
            target.set(FAIL, value, f"{stopped['status']}: {stopped['error']}")
        elif stopped is None and len(rows) < len(frames):
            target.set(FAIL, value, f"unfinished: {failure or 'the worker stopped'}")
        elif not ctx.cuda:
            target.set(NOT_RUN, value, f"no GPU (CPU smoke, address-space limit); {note}")
        elif backend == "math":
            paper = PAPER_LARGEST[attention]
            met = bool(ran) and max(ran) == paper
            target.set(PASS if met else FAIL, value, note)
        else:
            target.set(PASS, value, note)
    if failure is not None:
        raise failure


def smoke_suite(out: Path) -> Path:
    """The quick suite's kinds of grid (FLOPs, runtime with SDPA and math, synthetic accuracy)
    at a size the smoke run affords."""
    tiny = "{ " + ", ".join(f"{k} = {v}" for k, v in TINY.items()) + " }"
    text = f"""name = "quick-smoke"
[[grid]]
measure = ["flops"]
model = "base"
attention = "divided"

[[grid]]
measure = ["latency", "memory", "energy"]
model = "base"
attention = "divided"
backend = ["sdpa", "math"]
frames = 2
size = 32
overrides = {tiny}
warmup = 1
iterations = 2

[[grid]]
measure = ["accuracy"]
model = "base"
attention = "divided"
frames = 2
size = 32
overrides = {tiny}
data = "synthetic"
classes = 4
per_class = 1
batch = 3
workers = 0
"""
    path = out / "quick-smoke.toml"
    path.write_text(text)
    return path


def phase_quick(ctx: Context, targets: dict[str, Target]) -> None:
    """`tsfbench run` of the quick suite into OUT/store, then `tsfbench report` of it."""
    suite = smoke_suite(ctx.out) if ctx.smoke else ROOT / "suites" / "quick.toml"
    store = ctx.out / "store" / "tsfbench.sqlite"
    store.parent.mkdir(exist_ok=True)
    summary_path = ctx.out / "quick_run.json"
    started = time.monotonic()
    rc = ctx.run(tsfbench("run", str(suite), "--store", str(store), "--json"), "run", summary_path)
    ctx.check(rc, "run")
    summary = read_json(summary_path)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary["statuses"].items()))
    value = f"{summary['tasks']} tasks: {statuses}; {time.monotonic() - started:.0f} s"
    failures = summary["failures"]
    shown = "; ".join(f"{f['task']}: {f['status']} {f['error']}"[:160] for f in failures[:3])
    targets["quick run"].set(FAIL if failures else PASS, value, shown)
    report_dir = ctx.out / "report"
    argv = tsfbench("report", str(suite), "--store", str(store), "--out", str(report_dir),
                    "--name", "quick", "--json")  # fmt: skip
    ctx.check(ctx.run(argv, "report", ctx.out / "report.json"), "report")
    files = read_json(ctx.out / "report.json")["files"]
    plots = sum(file.endswith(".png") for file in files)
    targets["quick report"].set(PASS, f"report/quick.md and {plots} plots")


FIT_LIMIT = "32GiB"  # the paper's V100, emulated on the lent card


def fit_verdict(cuda: bool, largest: dict | None, following: dict | None) -> tuple[str, str, str]:
    """(result, measured, note) of the fit check: the largest clip `tsfbench fit` says fits
    must run under the cap and the next one must run out of memory (issue 24)."""
    if largest is None or following is None:
        return FAIL, "-", "not measured"
    value = (
        f"{largest['frames']} frames {largest['status']}, "
        f"{following['frames']} frames {following['status']}"
    )
    if not cuda:
        return NOT_RUN, value, "no GPU (CPU smoke: tiny model, no cap)"
    if (largest["status"], following["status"]) == ("ok", "oom"):
        return PASS, value, ""
    if largest["status"] == "oom":
        return FAIL, value, "the largest predicted to fit ran out: more than the allocator's peak"
    if following["status"] == "ok":
        return FAIL, value, "the next one ran: the prediction is above what the step needs"
    bad = largest if largest["status"] != "ok" else following
    return FAIL, value, f"{bad['status']}: {bad.get('error')}"


def phase_fit(ctx: Context, targets: dict[str, Target]) -> None:
    """`tsfbench fit` on a 32 GiB card (no margin: the budget is what the cap leaves), then
    `memory-sweep` of its boundary pair under `--memory-limit 32GiB`."""
    answer_path, sweep_path = ctx.out / "fit.json", ctx.out / "fit_sweep.json"
    if ctx.smoke:
        fit = ["--memory", "3MiB", "--reserve", "0", "--size", "32", "--bounds", "frames=1..32",
               *(f"--{k}={v}" for k, v in TINY.items())]  # fmt: skip
    else:
        fit = ["--memory", FIT_LIMIT, "--margin", "0", "--size", "224"]
    run = ["--attention", "divided", "--mode", "train", "--dtype", "bf16"]
    argv = tsfbench("fit", *fit, *run, "--axis", "frames", "--json")
    ctx.check(ctx.run(argv, "fit", stdout=answer_path), "fit")
    (answer,) = read_json(answer_path)["answers"]
    if answer["answer"] != "boundary":
        raise PhaseFailed(f"fit answered {answer['answer']!r}, not a boundary pair")
    pair = f"{answer['largest']},{answer['next']}"
    tiny = [f"--{k}={v}" for k, v in TINY.items()]
    sweep = ["--size", "32", *tiny] if ctx.smoke else ["--size", "224", "--memory-limit", FIT_LIMIT]
    argv = tsfbench("memory-sweep", *run, "--frames", pair, "--iterations", "1", "--json",
                    *sweep)  # fmt: skip
    ctx.check(ctx.run(argv, "fit_sweep", stdout=sweep_path), "fit_sweep")
    rows = {row["frames"]: row for row in read_json(sweep_path)}
    result, value, note = fit_verdict(
        ctx.cuda, rows.get(answer["largest"]), rows.get(answer["next"])
    )
    budget = answer["budget_bytes"]
    value += f"; predicted {gib(answer['largest_peak_bytes'])} / {gib(answer['next_peak_bytes'])}"
    value += f" vs budget {gib(budget)} ({answer['reserve_source'][:40]})"
    targets["fit boundary"].set(result, value, note)


@dataclass(frozen=True)
class Phase:
    name: str
    run: Callable[[Context, dict[str, Target]], None]
    targets: tuple[tuple[str, str], ...]  # (name, goal) known before it runs


def phases(smoke: bool = False) -> list[Phase]:
    memory_goal = f"within {100 * PREDICTION_GOAL:.0f}% of max_allocated"
    figure3 = tuple(
        (
            f"figure3 {attention} {backend}",
            f"paper (V100, released code): {PAPER_LARGEST[attention]} frames"
            if backend == "math"
            else "measured: every row ok or oom",
        )
        for backend, attention in (SMOKE_FIGURE3_SERIES if smoke else FIGURE3_SERIES)
    )
    return [
        Phase("pytest", phase_pytest, (("pytest -m gpu", "all pass"),)),
        Phase(
            "vs_reference",
            phase_vs_reference,
            (
                ("vs_reference speed", f">= {SPEED_GOAL}x hf clips/s, bf16 infer 8x224 b8"),
                ("vs_reference memory", f"<= {MEMORY_GOAL}x hf peak, bf16 infer 16x448 b8"),
                ("vs_reference MFU", ">= 45%, divided 8x224 b32 bf16 infer"),
            ),
        ),
        Phase("memory", phase_memory, (("prediction rows", memory_goal),)),
        Phase("figure3", phase_figure3, figure3),
        Phase("fit", phase_fit, (("fit boundary", f"largest ok, next oom at {FIT_LIMIT}"),)),
        Phase(
            "quick",
            phase_quick,
            (("quick run", "every task ok"), ("quick report", "written with plots")),
        ),
    ]


# --- Driver ----------------------------------------------------------------------------------


def environment_facts(out: Path, smoke: bool) -> dict[str, Any]:
    """`tsfbench env --json` in a child (this process never imports torch); {} if it fails."""
    try:
        done = subprocess.run(
            tsfbench("env", "--json"), cwd=ROOT, env=child_env(smoke), capture_output=True,
            text=True, timeout=ENV_TIMEOUT, check=True,
        )  # fmt: skip
        env = json.loads(done.stdout)
    except (subprocess.SubprocessError, json.JSONDecodeError, OSError):
        env = {}
    (out / "env.json").write_text(json.dumps(env, indent=2))
    return env


def run_phase(phase: Phase, ctx: Context, targets: dict[str, Target]) -> None:
    own = {name: targets.setdefault(name, Target(name, goal)) for name, goal in phase.targets}
    start = time.monotonic()
    ctx.deadline = start + ctx.phase.budget_s
    print(f"[{phase.name}] budget {ctx.phase.budget_s:.0f} s ...", flush=True)
    try:
        phase.run(ctx, targets)
        ctx.phase.status = PASS
    except PhaseFailed as error:
        ctx.phase.status, ctx.phase.reason = FAIL, str(error)
    except Exception as error:  # a bug or surprise in one phase must not stop the others
        ctx.phase.status = FAIL
        first = str(error).splitlines()[0] if str(error) else ""
        ctx.phase.reason = f"{type(error).__name__}: {first}"
    except KeyboardInterrupt:
        ctx.phase.status, ctx.phase.reason = FAIL, "interrupted"
        raise
    finally:
        ctx.phase.wall_s = time.monotonic() - start
        for target in own.values():
            if not target.result:
                target.set(FAIL, "-", f"phase {phase.name} failed: {ctx.phase.reason}")
        line = f"[{phase.name}] {ctx.phase.status} in {ctx.phase.wall_s:.1f} s"
        line += f" (CPU {ctx.phase.cpu_s:.1f} s)"
        print(line + (f": {ctx.phase.reason}" if ctx.phase.reason else ""), flush=True)


def write_summary(
    out: Path, env: dict[str, Any], smoke: bool, records: list[PhaseRecord],
    targets: list[Target], wall: float,
) -> None:  # fmt: skip
    where = ", ".join(env.get("gpus") or []) or f"CPU ({env.get('cpu', 'unknown')})"
    counts = {result: sum(t.result == result for t in targets) for result in (PASS, FAIL, NOT_RUN)}
    budget = sum(r.budget_s for r in records)
    lines = [
        "# GPU acceptance" + (" (CPU smoke run: tiny configurations)" if smoke else ""),
        "",
        f"{where}; torch {env.get('torch')}, CUDA {env.get('cuda')}, driver "
        f"{env.get('nvml_driver')}, commit {env.get('git_commit')}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"**{counts[PASS]} pass, {counts[FAIL]} fail, {counts[NOT_RUN]} not run**; "
        f"wall time {wall:.0f} s (phase budgets {budget:.0f} s).",
        "",
        "| target | goal | measured | result | note |",
        "|---|---|---|---|---|",
    ]
    cell = lambda text: str(text).replace("|", "/").replace("\n", " ")  # noqa: E731
    for t in targets:
        shown = f"**{t.result}**" if t.result == FAIL else t.result
        lines.append(f"| {cell(t.name)} | {cell(t.goal)} | {cell(t.value)} | {shown} | "
                     f"{cell(t.note)} |")  # fmt: skip
    lines += ["", "| phase | status | wall s | CPU s | budget s | reason |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for r in records:
        lines.append(f"| {r.name} | {r.status} | {r.wall_s:.1f} | {r.cpu_s:.1f} | "
                     f"{r.budget_s:.0f} | {cell(r.reason)} |")  # fmt: skip
    lines += [
        "",
        "Files: `env.json`, `pytest.xml`, `vs_reference.json`, `memory_sweep.json`, "
        "`figure3.json`, `quick_run.json`, `report/quick.md` (and its plots), "
        "`store/tsfbench.sqlite`, `logs/` (each command's output).",
        "",
    ]
    (out / "summary.md").write_text("\n".join(lines))
    payload = {
        "smoke": smoke,
        "wall_s": wall,
        "env": env,
        "phases": [asdict(r) for r in records],
        "targets": [asdict(t) for t in targets],
    }
    (out / "summary.json").write_text(json.dumps(payload, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for every file the run writes")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny configurations, no GPU")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"subset of {PHASES}")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="x every phase budget")
    parser.add_argument(
        "--jobs", type=int, help="phases at once: --cpu-smoke only (default 2 there, else 1)"
    )
    parser.add_argument("--worker", choices=("figure3",), help=argparse.SUPPRESS)
    parser.add_argument("--worker-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "figure3":
        figure3_worker(args.out, args.cpu_smoke, args.worker_seconds)
        return 0
    chosen = [name for name in args.phases.split(",") if name]
    unknown = [name for name in chosen if name not in PHASES]
    if unknown or not chosen:
        parser.error(f"--phases: unknown {unknown[0] if unknown else '(none)'}; accepted: "
                     f"{', '.join(PHASES)}")  # fmt: skip
    if not args.budget_scale > 0:
        parser.error("--budget-scale: must be positive, e.g. 1.5")
    jobs = args.jobs if args.jobs is not None else (2 if args.cpu_smoke else 1)
    if jobs < 1 or (jobs > 1 and not args.cpu_smoke):
        parser.error("--jobs: 1 on a GPU (each phase measures it; they must not overlap); "
                     "more only with --cpu-smoke")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        env = environment_facts(args.out, args.cpu_smoke)
    except KeyboardInterrupt:  # nothing ran yet: nothing to summarise
        print("interrupted before the first phase")
        return 130
    cuda = bool(env.get("cuda_available")) and not args.cpu_smoke
    if not cuda and not args.cpu_smoke:
        print("no CUDA GPU visible: CUDA-only targets will be 'not run'; for CI use --cpu-smoke")
    budgets = SMOKE_BUDGETS if args.cpu_smoke else BUDGETS
    chosen_phases = [phase for phase in phases(args.cpu_smoke) if phase.name in chosen]
    records = [PhaseRecord(p.name, budgets[p.name] * args.budget_scale) for p in chosen_phases]
    targets: list[dict[str, Target]] = [{} for _ in chosen_phases]
    runs = [
        (phase, Context(args.out, args.cpu_smoke, cuda, env, record), own)
        for phase, record, own in zip(chosen_phases, records, targets, strict=True)
    ]
    interrupted = False
    if jobs == 1:  # in this thread, where Ctrl-C arrives
        try:
            for run in runs:
                run_phase(*run)
        except KeyboardInterrupt:
            interrupted = True
    else:  # the smoke run checks code paths, not timings: on 2 cores, about half the wall time
        pool = ThreadPoolExecutor(max_workers=jobs)
        futures = [pool.submit(run_phase, *run) for run in runs]
        try:
            for future in futures:
                future.result()  # run_phase catches what a phase raises
        except KeyboardInterrupt:
            interrupted = True
            STOP.set()  # each running phase kills its command's process group within 50 ms
        while True:
            try:
                pool.shutdown(cancel_futures=True)
                break
            except KeyboardInterrupt:  # pressed again: the phases are stopping already
                interrupted = True
    for record in records:
        if record.status == NOT_RUN and interrupted:
            record.reason = "interrupted before it started"
    wall = time.monotonic() - started
    listed = [target for own in targets for target in own.values()]
    write_summary(args.out, env, args.cpu_smoke, records, listed, wall)
    print(f"wall time {wall:.1f} s; " + ", ".join(f"{r.name} {r.wall_s:.1f} s" for r in records))
    print(f"wrote {args.out / 'summary.md'}")
    if interrupted:
        print("interrupted: summary.md holds the phases that ran")
        return 130
    return 1 if any(target.result == FAIL for target in listed) else 0


if __name__ == "__main__":
    sys.exit(main())
