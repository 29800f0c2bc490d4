"""The motion test's pieces: splits, ceiling, settings, augmentation, the checkpoint round trip."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tsfbench.cli import app
from tsfbench.config import (
    DEFAULT_PATCH,
    DEFAULT_STEPS,
    PATCHES,
    STEPS,
    ConfigError,
)
from tsfbench.data.datasets import CLASS_INDEX, SYNTHETIC_MARKER
from tsfbench.data.sampling import view_indices
from tsfbench.data.synth import (
    direction_blind_ceiling,
    reversed_class,
    synth_frames,
    write_synthetic,
    write_video,
)
from tsfbench.models.registry import ATTENTIONS
from tsfbench.report.motion import expectation, noise_pt
from tsfbench.train import (
    TrainSettings,
    _mirrored,
    load_clips,
    make_batch,
    motion_test,
    swap_table,
)

pytest.importorskip("decord")
pytest.importorskip("av")

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """A tiny model gains nothing from intra-op threads, and on a busy machine their spinning
    made the round trip 10x slower (165 s vs 15 s wall with 8 other processes on 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _frames(root: Path, csv: str) -> dict[str, np.ndarray]:
    import decord

    lines = (root / csv).read_text().split()
    return {p: decord.VideoReader(str(root / p)).get_batch(range(6)).asnumpy() for p in lines[::2]}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    # x264 now and then encodes the same frames a little differently (a few levels): compare
    # decoded pixels with that margin; two different videos differ by far more
    return int(np.abs(a.astype(int) - b).max()) <= 16


def test_the_train_split_is_disjoint_and_leaves_val_unchanged(tmp_path: Path) -> None:
    alone = write_synthetic(tmp_path / "a", classes=2, per_class=2, frames=8, seed=3).parent
    both = write_synthetic(
        tmp_path / "b", classes=2, per_class=2, frames=8, seed=3, train_per_class=3
    ).parent
    assert not (alone / "train.csv").exists()
    val, val_before = _frames(both, "val.csv"), _frames(alone, "val.csv")
    assert val.keys() == val_before.keys()
    assert all(_same(val[p], val_before[p]) for p in val)  # existing stores stay valid
    train = _frames(both, "train.csv")
    assert len(train) == 6 and all(p.startswith("train/") for p in train)
    assert not any(_same(t, v) for t in train.values() for v in val.values())
    marker = json.loads((both / "tsfbench-synthetic.json").read_text())
    assert marker["train_per_class"] == 3


def test_the_direction_blind_ceiling_merges_only_reversed_pairs() -> None:
    assert direction_blind_ceiling(4) == 50.0  # right/left at two speeds: 2 groups of 4 classes
    assert direction_blind_ceiling(3) == 66.7  # right_fast has no reverse among the three
    assert direction_blind_ceiling(2) == 50.0
    assert direction_blind_ceiling(8) == 50.0
    assert reversed_class("left_fast") == "right_fast" and reversed_class("up_slow") == "down_slow"
    assert reversed_class("jumping") is None
    with pytest.raises(ConfigError, match="classes"):
        direction_blind_ceiling(9)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"attention": "temporal"}, "attention"),
        ({"steps": 0}, "steps"),
        ({"size": 40}, "size"),  # not a multiple of the patch grid
        ({"dim": 63}, "dim"),
        ({"lr": -1.0}, "lr"),
        ({"warmup": 1.0}, "warmup"),
        ({"time_init": "random"}, "time_init"),
        ({"weight_init": "kaiming"}, "weight_init"),
        ({"init_gain": 0.0}, "init_gain"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_parameter(
    changes: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{named}: "):
        TrainSettings(**changes)  # type: ignore[arg-type]


def test_axial_trains_longer_by_default_and_given_steps_stay() -> None:
    assert TrainSettings(attention="divided").steps == 300
    assert TrainSettings(attention="axial").steps == 1200  # its plateau lasts longer
    assert TrainSettings(attention="axial", steps=20).steps == 20


def test_the_docs_and_suites_state_the_steps_and_patches_config_sets() -> None:
    """One figure for each scheme's steps and patch, from the code: every "N steps (`axial` M)"
    in docs/ and suites/, and the published table's patch and steps columns."""
    root = Path(__file__).parents[1]
    stated = []
    for path in [*(root / "docs").glob("*.md"), *(root / "suites").glob("*.toml")]:
        text = " ".join(path.read_text().split())
        found = re.findall(r"(\d+) steps,? \(?`axial`,? (\d+)", text)
        stated += [(path.name, int(steps), int(axial)) for steps, axial in found]
    assert {name for name, _, _ in stated} >= {"motion-test.md", "suites.md"}, stated
    assert all((s, a) == (DEFAULT_STEPS, STEPS["axial"]) for _, s, a in stated), stated
    lines = (root / "docs" / "motion-test.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| scheme | params | patch | steps"))
    cells = [cell.strip() for cell in header.strip("|").split("|")]
    patch, steps = cells.index("patch"), cells.index("steps")
    rows = {
        row[0]: (int(row[patch]), int(row[steps]))
        for line in lines
        if (row := [cell.strip() for cell in line.strip("|").split("|")])[0] in ATTENTIONS
    }
    assert rows == {
        a: (PATCHES.get(a, DEFAULT_PATCH), STEPS.get(a, DEFAULT_STEPS)) for a in ATTENTIONS
    }


def test_reversal_and_mirroring_swap_the_label_with_the_clip() -> None:
    names = ("down_slow", "left_slow", "right_slow", "up_slow")
    reverse = swap_table(names, reversed_class)
    assert reverse.tolist() == [3, 2, 1, 0]
    assert swap_table(names, _mirrored).tolist() == [0, 2, 1, 3]  # up / down survive a mirror
    assert swap_table(("bright", "left_slow"), reversed_class).tolist() == [-1, -1]  # no pair
    settings = TrainSettings(frames=4, size=32, batch=64, flip=False)
    # frame t of video i holds 10 i + t: a batch row tells its video and its frame order
    clips = (10 * torch.arange(4.0)[:, None] + torch.arange(4.0)).view(4, 4, 1, 1, 1)
    clips = clips.expand(4, 4, 3, 32, 48).contiguous()
    generator = torch.Generator().manual_seed(0)
    x, y = make_batch(clips, torch.arange(4), settings, reverse, reverse, generator)
    seen = x[:, 0, :, 0, 0]  # (B, F)
    video, backwards = (seen[:, 0] // 10).long(), seen[:, 0] % 10 == 3
    assert 0 < int(backwards.sum()) < 64  # some clips reversed, some not
    steps = seen.diff(dim=1)
    assert torch.all(steps[backwards] == -1) and torch.all(steps[~backwards] == 1)
    assert torch.equal(y, torch.where(backwards, reverse[video], video))


def test_a_left_clip_is_the_right_clip_played_backwards_so_order_blind_models_cannot_tell(
    tmp_path: Path,
) -> None:
    """The direction-blind ceiling by construction, not by the reverse augmentation: a left
    video drawn like a right one is that video reversed, and the clips training and evaluation
    take of them (symmetric sampling) are each other reversed, frame for frame. The released
    dense sampling takes other frames of the reversed video ({0,4,7,...} instead of {0,3,6,...}),
    which an order-blind model could learn to tell apart."""
    right = synth_frames("right_fast", 24, 48, 64, random.Random("pair"))
    left = synth_frames("left_fast", 24, 48, 64, random.Random("pair"))
    assert np.array_equal(left, right[::-1])
    lines = []
    for label, (name, video) in enumerate((("left_fast", left), ("right_fast", right))):
        write_video(tmp_path / f"{name}.mp4", video)
        lines.append(f"{name}.mp4 {label}")
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / SYNTHETIC_MARKER).write_text("{}")  # the synthetic set: sampled symmetrically
    clips, _, _ = load_clips(tmp_path / "train.csv", TrainSettings())  # (2, F, 3, H, W)
    levels = 255 * 0.225  # 8-bit levels per normalised unit (std 0.225)
    # per frame, the mean difference in 8-bit levels: the codec's error (~0.4), no more
    error = (clips[0] - clips[1].flip(0)).abs().mean(dim=(1, 2, 3)) * levels
    assert error.max() < 1.0, error

    def dense(video: np.ndarray) -> np.ndarray:  # the clip the released sampling would take
        (indices,) = view_indices(24, 8, 3, 1, "dense")
        return video[indices].astype(int)

    # the frames written, no codec: 6 of the 8 would show the square ~2 px apart (~1.8 levels)
    apart = np.abs(dense(left) - dense(right)[::-1]).mean(axis=(1, 2, 3))
    assert (apart > 1.0).sum() == 6, apart


def test_space_trained_without_the_label_aware_augmentation_stays_at_its_ceiling(
    tmp_path: Path,
) -> None:
    """Without the reverse (and mirror) augmentation nothing in training stops `space` from
    telling left from right but the data: it must still land within the noise of the
    direction-blind ceiling (the report's verdict), above chance (25%: it learned speed) and
    not above the ceiling (it did not learn direction).

    The cheapest run that learns speed every time: 2 frames (the first and last: the two
    squares' distance is the speed), 200 steps of 16 clips, 96 training videos a class (at 48
    it learned the training videos' colours: 34-44% on val); seeds 0-2 gave 48.4, 45.3, 48.4%
    against a band of 37.5-62.5%. At 4 frames 300 steps gave 39-42%, too near the edge. Two
    frames are symmetric under either sampling; the test above checks the 8-frame clip's.
    """
    root = write_synthetic(tmp_path, classes=4, per_class=16, train_per_class=96).parent
    settings = TrainSettings(
        attention="space", frames=2, rate=12, steps=200, batch=16, reverse=False, flip=False,
        views=1,
    )  # fmt: skip
    record = motion_test(settings, root, tmp_path / "space.pt")
    assert (record["ceiling"], record["evaluated"]) == (50.0, 64)
    expected, missed = expectation(
        "space", record["top1"], record["ceiling"], noise_pt(record["ceiling"], 64)
    )
    assert (expected, missed) == ("37.5 .. 62.5", ""), record["top1"]


def _bright_and_dark(root: Path) -> Path:
    """Two classes any model separates at once: dark and bright frames (noise on top)."""
    rng = np.random.default_rng(0)
    names = ("bright", "dark")
    for split, count in (("train", 6), ("val", 4)):
        lines = []
        for label, name in enumerate(names):
            level = 200 if name == "bright" else 50
            for n in range(count):
                video = rng.integers(level - 40, level + 40, (12, 48, 64, 3)).astype(np.uint8)
                relative = f"{split}/{name}/{n}.mp4"
                write_video(root / relative, video)
                lines.append(f"{relative} {label}")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    (root / CLASS_INDEX).write_text(json.dumps({name: i for i, name in enumerate(names)}))
    return root


def test_the_saved_checkpoint_gives_the_top1_training_reported(
    tmp_path: Path, tiny: dict[str, object]
) -> None:
    data = _bright_and_dark(tmp_path / "data")
    # A 2 x 2 patch grid and 4 frames: trains in a few seconds on a CPU. The shared tiny body
    # without its drop_path, which TrainSettings does not have.
    body = {key: tiny[key] for key in ("depth", "dim", "heads")}
    recipe = {"patch": 16, "frames": 4, "size": 32, "views": 3}
    settings = TrainSettings(**body, **recipe, steps=30, batch=8, seed=1)  # type: ignore[arg-type]
    losses: list[float] = []
    record = motion_test(
        settings, data, tmp_path / "model.pt", progress=lambda s, n, loss: losses.append(loss)
    )
    assert len(losses) == 30 and losses[-1] < 0.5 * math.log(2) < losses[0]
    assert record["top1"] == 100.0 and record["evaluated"] == 8  # learned, not chance (50)
    assert record["ceiling"] is None  # not the synthetic set: no direction-blind ceiling
    assert record["views"] == 3 and record["rate"] == 3 and record["seed"] == 1

    # the file alone rebuilds the model: size, patch, clip and rate come from its metadata
    args = ["accuracy", str(data / "val.csv"), "--checkpoint", str(tmp_path / "model.pt")]
    result = runner.invoke(app, [*args, "--workers", "0", "--json"])
    assert result.exit_code == 0, result.output
    loaded = json.loads(result.stdout)
    assert loaded["top1"] == record["top1"]
    assert loaded["predictions"] == record["predictions"]
    assert (loaded["frames"], loaded["size"], loaded["rate"]) == (4, 32, 3)

    wrong = runner.invoke(app, [*args, "--attention", "joint", "--workers", "0"])
    assert wrong.exit_code == 2
    assert len(wrong.stderr.strip().splitlines()) == 1 and "does not match" in wrong.stderr


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu, id="cuda")])
def test_train_runs_and_evaluates_on_the_device_it_is_given(tmp_path: Path, device: str) -> None:
    """`tsfbench train --device`: the model trains and the checkpoint is evaluated there."""
    write_synthetic(tmp_path, classes=2, per_class=2, train_per_class=2)
    args = ["train", str(tmp_path), "--steps", "2", "--device", device, "--json"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "m.pt")])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["device"].startswith(device) and record["train_steps"] == 2
    assert record["evaluated"] == 4
    weights = torch.load(tmp_path / "m.pt", weights_only=True)["model_state"]
    assert {tensor.device.type for tensor in weights.values()} == {"cpu"}  # loads anywhere


def test_train_refuses_a_set_without_a_train_split(tmp_path: Path) -> None:
    write_synthetic(tmp_path, classes=2, per_class=1, frames=8)
    result = runner.invoke(app, ["train", str(tmp_path)])
    assert result.exit_code == 2
    assert "train.csv" in result.stderr and "--train-per-class" in result.stderr
