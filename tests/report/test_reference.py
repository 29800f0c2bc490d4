"""The paper's numbers in `report.reference` are the ones in shared/paper/NUMBERS.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tsfbench.report.reference import (
    FIGURE3_FRAMES,
    FIGURE3_SIZES,
    PAPER_GPU,
    PAPER_MAX_FRAMES,
    PAPER_OOM,
    REFERENCES,
    Reference,
    reference,
)

NUMBERS = Path(__file__).parents[2] / ".." / "shared" / "paper" / "NUMBERS.md"
VARIANTS = {
    "TimeSformer (base)": ("base", 8, 224),
    "TimeSformer-HR": ("hr", 16, 448),
    "TimeSformer-L": ("l", 96, 224),
}
CNNS = {"I3D 8x8 R50": ("i3d_r50", 8, 256), "SlowFast 8x8 R50": ("slowfast_r50", 32, 256)}


@pytest.fixture(scope="module")
def text() -> str:
    if not NUMBERS.is_file():
        pytest.skip(f"{NUMBERS} is not here (CI has it beside the repository)")
    return NUMBERS.read_text()


def rows(text: str, cells: int) -> list[list[str]]:
    """Markdown table rows with `cells` cells, header and rule lines included."""
    found = []
    for line in text.splitlines():
        if line.startswith("|"):
            row = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if len(row) == cells:
                found.append(row)
    return found


def number(cell: str) -> float:
    """The first number of a cell: '~196.7' -> 196.7, '121.4M' -> 121.4, '72.2 (verify)'."""
    match = re.search(r"\d+(\.\d+)?", cell)
    assert match, cell
    return float(match.group())


def find(model: str, attention: str, frames: int, size: int, pos: str | None = None) -> Reference:
    ref = reference(model, attention, frames, size, pos)
    assert ref is not None, (model, attention, frames, size, pos)
    return ref


def test_variant_costs(text: str) -> None:
    checked = 0
    for row in rows(text, 7):
        if row[0] in VARIANTS:
            model, frames, size = VARIANTS[row[0]]
            assert row[1] == f"{frames} x {size}"
            ref = find(model, "divided", frames, size)
            assert (ref.tflops, ref.gflops_per_view, ref.params_m) == tuple(map(number, row[4:7]))
            assert ref.views == 3 == number(row[3].split("x")[0]) * number(row[3].split("x")[1])
            checked += 1
    assert checked == 3


def test_table1_schemes(text: str) -> None:
    checked = 0
    for row in rows(text, 6):
        scheme = row[1].strip("`")
        if row[1].startswith("`") and scheme != "id":
            ref = find("base", scheme, 8, 224)
            assert ref.params_m == number(row[3])
            assert ref.top1 == {**ref.top1, "K400": number(row[4]), "SSv2": number(row[5])}
            checked += 1
    assert checked == 5


def test_positional_embeddings(text: str) -> None:
    checked = 0
    for row in rows(text, 4):
        if row[1].startswith("`"):
            ref = find("base", "divided", 8, 224, row[1].strip("`"))
            assert (ref.top1["K400"], ref.top1["SSv2"]) == (number(row[2]), number(row[3]))
            checked += 1
    assert checked == 3


def test_table2_baselines(text: str) -> None:
    checked = 0
    for row in rows(text, 6):
        if row[0] in CNNS:
            ref = find(CNNS[row[0]][0], "-", *CNNS[row[0]][1:])
            assert ref.top1["K400"] == number(row[2]) and ref.views == 30
            assert (ref.tflops, ref.gflops_per_view, ref.params_m) == tuple(map(number, row[3:6]))
            checked += 1
        elif row[0] == "TimeSformer":
            ref = find("base", "divided", 8, 224)
            key = "K400" if row[1] == "ImageNet-21K" else f"K400 ({row[1]} pretrain)"
            assert ref.top1[key] == number(row[2])
            assert (ref.tflops, ref.gflops_per_view, ref.params_m) == tuple(map(number, row[3:6]))
            checked += 1
    assert checked == 4
    flat = " ".join(text.split())
    hours = re.search(r"TimeSformer (\d+), SlowFast R50 (\d+) [^,]*, I3D R50 (\d+)", flat)
    assert hours, "training hours"
    names = (("base", "divided", 8, 224), (*CNNS["SlowFast 8x8 R50"][:1], "-", 32, 256))
    names += ((*CNNS["I3D 8x8 R50"][:1], "-", 8, 256),)
    for key, hours_text in zip(names, hours.groups(), strict=True):
        assert find(*key).train_gpu_hours == float(hours_text)


def test_headline_accuracy(text: str) -> None:
    k400 = re.search(r"K400 TimeSformer ([\d.]+) / ([\d.]+), HR ([\d.]+) / ([\d.]+), "
                     r"L ([\d.]+) / ([\d.]+)", text)  # fmt: skip
    assert k400
    values = list(map(float, k400.groups()))
    for (model, frames, size), (top1, top5) in zip(
        VARIANTS.values(), zip(values[::2], values[1::2], strict=True), strict=True
    ):
        ref = find(model, "divided", frames, size)
        assert (ref.top1["K400"], ref.top5["K400"]) == (top1, top5)
    ssv2 = re.search(r"SSv2 top-1 TimeSformer ([\d.]+), L ([\d.]+)", text)
    diving = re.search(r"Diving-48 (\d+\.\d), HR (\d+\.\d), L (\d+\.\d)", text)
    assert ssv2 and diving
    assert find("base", "divided", 8, 224).top1["SSv2"] == float(ssv2.group(1))
    assert find("l", "divided", 96, 224).top1["SSv2"] == float(ssv2.group(2))
    for (model, frames, size), value in zip(VARIANTS.values(), diving.groups(), strict=True):
        assert find(model, "divided", frames, size).top1["Diving-48"] == float(value)


def test_released_checkpoints(text: str) -> None:
    checked = 0
    for row in rows(text, 5):
        if row[0].endswith(".pyth"):
            frames, size = (int(part) for part in row[2].split(" x "))
            ref = find("base", "divided", frames, size)
            assert ref.released_top1[row[1]] == number(row[3])
            assert ref.released_top5[row[1]] == number(row[4])
            checked += 1
    assert checked == 9


def test_figure3_limits(text: str) -> None:
    grid = re.search(r"Spatial crop ([\d, ]+) at 8 frames, and ([\d, ]+) frames at 224", text)
    assert grid
    assert tuple(map(int, grid.group(1).split(","))) == FIGURE3_SIZES
    assert tuple(map(int, grid.group(2).split(","))) == FIGURE3_FRAMES
    oom = re.search(r"joint attention ran out of GPU memory \((\d+) GB V100\) at crop (\d+) "
                    r"and at (\d+) frames", " ".join(text.split()))  # fmt: skip
    assert oom
    assert f"{oom.group(1)} GB V100" == PAPER_GPU
    smallest = {("joint", 8, int(oom.group(2))), ("joint", int(oom.group(3)), 224)}
    assert smallest <= set(PAPER_OOM)
    assert all(attention == "joint" for attention, _, _ in PAPER_OOM)
    assert f"clips longer than {PAPER_MAX_FRAMES} frames" in text


def test_every_timesformer_preset_finds_the_same_architecture() -> None:
    assert reference("base", "divided", 96, 224) is reference("l", "divided", 96, 224)
    assert reference("l", "divided", 96, 224).name == "TimeSformer-L"  # type: ignore[union-attr]
    assert reference("base", "space", 8, 224, "space") is reference("base", "space", 8, 224)
    assert reference("base", "divided", 8, 224, "none").params_m is None  # type: ignore[union-attr]
    assert reference("slowfast_r50", "-", 8, 224) is None  # not the paper's input
    assert len({ref.key for ref in REFERENCES}) == len(REFERENCES)
