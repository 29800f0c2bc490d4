"""Isolation: a failure in the child is that configuration's row, and the sweep goes on."""

from __future__ import annotations

import operator
import os

import pytest

from tsfbench.config import ProbeSettings, RunConfig, parse_memory
from tsfbench.measure.isolate import run_isolated
from tsfbench.measure.sweep import FIGURES, largest_fitting, measure, sweep


def test_a_value_comes_back() -> None:
    outcome = run_isolated(operator.add, 2, 3)
    assert (outcome.status, outcome.error, outcome.value) == ("ok", None, 5)


def test_an_exception_in_the_child_is_an_error_row() -> None:
    outcome = run_isolated(operator.truediv, 1, 0)
    assert outcome.status == "error"
    assert outcome.error.startswith("ZeroDivisionError")


def test_a_child_killed_by_a_signal_is_an_error_row() -> None:
    outcome = run_isolated(os.abort)
    assert outcome.status == "error"
    assert "SIGABRT" in outcome.error


def test_running_out_of_a_cpu_memory_limit_is_oom() -> None:
    outcome = run_isolated(bytearray, 2**30, memory_limit=parse_memory("64MiB"))
    assert outcome.status == "oom"


def test_tight_memory_limit_makes_large_configs_oom_and_the_sweep_continues(
    tiny: dict[str, object],
) -> None:
    configs = [
        RunConfig(attention="joint", frames=16, size=224),  # 3137 tokens: 315 MB of attention
        RunConfig(attention="divided", frames=2, size=32),
    ]
    settings = ProbeSettings(
        mode="train",
        batch=2,
        iterations=2,
        warmup=1,
        backend="math",  # the attention matrix is materialised, as in the paper's code
        memory_limit=parse_memory("256MiB"),
    )
    seen: list[tuple[int, int, str]] = []
    records = sweep(
        configs,
        settings,
        overrides=tiny,
        progress=lambda i, n, c, r: seen.append((i, n, c.attention)),
    )
    assert [r["status"] for r in records] == ["oom", "ok"]
    assert seen == [(1, 2, "joint"), (2, 2, "divided")]
    oom, ok = records
    assert oom["error"] and oom["latency_median_ms"] is None
    assert ok["error"] is None and ok["latency_median_ms"] > 0 and ok["max_ram_bytes"] > 0
    assert set(oom) == set(ok)  # every row has every column
    assert oom["predicted_fits"] is False and ok["predicted_fits"] is True
    fitting = largest_fitting(records)
    assert fitting["joint"] is None and fitting["divided"]["frames"] == 2


def test_an_unavailable_kernel_is_an_error_row_not_a_crash(tiny: dict[str, object]) -> None:
    config = RunConfig(attention="divided", frames=2, size=32)
    settings = ProbeSettings(backend="efficient")
    record = measure(config, settings, overrides=tiny, isolate=False)
    assert record["status"] == "error"
    assert record["error"]
    assert all(record[key] is None for key in FIGURES if key not in settings.as_dict())
    assert record["iterations"] == settings.iterations  # the setting survives a failed run


def test_predict_only_runs_nothing(tiny: dict[str, object]) -> None:
    config = RunConfig(attention="joint", frames=4, size=32)
    record = measure(config, ProbeSettings(memory_limit=2**30), overrides=tiny, predict_only=True)
    assert record["status"] == "predicted"
    assert record["predicted_peak_bytes"] > 0 and record["predicted_fits"] is True
    assert record["latency_median_ms"] is None


@pytest.mark.gpu
def test_gpu_memory_fraction_turns_a_large_config_into_oom() -> None:
    config = RunConfig(attention="joint", frames=32, size=448)
    settings = ProbeSettings(mode="train", memory_limit=parse_memory("2GiB"), iterations=1)
    assert measure(config, settings)["status"] == "oom"
