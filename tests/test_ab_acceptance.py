"""`benchmarks/ab_acceptance.py`: its checks pass and fail where they should (on made-up
`tsfbench ab --json` results; the script itself measures for minutes)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture
def script(load_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return load_benchmark("ab_acceptance")


def result(*verdicts: str | None) -> dict[str, Any]:
    rows = [
        {"what": f"row {i}", "verdict": v, "status": "ok" if v else "error", "error": "died",
         "ratio": 1.0, "ratio_low": 0.99, "ratio_high": 1.01, "rounds": 6,
         "stop_reason": "target_ci"}
        for i, v in enumerate(verdicts)
    ]  # fmt: skip
    return {"results": rows}


def test_a_a_passes_without_a_slower_row_and_fails_with_one(script: ModuleType) -> None:
    assert script.no_false_alarm(0, result("same", "faster"))[0]
    assert not script.no_false_alarm(1, result("same", "slower"))[0]
    assert not script.no_false_alarm(0, result("same", None))[0]  # an error row is no pass
    assert not script.no_false_alarm(0, result())[0]


def test_the_slowdown_check_needs_every_row_and_the_exit_code(script: ModuleType) -> None:
    assert script.every_row(1, result("slower", "slower"), "slower", 1)[0]
    assert not script.every_row(1, result("slower", "same"), "slower", 1)[0]
    assert not script.every_row(0, result("slower", "slower"), "slower", 1)[0]
    passed, text = script.every_row(0, result("faster", "faster"), "faster", 0)
    assert passed and "CI width min 2.0%" in text
