"""A suite's `measure = ["profile"]`: tasks, stored rows, and the report's "Where the time goes"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsfbench.config import ConfigError
from tsfbench.report import build_report, load_results, write_report
from tsfbench.report.profile import sentences
from tsfbench.runner import run_suite
from tsfbench.store import Store
from tsfbench.suite import load_suite

TINY_PROFILE = """
name = "tiny-profile"
[[grid]]
measure = ["profile"]
model = "base"
attention = ["space", "divided"]
frames = 2
size = 32
overrides = { depth = 1, dim = 32, heads = 2 }
warmup = 0
iterations = 2
device = "cpu"
"""


def test_a_profile_grid_gives_one_task_per_configuration(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TINY_PROFILE)
    tasks = load_suite(path, tmp_path).tasks
    assert [task.measurement for task in tasks] == ["profile", "profile"]
    assert tasks[0].settings["iterations"] == 2 and tasks[0].overrides == {
        "depth": 1,
        "dim": 32,
        "heads": 2,
    }
    assert (
        tasks[1].describe() == "profile base divided 2x32 infer fp32 b1 (depth=1, dim=32, heads=2)"
    )


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ('memory_limit = "1GiB"', "memory_limit: not used by profile"),
        ('iterations = "auto"', "iterations: auto; profile takes a number of steps"),
    ],
)
def test_a_profile_grid_refuses_what_a_profile_cannot_do(
    tmp_path: Path, line: str, named: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TINY_PROFILE.replace("iterations = 2\n", "") + line + "\n")
    with pytest.raises(ConfigError, match=named):
        load_suite(path, tmp_path)


def test_profile_rows_are_stored_and_reported_where_the_time_goes(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TINY_PROFILE)
    store = Store(tmp_path / "r.sqlite")
    summary = run_suite(load_suite(path, tmp_path), store)
    assert summary.statuses == {"ok": 2}, summary.failures
    rows = store.rows()
    assert all(
        sum(p["time_share"] for p in row.record["parts"]) == pytest.approx(1) for row in rows
    )

    report = build_report(load_results(store.path))
    assert set(report.profile["attention"]) == {"space", "divided"}
    written = write_report(report, tmp_path / "out", name="t")
    text = written[0].read_text()
    assert "## Where the time goes" in text
    figure = tmp_path / "out" / "t-time-1.png"
    assert figure in written and figure.read_bytes().startswith(b"\x89PNG")
    # one sentence per scheme, naming its largest part with its share of time and of FLOPs
    said = sentences(report.profile)
    assert len(said) == 2 and all(line in text for line in said)
    top = report.profile.loc[report.profile["attention"] == "divided"]
    top = top.loc[top["time_share"].idxmax()]
    assert (
        f"`{top['part']}` takes the largest share of the time, {100 * top['time_share']:.0f}%"
        in text
    )


@pytest.mark.parametrize(
    ("time_share", "flop_share", "said"),
    [
        (0.6, 0.3, "60% for 30% of the FLOPs: 2.0x its FLOP share, below the model's average"),
        (0.5, 0.8, "50% for 80% of the FLOPs: 0.62x its FLOP share, above the model's average"),
        (0.5, 0.5, "50% for 50% of the FLOPs: about its FLOP share"),
        (0.7, 0.0, "70%, for none of the FLOPs"),
    ],
)
def test_the_sentence_compares_the_largest_parts_time_share_with_its_flop_share(
    time_share: float, flop_share: float, said: str
) -> None:
    import pandas as pd

    from tsfbench.report.profile import COLUMNS

    rows = [
        {"part": "mlp", "time_share": time_share, "flop_share": flop_share},
        {"part": "other", "time_share": 1 - time_share, "flop_share": 1 - flop_share},
    ]
    config = {"model": "base", "attention": "divided", "frames": 8, "size": 224}
    table = pd.DataFrame([config | {"run": "infer fp32 b1 cpu"} | row for row in rows])
    (sentence,) = sentences(table.reindex(columns=COLUMNS))
    assert sentence.startswith("divided 8x224 (infer fp32 b1 cpu): `mlp` takes the largest")
    assert said in sentence


@pytest.mark.parametrize("attention", ["divided", "local_global", "axial"])
def test_every_part_of_a_train_step_has_its_kinds_colour_in_the_figure(
    attention: str, tiny: dict[str, object]
) -> None:
    from tsfbench.config import RunConfig
    from tsfbench.measure.profile import part_order
    from tsfbench.models.build import build_model
    from tsfbench.models.parts import kind
    from tsfbench.report.profile import COLOURS

    model = build_model(RunConfig(attention=attention, frames=2, size=32), "meta", **tiny)
    parts = part_order(model, train=True)
    assert {kind(part) for part in parts} <= set(COLOURS)  # none drawn as an unnamed white bar
    assert kind("time.grouping backward") == "grouping" and kind("time") == "step"
