"""The first minutes on a GPU: one command that answers every open GPU question (issue 13).

    pip install -e ".[test]"                             # pytest and transformers are needed
    python benchmarks/gpu_acceptance.py OUT              # one NVIDIA GPU; install + run <= 10 min
    python benchmarks/gpu_acceptance.py OUT --cpu-smoke  # tiny configurations on the CPU (CI)

Everything lands under OUT: `summary.md` (each target, its goal, the measured value and
pass / fail / not run with the reason, then every phase's wall time), `summary.json` (the same,
for programs, with the verdict functions that ran), `env.json`, the JSON records of each phase,
`report/` (the markdown report of the quick suite with its plots), `store/` (its SQLite store)
and `logs/` (each command's output). The exit code is 1 when any target fails.

First `tsfbench env`: it must answer and see a CUDA GPU (target `tsfbench env`); if it fails,
every GPU target is still judged as on a GPU, so none passes without a measurement. Then the
phases (`PHASES`), in order; each runs in its own process group under its own time budget, and
a phase that fails or overruns is recorded as `fail` with a one-line reason while the next one
starts:
1. `pytest`: `pytest -m gpu tests -v` (tests/gpu and the GPU-marked tests elsewhere; the smoke
   run: `tests/gpu`, collected and skipped). Each test's outcome is in logs/pytest-stdout.log as
   it finishes (unbuffered), so a budget kill keeps every finished test and names the one it
   killed; the JUnit XML when pytest finishes;
2. `vs_reference`: `benchmarks/vs_reference.py`, divided, bf16 inference at batch 8 on 8x224
   and 16x448, with its MFU run (divided 8x224, batch 32, bf16): ours >= 1.5x `transformers`'
   clips/s at 8x224, <= 0.6x its peak memory at 16x448, MFU >= 45%;
3. `memory`: `tsfbench memory-sweep --json`, joint and divided, train, 8, 16, 32 frames at 224:
   the predicted peak against `max_allocated`, within 10% on every row;
4. `figure3`: the paper's Figure 3 clip lengths (8, 32, 64, 96 frames at 224), train, under
   `--memory-limit 32GiB`, SDPA and the eager `math` attention, joint and divided, through
   `tsfbench.measure.sweep.measure` (a child per configuration); a series stops at its first
   non-`ok` row, since longer clips need more memory, and its longer clips are then predicted
   only. Every series needs a clip that ran; with `math` (the released code's attention) the
   largest clip that ran must be the one the project predicts: the predicted peak plus the
   context the cap measured (`memory_cap_context_bytes`) within 32 GiB. The paper's V100
   boundary (joint out of memory from 32 frames, divided never) is shown beside it, not
   judged: the project predicts 28.99 GiB for joint at 32 x 224, under 32 GiB;
5. `quick`: `tsfbench run suites/quick.toml` into OUT/store, then `tsfbench report` into
   OUT/report: every task ok, a report with plots, and the motion test's own verdict for
   `space` and `divided` (trained on the GPU: `--device auto`).
Every target is set by a verdict function (`@verdict`): a pure function of the records, tested
with made-up records on both sides of its threshold (`tests/test_gpu_acceptance.py`).
`--cpu-smoke` runs the same phases, commands and verdict functions with tiny configurations and
`CUDA_VISIBLE_DEVICES=""`: `tests/gpu` collected (all skipped), `vs_reference` with one
ViT-Base block at 2x32 batch 2, joint at 2 x 32 px (depth 2, width 64, 4 heads) for the
prediction, Figure 3's math-joint and SDPA-divided series at 2 frames, and a five-grid suite
(FLOPs, runtime with SDPA and math, predicted memory, synthetic accuracy, a 2-step motion test)
instead of quick.toml. GPU-only targets show as "not run: no GPU" with the figures the verdict
computed; the motion test's is shown, not judged (2 steps are not the recipe). It checks code
paths, not timings, so its phases run two at a time (`--jobs`); on a GPU, one after the other.

Outside the plan, `--phases fit` (issue 24) runs `tsfbench fit` for divided, train bf16, frames
at 224 on a 32 GiB budget with no margin, then `memory-sweep` of its boundary pair under
`--memory-limit 32GiB`: the largest clip that fits must run, the next one be `oom`; and
`--phases profile` (issue 23) runs `tsfbench profile` of divided 8 x 224, bf16, batch 8: its
parts, timed by the kernels' device time, must sum to the unprofiled step's median within 5%.
`--phases fit,profile` runs both (about 90 s, a second command after the plan's). The smoke run
includes them.

How long on a GPU, install included: at most 10 minutes by plan (`GPU_PLAN_S`), an estimate
until a GPU has run it. A command past its phase's budget is killed with its children, so the
run itself cannot take longer than `tsfbench env` (`ENV_TIMEOUT`, 20 s) plus the phase budgets
(430 s); the plan adds the install (`INSTALL_S`, 150 s): 600 s. `tests/test_gpu_acceptance.py`
holds a phase added to `PHASES` to that sum.
- install, 150 s (estimate): `pip install -e ".[test]"` in a fresh venv downloads torch with its
  CUDA libraries (about 3 GB of wheels), transformers, scipy and the rest: 30-60 s at 50-100
  MB/s, 40-70 s to unpack and install; a warm pip cache halves it.
- `tsfbench env`, 20 s: 1.3 s wall here without a GPU (no torch imported); on a GPU it imports
  torch and asks CUDA for the devices, 3-6 s.
Where the phases' time goes was measured in the smoke run (this 2-core machine, busy with 7
other jobs, load 11-13; two phases at a time, so each wall time includes the other's
contention): pytest 13.9 s, vs_reference 36.7 s, memory 43.6 s, figure3 41.8 s, quick 57.6 s
(118 s in all). Nearly all of it is process start-up and imports: each measured configuration
is a fresh child (forked from a server that imported torch) with two monitor processes, each
command a fresh interpreter importing torch (~4 s of CPU here), and the quick suite's 36
predict-only tasks (Figure 3's memory, 20 by frames, 16 by crop, SDPA and math) cost 0.85 s of
CPU each in the parent, measured here (`tsfbench memory-sweep --predict-only`, 10 and 8
configurations: 12.5 and 10.8 s of CPU with start-up). A GPU host's unshared server cores take
about half as long; a child's CUDA context and cuBLAS set-up add 1-2 s. The GPU work (stated
estimates, H100 / H200):
- pytest (budget 110 s): about 40 GPU tests of tiny models, most in-process (< 1 s each after
  the first CUDA initialisation); `torch.compile` twice (cold inductor: 30-50 s); three
  memory-limit children and four subprocesses (20-30 s); collecting tests/ (~10 s): 65-100 s.
- vs_reference (45 s): one process; 3 implementations x 2 clips x 7 steps, the heaviest
  (`transformers`' 16x448 batch 8 bf16 forward, ~27 TFLOP) 0.1-0.2 s; MFU 7 steps of ~13
  TFLOP: 20-35 s.
- memory (55 s): the CLI and 6 configurations of 5 steps (a child each, 5-7 s), the largest
  (joint 32x224 fp32 training, ~8 TFLOP with TF32 off at 30-60 TFLOP/s) 0.2-0.3 s a step:
  40-55 s.
- figure3 (110 s): a worker and at most 14 configurations of 3 steps (the miniature, one
  warm-up, one timed), 5-7 s each; joint 96x224 with the efficient kernel (~46 TFLOP fp32)
  takes 1-3 s a step; a stopped series predicts its longer clips (1-3, under 1 s each):
  85-110 s.
- quick (110 s): 44 FLOPs counts spread over the cores (10-15 s), 36 predictions (15-25 s), 6
  runtime configurations at 8x224, `iterations = "auto"` (a warm-up step, then at least 6 timed
  ones until the median's interval is within 2%, at most 5 s: some 20-100 steps of 10-20 ms,
  under 2 s; 5-9 s each with the child's start and the canary: 30-50 s), the motion test's two
  small models trained and evaluated on the GPU in a child each (writing the synthetic set
  ~5 s, 300 steps of a 2-block width-64 model at ~10 ms, 3-crop evaluation: 10-15 s each),
  the 16 `fit` answers (about 30 shared predictions on 6 worker processes; 37 s on this 2-core
  CPU, so 5-10 s there), the report (~10 s): 90-130 s, over its budget at the top of the range.
Total 315-430 s of phases, 475-600 s with the install. quick, pytest and figure3 are the tight
ones; where a phase overruns, its summary line says so, what it measured before is kept, and
`--budget-scale 1.5` gives every phase half as much again (past the 10-minute plan).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
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
# The plan on one GPU (module docstring): `pip install -e ".[test]"` into a fresh venv, then
# `tsfbench env`, then the phases' budgets (`PHASES`), at most `GPU_PLAN_S` in all
INSTALL_S = 150
ENV_TIMEOUT = 20
GPU_PLAN_S = 600
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
MOTION_SCHEMES, SMOKE_MOTION_SCHEMES = ("space", "divided"), ("divided",)
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

    def judge(self, verdict: Verdict) -> None:
        self.set(verdict.result, verdict.value, verdict.note)


@dataclass(frozen=True)
class Verdict:
    """A target's outcome: pass / fail / not run, the measured value shown, and why."""

    result: str
    value: str = "-"
    note: str = ""


VERDICTS: dict[str, Callable[..., Verdict]] = {}  # every verdict function, by name
JUDGED: set[str] = set()  # those this run called (summary.json: the smoke run calls them all)


def verdict(function: Callable[..., Verdict]) -> Callable[..., Verdict]:
    """Registers a verdict: a pure function of records (no files, no processes), so that tests
    give it made-up records on both sides of its threshold; each call is noted in `JUDGED`."""
    VERDICTS[function.__name__] = function

    @functools.wraps(function)
    def judged(*args: Any, **kwargs: Any) -> Verdict:
        JUDGED.add(function.__name__)
        return function(*args, **kwargs)

    return judged


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
    """The children's environment: this checkout first on the path, output unbuffered; no GPU
    in the smoke run."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"  # a command killed past its budget keeps what it printed
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


# --- Verdicts: pure functions of records ------------------------------------------------------


@verdict
def env_verdict(env: dict[str, Any], error: str | None, smoke: bool) -> Verdict:
    """`tsfbench env` must answer, and (but in the smoke run) see a CUDA GPU: without one no GPU
    target could pass, and a run that measured nothing must not exit 0."""
    if error is not None:
        return Verdict(FAIL, "-", f"`tsfbench env` failed: {error}")
    where = ", ".join(env.get("gpus") or []) or "no CUDA GPU"
    missing_nvml = env.get("nvml_unavailable")
    note = f"NVML unavailable ({missing_nvml})" if missing_nvml else ""
    if smoke:
        return Verdict(PASS, f"CPU smoke ({env.get('cpu', 'unknown CPU')})", note)
    if not env.get("cuda_available"):
        return Verdict(FAIL, where, "no CUDA GPU visible; for CI use --cpu-smoke")
    return Verdict(PASS, where, note)


@verdict
def pytest_verdict(counts: dict[str, int], failed: list[str], cuda: bool, rc: int) -> Verdict:
    """Every collected GPU test passes, and at least one ran (on a GPU)."""
    bad = counts["failures"] + counts["errors"]
    passed = counts["tests"] - bad - counts["skipped"]
    value = f"{passed} passed, {bad} failed, {counts['skipped']} skipped"
    killed = counts.get("killed", 0)
    if killed:
        value += f", {killed} killed by the budget"
    if bad:
        return Verdict(
            FAIL, value, "failed: " + ", ".join(failed[:6]) + (" ..." if bad > 6 else "")
        )
    if killed:
        return Verdict(FAIL, value, f"killed in {failed[0] if failed else 'collection'}")
    if passed == 0 and not cuda:
        return Verdict(NOT_RUN, value, f"no GPU ({counts['tests']} collected, all skipped)")
    if passed == 0:
        return Verdict(FAIL, value, f"pytest exited with {rc}: nothing ran")
    return Verdict(PASS, value, "skipped: see logs/pytest-stdout.log" if counts["skipped"] else "")


def _ratio_verdict(
    ours: dict[str, Any], hf: dict[str, Any], key: str, met: Callable[[float], bool],
    cuda: bool, where: str,
) -> Verdict:  # fmt: skip
    if ours["status"] != "ok" or hf["status"] != "ok":
        return Verdict(FAIL, "-", f"ours {ours['status']}, hf {hf['status']} at {where}")
    ratio = ours[key] / hf[key] if hf[key] else None
    shown = "-" if ratio is None else f"{ratio:.2f}x hf ({ours[key]:.1f} vs {hf[key]:.1f})"
    if not cuda:
        return Verdict(NOT_RUN, shown, f"no GPU (CPU smoke, {where})")
    if ratio is None:
        return Verdict(FAIL, shown, f"hf's {key} is 0")
    return Verdict(PASS if met(ratio) else FAIL, shown)


@verdict
def speed_verdict(ours: dict[str, Any], hf: dict[str, Any], cuda: bool, where: str) -> Verdict:
    """Our clips/s at least `SPEED_GOAL` x `transformers`'."""
    return _ratio_verdict(ours, hf, "clips_per_s", lambda r: r >= SPEED_GOAL, cuda, where)


@verdict
def memory_ratio_verdict(
    ours: dict[str, Any], hf: dict[str, Any], cuda: bool, where: str
) -> Verdict:
    """Our peak memory at most `MEMORY_GOAL` x `transformers`'."""
    return _ratio_verdict(ours, hf, "peak_mib", lambda r: r <= MEMORY_GOAL, cuda, where)


@verdict
def mfu_verdict(record: dict[str, Any] | None, cuda: bool) -> Verdict:
    """The model FLOP utilisation `vs_reference.py` measured, against its own target."""
    if not cuda:
        return Verdict(NOT_RUN, "-", "no GPU (vs_reference runs MFU with CUDA only)")
    if not record:
        return Verdict(FAIL, "-", "vs_reference.json has no 'mfu' record")
    achieved = f"{record['achieved_tflops']:.0f} TFLOP/s on {record['gpu']}"
    if record.get("mfu") is None:
        return Verdict(NOT_RUN, achieved, f"no dense bf16 peak known for {record['gpu']!r}")
    value = f"{100 * record['mfu']:.1f}% ({achieved})"
    return Verdict(PASS if record["mfu"] >= record.get("target", 0.45) else FAIL, value)


@verdict
def prediction_verdict(record: dict[str, Any], cuda: bool) -> Verdict:
    """The predicted peak within `PREDICTION_GOAL` of the measured `max_allocated`."""
    predicted, measured = record["predicted_peak_bytes"], record["max_allocated_bytes"]
    if record["status"] != "ok":
        return Verdict(FAIL, "-", f"{record['status']}: {record['error']}")
    if predicted is None:
        return Verdict(FAIL, "-", "no prediction (an op without a fake kernel)")
    if measured is None:
        if not cuda:
            return Verdict(NOT_RUN, f"predicted {gib(predicted)}", "no GPU (no max_allocated)")
        return Verdict(FAIL, f"predicted {gib(predicted)}", "no max_allocated measured")
    error = predicted / measured - 1
    value = f"{100 * error:+.1f}% ({gib(predicted)} vs {gib(measured)})"
    return Verdict(PASS if abs(error) <= PREDICTION_GOAL else FAIL, value)


def predicted_boundary(
    rows: list[dict[str, Any]], limit: int
) -> tuple[int | None, int | None, str]:
    """(largest frames predicted to run under the cap, the context counted, why unknown):
    the predicted peak (allocator bytes) plus the context the cap measured (the largest over the
    series' rows) within `limit`. (None, None, reason) where the figures are missing."""
    contexts = [r["memory_cap_context_bytes"] for r in rows if r.get("memory_cap_context_bytes")]
    if not contexts:
        return None, None, "no measured context (the cap ran on no row)"
    context = max(contexts)
    peaks = {r["frames"]: r["predicted_peak_bytes"] for r in rows}
    if any(peak is None for peak in peaks.values()):
        return None, context, "a row has no prediction"
    fitting = [frames for frames, peak in peaks.items() if peak + context <= limit]
    return (max(fitting) if fitting else 0), context, ""


@verdict
def figure3_verdict(
    rows: list[dict[str, Any]], backend: str, attention: str, frames: tuple[int, ...],
    cuda: bool, limit: int, failure: str | None = None,
) -> Verdict:  # fmt: skip
    """One Figure 3 series under the cap. Every measured row `ok` or `oom`, the series measured
    to its end, at least one clip run (an all-`oom` series measured nothing). With `math` (the
    released code's attention) the largest clip that ran must be the largest the project
    predicts (prediction plus measured context within the cap); the paper's V100 boundary is
    reported beside it, not judged (another GPU, another allocator)."""
    measured = [r for r in rows if r["status"] != "predicted"]
    if not measured:
        return Verdict(FAIL, "-", failure or "not measured: the phase's budget ran out")
    ran = [r["frames"] for r in measured if r["status"] == "ok"]
    stopped = next((r for r in measured if r["status"] != "ok"), None)
    value = f"{max(ran)} frames" if ran else "none"
    value += f" ({stopped['frames']}: {stopped['status']})" if stopped else ""
    boundary, context, unknown = predicted_boundary(rows, limit)
    paper = PAPER_LARGEST[attention]
    if boundary is not None:
        value += f"; predicted {boundary} ({gib(context)} context)"
    value += f"; paper {paper}"
    if stopped is not None and stopped["status"] != "oom":
        return Verdict(FAIL, value, f"{stopped['status']}: {stopped['error']}")
    if stopped is None and len(measured) < len(frames):
        return Verdict(FAIL, value, f"unfinished: {failure or 'the worker stopped'}")
    if not ran:
        return Verdict(FAIL, value, "no clip ran: every row out of memory")
    if not cuda:
        return Verdict(NOT_RUN, value, "no GPU (CPU smoke, address-space limit)")
    if backend != "math":
        return Verdict(PASS, value)
    if boundary is None:
        return Verdict(FAIL, value, f"no predicted boundary: {unknown}")
    agrees = "agrees with" if boundary == paper else "differs from"
    note = f"the prediction {agrees} the paper's V100"
    return Verdict(PASS if max(ran) == boundary else FAIL, value, note)


@verdict
def quick_run_verdict(summary: dict[str, Any], seconds: float) -> Verdict:
    """`tsfbench run` of the quick suite: tasks measured, none failed."""
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary["statuses"].items()))
    value = f"{summary['tasks']} tasks: {statuses or 'none measured'}; {seconds:.0f} s"
    failures = summary["failures"]
    if failures:
        shown = "; ".join(f"{f['task']}: {f['status']} {f['error']}"[:160] for f in failures[:3])
        return Verdict(FAIL, value, shown)
    if not summary["tasks"] or not sum(summary["statuses"].values()):
        return Verdict(FAIL, value, "nothing was measured")
    return Verdict(PASS, value)


@verdict
def quick_report_verdict(report: dict[str, Any]) -> Verdict:
    """`tsfbench report`: the markdown report with its Figure 3 plots."""
    files = report["files"]
    plots = sum(file.endswith(".png") for file in files)
    value = f"{Path(files[0]).name if files else 'no report'} and {plots} plots"
    if not any(file.endswith(".md") for file in files):
        return Verdict(FAIL, value, "no markdown report written")
    if not plots:
        return Verdict(FAIL, value, "no plot: the report drew none of Figure 3")
    return Verdict(PASS, value)


@verdict
def motion_verdict(motion: dict[str, Any], schemes: tuple[str, ...], judged: bool) -> Verdict:
    """The motion test's own verdict (report/motion.py) for each scheme of the suite; `judged`
    False (the smoke run's few steps, not the recipe) shows it without judging."""
    rows = {row["attention"]: row for row in motion.get("rows", [])}
    shown = []
    for scheme in schemes:
        if scheme in rows:
            row = rows[scheme]
            mark = "pass" if row["passed"] else "FAIL"
            shown.append(f"{scheme} {row['top1_mean']:.1f}% ({mark} {row['expected']})")
    value = ", ".join(shown) or "-"
    absent = [scheme for scheme in schemes if scheme not in rows]
    if absent:
        return Verdict(FAIL, value, f"no motion result for {', '.join(absent)}")
    if not judged:
        return Verdict(NOT_RUN, value, "CPU smoke: a few training steps, not the recipe")
    failed = [scheme for scheme in schemes if not rows[scheme]["passed"]]
    if failed:
        return Verdict(FAIL, value, f"{', '.join(failed)} missed the expectation")
    return Verdict(PASS, value)


# --- Phases ----------------------------------------------------------------------------------

PYTEST_LINE = re.compile(r"^(\S+::\S+)\s+(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
PYTEST_START = re.compile(r"^(\S+::\S+)\s*$|^(\S+::\S+) ")


def pytest_counts_from_xml(xml: Path) -> tuple[dict[str, int], list[str]]:
    """Counts and failed test names from pytest's JUnit XML (written when pytest finishes)."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failed: list[str] = []
    for suite in ET.parse(xml).getroot().iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}")
    return counts, failed


def pytest_counts_from_log(text: str) -> tuple[dict[str, int], list[str]]:
    """The same from `pytest -v`'s log, test by test as they finished: what a run killed past
    its budget leaves. The test it was in (a started line without an outcome) counts as
    `killed`, first in the list."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "killed": 0}
    failed: list[str] = []
    last = ""
    for line in text.splitlines():
        line = line.strip()
        done = PYTEST_LINE.match(line)
        if done:
            name, outcome = done.groups()
            counts["tests"] += 1
            if outcome == "FAILED":
                counts["failures"] += 1
                failed.append(name)
            elif outcome == "ERROR":
                counts["errors"] += 1
                failed.append(name)
            elif outcome in ("SKIPPED", "XFAIL"):
                counts["skipped"] += 1
            last = ""
        elif "::" in line and PYTEST_START.match(line):
            last = line.split()[0]
    if last:
        counts["killed"] = 1
        failed.insert(0, last)
    return counts, failed


def phase_pytest(ctx: Context, targets: dict[str, Target]) -> None:
    """`pytest -m gpu`: tests/gpu and the GPU-marked tests elsewhere (the smoke run: tests/gpu
    only, all skipped). Each test's outcome is in the log as it finishes, so a budget kill
    keeps them; the JUnit XML, when pytest finishes."""
    xml = ctx.out / "pytest.xml"
    log = ctx.out / "logs" / "pytest-stdout.log"
    paths = ["tests/gpu"] if ctx.smoke else ["tests"]
    argv = [sys.executable, "-m", "pytest", "-m", "gpu", *paths, "-v", "-rA", "-p",
            "no:cacheprovider", "--durations=10", f"--junitxml={xml}"]  # fmt: skip
    failure: PhaseFailed | None = None
    rc = -1
    try:
        rc = ctx.run(argv, "pytest", stdout=log)
    except PhaseFailed as error:  # past the budget: the log has every test that finished
        failure = error
    if failure is None and xml.is_file():
        counts, failed = pytest_counts_from_xml(xml)
    elif log.is_file():
        counts, failed = pytest_counts_from_log(log.read_text(errors="replace"))
    else:
        raise failure or PhaseFailed(f"pytest exited with {rc} without writing {xml.name}")
    targets["pytest -m gpu"].judge(pytest_verdict(counts, failed, ctx.cuda, rc))
    if failure is not None:
        raise failure


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

    where = "depth 1, " if ctx.smoke else ""
    speed, memory = clips
    targets["vs_reference speed"].judge(
        speed_verdict(row("ours", speed), row("hf", speed), ctx.cuda, f"{where}{speed} b{batch}")
    )
    targets["vs_reference memory"].judge(
        memory_ratio_verdict(
            row("ours", memory), row("hf", memory), ctx.cuda, f"{where}{memory} b{batch}"
        )
    )
    targets["vs_reference MFU"].judge(mfu_verdict(payload.get("mfu"), ctx.cuda))


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
        target.judge(prediction_verdict(record, ctx.cuda))
    del targets["prediction rows"]  # it stood for the rows until there were some


def figure3_worker(out: Path, smoke: bool, seconds: float) -> None:
    """In its own process: every Figure 3 series, a child per configuration, one JSON line per
    record as soon as it is measured (a killed worker keeps what it measured). A series stops
    at its first non-`ok` row; its longer clips are then predicted only (no child), so that the
    predicted boundary is known past the measured one."""
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
            stopped = False
            for count in frames:
                timeout = min(90.0, deadline - time.monotonic())
                if timeout < 5:
                    return
                config = RunConfig(attention=attention, frames=count, size=size)
                record = measure(
                    config, settings, overrides=overrides, env=env, timeout=timeout,
                    predict_only=stopped,
                )  # fmt: skip
                sink.write(json.dumps(record, default=str) + "\n")
                sink.flush()
                stopped = stopped or record["status"] != "ok"  # longer clips need more memory


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
    limit = parse_size(FIGURE3_LIMIT)
    for backend, attention in SMOKE_FIGURE3_SERIES if ctx.smoke else FIGURE3_SERIES:
        rows = [r for r in records if (r["backend"], r["attention"]) == (backend, attention)]
        judged = figure3_verdict(
            rows, backend, attention, frames, ctx.cuda, limit, str(failure) if failure else None
        )
        targets[f"figure3 {attention} {backend}"].judge(judged)
    if failure is not None:
        raise failure


def parse_size(text: str) -> int:
    """'32GiB' in bytes (this process imports no tsfbench: `config.parse_memory`'s GiB)."""
    return int(float(text.removesuffix("GiB")) * 2**30)


def smoke_suite(out: Path) -> Path:
    """The quick suite's kinds of grid (FLOPs, runtime with SDPA and math, predicted memory,
    synthetic accuracy, the motion test) at a size the smoke run affords."""
    tiny = "{ " + ", ".join(f"{k} = {v}" for k, v in TINY.items()) + " }"
    schemes = ", ".join(f'"{s}"' for s in SMOKE_MOTION_SCHEMES)
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
measure = ["memory"]
model = "base"
attention = "divided"
frames = [2, 4]
size = 32
overrides = {tiny}
mode = "train"
memory_limit = "32GiB"
predict_only = true

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

[[grid]]
measure = ["motion"]
attention = [{schemes}]
seed = 0
steps = 2
batch = 4
classes = 2
train_per_class = 2
val_per_class = 2
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
    run_summary = read_json(summary_path)
    targets["quick run"].judge(quick_run_verdict(run_summary, time.monotonic() - started))
    report_dir = ctx.out / "report"
    argv = tsfbench("report", str(suite), "--store", str(store), "--out", str(report_dir),
                    "--name", "quick", "--json")  # fmt: skip
    ctx.check(ctx.run(argv, "report", ctx.out / "report.json"), "report")
    report = read_json(ctx.out / "report.json")
    targets["quick report"].judge(quick_report_verdict(report))
    schemes = SMOKE_MOTION_SCHEMES if ctx.smoke else MOTION_SCHEMES
    targets["motion test"].judge(motion_verdict(report["motion"], schemes, not ctx.smoke))


FIT_LIMIT = "32GiB"  # the paper's V100, emulated on the lent card


@verdict
def fit_verdict(cuda: bool, largest: dict | None, following: dict | None) -> Verdict:
    """`tsfbench fit`'s boundary pair run under the cap (issue 24): the largest clip it says
    fits must run and the next one must run out of memory."""
    if largest is None or following is None:
        return Verdict(FAIL, "-", "not measured")
    value = (
        f"{largest['frames']} frames {largest['status']}, "
        f"{following['frames']} frames {following['status']}"
    )
    if not cuda:
        return Verdict(NOT_RUN, value, "no GPU (CPU smoke: tiny model, no cap)")
    if (largest["status"], following["status"]) == ("ok", "oom"):
        return Verdict(PASS, value)
    if largest["status"] == "oom":
        return Verdict(FAIL, value, "the largest predicted to fit ran out: more than its peak")
    if following["status"] == "ok":
        return Verdict(FAIL, value, "the next one ran: the prediction is above what it needs")
    bad = largest if largest["status"] != "ok" else following
    return Verdict(FAIL, value, f"{bad['status']}: {bad.get('error')}")


def phase_fit(ctx: Context, targets: dict[str, Target]) -> None:
    """`tsfbench fit` on a 32 GiB card with no margin (the budget is what the cap leaves), then
    `memory-sweep` of its boundary pair under `--memory-limit 32GiB`."""
    answer_path, sweep_path = ctx.out / "fit.json", ctx.out / "fit_sweep.json"
    tiny = [f"--{k}={v}" for k, v in TINY.items()]
    if ctx.smoke:
        fit = ["--memory", "3MiB", "--reserve", "0", "--bounds", "frames=1..32", *tiny]
        sweep = ["--size", "32", *tiny]
    else:
        fit, sweep = ["--memory", FIT_LIMIT, "--margin", "0"], ["--memory-limit", FIT_LIMIT]
        sweep += ["--size", "224"]
    run = ["--attention", "divided", "--mode", "train", "--dtype", "bf16"]
    size = "32" if ctx.smoke else "224"
    argv = tsfbench("fit", *fit, *run, "--size", size, "--axis", "frames", "--json")
    ctx.check(ctx.run(argv, "fit", stdout=answer_path), "fit")
    (answer,) = read_json(answer_path)["answers"]
    if answer["answer"] != "boundary":
        raise PhaseFailed(f"fit answered {answer['answer']!r}, not a boundary pair")
    pair = f"{answer['largest']},{answer['next']}"
    argv = tsfbench("memory-sweep", *run, "--frames", pair, "--iterations", "1", "--json", *sweep)
    ctx.check(ctx.run(argv, "fit_sweep", stdout=sweep_path), "fit_sweep")
    rows = {row["frames"]: row for row in read_json(sweep_path)}
    judged = fit_verdict(ctx.cuda, rows.get(answer["largest"]), rows.get(answer["next"]))
    peaks = f"{gib(answer['largest_peak_bytes'])} / {gib(answer['next_peak_bytes'])}"
    budget = f"budget {gib(answer['budget_bytes'])} ({answer['reserve_source'][:40]})"
    targets["fit boundary"].judge(
        Verdict(judged.result, f"{judged.value}; predicted {peaks} vs {budget}", judged.note)
    )


PROFILE_TOLERANCE = 0.05  # the parts' medians sum to the unprofiled step within 5% (issue 23)


@verdict
def profile_verdict(cuda: bool, result: dict[str, Any]) -> Verdict:
    """`tsfbench profile` on the GPU: its parts (kernel time) sum to the unprofiled step's median
    within PROFILE_TOLERANCE, so the table accounts for the step a user times."""
    parts = sorted(result["parts"], key=lambda part: -part["time_ms"])
    top = ", ".join(f"{part['part']} {100 * part['time_share']:.0f}%" for part in parts[:3])
    overhead = 100 * result["profiler_overhead"]
    value = (
        f"parts sum {100 * result['parts_sum_vs_latency']:+.1f}% of the step's "
        f"{result['latency']['median_ms']:.1f} ms (profiler {overhead:+.1f}%); {top}"
    )
    if not cuda:
        return Verdict(NOT_RUN, value, "no GPU (CPU smoke: CPU self time, not kernel time)")
    note = "; ".join(result["notes"])[:160]
    if abs(result["parts_sum_vs_latency"]) > PROFILE_TOLERANCE:
        return Verdict(FAIL, value, note or "the parts do not account for the step")
    return Verdict(PASS, value, note)


def phase_profile(ctx: Context, targets: dict[str, Target]) -> None:
    """`tsfbench profile` of divided 8 x 224, bf16, batch 8: time by part from kernel time."""
    path = ctx.out / "profile.json"
    run = ["--attention", "divided", "--frames", "8", "--dtype", "bf16", "--iterations", "10"]
    if ctx.smoke:
        run += ["--size", "32", "--batch", "1", "--warmup", "1"]
        run += [f"--{key}={value}" for key, value in TINY.items()]
    else:
        run += ["--size", "224", "--batch", "8", "--warmup", "5"]
    ctx.check(ctx.run(tsfbench("profile", *run, "--json"), "profile", stdout=path), "profile")
    targets["profile parts"].judge(profile_verdict(ctx.cuda, read_json(path)))


@dataclass(frozen=True)
class Phase:
    """One phase: the function that runs it and judges its targets, its time budgets, and the
    targets it sets (name, goal), known before it runs (`targets(smoke)` where they differ)."""

    name: str
    run: Callable[[Context, dict[str, Target]], None]
    targets: tuple[tuple[str, str], ...] | Callable[[bool], tuple[tuple[str, str], ...]] = ()
    budget_s: float = 60.0  # on one GPU (the module docstring derives each)
    smoke_budget_s: float = 120.0  # --cpu-smoke, on a busy 2-core machine

    def goals(self, smoke: bool) -> tuple[tuple[str, str], ...]:
        return self.targets(smoke) if callable(self.targets) else self.targets


def figure3_targets(smoke: bool) -> tuple[tuple[str, str], ...]:
    goals = {
        "math": "largest clip = predicted (prediction + context within 32 GiB)",
        "sdpa": "measured: rows ok or oom, at least one ok",
    }
    series = SMOKE_FIGURE3_SERIES if smoke else FIGURE3_SERIES
    return tuple((f"figure3 {a} {b}", goals[b]) for b, a in series)


# The phases, in order. A phase registers with one entry here: a `phase_x(ctx, targets)` that
# runs its commands through `ctx.run` and sets its targets from verdict functions (`@verdict`),
# its budgets, and its targets. `--phases`, the budget test and summary.md follow this list.
PHASES = [
    Phase("pytest", phase_pytest, (("pytest -m gpu", "all pass"),), 110, 120),
    Phase(
        "vs_reference",
        phase_vs_reference,
        (
            ("vs_reference speed", f">= {SPEED_GOAL}x hf clips/s, bf16 infer 8x224 b8"),
            ("vs_reference memory", f"<= {MEMORY_GOAL}x hf peak, bf16 infer 16x448 b8"),
            ("vs_reference MFU", ">= 45%, divided 8x224 b32 bf16 infer"),
        ),
        45,
        120,
    ),
    Phase(
        "memory",
        phase_memory,
        (("prediction rows", f"within {100 * PREDICTION_GOAL:.0f}% of max_allocated"),),
        55,
        150,
    ),
    Phase("figure3", phase_figure3, figure3_targets, 110, 200),
    Phase(
        "quick",
        phase_quick,
        (
            ("quick run", "every task ok"),
            ("quick report", "written with plots"),
            ("motion test", "each scheme meets its expectation"),
        ),
        110,
        300,
    ),
]
PHASE_NAMES = tuple(phase.name for phase in PHASES)
# Outside the 10-minute plan (its phases' budgets sum to it): on a GPU with `--phases fit,profile`
# (about 40 s each: the fit command with its reserve's child and two capped steps; 15 steps of
# divided bf16 b8, half of them profiled); the smoke run runs them after the plan's phases, so
# their verdicts are exercised there too.
EXTRA_PHASES = [
    Phase("fit", phase_fit, (("fit boundary", f"largest ok, next oom at {FIT_LIMIT}"),), 45, 150),
    Phase(
        "profile",
        phase_profile,
        (("profile parts", f"sum to the step within {100 * PROFILE_TOLERANCE:.0f}%"),),
        45,
        150,
    ),
]


# --- Driver ----------------------------------------------------------------------------------


def environment_facts(out: Path, smoke: bool) -> tuple[dict[str, Any], str | None]:
    """`tsfbench env --json` in a child (this process never imports torch): the facts, or {}
    and why the command failed."""
    error = None
    try:
        done = subprocess.run(
            tsfbench("env", "--json"), cwd=ROOT, env=child_env(smoke), capture_output=True,
            text=True, timeout=ENV_TIMEOUT, check=True,
        )  # fmt: skip
        env = json.loads(done.stdout)
    except subprocess.CalledProcessError as failed:
        lines = [line for line in (failed.stderr or "").splitlines() if line.strip()]
        env, error = {}, f"exit {failed.returncode}: {lines[-1].strip()[:300] if lines else ''}"
    except (subprocess.SubprocessError, json.JSONDecodeError, OSError) as failed:
        env, error = {}, f"{type(failed).__name__}: {str(failed).splitlines()[0][:300]}"
    (out / "env.json").write_text(json.dumps(env, indent=2))
    return env, error


def run_phase(phase: Phase, ctx: Context, targets: dict[str, Target]) -> None:
    own = {
        name: targets.setdefault(name, Target(name, goal)) for name, goal in phase.goals(ctx.smoke)
    }
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
        "plan_s": {"install": INSTALL_S, "env": ENV_TIMEOUT, "phases": budget},
        "verdicts": sorted(JUDGED),  # the verdict functions this run called
        "env": env,
        "phases": [asdict(r) for r in records],
        "targets": [asdict(t) for t in targets],
    }
    (out / "summary.json").write_text(json.dumps(payload, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for every file the run writes")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny configurations, no GPU")
    parser.add_argument(
        "--phases",
        help=f"subset of {', '.join(PHASE_NAMES)}, or fit, profile (outside the plan; the "
        "smoke run's default includes them)",
    )
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
    extra = tuple(phase.name for phase in EXTRA_PHASES)
    default = PHASE_NAMES + extra if args.cpu_smoke else PHASE_NAMES
    chosen = [name for name in (args.phases or ",".join(default)).split(",") if name]
    unknown = [name for name in chosen if name not in PHASE_NAMES + extra]
    if unknown or not chosen:
        parser.error(f"--phases: unknown {unknown[0] if unknown else '(none)'}; accepted: "
                     f"{', '.join(PHASE_NAMES + extra)}")  # fmt: skip
    if not args.budget_scale > 0:
        parser.error("--budget-scale: must be positive, e.g. 1.5")
    jobs = args.jobs if args.jobs is not None else (2 if args.cpu_smoke else 1)
    if jobs < 1 or (jobs > 1 and not args.cpu_smoke):
        parser.error("--jobs: 1 on a GPU (each phase measures it; they must not overlap); "
                     "more only with --cpu-smoke")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        env, env_error = environment_facts(args.out, args.cpu_smoke)
    except KeyboardInterrupt:  # nothing ran yet: nothing to summarise
        print("interrupted before the first phase")
        return 130
    env_target = Target("tsfbench env", "answers; a CUDA GPU visible (but --cpu-smoke)")
    env_target.judge(env_verdict(env, env_error, args.cpu_smoke))
    if env_target.result == FAIL:
        print(f"tsfbench env: {env_target.note}")
    # Without the facts, a GPU run still judges every target as on a GPU: none passes unmeasured
    cuda = not args.cpu_smoke and (env_error is not None or bool(env.get("cuda_available")))
    chosen_phases = [phase for phase in PHASES + EXTRA_PHASES if phase.name in chosen]
    records = [
        PhaseRecord(
            p.name, (p.smoke_budget_s if args.cpu_smoke else p.budget_s) * args.budget_scale
        )
        for p in chosen_phases
    ]
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
    listed = [env_target, *(target for own in targets for target in own.values())]
    write_summary(args.out, env, args.cpu_smoke, records, listed, wall)
    print(f"wall time {wall:.1f} s; " + ", ".join(f"{r.name} {r.wall_s:.1f} s" for r in records))
    print(f"wrote {args.out / 'summary.md'}")
    if interrupted:
        print("interrupted: summary.md holds the phases that ran")
        return 130
    return 1 if any(target.result == FAIL for target in listed) else 0


if __name__ == "__main__":
    sys.exit(main())
