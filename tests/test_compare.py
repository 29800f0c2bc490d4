"""`tsfbench compare`: verdicts from kept samples, pairing rules, flags, exit codes, markdown.

Every store here is made of hand-written records with the real key names (what the runner
stores), in a temporary folder; nothing is measured.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from tsfbench.cli import app
from tsfbench.compare import (
    CompareSettings,
    Verdict,
    caption,
    compare_stores,
    markdown,
    parse_fraction,
    verdict,
)
from tsfbench.environment import environment_summary
from tsfbench.errors import ConfigError
from tsfbench.store import Row, Store, environment_id
from tsfbench.suite import load_suite

runner = CliRunner()
_clock = itertools.count(1_700_000_000)
CPU_ENV = {"host": "laptop", "cpu": "AMD EPYC", "cpu_count": 2, "torch": "2.4.0", "cuda": None,
           "cuda_available": False, "gpus": [], "git_commit": "abc1234"}  # fmt: skip
GPU_ENV = {"host": "node", "cpu": "Xeon", "cpu_count": 16, "torch": "2.4.0", "cuda": "12.1",
           "cuda_available": True, "gpus": ["NVIDIA H100"], "git_commit": "def5678"}  # fmt: skip
CONFIG = {"model": "base", "attention": "divided", "frames": 8, "size": 224, "pos_embed":
          "space_time", "classes": 400, "views": 3}  # fmt: skip


def samples(median: float, n: int = 30, spread: float = 0.01, seed: int = 0) -> list[float]:
    """`n` step times around `median` ms, right-skewed like real ones."""
    rng = np.random.default_rng(seed)
    return (median * (1 + spread * rng.standard_normal(n))).tolist()


def runtime(times: list[float] | None, device: str = "cpu", **extra: Any) -> dict[str, Any]:
    """A runtime record as the runner stores it (the stats branch's keys where it has samples)."""
    record: dict[str, Any] = {**CONFIG, "mode": "infer", "dtype": "fp32", "batch": 1,
                              "backend": "sdpa", "compile": False, "device": device,
                              "max_ram_bytes": 2**30, "predicted_peak_bytes": 2**29}  # fmt: skip
    if times is not None:
        record |= {"latency_samples_ms": times, "latency_median_ms": float(np.median(times))}
        record |= {"iterations": len(times), "contended": False, "contention": None}
    else:  # a row stored before samples were kept
        record |= {"latency_median_ms": 100.0, "iterations": 10}
    return record | extra


def flops(params: int = 121_566_352, macs: int = 196_053_157_632) -> dict[str, Any]:
    return {**CONFIG, "params": params, "flops_per_view": macs, "gflops_per_view": macs / 1e9}


def put(
    path: Path,
    record: dict[str, Any],
    task: str = "t-divided",
    measurement: str = "runtime",
    env: dict[str, Any] = CPU_ENV,
    status: str = "ok",
    suite: str = "quick",
) -> Path:
    row = Row(measurement, task, environment_id(env), suite, status, next(_clock),
              {"overrides": {}, **record} | environment_summary(env))  # fmt: skip
    Store(path).put(row)
    return path


def two_stores(tmp_path: Path, base: dict[str, Any], new: dict[str, Any]) -> tuple[Path, Path]:
    return put(tmp_path / "base.sqlite", base), put(tmp_path / "new.sqlite", new)


def only_pair(result: dict[str, Any]) -> dict[str, Any]:
    (pair,) = result["pairs"]
    return pair


# --- The verdict ------------------------------------------------------------------------------


def test_the_verdict_needs_the_whole_interval_beyond_the_threshold() -> None:
    assert verdict(1.03, 1.11, 0.05) == Verdict.SAME  # a ratio of 1.07 whose CI reaches 1.03
    assert verdict(1.06, 1.09, 0.05) == Verdict.SLOWER
    assert verdict(0.90, 0.94, 0.05) == Verdict.FASTER  # below 1 / 1.05 = 0.952
    assert verdict(0.93, 0.96, 0.05) == Verdict.SAME  # reaches above 1 / 1.05
    assert verdict(1.02, 1.04, 0.0) == Verdict.SLOWER  # threshold 0: any sure change counts


def test_slower_faster_and_same_from_kept_samples(tmp_path: Path) -> None:
    base = runtime(samples(100.0, seed=1))
    slower = runtime(samples(120.0, seed=2))
    same = runtime(samples(101.0, seed=3))
    for name, new, expected in (("s", slower, "slower"), ("e", same, "same")):
        paths = put(tmp_path / f"b{name}.sqlite", base), put(tmp_path / f"n{name}.sqlite", new)
        pair = only_pair(compare_stores(*paths))
        assert pair["verdict"] == expected
        assert pair["base_samples"] == pair["new_samples"] == 30
        assert pair["ratio_low"] <= pair["ratio"] <= pair["ratio_high"]
        back = only_pair(compare_stores(paths[1], paths[0]))
        assert back["verdict"] == {"slower": "faster", "same": "same"}[expected]


def test_a_noisy_change_beyond_the_threshold_is_same_until_the_interval_clears_it(
    tmp_path: Path,
) -> None:
    """7% slower in the medians, but with 20% noise the interval reaches below 1.05."""
    base, new = runtime(samples(100.0, 8, 0.2, 1)), runtime(samples(107.0, 8, 0.2, 1))
    pair = only_pair(compare_stores(*two_stores(tmp_path, base, new)))
    assert pair["ratio"] == pytest.approx(1.07, rel=1e-9)
    assert pair["ratio_low"] < 1.05 and pair["verdict"] == "same"


def test_rows_without_samples_get_no_verdict(tmp_path: Path) -> None:
    pair = only_pair(compare_stores(*two_stores(tmp_path, runtime(None), runtime(samples(150)))))
    assert pair["verdict"] == "no samples" and pair["ratio_low"] is None
    assert pair["ratio"] == pytest.approx(1.5, rel=0.05)  # the medians are still shown
    few = only_pair(
        compare_stores(
            put(tmp_path / "b3.sqlite", runtime(samples(100, 5))), tmp_path / "new.sqlite"
        )
    )
    assert few["verdict"] == "too few samples"


def test_a_contended_row_is_labelled(tmp_path: Path) -> None:
    new = runtime(samples(100.0), contended=True, contention="other processes: 80% of a core")
    pair = only_pair(compare_stores(*two_stores(tmp_path, runtime(samples(100.0)), new)))
    assert pair["contended"] == "new" and "80%" in pair["contention"]["new"]


# --- Memory, FLOPs, statuses ------------------------------------------------------------------


def test_memory_beyond_its_threshold_is_flagged_and_within_it_not(tmp_path: Path) -> None:
    base = runtime(samples(100.0), max_ram_bytes=1000 * 2**20)
    new = runtime(samples(100.0), max_ram_bytes=1030 * 2**20, predicted_peak_bytes=2**29 + 2**20)
    pair = only_pair(compare_stores(*two_stores(tmp_path, base, new)))
    assert pair["memory_flags"] == ["max_ram_bytes"]  # +3%; the prediction moved +0.2%
    change = {c["figure"]: c["change"] for c in pair["memory"]}
    assert change["max_ram_bytes"] == pytest.approx(0.03)
    loose = CompareSettings(memory_threshold=0.05)
    assert (
        only_pair(compare_stores(*two_stores(tmp_path, base, new), settings=loose))["memory_flags"]
        == []
    )


def test_any_change_of_flops_or_params_is_a_model_change(tmp_path: Path) -> None:
    base = put(tmp_path / "b.sqlite", flops(), task="f", measurement="flops")
    same = put(tmp_path / "s.sqlite", flops(), task="f", measurement="flops")
    one_more = put(
        tmp_path / "n.sqlite", flops(macs=196_053_157_633), task="f", measurement="flops"
    )
    assert only_pair(compare_stores(base, same))["verdict"] == "unchanged"
    pair = only_pair(compare_stores(base, one_more))
    assert pair["verdict"] == "model change"
    assert [c["figure"] for c in pair["model"]] == ["flops_per_view"]


def test_a_task_that_fails_now_is_shown_and_fails_the_gate(tmp_path: Path) -> None:
    base = put(tmp_path / "b.sqlite", runtime(samples(100.0)))
    new = put(tmp_path / "n.sqlite", runtime(None, error="out of memory"), status="oom")
    result = compare_stores(base, new)
    assert only_pair(result)["verdict"] == "status changed" and result["failed"]
    table = runner.invoke(app, ["compare", str(base), str(new)])
    assert table.exit_code == 1 and "ok -> oom" in table.stdout


# --- Pairing ----------------------------------------------------------------------------------


def test_unmatched_rows_are_listed_on_both_sides(tmp_path: Path) -> None:
    base, new = two_stores(tmp_path, runtime(samples(100.0)), runtime(samples(100.0)))
    put(base, runtime(samples(90.0)), task="only-base")
    put(new, flops(), task="only-new", measurement="flops")
    result = compare_stores(base, new)
    assert len(result["pairs"]) == 1
    assert {(u["side"], u["task"], u["reason"]) for u in result["unmatched"]} == {
        ("base", "only-base", "only in base"),
        ("new", "only-new", "only in new"),
    }


SUITE = """
[[grid]]
measure = ["latency"]
model = "base"
attention = "divided"
dtype = ["fp32", "bf16"]
batch = [1, 2]
device = ["cpu"]
"""


def test_rows_whose_settings_differ_never_pair(tmp_path: Path) -> None:
    """Task keys from a real suite: fp32 / bf16 and batch 1 / 2 are four tasks."""
    (tmp_path / "s.toml").write_text(SUITE)
    tasks = load_suite(tmp_path / "s.toml", tmp_path).tasks
    assert len({task.key for task in tasks}) == 4
    by = {(t.settings["dtype"], t.settings["batch"]): t.key for t in tasks}
    base = put(tmp_path / "b.sqlite", runtime(samples(100.0)), task=by["fp32", 1])
    new = put(tmp_path / "n.sqlite", runtime(samples(50.0), dtype="bf16"), task=by["bf16", 1])
    with pytest.raises(ConfigError, match="no common tasks"):
        compare_stores(base, new)
    put(new, runtime(samples(100.0), batch=2), task=by["fp32", 2])
    put(new, runtime(samples(100.0)), task=by["fp32", 1])
    result = compare_stores(base, new)
    assert [pair["task"] for pair in result["pairs"]] == [by["fp32", 1]]
    assert sorted(u["task"] for u in result["unmatched"]) == sorted([by["bf16", 1], by["fp32", 2]])


def test_a_gpu_and_a_cpu_row_pair_only_when_both_sides_are_chosen_by_environment(
    tmp_path: Path,
) -> None:
    store = put(tmp_path / "one.sqlite", runtime(samples(100.0)), env=CPU_ENV)
    put(store, runtime(samples(10.0), device="cuda"), env=GPU_ENV)
    by_env = compare_stores(store, base="E1", new="E2")
    assert by_env["between_devices"] and only_pair(by_env)["device"] == "cpu -> cuda"
    assert only_pair(by_env)["verdict"] == "faster"
    assert only_pair(by_env)["memory"] == []  # RSS on a GPU run is another quantity
    gpu_id = environment_id(GPU_ENV)
    assert compare_stores(store, base="E1", new=gpu_id[:6])["between_devices"]
    with pytest.raises(ConfigError, match="different devices"):  # commits are not environments
        compare_stores(store, base="abc1234", new="def5678")
    gpu_store = put(tmp_path / "gpu.sqlite", runtime(samples(10.0), device="cuda"), env=GPU_ENV)
    put(gpu_store, flops(), task="f", measurement="flops", env=GPU_ENV)
    put(store, flops(), task="f", measurement="flops", env=CPU_ENV)
    with pytest.raises(ConfigError, match="rows of 2 environments"):
        compare_stores(store, gpu_store)  # the first store has two: which one?
    result = compare_stores(store, gpu_store, base="E1")
    assert [pair["measurement"] for pair in result["pairs"]] == ["flops"]
    assert not result["between_devices"]
    assert all("two devices" in u["reason"] for u in result["unmatched"])
    labelled = runner.invoke(app, ["compare", str(store), "--base", "E1", "--new", "E2"])
    assert labelled.exit_code == 0, labelled.output
    assert "between devices" in labelled.stdout


# --- The command ------------------------------------------------------------------------------


def test_exit_1_on_slower_unless_fail_on_none_and_json_and_markdown(tmp_path: Path) -> None:
    base, new = two_stores(tmp_path, runtime(samples(100.0)), runtime(samples(130.0)))
    out = tmp_path / "sections" / "compare.md"
    gated = runner.invoke(app, ["compare", str(base), str(new), "--out", str(out)])
    assert gated.exit_code == 1, gated.output
    assert "slower" in gated.stdout and "gate: fails" in gated.stdout
    text = out.read_text()
    assert text.startswith("## Comparison\n") and "| slower |" in text
    assert "base divided 8x224 infer fp32 b1" in text and "1.3" in text
    free = runner.invoke(app, ["compare", str(base), str(new), "--fail-on", "none", "--json"])
    assert free.exit_code == 0, free.output
    result = json.loads(free.stdout)
    assert result["counts"] == {"slower": 1} and result["failed"] is False
    assert runner.invoke(app, ["compare", str(new), str(base)]).exit_code == 0  # faster


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["{tmp}/none.sqlite", "{base}"], "no results database"),
        (["{empty}", "{base}"], "holds no results"),
        (["{base}", "{other}"], "no common tasks"),
        (["{base}", "--base", "E1", "--new", "ffff"], "--new: 'ffff'"),
        (["{base}", "{new}", "--threshold", "-1"], "--threshold"),
        (["{base}", "{new}", "--threshold", "5"], "--threshold"),
        (["{base}", "{new}", "--memory-threshold", "lots"], "--memory-threshold"),
        (["{base}", "{new}", "--fail-on", "faster"], "--fail-on"),
        (["{base}", "{new}", "--machine-speed", "fast"], "--machine-speed"),
        (["{base}"], "needs --base and --new"),
        (["{base}", "--base", "E1", "--new", "E1"], "same rows"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    base, new = two_stores(tmp_path, runtime(samples(100.0)), runtime(samples(100.0)))
    other = put(tmp_path / "other.sqlite", runtime(samples(100.0)), task="another")
    Store(tmp_path / "empty.sqlite")
    names = {"tmp": tmp_path, "base": base, "new": new, "other": other}
    names["empty"] = tmp_path / "empty.sqlite"
    result = runner.invoke(app, ["compare", *(arg.format(**names) for arg in args)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
    assert not (tmp_path / "none.sqlite").exists()  # a missing store is never created


def test_thresholds_read_as_fractions_or_percentages() -> None:
    assert parse_fraction("5%", "--threshold") == pytest.approx(0.05)
    assert parse_fraction("0.05", "--threshold") == pytest.approx(0.05)
    assert parse_fraction("0", "--threshold") == 0


# --- The machine-speed canary -------------------------------------------------------------------

KIND = "float32 784x768x3072 matmul, 2 threads"


def canaried(times: list[float], readings: list[float], **extra: Any) -> dict[str, Any]:
    """A runtime record with the canary's readings spread over its steps from the first to
    after the last, as `probe` stores them."""
    positions = np.linspace(0, len(times), len(readings)).round().astype(int).tolist()
    return runtime(times, canary_samples_ms=readings, canary_ms=float(np.median(readings)),
                   canary_kind=KIND, canary_steps=positions, **extra)  # fmt: skip


def test_a_machine_that_ran_slower_is_divided_out_when_both_rows_read_its_canary(
    tmp_path: Path,
) -> None:
    """The drift seen on this project's VM: every workload 1.3x slower, the canary too."""
    base = canaried(samples(100.0), samples(20.0, n=8, seed=1))
    new = canaried(samples(130.0, seed=2), samples(26.0, n=8, seed=3))
    stores = two_stores(tmp_path, base, new)
    pair = compare_stores(*stores)["pairs"][0]
    assert pair["adjusted"] is True and pair["verdict"] == Verdict.SAME
    assert pair["disagrees"] == "raw: slower"  # what the raw steps alone would say
    assert pair["machine_ratio"] == pytest.approx(1.3, rel=0.03)
    assert pair["raw_ratio"] == pytest.approx(1.3, rel=0.03)
    assert pair["ratio"] == pytest.approx(1.0, abs=0.03)
    raw = compare_stores(*stores, settings=CompareSettings(machine_speed="ignore"))["pairs"][0]
    assert raw["adjusted"] is False and raw["verdict"] == Verdict.SLOWER
    assert raw["ratio"] == pair["raw_ratio"]


def test_a_verdict_only_the_canary_makes_is_same_and_says_so(tmp_path: Path) -> None:
    """Measured on this project's VM: the canary 11% faster for the new row, the step 3% (a
    step follows the canary only in part). In canary units the step looks 9% slower; raw it is
    `same`: the verdict is `same`, and the table says what the adjusted ratio alone would."""
    base = canaried(samples(100.0), samples(20.0, n=8, seed=1))
    new = canaried(samples(97.0, seed=2), samples(17.8, n=8, seed=3))
    result = compare_stores(*two_stores(tmp_path, base, new))
    pair = result["pairs"][0]
    assert pair["ratio_low"] > 1.05 and pair["raw_ratio_high"] < 1.05  # slower one way only
    assert pair["verdict"] == Verdict.SAME and pair["disagrees"] == "adjusted: slower"
    assert result["failed"] is False
    assert "same (adjusted: slower)" in markdown(result)
    assert "holds both ways" in caption(result)


def test_a_slower_step_on_a_machine_of_the_same_speed_stays_slower(tmp_path: Path) -> None:
    """One thread instead of two: the step 1.8x slower, the canary (all CPUs) unchanged."""
    base = canaried(samples(100.0), samples(20.0, n=8, seed=1))
    new = canaried(samples(180.0, seed=2), samples(20.0, n=8, seed=3))
    pair = compare_stores(*two_stores(tmp_path, base, new))["pairs"][0]
    assert pair["adjusted"] is True and pair["verdict"] == Verdict.SLOWER
    assert pair["disagrees"] is None  # raw and in canary units alike
    assert pair["machine_ratio"] == pytest.approx(1.0, abs=0.02)
    assert pair["ratio"] == pytest.approx(1.8, rel=0.03)


def test_a_drift_within_each_window_is_divided_out_step_by_step(tmp_path: Path) -> None:
    """The machine slowing down 1.5x over each row's window (its canary with it): the rows'
    steps spread widely, their steps in canary units do not."""
    drift = np.linspace(1.0, 1.5, 13)
    base_times = (100.0 * drift[:12]).tolist()
    new_times = (103.0 * drift[:12]).tolist()
    base = runtime(base_times, canary_samples_ms=(20.0 * drift).tolist(), canary_kind=KIND,
                   canary_steps=list(range(13)))  # fmt: skip
    new = runtime(new_times, canary_samples_ms=(20.0 * drift).tolist(), canary_kind=KIND,
                  canary_steps=list(range(13)))  # fmt: skip
    stores = two_stores(tmp_path, base, new)
    adjusted = compare_stores(*stores)["pairs"][0]
    raw = compare_stores(*stores, settings=CompareSettings(machine_speed="ignore"))["pairs"][0]
    assert adjusted["ratio"] == pytest.approx(1.03, rel=0.005)
    assert adjusted["ratio_high"] - adjusted["ratio_low"] < 0.02
    assert raw["ratio_high"] - raw["ratio_low"] > 0.1


def test_the_canarys_own_noise_widens_the_adjusted_interval(tmp_path: Path) -> None:
    base = canaried(samples(100.0), samples(20.0, n=8, spread=0.05, seed=1))
    new = canaried(samples(100.0, seed=2), samples(20.0, n=8, spread=0.05, seed=3))
    stores = two_stores(tmp_path, base, new)
    adjusted = compare_stores(*stores)["pairs"][0]
    raw = compare_stores(*stores, settings=CompareSettings(machine_speed="ignore"))["pairs"][0]
    assert adjusted["ratio_high"] - adjusted["ratio_low"] > raw["ratio_high"] - raw["ratio_low"]


@pytest.mark.parametrize(
    ("change", "named"),
    [({"torch": "2.5.0"}, "torch"), ({"host": "other"}, "host"), ({"cpu": "Xeon"}, "cpu")],
)
def test_canaries_of_another_machine_or_software_are_not_divided_out(
    tmp_path: Path, change: dict[str, Any], named: str
) -> None:
    """Another torch has another matmul: its canary's speed is not the machine's."""
    base = put(tmp_path / "base.sqlite", canaried(samples(100.0), samples(20.0, n=8, seed=1)))
    new_record = canaried(samples(130.0, seed=2), samples(26.0, n=8, seed=3))
    new = put(tmp_path / "new.sqlite", new_record, env=CPU_ENV | change)
    result = compare_stores(base, new)
    pair = result["pairs"][0]
    assert pair["adjusted"] is False and pair["verdict"] == Verdict.SLOWER
    assert named in pair["adjustment"] and pair["adjustment"] in caption(result)


@pytest.mark.parametrize("kept", ["nothing", "readings without their steps"])
def test_rows_without_canary_readings_are_compared_raw_and_say_so(
    tmp_path: Path, kept: str
) -> None:
    readings = {"canary_samples_ms": [20.0, 21.0], "canary_kind": KIND}
    base = runtime(samples(100.0), **(readings if kept != "nothing" else {}))
    new = canaried(samples(100.0, seed=2), samples(26.0, n=8, seed=3))
    pair = compare_stores(*two_stores(tmp_path, base, new))["pairs"][0]
    assert pair["adjusted"] is False and pair["machine_ratio"] is None
    assert "no canary readings" in pair["adjustment"]


def test_the_table_shows_the_machines_ratio_beside_the_adjusted_one(tmp_path: Path) -> None:
    base = canaried(samples(100.0), samples(20.0, n=8, seed=1))
    new = canaried(samples(130.0, seed=2), samples(26.0, n=8, seed=3))
    result = compare_stores(*two_stores(tmp_path, base, new))
    text = markdown(result)
    assert "| machine |" in text and f"| {result['pairs'][0]['machine_ratio']:.3f} |" in text
    assert "divided by the canary beside it" in text
