"""The report's motion test: a table over seeds and a verdict worded from the stored rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.report.conftest import Results, config
from tsfbench.report import build_report, write_report
from tsfbench.report.motion import motion_findings, noise_pt
from tsfbench.store import missing


def motion(
    results: Results, attention: str, seed: int, top1: float, recipe: str = "r1", **extra: Any
) -> None:
    """What the runner stores for one motion task (the figures the report reads)."""
    record = config(attention=attention, frames=8, size=32, classes=4) | {
        "seed": seed, "recipe": recipe, "params": 104_196, "top1": top1, "top5": 100.0,
        "evaluated": 64, "views": 3, "ceiling": 50.0, "dataset": "synthetic",
        "train_seconds": 40.0, "train_steps": 300, "final_loss": 0.1,
    } | extra  # fmt: skip
    results.add("motion", record, suite="motion")


def lesson(results: Results, space: list[float], divided: list[float]) -> None:
    for seed, top1 in enumerate(space):
        motion(results, "space", seed, top1)
    for seed, top1 in enumerate(divided):
        motion(results, "divided", seed, top1)


def test_the_motion_table_gives_mean_spread_ceiling_and_the_papers_ssv2_column(
    results: Results,
) -> None:
    lesson(results, space=[50.0, 46.875, 53.125], divided=[96.875, 100.0, 93.75])
    table = build_report(results.store.frame()).motion.set_index("attention")
    assert list(table.index) == ["space", "divided"]  # Table 1's order
    space, divided = table.loc["space"], table.loc["divided"]
    assert (space["n"], space["seeds"], space["top1_mean"]) == (3, "0,1,2", 50.0)
    assert space["top1_sd"] == pytest.approx(3.125)
    assert divided["top1_mean"] == pytest.approx(96.875) and divided["top1_min"] == 93.75
    # 2 standard errors of a 50% top-1 over 64 videos: 12.5 pt
    assert space["noise_pt"] == pytest.approx(12.5) == noise_pt(50.0, 64)
    assert space["passed"] and divided["passed"]
    assert (space["top1_paper_ssv2"], divided["top1_paper_ssv2"]) == (36.6, 59.5)


def test_each_schemes_patch_and_steps_are_shown_where_the_recipe_sets_them_apart(
    results: Results, tmp_path: Path
) -> None:
    """`axial` trains at patch 16 for 1200 steps, the others at patch 8 for 300 (`PATCHES`,
    `STEPS`): the table says so instead of hiding it in the recipe's digest. Rows stored
    before the patch was recorded show none."""
    motion(results, "divided", 0, 100.0, patch=8, train_steps=300)
    motion(results, "axial", 0, 100.0, patch=16, train_steps=1200)
    motion(results, "joint", 0, 100.0, recipe="old")  # no patch stored
    table = build_report(results.store.frame()).motion.set_index("attention")
    assert (table.loc["axial", "patch"], table.loc["axial", "steps"]) == (16, 1200)
    assert (table.loc["divided", "patch"], table.loc["divided", "steps"]) == (8, 300)
    assert missing(table.loc["joint", "patch"]) and table.loc["joint", "steps"] == 300
    (path, *_) = write_report(build_report(results.store.frame()), tmp_path, fmt="md")
    rows = [line for line in path.read_text().splitlines() if line.startswith("| Axial")]
    assert rows and "| 16 | 1,200 |" in rows[0], rows


@pytest.mark.parametrize(
    ("space", "divided", "verdict", "words"),
    [
        ([50.0], [100.0], "reproduced:", ["`space` reached 50.0%", "`divided` reached 100.0%"]),
        ([62.5], [100.0], "reproduced:", ["within 12.5 pt of its direction-blind ceiling 50.0%"]),
        ([64.1], [100.0], "did not reproduce", ["`space` reached 64.1%, above", "leaks"]),
        ([25.0], [100.0], "did not reproduce", ["`space` reached only 25.0%, below", "speed"]),
        ([50.0], [55.0], "did not reproduce", ["`divided` reached only 55.0%"]),
    ],
)
def test_the_verdict_is_worded_from_the_numbers(
    results: Results, space: list[float], divided: list[float], verdict: str, words: list[str]
) -> None:
    lesson(results, space, divided)
    report = build_report(results.store.frame())
    (path,) = write_report(report, results.store.path.parent / "out", fmt="json")
    document = json.loads(path.read_text())
    (text,) = document["findings"]["motion"]
    assert text.startswith(f"Table 1's lesson {verdict}"), text
    assert all(word in text for word in words), text
    gap = divided[0] - space[0]
    assert f"`divided` leads `space` by {gap:.1f} pt here; on SSv2 the paper's gap is 22.9 pt" in (
        text
    )
    assert document["tables"]["motion"][0]["attention"] == "space"


@pytest.mark.parametrize(
    ("top1", "result", "words"),
    [
        (25.0, "FAIL (below)", "below its direction-blind ceiling 50.0% - 12.5 pt"),
        (70.0, "FAIL (above)", "above its direction-blind ceiling 50.0% + 12.5 pt"),
        (48.0, "pass", "within 12.5 pt of its direction-blind ceiling 50.0%"),
    ],
)
def test_space_passes_only_within_the_noise_of_its_ceiling_and_says_which_side_it_missed(
    results: Results, tmp_path: Path, top1: float, result: str, words: str
) -> None:
    """`space` learned nothing at 25% (chance with 4 classes): the lesson is that it reaches
    what appearance allows and no more, so 25% fails as surely as 70% does."""
    lesson(results, space=[top1], divided=[100.0])
    report = build_report(results.store.frame())
    space = report.motion.set_index("attention").loc["space"]
    assert (space["expected"], space["result"]) == ("37.5 .. 62.5", result)
    assert space["passed"] == (result == "pass")
    (text,) = motion_findings(report.motion)
    assert words in text, text
    assert text.startswith(
        "Table 1's lesson reproduced" if space["passed"] else "Table 1's lesson did not"
    ), text
    md = write_report(report, tmp_path)[0].read_text()
    assert f"| 37.5 .. 62.5 | {result} |" in md


def test_the_tuning_sets_rows_stay_apart_from_the_published_sets(results: Results) -> None:
    """The recipe was tuned on data seed 0; figures of another set are another row, and rows
    stored before the data seed was recorded count as seed 0."""
    motion(results, "divided", 0, 100.0)  # no data_seed: an older row
    motion(results, "divided", 100, 90.0, data_seed=1)
    motion(results, "divided", 101, 80.0, data_seed=1)
    table = build_report(results.store.frame()).motion
    assert list(zip(table["data_seed"], table["n"], table["top1_mean"], strict=True)) == [
        (0, 1, 100.0),
        (1, 2, 85.0),
    ]
    findings = motion_findings(table)
    assert [text.split(":")[0] for text in findings] == [
        "R1, data seed 0, on E1",
        "R1, data seed 1, on E1",
    ]


def test_a_partial_run_says_what_the_lesson_needs(results: Results) -> None:
    motion(results, "divided", 0, 97.0)
    motion(results, "joint", 0, 40.0)
    report = build_report(results.store.frame())
    md = write_report(report, results.store.path.parent / "out")[0].read_text()
    section = md.split("## Motion test")[1].split("\n## ")[0]
    assert "Table 1's lesson is not tested without `space`" in section
    assert "`divided` reached 97.0%" in section and "`joint` reached only 40.0%" in section
    assert (
        "| Divided Space-Time (T+S) | 0.104 | - | 300 | 97.0 (n=1) | 97.0 .. 97.0 | 64 | 50.0 |"
        in section
    )
    assert "| FAIL (below) |" in section  # joint below 90%


def test_the_motion_test_stays_out_of_the_paper_tables(results: Results, tmp_path: Path) -> None:
    """A synthetic top-1 is never set against K400 (nor in Tables 1, 2 or Accuracy)."""
    results.flops(196.05, 121_566_352)
    lesson(results, [50.0], [99.0])
    report = build_report(results.store.frame())
    assert report.accuracy.empty and report.schemes["top1"].isna().all()
    text = write_report(report, tmp_path / "out", name="t")[0].read_text()
    assert "99.0" not in text.split("## Motion test")[0]
    assert "## Accuracy" not in text
    motion_section = text.split("## Motion test")[1].split("\n## ")[0]
    assert "K400" not in motion_section and "SSv2, a different dataset" in motion_section
    assert "| 59.5 |" in motion_section  # the paper's SSv2 divided, labelled as such


def test_recipes_and_newer_rows_are_not_averaged_together(results: Results) -> None:
    motion(results, "divided", 0, 50.0)  # replaced by the rerun of the same task below
    motion(results, "divided", 0, 100.0)
    motion(results, "divided", 0, 60.0, recipe="r2")
    table = build_report(results.store.frame()).motion
    assert list(zip(table["recipe"], table["n"], table["top1_mean"], strict=True)) == [
        ("R1", 1, 100.0),
        ("R2", 1, 60.0),
    ]
    assert isinstance(table, pd.DataFrame)
