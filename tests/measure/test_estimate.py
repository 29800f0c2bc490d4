"""The sweep's time estimate: multiply-adds per step, a rate and an overhead learned as it runs."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from tsfbench.config import parse_configs, probe_settings
from tsfbench.measure import estimate
from tsfbench.measure.estimate import SweepClock
from tsfbench.terminal import EstimateColumn

TINY = {"depth": 2, "dim": 64, "heads": 4}


def clock(monkeypatch: pytest.MonkeyPatch, mode: str, batch: int = 1) -> SweepClock:
    monkeypatch.setattr(estimate, "cpu_rate", lambda: 1e10)  # no matrix product in a test
    configs = parse_configs("base", "divided", "2,4", "32")
    (probe,) = probe_settings(configs, mode=mode, batch=batch, warmup=1, iterations=3)
    return estimate.sweep_clock(configs, probe, TINY)


def test_a_training_step_counts_three_forwards_and_the_batch_multiplies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    infer, train = clock(monkeypatch, "infer"), clock(monkeypatch, "train", batch=2)
    assert infer.macs[1] > infer.macs[0] > 0  # 4 frames cost more than 2
    assert train.macs == pytest.approx([6 * m for m in infer.macs])
    assert infer.steps == 4 and infer.rate == 1e10 and "first guess" in infer.source


def test_an_auto_plan_is_estimated_with_its_planned_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(estimate, "cpu_rate", lambda: 1e10)
    configs = parse_configs("base", "divided", "2", "32")
    (probe,) = probe_settings(configs, warmup="auto", iterations="auto")
    auto = estimate.sweep_clock(configs, probe, TINY)
    assert auto.steps == estimate.AUTO_WARMUP + estimate.AUTO_ITERATIONS


def test_the_rate_and_overhead_are_learned_from_each_finished_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    sweep = SweepClock([1e9, 2e9, 4e9], steps=4, iterations=3, rate=1e9, overhead=3.0, source="x")
    assert sweep.remaining(0) == pytest.approx(3 * 3 + 4 * 7)
    sweep.start()
    now[0] += 5.0  # 4 steps of 0.25 s and 4 s besides them
    sweep.finished(0, {"latency_mean_ms": 250.0, "iterations": 3})
    assert sweep.rate == pytest.approx(4e9) and sweep.overhead == pytest.approx(4.0)
    assert sweep.remaining(1) == pytest.approx(2 * 4.0 + 4 * 6e9 / 4e9)
    assert sweep.spent == pytest.approx(5.0) and sweep.source == "measured"
    now[0] += 1.0
    sweep.finished(1, {"latency_mean_ms": None, "status": "oom"})  # nothing timed: no new rate
    assert sweep.rate == pytest.approx(4e9) and sweep.spent == pytest.approx(6.0)


def test_a_long_sweep_says_so_before_it_starts() -> None:
    long = SweepClock([1e12] * 24, steps=4, iterations=3, rate=1e10, overhead=3.0, source="x")
    line = long.notice(hint=True)
    assert line is not None and line.startswith("24 configurations, about 2:41:12 here")
    assert "--predict-only" in line and "--predict-only" not in (long.notice(hint=False) or "")
    short = SweepClock([1e9], steps=4, iterations=3, rate=1e10, overhead=3.0, source="x")
    assert short.notice(hint=True) is None


def test_the_eta_counts_down_to_what_the_later_configurations_need() -> None:
    column = EstimateColumn()
    soon = SimpleNamespace(fields={"finish": time.monotonic() + 100.4, "floor": 10.0})
    assert column.render(soon).plain in ("0:01:40", "0:01:39")
    late = SimpleNamespace(fields={"finish": time.monotonic() - 50, "floor": 10.0})
    assert column.render(late).plain == "0:00:10"  # the current one overran its estimate
    assert column.render(SimpleNamespace(fields={})).plain == "-:--:--"
