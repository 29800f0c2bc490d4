"""`benchmarks/compare_acceptance.py`: its suites load and its checks fail where they should.

The script itself measures for minutes (`--quick` too, on a busy 2-core machine); here its
parts run on made-up `tsfbench compare` results.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tsfbench.suite import load_suite


@pytest.fixture
def script(load_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return load_benchmark("compare_acceptance")


def result(*verdicts: str) -> dict[str, Any]:
    pairs = [
        {"measurement": "runtime", "what": f"row {i}", "verdict": v, "ratio": 1.0,
         "ratio_low": 0.99, "ratio_high": 1.01}
        for i, v in enumerate(verdicts)
    ]  # fmt: skip
    return {"pairs": [*pairs, {"measurement": "flops", "what": "f", "verdict": "unchanged"}]}


@pytest.mark.parametrize(("quick", "tasks"), [(False, 6), (True, 2)])
def test_the_suite_it_writes_loads_with_auto_or_a_fixed_count(
    script: ModuleType, tmp_path: Path, quick: bool, tasks: int
) -> None:
    path, iterations = script.write_suite(tmp_path, "auto", quick)
    assert iterations in ("auto", script.FIXED)  # auto where the suite loader knows it
    loaded = load_suite(path, tmp_path).tasks
    assert len(loaded) == tasks and all(t.measurement == "runtime" for t in loaded)
    assert {t.settings["iterations"] for t in loaded} == {iterations}
    longer, _ = script.write_suite(tmp_path, "auto", quick, max_time=20.0)
    assert {t.settings["max_time"] for t in load_suite(longer, tmp_path).tasks} == {20.0}


def test_no_false_alarm_needs_a_verdict_on_every_row_and_no_slower(script: ModuleType) -> None:
    assert script.no_false_alarm(0, result("same", "same", "faster"))[0]
    failed, text = script.no_false_alarm(1, result("same", "slower"))
    assert not failed and "slower: row 1" in text
    failed, text = script.no_false_alarm(0, result("same", "no samples"))
    assert not failed and "no verdict: row 1: no samples" in text
    assert not script.no_false_alarm(0, result())[0]  # nothing compared is no evidence


def test_the_slowdown_checks_need_every_row_and_the_exit_code(script: ModuleType) -> None:
    assert script.every_row(1, result("slower", "slower"), "slower", 1)[0]
    assert not script.every_row(0, result("slower", "slower"), "slower", 1)[0]
    failed, text = script.every_row(0, result("faster", "same"), "faster", 0)
    assert not failed and "not faster: row 1: same" in text
