"""`tsfbench fit`'s plain logic: the card table, the budget, the axes' bounds, and the search
against brute force on curves of every shape a peak takes (no torch, no prediction)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tsfbench.cards import CARDS, GIB, card
from tsfbench.config import ConfigError, RunConfig
from tsfbench.fit import (
    ALL_FIT,
    BOUNDARY,
    DEFAULT_RESERVE,
    NONE_FITS,
    Boundary,
    Budget,
    Span,
    check_fixed,
    fit_settings,
    parse_bounds,
    search,
    span,
)


def run(peak: Callable[[int], int], values: Span, budget: int, start: int | None) -> Boundary:
    """Drive a search with `peak` as the predictor; the answer, with the values it asked."""
    asked = []
    found = search(values, budget, start)
    try:
        value = next(found)
        while True:
            asked.append(value)
            value = found.send(peak(value))
    except StopIteration as stop:
        run.asked = asked  # type: ignore[attr-defined]
        return stop.value


def brute(peak: Callable[[int], int], values: Span, budget: int) -> int | None:
    fitting = [v for v in range(values.low, values.high + 1, values.step) if peak(v) <= budget]
    return max(fitting, default=None)


def test_the_search_finds_what_brute_force_finds_on_straight_to_quadratic_curves() -> None:
    rng = random.Random(0)
    asked = []
    for _ in range(400):
        base, slope = rng.uniform(1, 3), rng.uniform(0.01, 1)
        square = rng.choice([0.0, rng.uniform(0, 1e-3), rng.uniform(0, 1e-2)])
        peak = lambda v, b=base, s=slope, q=square: int(1e6 * (b + s * v + q * v * v))  # noqa: E731
        values = Span("frames", 1, 1024, 1) if rng.random() < 0.5 else Span("size", 16, 2048, 16)
        budget = int(1e6 * rng.uniform(0.5, 900))
        found = run(peak, values, budget, start=rng.choice([None, 8, 224]))
        assert found.largest == brute(peak, values, budget)
        if found.answer == BOUNDARY:
            assert found.next == found.largest + values.step
            assert found.largest_peak <= budget < found.next_peak
        asked.append(len(run.asked))  # type: ignore[attr-defined]
    # fewer than a bisection's 12 (1..1024) on average: the reason for the guesses
    assert sum(asked) / len(asked) < 8 and max(asked) <= 25


def test_a_step_shaped_peak_still_gets_the_exact_answer() -> None:
    # a kernel switch: flat, then a cliff; the guesses are poor, the answer is still exact
    peak = lambda v: 10 if v < 700 else 10**9  # noqa: E731
    found = run(peak, Span("batch", 1, 1024, 1), 100, start=1)
    assert (found.largest, found.next, found.answer) == (699, 700, BOUNDARY)


def test_none_fits_and_all_fit_are_answers() -> None:
    values = Span("frames", 4, 64, 1)
    none = run(lambda v: 1000 + v, values, 999, start=8)
    assert (none.answer, none.largest, none.next, none.next_peak) == (NONE_FITS, None, 4, 1004)
    every = run(lambda v: v, values, 10**6, start=8)
    assert (every.answer, every.largest, every.next) == (ALL_FIT, 64, None)
    assert run.asked == [8, 64]  # type: ignore[attr-defined]


def test_crops_are_searched_in_steps_of_the_patch_and_frames_of_a_slowfast_ratio() -> None:
    bounds = parse_bounds("size=224..896,frames=3..102")
    assert span("size", RunConfig(), bounds) == Span("size", 224, 896, 16)
    slowfast = RunConfig(model="slowfast_r50", frames=32, size=256)
    assert span("frames", slowfast, bounds) == Span("frames", 4, 100, 4)


def test_the_budget_takes_the_reserve_then_the_margin_and_says_so() -> None:
    budget = Budget(32 * GIB, 512 * 2**20, "an estimate", 0.05, "v100-32gb")
    assert budget.margin_bytes == int((32 * GIB - 512 * 2**20) * 0.05)
    assert budget.budget == 32 * GIB - 512 * 2**20 - budget.margin_bytes
    line = budget.line()
    assert line.startswith(f"budget {budget.budget / GIB:.2f} GiB = v100-32gb 32.00 GiB")
    assert "reserve 0.50 GiB (an estimate)" in line and "margin 5% (1.57 GiB)" in line


def test_cards_are_datasheet_gib_with_gddr_ecc_taken_out() -> None:
    assert card("V100_32GB").memory_bytes == 32 * 2**30
    assert card("t4").memory_bytes == 15 * 2**30  # 16 GB GDDR6, ECC on: 15/16
    assert card("h100-80gb").memory_bytes == 80 * 2**30
    expected = {"v100-16gb", "v100-32gb", "t4", "a10", "l4", "a100-40gb", "a100-80gb"}
    assert expected | {"h100-80gb", "h200", "b200", "rtx-3090", "rtx-4090", "l40s"} == set(CARDS)
    with pytest.raises(ConfigError, match="unknown GPU 'v200'; accepted: v100-16gb, "):
        card("v200")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "--memory / --gpu: give one of them"),
        ({"memory": "8GiB", "gpu": "t4"}, "give one of them"),
        ({"memory": "0"}, "--memory: cannot read '0'"),
        ({"memory": "-2GiB"}, "--memory: cannot read '-2GiB'"),
        ({"memory": "256MiB"}, "--memory: 0.25 GiB is no more than the context reserve 0.50"),
        ({"gpu": "t4", "reserve": "16GiB"}, "no more than the context reserve 16.00 GiB"),
        ({"gpu": "t4", "axes": "frames,depth"}, "--axis: unknown value 'depth'"),
        ({"gpu": "t4", "margin": 1.0}, "--margin: 1.0; expected a fraction in"),
        ({"gpu": "t4", "bounds": "frames=9..3"}, "--bounds: cannot read 'frames=9..3'"),
        ({"gpu": "t4", "bounds": "size=200..400"}, "multiples of the patch size 16"),
    ],
)
def test_bad_fit_options_are_one_config_error_each(options: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        fit_settings(**options)


def test_a_held_value_outside_its_axis_bounds_is_refused() -> None:
    settings = fit_settings(gpu="t4", bounds="frames=8..64")
    with pytest.raises(ConfigError, match=r"--frames: 96 is outside the frames bounds 8\.\.64"):
        check_fixed(RunConfig(frames=96), 1, settings)
    check_fixed(RunConfig(frames=8), 1, settings)
    assert DEFAULT_RESERVE == 512 * 2**20
