"""`tsfbench fit` on the command line: the card list, an answer as JSON and as a table, and
bad input as one line with exit code 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tsfbench.cli import app

runner = CliRunner()
TINY = ["--depth", "2", "--dim", "64", "--heads", "4"]


def test_gpu_list_prints_every_card_with_the_memory_planned_with() -> None:
    table = runner.invoke(app, ["fit", "--gpu", "list"])
    assert table.exit_code == 0, table.output
    assert "v100-32gb" in table.stdout and "32 GB HBM2" in table.stdout
    rows = json.loads(runner.invoke(app, ["fit", "--gpu", "list", "--json"]).stdout)
    by_name = {row["gpu"]: row for row in rows}
    assert by_name["h100-80gb"]["memory_bytes"] == 80 * 2**30
    assert by_name["l4"]["memory_bytes"] == 24 * 2**30 * 15 // 16


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory", "0"], "error: --memory: cannot read '0'"),
        (["--memory", "-1GiB"], "error: --memory: cannot read '-1GiB'"),
        (["--gpu", "v200"], "error: --gpu: unknown GPU 'v200'; accepted: v100-16gb"),
        (["--gpu", "t4", "--axis", "depth"], "error: --axis: unknown value 'depth'"),
        (["--memory", "400MiB"], "error: --memory: 0.39 GiB is no more than the context reserve"),
        (["--gpu", "t4", "--frames", "2000"], "error: --frames: 2000 is outside the frames bounds"),
        (["--gpu", "t4", "--size", "230"], "error: size: 230 is not a multiple of the patch"),
        (["--gpu", "t4", "--batch", "0"], "error: --batch: cannot read '0'"),
        (["--gpu", "t4", "--frames", "8,16"], "error: --frames: one value"),
        (["--gpu", "t4", "--variant", "i3d_r50", "--frames", "1"], "error: frames: i3d_r50 takes"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["fit", *args])
    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith(message)
    assert len(result.output.strip().splitlines()) == 1


def test_an_answer_names_the_boundary_pair_its_peaks_and_the_budget() -> None:
    args = ["fit", "--memory", "4MiB", "--reserve", "1MiB", "--attention", "joint",
            "--frames", "2", "--size", "32", "--axis", "frames", "--bounds", "frames=1..64",
            "--workers", "1", *TINY]  # fmt: skip
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    budget = payload["budget"]
    assert budget["budget_bytes"] == 3 * 2**20 - int(0.05 * 3 * 2**20)
    assert budget["line"].startswith("budget ") and "margin 5%" in budget["line"]
    (answer,) = payload["answers"]
    assert answer["answer"] == "boundary" and answer["next"] == answer["largest"] + 1
    assert answer["largest_peak_bytes"] <= budget["budget_bytes"] < answer["next_peak_bytes"]
    assert payload["predictions"]["brute_force"] == 64
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert f"{answer['largest']} (" in table.stdout and "budget " in table.stdout
    assert "not counted: other processes" in table.stdout
