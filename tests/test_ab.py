"""`tsfbench ab`: the paired-ratio statistic, the stopping rule, the verdict, and two real
worker processes (one importing another checkout), with bad input as one line and exit 2."""

from __future__ import annotations

import itertools
import json
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tsfbench import ab
from tsfbench.ab import AbSettings, SideSettings, alternate, paired_ratios, ratio_figures
from tsfbench.cli import app
from tsfbench.compare import Verdict

runner = CliRunner()
PACKAGE = Path(ab.__file__).resolve().parent
TINY = ["--attention", "divided", "--frames", "4", "--size", "32", "--depth", "2", "--dim", "64"]
TINY += ["--heads", "4", "--device", "cpu", "--warmup", "1"]


class FakeClock:
    """A clock that moves only when a fake step runs: each step takes `seconds`."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drifting(costs: dict[str, float], clock: FakeClock, drift: float = 0.01) -> dict:
    """Fake steps whose time grows linearly with the step's position in the run (a machine
    slowing down by `drift` a step), the same for both sides; each side `costs[side]` ms."""
    position = itertools.count()

    def step(side: str) -> float:
        clock.now += 1.0
        return costs[side] * (1 + drift * next(position))

    return {side: (lambda side=side: step(side)) for side in costs}


def test_the_paired_ratio_is_each_rounds_new_sum_over_its_base_sum() -> None:
    base = [10.0, 10.0, 20.0, 20.0, 5.0]  # a fifth time: half a round, not counted
    new = [11.0, 13.0, 20.0, 30.0]
    assert paired_ratios(base, new) == [pytest.approx(1.2), pytest.approx(1.25)]


def test_a_linear_drift_on_both_sides_leaves_every_paired_ratio_exact() -> None:
    clock = FakeClock()
    times, ratios, _ = alternate(drifting({"base": 10.0, "new": 10.0}, clock), AbSettings(rounds=8))
    assert times["base"][-1] > times["base"][0] * 1.2  # the drift is there, 30 steps of 1%
    assert ratios == [pytest.approx(1.0, abs=1e-12)] * 8
    clock = FakeClock()
    _, ratios, _ = alternate(drifting({"base": 10.0, "new": 11.0}, clock), AbSettings(rounds=8))
    assert ratios == [pytest.approx(1.1, abs=1e-12)] * 8


def test_rounds_alternate_abba_and_baab_one_step_a_turn() -> None:
    calls: list[str] = []
    steps = {side: (lambda side=side: calls.append(side) or 1.0) for side in ("base", "new")}
    alternate(steps, AbSettings(rounds=2))
    assert calls == ["base", "new", "new", "base", "new", "base", "base", "new"]


def test_auto_stops_at_the_fewest_rounds_once_the_interval_is_narrow() -> None:
    clock = FakeClock()
    steps = drifting({"base": 10.0, "new": 10.0}, clock)
    _, ratios, reason = alternate(steps, AbSettings(target_ci=0.01), clock)
    assert (len(ratios), reason) == (ab.MIN_ROUNDS, "target_ci")


def test_auto_stops_at_max_time_when_the_interval_stays_wide() -> None:
    clock, noise = FakeClock(), random.Random(0)

    def step() -> float:
        clock.now += 1.0
        return 10.0 * noise.uniform(0.5, 1.5)  # a ratio's interval far wider than 1%

    settings = AbSettings(target_ci=0.01, max_time=40.0)
    _, ratios, reason = alternate({"base": step, "new": step}, settings, clock)
    assert reason == "max_time"
    assert len(ratios) == 10  # 4 fake seconds a round: the first check at or past 40 s


def test_a_fixed_count_of_rounds_below_six_has_no_interval_and_no_verdict() -> None:
    _, ratios, reason = alternate({"base": lambda: 1.0, "new": lambda: 2.0}, AbSettings(rounds=3))
    figures = ratio_figures(ratios, 0.05)
    assert (reason, len(ratios), figures["ratio"]) == ("rounds", 3, 2.0)
    assert figures["ratio_low"] is None and figures["verdict"] == Verdict.FEW_SAMPLES


@pytest.mark.parametrize(
    ("new_cost", "expected"),
    [(1.0, Verdict.SAME), (1.02, Verdict.SAME), (1.2, Verdict.SLOWER), (1 / 1.2, Verdict.FASTER)],
)
def test_the_verdict_of_noisy_rounds_is_compares_rule(new_cost: float, expected: Verdict) -> None:
    noise = random.Random(1)
    steps = {
        "base": lambda: 10.0 * noise.uniform(0.9, 1.1),
        "new": lambda: 10.0 * new_cost * noise.uniform(0.9, 1.1),
    }
    _, ratios, _ = alternate(steps, AbSettings(rounds=200))
    assert ratio_figures(ratios, 0.05)["verdict"] == expected


def test_a_side_changes_only_the_step_settings_it_names() -> None:
    from tsfbench.config import ProbeSettings

    side = ab.parse_side(["dtype=bf16", "threads=1", "compile=yes"], "--new")
    assert side == SideSettings(dtype="bf16", compile=True, threads=1)
    probe = side.probe(ProbeSettings(batch=2, backend="math"))
    assert (probe.dtype, probe.compile, probe.batch, probe.backend) == ("bf16", True, 2, "math")
    assert ab.parse_side([], "--base").text() == "as shared"


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--new", "threads=0"], "threads"),
        (["--new", "mode=train"], "different tasks"),
        (["--new", "speed"], "--new"),
        (["--base", "dtype=fp64"], "dtype"),
        (["--new", "compile=maybe"], "compile"),
        (["--new", "tree=/"], "not a tsfbench checkout"),
        (["--new", "checkpointing=true"], "checkpointing"),
        (["--rounds", "0"], "--rounds"),
        (["--threshold", "-1"], "--threshold"),
        (["--fail-on", "faster"], "--fail-on"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], names: str) -> None:
    result = runner.invoke(app, ["ab", *TINY, *args])
    assert result.exit_code == 2, result.output
    assert names in result.output and len(result.output.strip().splitlines()) == 1


def test_a_save_file_that_is_not_ab_results_is_refused(tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text("[1, 2]")
    result = runner.invoke(app, ["ab", *TINY, "--save", str(tmp_path / "other.json")])
    assert result.exit_code == 2 and "--save" in result.output


def patched_tree(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of this checkout's package with one edit to measure/workload.py: another
    checkout, as a tree side imports it."""
    tree = tmp_path / "tree"
    shutil.copytree(PACKAGE, tree / "tsfbench", ignore=shutil.ignore_patterns("__pycache__"))
    workload = tree / "tsfbench" / "measure" / "workload.py"
    text = workload.read_text()
    assert old in text
    workload.write_text(text.replace(old, new, 1))
    return tree


def test_a_tree_whose_step_sleeps_is_slower_exit_1_and_swapped_faster_exit_0(
    tmp_path: Path,
) -> None:
    # 0.1 s more a step than a tiny model's few ms: no noise reaches a 5% threshold's margin
    sleeper = patched_tree(
        tmp_path, "forward(clip)\n", "forward(clip)\n            __import__('time').sleep(0.1)\n"
    )
    save = tmp_path / "ab.json"
    plan = ["--rounds", "6", "--json", "--save", str(save)]
    slower = runner.invoke(app, ["ab", *TINY, "--new", f"tree={sleeper}", *plan])
    assert slower.exit_code == 1, slower.output
    row = json.loads(slower.stdout)["results"][0]
    assert (row["verdict"], row["rounds"], row["stop_reason"]) == ("slower", 6, "rounds")
    assert row["new_tsfbench"].startswith(str(sleeper.resolve()))
    assert row["base_tsfbench"].startswith(str(PACKAGE))
    assert len(row["base_samples_ms"]) == len(row["new_samples_ms"]) == 12
    assert row["ratios"] == pytest.approx(
        paired_ratios(row["base_samples_ms"], row["new_samples_ms"])
    )
    assert "other_cpu_cores" in row and json.loads(save.read_text())["results"][0]["key"]

    faster = runner.invoke(app, ["ab", *TINY, "--base", f"tree={sleeper}", "--rounds", "6"])
    assert faster.exit_code == 0, faster.output
    assert "faster" in faster.stdout


def test_a_saved_configuration_is_resumed_not_measured_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = {"key": "", "status": "ok", "verdict": "same", "what": "base divided 4x32"}
    save = tmp_path / "ab.json"
    args = ["ab", *TINY, "--rounds", "6", "--save", str(save), "--json"]
    monkeypatch.setattr(ab, "measure", lambda *a: saved | {"measured": True})
    first = runner.invoke(app, args)
    assert json.loads(first.stdout)["results"][0]["measured"]

    def measured_again(*args: object) -> None:
        raise RuntimeError("measured again")

    monkeypatch.setattr(ab, "measure", measured_again)
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["results"][0]["resumed"]
    other = runner.invoke(app, [*args[:-1], "--rounds", "7"])  # another plan: not the same task
    assert other.exit_code != 0 and "measured again" in str(other.exception)


def test_a_side_that_fails_or_dies_is_a_one_line_error_row(tmp_path: Path) -> None:
    broken = patched_tree(
        tmp_path,
        "    device = torch.device(device)\n",
        "    device = torch.device(device)\n"
        "    if config.attention == 'space':\n"
        "        raise ValueError('this tree cannot build space')\n"
        "    if config.attention == 'joint':\n"
        "        import os, signal\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n",
    )
    args = ["ab", *TINY[2:], "--attention", "space,joint", "--new", f"tree={broken}", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)["results"]
    assert [r["status"] for r in rows] == ["error", "error"]
    assert rows[0]["error"] == "new side: ValueError: this tree cannot build space"
    assert rows[1]["error"].startswith("new side: worker ended (killed by signal 9)")
    assert "Traceback" not in result.output
