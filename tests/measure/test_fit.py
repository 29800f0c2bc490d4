"""`tsfbench fit` on a tiny model: the search against predicting every value, predictions
shared between searches, and a boundary the CPU heap confirms."""

from __future__ import annotations

import statistics

import pytest

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.fit import BOUNDARY, BOUNDS, Budget, FitSettings, Span
from tsfbench.measure.fit import Predictor, Request, answer, brute_force, fit
from tsfbench.measure.memory import heap_in_use, measure_cpu_allocations

SERIES = [(a, b) for a in ("joint", "divided") for b in ("sdpa", "math")]


def budget_of(nbytes: int) -> Budget:
    """A budget of exactly `nbytes`: no reserve, no margin."""
    return Budget(nbytes, 0, "none", 0.0)


def request(attention: str, backend: str, axis: str, values: Span, budget: Budget,
            tiny: dict, frames: int = 4, size: int = 32) -> Request:  # fmt: skip
    settings = ProbeSettings(mode="train", backend=backend, device="cpu")
    config = RunConfig(attention=attention, frames=frames, size=size)
    return Request(config, settings, tiny, axis, values, budget)


@pytest.mark.parametrize(("attention", "backend"), SERIES)
def test_fit_finds_the_largest_value_that_predicting_every_value_finds(
    attention: str, backend: str, tiny: dict
) -> None:
    predictor = Predictor(workers=0)
    for axis, values in (("frames", Span("frames", 1, 8, 1)), ("size", Span("size", 16, 64, 16))):
        probe = request(attention, backend, axis, values, budget_of(1), tiny)
        peaks = {}
        for value in range(values.low, values.high + 1, values.step):  # brute force
            job = probe.job(value)
            predictor.cache[job] = predictor.submit(job).result()
            peaks[value] = predictor.cache[job][0]
        made = len(predictor.cache)
        # a budget inside the range, from the peaks themselves: half the values fit
        budget = statistics.median_low(peaks.values())
        wanted = request(attention, backend, axis, values, budget_of(budget), tiny)
        (record,) = answer([wanted], predictor)
        largest = max(value for value, peak in peaks.items() if peak <= budget)
        assert (record["answer"], record["largest"]) == (BOUNDARY, largest)
        assert record["next"] == largest + values.step
        assert record["largest_peak_bytes"] == peaks[largest] <= budget < record["next_peak_bytes"]
        assert len(predictor.cache) == made  # every value it asked was among those predicted


def test_a_step_is_predicted_once_for_every_search_and_card_that_asks(tiny: dict) -> None:
    values = Span("frames", 1, 64, 1)
    small, large = budget_of(3_000_000), budget_of(4_000_000)
    wanted = [
        request("joint", "math", "frames", values, budget, tiny, size=64)
        for budget in (small, large, small)  # the third repeats the first
    ]
    with Predictor(workers=0) as predictor:
        records = answer(wanted, predictor)
    assert records[0] == records[2]
    assert records[0]["largest"] < records[1]["largest"]
    asked = sum(record["predictions"] for record in records)
    assert predictor.made < asked - records[2]["predictions"]  # the cards shared steps too
    assert brute_force(wanted) == 64


@pytest.mark.skipif(heap_in_use() is None, reason="needs glibc's mallinfo2")
def test_the_boundary_is_real_the_next_value_overflows_the_measured_heap(tiny: dict) -> None:
    settings = ProbeSettings(mode="train", backend="math", device="cpu")
    largest = RunConfig(attention="joint", frames=8, size=64)
    with Predictor(workers=0) as predictor:
        job = (largest, settings, tuple(sorted(tiny.items())))
        budget = budget_of(predictor.submit(job).result()[0] + 1)  # just above its prediction
        wanted = request("joint", "math", "frames", Span("frames", 1, 16, 1), budget, tiny,
                         size=64)  # fmt: skip
        (record,) = answer([wanted], predictor)
    assert (record["largest"], record["next"]) == (8, 9)
    measured = measure_cpu_allocations(RunConfig(attention="joint", frames=9, size=64), settings,
                                       tiny)  # fmt: skip
    assert measured > budget.budget


def test_fit_states_its_budget_and_counts_its_predictions(tiny: dict) -> None:
    settings = FitSettings(memory=16 * 2**20, axes=("batch",), bounds=dict(BOUNDS), reserve=0)
    probe = ProbeSettings(mode="train", device="cpu")
    result = fit([RunConfig(attention="divided", frames=2, size=32)], probe, settings, tiny,
                 workers=0)  # fmt: skip
    line = result["budget"]["line"]
    assert line.startswith("budget ") and "reserve 0.00 GiB (given)" in line and "margin 5%" in line
    assert result["budget"]["budget_bytes"] == 16 * 2**20 - int(0.05 * 16 * 2**20)
    assert result["budget"]["reserve_source"] == "given"
    (record,) = result["answers"]
    assert record["status"] == "predicted" and record["axis"] == "batch"
    assert record["largest_peak_bytes"] <= result["budget"]["budget_bytes"]
    assert record["next_peak_bytes"] > result["budget"]["budget_bytes"]
    made = result["predictions"]
    assert made["made"] == record["predictions"] < made["brute_force"] == 1024


def test_the_reserve_is_given_measured_on_a_gpu_in_a_child_or_the_stated_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from tsfbench.fit import DEFAULT_RESERVE, DEFAULT_RESERVE_SOURCE
    from tsfbench.measure import fit as fit_module
    from tsfbench.measure import isolate
    from tsfbench.measure.isolate import Outcome
    from tsfbench.store import Status

    settings = FitSettings(memory=32 * 2**30)
    cpu, gpu = SimpleNamespace(target="cpu"), SimpleNamespace(target="cuda")
    assert fit_module.context_reserve(cpu, settings) == (DEFAULT_RESERVE, DEFAULT_RESERVE_SOURCE)
    given = FitSettings(memory=32 * 2**30, reserve=2**29)
    assert fit_module.context_reserve(gpu, given) == (2**29, "given")
    children = []

    def child(target: object, *args: object, **kwargs: object) -> Outcome:
        children.append((target, kwargs["device"]))  # the footprint is measured in a child
        return Outcome(Status.OK, None, 600 * 2**20)

    monkeypatch.setattr(isolate, "run_isolated", child)
    monkeypatch.setattr("tsfbench.environment.environment", lambda: {"gpus": ["NVIDIA H200"]})
    reserve, source = fit_module.context_reserve(gpu, settings)
    assert (reserve, children) == (600 * 2**20, [(fit_module._context_footprint, "cuda")])
    assert source.startswith("measured on NVIDIA H200")
    monkeypatch.setattr(isolate, "run_isolated", lambda *a, **k: Outcome(Status.ERROR, "boom"))
    reserve, source = fit_module.context_reserve(gpu, settings)
    assert reserve == DEFAULT_RESERVE and source.endswith("measuring failed: boom")


def _peak_of_frames(config: RunConfig, settings: ProbeSettings, overrides: dict) -> tuple:
    """A stand-in prediction (1 MB a frame); the worker that makes the 5-frame one dies first
    (a file marks the death), or always when the overrides say so: the OOM killer."""
    import os
    from pathlib import Path

    if config.frames == 5:
        marker = Path(str(overrides["marker"]))
        if overrides.get("always") or not marker.exists():
            marker.touch()
            os._exit(1)
    return config.frames * 2**20, ""


@pytest.mark.parametrize("always", [False, True])
def test_a_prediction_worker_that_dies_costs_its_own_answer_at_most_never_the_command(
    tmp_path, monkeypatch: pytest.MonkeyPatch, always: bool
) -> None:
    """A dead worker breaks the whole pool under every prediction in flight: each is asked once
    more in a fresh pool; one that kills its worker twice is its search's error, and the other
    searches still answer."""
    import tsfbench.measure.fit as fit_module
    import tsfbench.measure.isolate as isolate_module

    monkeypatch.setattr(isolate_module, "start_method", lambda: "fork")  # workers see the fake
    monkeypatch.setattr(fit_module, "_predict", _peak_of_frames)
    overrides = {"marker": str(tmp_path / "died"), "always": always}
    settings = ProbeSettings(mode="train", device="cpu")
    wanted = [
        Request(RunConfig(attention="divided", frames=frames, size=32), settings, overrides,
                "frames", Span("frames", frames, frames, 1), budget_of(64 * 2**20))
        for frames in (4, 5, 6)
    ]  # fmt: skip
    with Predictor(workers=2) as predictor:
        records = answer(wanted, predictor)
    assert (tmp_path / "died").exists()
    assert [r["largest"] for r in records[::2]] == [4, 6]  # neighbours answered
    if always:
        assert "prediction worker: a prediction worker died twice" in records[1]["error"]
    else:
        assert records[1]["largest"] == 5 and not records[1].get("error")
