"""Suites: expansion into tasks, validation errors that name file and key, sharding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tsfbench.config import PUBLISHED_DATA_SEED, PUBLISHED_SEEDS, TUNING_SEEDS, ConfigError
from tsfbench.models.registry import ATTENTIONS
from tsfbench.suite import load_suite, my_tasks, parse_shard

SUITES = Path(__file__).parents[1] / "suites"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_a_grid_expands_every_axis(tmp_path: Path) -> None:
    suite = load_suite(
        write(
            tmp_path,
            """
name = "demo"
[[grid]]
measure = ["flops", "latency", "memory"]
model = "base"
attention = ["joint", "divided"]
frames = "8..24"
size = [224]
dtype = ["fp32", "bf16"]
""",
        ),
        tmp_path,
    )
    assert suite.name == "demo"
    flops = [t for t in suite.tasks if t.measurement == "flops"]
    runtime = [t for t in suite.tasks if t.measurement == "runtime"]
    assert len(flops) == 2 * 3  # latency + memory are one runtime probe, not two
    assert len(runtime) == 2 * 3 * 2
    assert {t.config.frames for t in flops} == {8, 16, 24}
    assert {t.settings["dtype"] for t in runtime} == {"fp32", "bf16"}
    assert len({t.key for t in suite.tasks}) == len(suite.tasks)


def test_duplicate_tasks_across_grids_are_measured_once(tmp_path: Path) -> None:
    grid = '[[grid]]\nmeasure = ["flops"]\nmodel = "base"\nattention = "all"\n'
    suite = load_suite(write(tmp_path, grid + grid), tmp_path)
    assert [t.config.attention for t in suite.tasks] == list(ATTENTIONS)


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ('measure = ["flops"]\nmodel = "base"\nframez = 8', ["framez", "accepted", "frames"]),
        ('measure = ["flops"]\nmodel = "base"\ndtype = "bf16"', ["dtype", "latency"]),
        ('measure = ["speed"]\nmodel = "base"', ["measure", "'speed'", "flops"]),
        ('measure = ["flops"]\nmodel = "xl"', ["model", "'xl'", "base"]),
        ('measure = ["flops"]\nmodel = "base"\nframes = "8..x"', ["frames", "8..96"]),
        ('measure = ["flops"]\nmodel = "base"\nsize = 230', ["size", "multiple", "224"]),
        ('measure = ["flops"]\nmodel = "base"\nattention = "sparse"', ["attention", "divided"]),
        ('measure = ["latency"]\nmodel = "base"\nwarmup = "3"', ["warmup", "int"]),
        ('measure = ["latency"]\nmodel = "base"\niterations = "often"', ["iterations", "auto"]),
        ('measure = ["latency"]\nmodel = "base"\niterations = 0', ["iterations", "auto"]),
        ('measure = ["latency"]\nmodel = "base"\ntarget_ci = 2', ["target_ci", "(0, 1)"]),
        ('measure = ["latency"]\nmodel = "base"\nmax_time = 0', ["max_time", "positive"]),
        ('measure = ["latency"]\nmodel = "base"\nmax_warmup = 2', ["max_warmup", ">= 3"]),
        ('measure = ["flops"]\nmodel = "base"\ntarget_ci = 0.05', ["target_ci", "latency"]),
        ('measure = ["latency"]\nmodel = "base"\nmemory_limit = "32 parsecs"', ["memory_limit"]),
        ('measure = ["latency"]\nmodel = "base"\noverrides = {width = 2}', ["overrides", "depth"]),
        ('measure = ["accuracy"]\nmodel = "base"\ndata = "/no/such"', ["data", "synthetic"]),
        ('model = "base"', ["measure", "missing"]),
        ('measure = ["latency"]\nmodel = "base"\noverrides = {dim = 64, heads = 5}', ["heads"]),
        ('measure = ["latency"]\nmodel = "x3d_s"\noverrides = {depth = 1}', ["3D CNN"]),
        (
            'measure = ["latency"]\nmodel = ["base", "x3d_s"]\nmode = "train"\n'
            "checkpointing = true",
            ["checkpointing", "x3d_s", "3D CNN"],
        ),
        ('measure = ["latency"]\nmodel = "base"\ntimeout = -5', ["timeout", "positive"]),
        ('measure = ["latency"]\nmodel = "base"\ndevice = ["cpu", "cuda"]', ["device", "list"]),
        ('measure = ["accuracy"]\nmodel = "base"\nsubset = "200%"', ["subset", "200%"]),
        ('measure = ["accuracy"]\nmodel = "base"\nper_class = -1', ["per_class", ">= 1"]),
        ('measure = ["accuracy"]\nmodel = "base"\nrate = 0', ["rate", ">= 1"]),
        ('measure = ["accuracy"]\nmodel = "base"\nworkers = -1', ["workers", ">= 0"]),
        ('measure = ["accuracy"]\nmodel = "base"\nbatch = [8, 16]', ["batch", "takes one"]),
        ('measure = ["flops"]\nmodel = "base"\nclasses = "400"', ["classes", "an integer"]),
        ('measure = ["accuracy"]\nmodel = "base"\ndataset = "kinetics"', ["dataset", "k400"]),
        ('measure = ["accuracy"]\nmodel = "base"\ndataset = "k400"', ["dataset", "synthetic"]),
        ('measure = ["flops"]\nmodel = "base"\ndataset = "k400"', ["dataset", "accuracy"]),
        ('measure = ["memory"]\nmodel = "base"\npredict_only = 1', ["predict_only", "true or"]),
        ('measure = ["memory"]\nmodel = "base"\ncpu_allocations = true', ["predict_only = true"]),
        ('measure = ["flops"]\nmodel = "base"\npredict_only = true', ["predict_only", "latency"]),
    ],
)
def test_bad_grids_name_the_file_the_key_and_the_accepted_values(
    tmp_path: Path, body: str, names: list[str]
) -> None:
    path = write(tmp_path, "[[grid]]\n" + body + "\n")
    with pytest.raises(ConfigError) as error:
        load_suite(path, tmp_path)
    message = str(error.value)
    assert str(path) in message and "[[grid]] 1" in message
    assert message.count(str(path)) == 1  # named once, not once per layer that saw the error
    for name in names:
        assert name in message
    assert "\n" not in message


def test_an_accuracy_grid_carries_the_dataset_it_measures(tmp_path: Path) -> None:
    """Declared, or known for the generated set; a data path alone declares nothing."""
    (tmp_path / "val.csv").write_text("a.mp4 0\n")
    grids = [
        'measure = ["accuracy"]\nmodel = "base"',
        f'measure = ["accuracy"]\nmodel = "base"\ndata = "{tmp_path / "val.csv"}"\nseed = 1',
        f'measure = ["accuracy"]\nmodel = "base"\ndata = "{tmp_path / "val.csv"}"\n'
        'dataset = "k400"',
    ]
    suite = load_suite(write(tmp_path, "".join(f"[[grid]]\n{g}\n" for g in grids)), tmp_path)
    assert [task.settings["dataset"] for task in suite.tasks] == ["synthetic", None, "k400"]


def test_a_transformers_checkpoint_folder_is_checked_when_the_suite_loads(tmp_path: Path) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    grid = f'[[grid]]\nmeasure = ["accuracy"]\nmodel = "base"\ncheckpoint = "{folder}"\n'
    with pytest.raises(ConfigError, match=r"\[\[grid\]\] 1: checkpoint: .* has no config.json"):
        load_suite(write(tmp_path, grid), tmp_path)
    config = {"model_type": "timesformer", "attention_type": "joint_space_time", "num_labels": 400}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"attention: divided, but .* holds a joint TimeSformer"):
        load_suite(write(tmp_path, grid), tmp_path)
    config["attention_type"] = "divided_space_time"
    (folder / "config.json").write_text(json.dumps(config))
    (task,) = load_suite(write(tmp_path, grid), tmp_path).tasks
    assert task.settings["checkpoint"] == str(folder) and not task.overrides
    # a smaller body is stored with its sizes, so the report keeps it apart from the paper's
    config |= {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    (folder / "config.json").write_text(json.dumps(config | {"intermediate_size": 256}))
    (task,) = load_suite(write(tmp_path, grid), tmp_path).tasks
    assert task.overrides == {"depth": 2, "dim": 64, "heads": 4}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("nmae = 'x'\n[[grid]]\nmeasure = ['flops']\nmodel = 'base'", ["nmae", "grid"]),
        ("name = 'x'", ["[[grid]]"]),
        ("[[grid]\nmeasure =", ["TOML"]),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, names: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        load_suite(write(tmp_path, text), tmp_path)
    assert all(name in str(error.value) for name in names)


def test_a_missing_suite_lists_the_shipped_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(SUITES.parent)
    with pytest.raises(ConfigError, match=r"quick\.toml"):
        load_suite(tmp_path / "nope.toml")


@pytest.mark.parametrize("path", sorted(SUITES.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_suites_load(path: Path, tmp_path: Path) -> None:
    suite = load_suite(path, tmp_path)
    assert suite.tasks and suite.description


def test_two_shards_cover_the_grid_exactly_once(tmp_path: Path) -> None:
    suite = load_suite(SUITES / "sweep.toml", tmp_path)
    first, second = my_tasks(suite.tasks, 0, 2), my_tasks(suite.tasks, 1, 2)
    keys = [t.key for t in first + second]
    assert sorted(keys) == sorted(t.key for t in suite.tasks)
    assert abs(len(first) - len(second)) <= 1
    assert my_tasks(suite.tasks, 0, 2) == first  # deterministic


def test_torchrun_ranks_split_a_shard(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    suite = load_suite(SUITES / "sweep.toml", tmp_path)
    slices = []
    for rank in range(3):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "3")
        slices.append(my_tasks(suite.tasks, 1, 2))
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert sorted(t.key for s in slices for t in s) == sorted(
        t.key for t in my_tasks(suite.tasks, 1, 2)
    )


@pytest.mark.parametrize("text", ["1", "2/2", "a/b", "-1/2", "0/0", "1/2/3"])
def test_bad_shards_are_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="shard"):
        parse_shard(text)


PREDICT = """
[[grid]]
measure = ["memory"]
model = "base"
attention = "divided"
frames = 2
size = 32
overrides = { depth = 1, dim = 32, heads = 2 }
device = "cpu"
mode = ["infer", "train"]
"""


def test_predict_only_is_a_setting_of_its_tasks_and_leaves_other_keys_alone(
    tmp_path: Path,
) -> None:
    plain = load_suite(write(tmp_path, PREDICT), tmp_path).tasks
    off = load_suite(write(tmp_path, PREDICT + "predict_only = false\n"), tmp_path).tasks
    assert [t.key for t in off] == [t.key for t in plain]  # stores made before it still resume
    assert not any("predict_only" in t.settings for t in plain)
    predicted = load_suite(write(tmp_path, PREDICT + "predict_only = true\n"), tmp_path).tasks
    assert all(t.settings["predict_only"] for t in predicted)
    assert not {t.key for t in predicted} & {t.key for t in plain}
    assert predicted[0].describe().endswith("infer fp32 b1 predicted (depth=1, dim=32, heads=2)")


def test_a_predict_only_grid_stores_predictions_and_checks_them_on_the_cpu(
    tmp_path: Path,
) -> None:
    from tsfbench.runner import run_suite
    from tsfbench.store import Store

    text = PREDICT + 'predict_only = true\ncpu_allocations = true\nmemory_limit = "4GiB"\n'
    suite = load_suite(write(tmp_path, text), tmp_path)
    summary = run_suite(suite, Store(tmp_path / "r.sqlite"))
    assert summary.statuses == {"predicted": 2}
    frame = Store(tmp_path / "r.sqlite").frame()
    assert frame["latency_median_ms"].isna().all()  # no step ran in a probe
    assert (frame["predicted_peak_bytes"] > 0).all()
    # Measured in a child; at this tiny size the heap holds mostly the runtime's own buffers
    # (tens of MB against hundreds of KB of tensors), so only full-size rows are compared
    # (benchmarks/predict_vs_measured.py)
    assert (frame["measured_cpu_alloc_bytes"] > 0).all()


def test_the_quick_suite_predicts_figure_3s_training_memory_against_32_gib(
    tmp_path: Path,
) -> None:
    tasks = [
        t
        for t in load_suite(SUITES / "quick.toml", tmp_path).tasks
        if t.settings.get("predict_only")
    ]
    points = {
        (t.config.attention, t.settings["backend"], t.config.frames, t.config.size) for t in tasks
    }
    axes = [(f, 224) for f in (8, 16, 32, 64, 96)] + [(8, s) for s in (336, 448, 560)]
    assert points == {
        (attention, backend, frames, size)
        for attention in ("joint", "divided")
        for backend in ("sdpa", "math")
        for frames, size in axes
    }
    assert len(tasks) == len(points)
    assert {
        (t.settings["mode"], t.settings["memory_limit"], t.settings["batch"]) for t in tasks
    } == {("train", 32 * 2**30, 1)}


def motion_grid(body: str = "") -> str:
    return '[[grid]]\nmeasure = ["motion"]\n' + body + "\n"


def test_a_motion_grid_is_a_task_per_scheme_and_seed_with_keys_that_survive_a_reload(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, motion_grid('attention = ["space", "divided"]\nseeds = 3\nsteps = 7'))
    tasks = load_suite(path, tmp_path).tasks
    assert [t.describe() for t in tasks] == [
        f"motion {a} seed {s}" for a in ("space", "divided") for s in (0, 1, 2)
    ]
    assert all(t.measurement == "motion" and t.settings["train"]["steps"] == 7 for t in tasks)
    assert all(t.config.attention == t.settings["train"]["attention"] for t in tasks)
    assert {t.settings["data"] for t in tasks} == {tasks[0].settings["data"]}  # one set for all
    assert tasks[0].settings["synthetic"] and tasks[0].settings["data"].startswith(str(tmp_path))
    again = load_suite(path, tmp_path).tasks  # resume and reports find the same tasks
    assert [t.key for t in again] == [t.key for t in tasks] and len({t.key for t in tasks}) == 6
    # seeds listed, every scheme by default
    tasks = load_suite(write(tmp_path, motion_grid("seed = [4, 2]")), tmp_path).tasks
    assert [(t.config.attention, t.settings["train"]["seed"]) for t in tasks] == [
        (a, s) for a in ATTENTIONS for s in (4, 2)
    ]


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("seed = 1\nseeds = 2", ["seeds", "either seed"]),
        ("seed = -1", ["seed", ">= 0"]),
        ("seed = [0, 'a']", ["seed", ">= 0"]),
        ("seeds = 0", ["seeds", ">= 1"]),
        ('model = "base"', ["model", "not used by motion"]),
        ("overrides = { depth = 1 }", ["overrides", "not used by motion"]),
        ('steps = "many"', ["steps", "integer"]),
        ('lr = "fast"', ["lr", "a number"]),
        ("steps = 0", ["steps"]),
        ('attention = "time"', ["attention", "divided"]),
        ("timeout = 0", ["timeout", "positive"]),
        ('data = "/nowhere"', ["data", "train.csv", "'synthetic'"]),
        ("classes = 9", ["classes", "2..8"]),
        ("train_per_class = 0", ["train_per_class", ">= 1"]),
        ("data_seed = -1", ["data_seed", ">= 0"]),
    ],
)
def test_bad_motion_grids_are_one_line_naming_the_key(
    tmp_path: Path, body: str, names: list[str]
) -> None:
    with pytest.raises(ConfigError) as error:
        load_suite(write(tmp_path, motion_grid(body)), tmp_path)
    message = str(error.value)
    assert "[[grid]] 1" in message and "\n" not in message
    assert all(name in message for name in names), message


def test_motion_wants_a_grid_of_its_own(tmp_path: Path) -> None:
    path = write(tmp_path, '[[grid]]\nmeasure = ["motion", "flops"]\nmodel = "base"\n')
    with pytest.raises(ConfigError, match=r"measure: motion trains models of its own"):
        load_suite(path, tmp_path)


def test_a_motion_grid_reads_a_folder_with_both_splits(tmp_path: Path) -> None:
    data = tmp_path / "set"
    data.mkdir()
    (data / "val.csv").write_text("a.mp4 0\n")
    path = write(tmp_path, motion_grid(f'data = "{data}"\nattention = "divided"'))
    with pytest.raises(ConfigError, match=r"data: .* has no train\.csv"):
        load_suite(path, tmp_path)
    (data / "train.csv").write_text("b.mp4 0\n")
    (task,) = load_suite(path, tmp_path).tasks
    assert task.settings["data"] == str(data) and task.settings["synthetic"] is None
    with pytest.raises(ConfigError, match=r"val_per_class: describes the synthetic set"):
        load_suite(write(tmp_path, motion_grid(f'data = "{data}"\nval_per_class = 4')), tmp_path)
    with pytest.raises(ConfigError, match=r"data_seed: describes the synthetic set"):
        load_suite(write(tmp_path, motion_grid(f'data = "{data}"\ndata_seed = 4')), tmp_path)


def test_each_way_of_writing_the_synthetic_motion_set_has_a_folder_of_its_own(
    tmp_path: Path,
) -> None:
    default, larger = (
        load_suite(write(tmp_path, motion_grid(body)), tmp_path).tasks[0].settings
        for body in ('attention = "space"', 'attention = "space"\ntrain_per_class = 128')
    )
    assert default["synthetic"]["train_per_class"] == 64
    assert larger["synthetic"]["train_per_class"] == 128
    assert default["data"] != larger["data"]


def test_the_quick_suite_runs_the_motion_test_for_space_and_divided_instead_of_random_weights(
    tmp_path: Path,
) -> None:
    tasks = load_suite(SUITES / "quick.toml", tmp_path).tasks
    motion = [
        (t.config.attention, t.settings["train"]["seed"])
        for t in tasks
        if t.measurement == "motion"
    ]
    assert motion == [("space", 0), ("divided", 0)]
    assert not [t for t in tasks if t.measurement == "accuracy"]  # chance-level top-1 is gone
    full = load_suite(SUITES / "motion.toml", tmp_path).tasks
    assert sorted((t.config.attention, t.settings["train"]["seed"]) for t in full) == sorted(
        (a, s) for a in ATTENTIONS for s in PUBLISHED_SEEDS
    )
    # the published figures: seeds and a set the recipe was not tuned on
    assert not set(PUBLISHED_SEEDS) & set(TUNING_SEEDS) and PUBLISHED_DATA_SEED != 0
    assert {t.settings["synthetic"]["seed"] for t in full} == {PUBLISHED_DATA_SEED}


def test_a_data_seed_writes_another_synthetic_set_and_seed_0_keeps_the_stored_one(
    tmp_path: Path,
) -> None:
    default, zero, fresh = (
        load_suite(write(tmp_path, motion_grid(f'attention = "space"{body}')), tmp_path)
        .tasks[0]
        .settings
        for body in ("", "\ndata_seed = 0", "\ndata_seed = 7")
    )
    assert "seed" not in default["synthetic"] and default == zero  # the stored set, same tasks
    assert fresh["synthetic"]["seed"] == 7 and fresh["data"] != default["data"]
    assert default["sampling"] == "symmetric"  # the synthetic set's clips (`dataset_sampling`)


def test_schemes_with_their_own_default_steps_share_one_recipe(tmp_path: Path) -> None:
    """`axial` trains longer by default; it is the same recipe, and the report pools it."""
    recipes = {
        body: {t.config.attention: t.settings["recipe"] for t in load_suite(
            write(tmp_path, motion_grid(body)), tmp_path).tasks}
        for body in ("", "steps = 100", "lr = 0.001")
    }  # fmt: skip
    assert all(len(set(by_scheme.values())) == 1 for by_scheme in recipes.values())
    assert len({next(iter(by_scheme.values())) for by_scheme in recipes.values()}) == 3


def test_a_fit_grid_is_a_task_per_scheme_run_card_and_axis(tmp_path: Path) -> None:
    suite = load_suite(SUITES / "fit.toml", tmp_path)
    assert {task.measurement for task in suite.tasks} == {"fit"}
    assert len(suite.tasks) == 2 * 2 * 2 * 2  # schemes, backends, cards, axes
    cards = {task.settings["fit"]["card"] for task in suite.tasks}
    assert cards == {"v100-32gb", "h100-80gb"}
    assert {tuple(task.settings["fit"]["axes"]) for task in suite.tasks} == {("frames",), ("size",)}
    task = suite.tasks[0]
    assert task.settings["fit"]["memory"] == 32 * 2**30 and task.settings["mode"] == "train"
    assert task.describe() == "fit joint frames on v100-32gb (8x224 b1 train fp32 sdpa)"


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        ('gpu = "v200"', r"\[\[grid\]\] 1: gpu: unknown GPU 'v200'; accepted: v100-16gb"),
        ('memory = "8GiB"\ngpu = "t4"', "gpu: give gpu"),
        ('memory = "0"', "memory: cannot read '0'"),
        ('gpu = "t4"\naxis = "depth"', "axis: unknown value 'depth'"),
        ('gpu = "t4"\nframes = 4096', "frames: 4096 is outside the frames bounds 1..1024"),
        ('gpu = "t4"\nwarmup = 2', "warmup: not used by fit"),
    ],
)
def test_bad_fit_grids_name_the_key(tmp_path: Path, lines: str, match: str) -> None:
    text = f'[[grid]]\nmeasure = ["fit"]\nmodel = "base"\n{lines}\n'
    with pytest.raises(ConfigError, match=match):
        load_suite(write(tmp_path, text), tmp_path)


def test_auto_iterations_carry_their_limits_and_fixed_counts_keep_their_old_keys(
    tmp_path: Path,
) -> None:
    grid = '[[grid]]\nmeasure = ["latency"]\nmodel = "base"\n'
    (fixed,) = load_suite(write(tmp_path, grid + "iterations = 10\n"), tmp_path).tasks
    assert {"target_ci", "max_time", "max_warmup"}.isdisjoint(fixed.settings)
    auto = grid + 'iterations = "auto"\nwarmup = "auto"\ntarget_ci = 0.05\nmax_time = 4\n'
    (timed,) = load_suite(write(tmp_path, auto), tmp_path).tasks
    assert (timed.settings["iterations"], timed.settings["warmup"]) == ("auto", "auto")
    assert (timed.settings["target_ci"], timed.settings["max_time"]) == (0.05, 4)
    assert timed.settings["max_warmup"] == 20 and timed.key != fixed.key
