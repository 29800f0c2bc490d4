"""`tsfbench run`: results land in the store as tasks finish; a killed run resumes exactly."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tsfbench.cli import app
from tsfbench.runner import ensure_synthetic, run_suite
from tsfbench.store import Store
from tsfbench.suite import load_suite
from tsfbench.terminal import render_run, stdout

TINY_RUNTIME = """
name = "tiny"
[[grid]]
measure = ["latency", "memory"]
model = "base"
attention = ["space", "joint", "divided", "axial"]
frames = 2
size = 32
overrides = { depth = 1, dim = 32, heads = 2 }
warmup = 0
iterations = 1
device = "cpu"
"""
TINY_FLOPS = """
name = "tiny-flops"
[[grid]]
measure = ["flops"]
model = "base"
attention = ["space", "joint", "divided"]
frames = [1, 2]
size = 32
"""


def tsfbench(*args: str | Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tsfbench", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_killed_run_resumes_and_measures_every_task_exactly_once(tmp_path: Path) -> None:
    suite_path = tmp_path / "tiny.toml"
    suite_path.write_text(TINY_RUNTIME)
    store_path = tmp_path / "r.sqlite"
    suite = load_suite(suite_path, tmp_path)
    child = tsfbench("run", suite_path, "--store", store_path)
    store = Store(store_path)
    deadline = time.monotonic() + 120
    while not store.rows() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    before = {row.task: row.created for row in store.rows()}
    assert 1 <= len(before) < len(suite.tasks), "the kill should land mid-suite"

    summary = run_suite(suite, store)

    after = store.rows()
    assert sorted(row.task for row in after) == sorted(task.key for task in suite.tasks)
    assert summary.skipped == len(before)
    assert sum(summary.statuses.values()) == len(suite.tasks) - len(before)
    assert {row.task: row.created for row in after if row.task in before} == before
    assert all(row.status == "ok" and row.record["latency_median_ms"] > 0 for row in after)


# `tsfbench` whose second runtime task first starts a child that runs until the test lets it go
# (a FIFO nobody writes to), so Ctrl-C lands while a task's child is running, whatever the
# machine's load: the real runner, isolation and CLI, with one task that waits for the test.
GATED_TSFBENCH = """
import sys
from pathlib import Path


def hold(started: str, gate: str) -> None:
    Path(started).write_text("running")
    with open(gate) as fifo:  # blocks until the test opens the FIFO's other end
        fifo.read()


if __name__ == "__main__":
    import signal

    # Ctrl-C as a terminal's foreground job gets it, whatever the test's own process inherited:
    # a shell starts a background job (`cmd &`) with SIGINT ignored, and a Python started
    # ignoring it keeps it ignored, so the run would never see the test's Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from tsfbench import cli, runner
    from tsfbench.measure.isolate import run_isolated

    started, gate = sys.argv.pop(), sys.argv.pop()  # the test's, not the command's
    measure, calls = runner._runtime_record, []

    def gated(task, env):
        calls.append(task)
        if len(calls) == 2:
            run_isolated(hold, started, gate)
        return measure(task, env)

    runner._runtime_record = gated
    sys.exit(cli.main())
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process groups in /proc")
def test_ctrl_c_exits_130_in_one_message_and_keeps_finished_tasks(tmp_path: Path) -> None:
    """Ctrl-C signals the whole process group; it lands here while the second task's child
    runs (it waits for the test), which must neither print a traceback nor outlive the run."""
    suite_path = tmp_path / "tiny.toml"
    suite_path.write_text(TINY_RUNTIME)
    store_path = tmp_path / "r.sqlite"
    script, started, gate = tmp_path / "gated.py", tmp_path / "started", tmp_path / "gate"
    script.write_text(GATED_TSFBENCH)
    os.mkfifo(gate)
    child = subprocess.Popen(
        [sys.executable, script, "run", suite_path, "--store", store_path, gate, started],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.01)
        assert started.exists(), "the second task's child never started"
        os.killpg(child.pid, signal.SIGINT)
        _, err = child.communicate(timeout=60)
        assert child.returncode == 130, err
        assert "Traceback" not in err and "interrupted" in err and "resume" in err
        assert err.count("interrupted") == 1, err  # one message (rich wraps it at 80 columns)
        store = Store(store_path)
        assert 1 <= len(store.rows()) < len(load_suite(suite_path, tmp_path).tasks)
        assert group_empties(child.pid, within=15), "a child outlived the interrupted run"
    finally:
        if child.poll() is None:
            child.kill()
        with contextlib.suppress(OSError):  # lets a child that outlived the run finish
            os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))


def members(group: int) -> list[int]:
    """Live processes of process group `group` (Linux /proc; zombies excluded)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        if fields[0] != "Z" and int(fields[2]) == group:
            pids.append(int(stat.parent.name))
    return pids


def group_empties(group: int, within: float) -> bool:
    """Whether process group `group` has no live process left within `within` seconds."""
    deadline = time.monotonic() + within
    while members(group) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not members(group)


def test_force_redoes_finished_tasks(tmp_path: Path) -> None:
    suite_path = tmp_path / "tiny.toml"
    suite_path.write_text(TINY_FLOPS)
    suite, store = load_suite(suite_path, tmp_path), Store(tmp_path / "r.sqlite")
    first = run_suite(suite, store)
    again = run_suite(suite, store)
    forced = run_suite(suite, store, resume=False)
    assert first.statuses == {"ok": 6} and again.skipped == 6 and forced.statuses == {"ok": 6}
    assert len(store.rows()) == 6
    flops = {
        (r.record["attention"], r.record["frames"]): r.record["flops_per_view"]
        for r in store.rows()
    }
    assert flops[("joint", 2)] > flops[("joint", 1)] > 0


def test_two_shards_in_parallel_share_one_store(tmp_path: Path) -> None:
    suite_path = tmp_path / "tiny.toml"
    suite_path.write_text(TINY_FLOPS)
    store_path = tmp_path / "r.sqlite"
    children = [
        tsfbench("run", suite_path, "--store", store_path, "--shard", f"{i}/2") for i in (0, 1)
    ]
    for child in children:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err.decode()
    rows = Store(store_path).rows()
    suite = load_suite(suite_path, tmp_path)
    assert sorted(r.task for r in rows) == sorted(t.key for t in suite.tasks)


@pytest.mark.parametrize(
    ("suite_text", "names"),
    [("[[grid]]\nmeasure = ['flops']\nmodel = 'base'\nframez = 8\n", ["framez", "[[grid]] 1"])],
)
def test_a_bad_suite_is_one_line_and_exit_2(
    tmp_path: Path, suite_text: str, names: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(suite_text)
    result = CliRunner().invoke(app, ["run", str(path), "--store", str(tmp_path / "r.sqlite")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and all(name in lines[0] for name in names), lines


def test_a_synthetic_accuracy_task_generates_its_videos_once_and_evaluates(
    tmp_path: Path,
) -> None:
    suite_path = tmp_path / "acc.toml"
    suite_path.write_text(
        '[[grid]]\nmeasure = ["accuracy"]\nmodel = "base"\nframes = 2\nsize = 32\n'
        "classes = 4\nper_class = 1\nbatch = 4\nworkers = 0\n"
        "overrides = { depth = 1, dim = 32, heads = 2 }\n"
    )
    suite, store = load_suite(suite_path, tmp_path), Store(tmp_path / "r.sqlite")
    summary = run_suite(suite, store)
    assert summary.statuses == {"ok": 1}, summary.failures
    (row,) = store.rows("accuracy")
    assert row.record["evaluated"] == 4 and row.record["temporal_clips"] == 1
    assert row.record["overrides"] == {"depth": 1, "dim": 32, "heads": 2}
    assert (tmp_path / "synthetic" / "val.csv").is_file()
    assert (tmp_path / "synthetic").stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700
    assert not list(tmp_path.glob(".synthetic-*"))  # no scratch copy left behind


def test_racing_writers_of_the_synthetic_set_leave_one_copy(tmp_path: Path) -> None:
    csv = tmp_path / "synthetic" / "val.csv"
    ensure_synthetic(csv)
    listed = csv.read_text()
    ensure_synthetic(csv)  # already there: untouched
    assert csv.read_text() == listed
    # Another shard is mid-way through placing its copy: ours loses the rename and is dropped.
    other = tmp_path / "other"
    other.mkdir()
    (other / "theirs.txt").write_text("the winner's copy")
    ensure_synthetic(other / "val.csv")
    assert sorted(p.name for p in other.iterdir()) == ["theirs.txt"]
    assert not list(tmp_path.glob(".synthetic-*"))


def test_dry_run_lists_stored_and_pending_tasks_and_measures_nothing(tmp_path: Path) -> None:
    suite_path = tmp_path / "tiny.toml"
    suite_path.write_text(TINY_FLOPS)
    store_path = tmp_path / "r.sqlite"
    args = ["run", str(suite_path), "--store", str(store_path), "--dry-run", "--json"]
    before = CliRunner().invoke(app, args)
    assert before.exit_code == 0, before.output
    assert [row["state"] for row in json.loads(before.stdout)] == ["to run"] * 6
    assert not store_path.exists()  # a dry run creates no store
    suite = load_suite(suite_path, tmp_path)
    half = run_suite(suite, Store(store_path), shard_index=0, shard_count=2)
    after = json.loads(CliRunner().invoke(app, args).stdout)
    assert sum(row["state"] == "stored" for row in after) == half.tasks == 3
    assert len(Store(store_path).rows()) == 3


def test_torchrun_ranks_measure_disjoint_halves_into_one_store(tmp_path: Path) -> None:
    suite_path = tmp_path / "tiny.toml"
    suite_path.write_text(TINY_FLOPS)
    store_path = tmp_path / "r.sqlite"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["-m", "tsfbench", "run", str(suite_path), "--store", str(store_path)]
    # FLOPs only, on the CPU: with fewer GPUs than ranks, `run` would rightly refuse
    env = os.environ | {"CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rank 0/2" in done.stdout and "rank 1/2" in done.stdout
    rows = Store(store_path).rows()
    assert sorted(r.task for r in rows) == sorted(t.key for t in load_suite(suite_path).tasks)


def fake_nvml(monkeypatch: pytest.MonkeyPatch, gpus: int) -> None:
    """NVML of a host with `gpus` GPUs (what `bind_rank_gpu` counts them with)."""
    import pynvml

    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlShutdown", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: gpus)


def rank_env(monkeypatch: pytest.MonkeyPatch, local: int, ranks: int) -> None:
    for name, value in (("RANK", local), ("LOCAL_RANK", local), ("WORLD_SIZE", ranks),
                        ("LOCAL_WORLD_SIZE", ranks)):  # fmt: skip
        monkeypatch.setenv(name, str(value))


@pytest.mark.parametrize("local", [0, 2])
def test_more_torchrun_ranks_than_gpus_is_one_line_and_exit_2_on_every_rank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local: int
) -> None:
    """3 ranks, 2 GPUs, CUDA_VISIBLE_DEVICES unset: rank 2 would see no GPU and measure on the
    CPU; every rank stops before measuring anything, rank 0 included."""
    rank_env(monkeypatch, local, ranks=3)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake_nvml(monkeypatch, gpus=2)
    suite_path = tmp_path / "tiny.toml"
    suite_path.write_text(TINY_FLOPS)
    store_path = tmp_path / "r.sqlite"
    result = CliRunner().invoke(app, ["run", str(suite_path), "--store", str(store_path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "3 ranks on this node but 2 GPU(s)" in lines[0], lines
    assert "--nproc-per-node 2" in lines[0]
    assert not store_path.exists()


@pytest.mark.parametrize(
    ("visible", "gpus", "local", "bound"),
    [
        (None, 2, 1, "1"),  # unset: NVML's count, rank i on GPU i
        ("3,1", 4, 1, "1"),  # the listed GPUs, in their order
        ("GPU-aa,GPU-bb", 0, 0, "GPU-aa"),  # UUIDs pass through
        ("", 2, 1, ""),  # all hidden: stays hidden, every rank on the CPU
        (None, 0, 1, None),  # no GPU (or no NVML): left alone
    ],
)
def test_bind_rank_gpu_shows_each_rank_its_own_gpu(
    monkeypatch: pytest.MonkeyPatch, visible: str | None, gpus: int, local: int, bound: str | None
) -> None:
    from tsfbench.runner import bind_rank_gpu

    rank_env(monkeypatch, local, ranks=2)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    fake_nvml(monkeypatch, gpus)
    bind_rank_gpu()
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == bound


def test_a_task_key_does_not_depend_on_the_device_a_rank_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`device = "auto"` is the same task on a rank with a GPU and on one without: shards split
    one list, resume finds the rows, and a report built elsewhere finds them too."""
    suite_path = tmp_path / "tiny.toml"
    suite_path.write_text(TINY_RUNTIME.replace('device = "cpu"', 'device = "auto"'))
    keys = {}
    for cuda in (False, True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        keys[cuda] = [task.key for task in load_suite(suite_path, tmp_path).tasks]
    assert keys[True] == keys[False] and len(set(keys[True])) == 4


ACCURACY_SUITE = """
[[grid]]
measure = ["accuracy"]
model = "base"
frames = [2, 4]
size = 32
classes = 4
per_class = 1
batch = 4
workers = 0
overrides = { depth = 1, dim = 32, heads = 2 }
"""


@pytest.mark.gpu
def test_a_rank_of_run_counts_gpus_with_nvml_and_evaluates_on_the_one_it_sees(
    tmp_path: Path,
) -> None:
    """Rank 0 of a 2-node job (one rank per node), CUDA_VISIBLE_DEVICES unset: NVML counts the
    GPUs, the rank is bound to GPU 0 and its accuracy task runs there as cuda:0."""
    suite_path = tmp_path / "acc.toml"
    suite_path.write_text(ACCURACY_SUITE)
    store_path = tmp_path / "r.sqlite"
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env |= {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1"}
    command = [sys.executable, "-m", "tsfbench", "run", str(suite_path), "--store", str(store_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = Store(store_path).rows("accuracy")
    assert [(row.status, row.record["device"]) for row in rows] == [("ok", "cuda:0")]


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="two ranks need two GPUs")
def test_torchrun_ranks_of_run_evaluate_accuracy_each_on_its_own_gpu(tmp_path: Path) -> None:
    """Rank 1 sees only its GPU, as cuda:0: asking for cuda:1 there was an invalid ordinal."""
    suite_path = tmp_path / "acc.toml"
    suite_path.write_text(ACCURACY_SUITE)
    store_path = tmp_path / "r.sqlite"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["-m", "tsfbench", "run", str(suite_path), "--store", str(store_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = Store(store_path).rows("accuracy")
    assert sorted((row.status, row.record["device"]) for row in rows) == [("ok", "cuda:0")] * 2


def test_a_timed_out_task_is_stored_as_timeout_and_not_run_again(tmp_path: Path) -> None:
    """A timeout is a result, like an OOM: a resumed run must not spend the time again."""
    suite_path = tmp_path / "slow.toml"
    suite_path.write_text(
        TINY_RUNTIME.replace(
            'attention = ["space", "joint", "divided", "axial"]', 'attention = "divided"'
        )
        + "timeout = 0.01\n"
    )
    suite = load_suite(suite_path, tmp_path)
    store = Store(tmp_path / "r.sqlite")
    first = run_suite(suite, store)
    assert first.statuses == {"timeout": 1}
    assert [row.status for row in store.rows()] == ["timeout"]
    again = run_suite(suite, store)
    assert again.skipped == 1 and again.statuses == {}


TINY_MOTION = """
name = "motion-tiny"
[[grid]]
measure = ["motion"]
attention = ["space", "divided"]
data = "{data}"
depth = 1
dim = 32
heads = 2
frames = 4
steps = 3
batch = 4
"""


def test_motion_tasks_store_a_row_per_scheme_and_seed_and_resume_without_training(
    tmp_path: Path, motion_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def in_this_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained in the parent: a GPU run would keep a CUDA context here")

    monkeypatch.setattr("tsfbench.train.motion_test", in_this_process)  # the child has its own
    suite_path = tmp_path / "motion.toml"
    suite_path.write_text(TINY_MOTION.format(data=motion_data))
    suite, store = load_suite(suite_path, tmp_path), Store(tmp_path / "r.sqlite")
    steps: list[tuple[str, int, int]] = []
    summary = run_suite(
        suite, store, training=lambda task, *step: steps.append((task.key, *step[:2]))
    )
    assert summary.statuses == {"ok": 2}, summary.failures
    rows = {row.record["attention"]: row for row in store.rows("motion")}
    assert sorted(rows) == ["divided", "space"]
    for task in suite.tasks:
        record = rows[task.config.attention].record
        assert rows[task.config.attention].task == task.key
        assert record["seed"] == 0 and 0 <= record["top1"] <= 100 and record["params"] > 0
        assert Path(record["checkpoint"]).is_file()
        assert (task.key, 3, 3) in steps  # the bar saw each training to its last step
    assert rows["space"].record["recipe"] == rows["divided"].record["recipe"]
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "checkpoints").iterdir()}
    steps.clear()
    again = run_suite(suite, store, training=lambda *args: steps.append(args))
    assert (again.skipped, again.statuses, steps) == (2, {}, [])  # nothing trained again
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "checkpoints").iterdir()} == stamps


def test_a_motion_task_past_its_timeout_is_a_timeout_row(tmp_path: Path, motion_data: Path) -> None:
    suite_path = tmp_path / "motion.toml"
    text = TINY_MOTION.format(data=motion_data).replace('["space", "divided"]', '"divided"')
    suite_path.write_text(text + "timeout = 0.01\n")
    suite, store = load_suite(suite_path, tmp_path), Store(tmp_path / "r.sqlite")
    assert run_suite(suite, store).statuses == {"timeout": 1}
    (row,) = store.rows("motion")
    assert row.record["attention"] == "divided" and "timed out" in row.record["error"]
    assert run_suite(suite, store).skipped == 1


@pytest.fixture(scope="module")
def motion_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic set with both splits (4 classes, 2 videos each)."""
    from tsfbench.data.synth import write_synthetic

    root = tmp_path_factory.mktemp("motion-data")
    write_synthetic(root, per_class=2, train_per_class=2, height=32, width=32)
    return root


def test_fit_tasks_store_their_answers_and_a_second_run_skips_them(tmp_path: Path) -> None:
    suite = tmp_path / "fit.toml"
    suite.write_text(
        """
[[grid]]
measure = ["fit"]
model = "base"
attention = "joint"
frames = 2
size = 32
overrides = { depth = 2, dim = 64, heads = 4 }
memory = ["2.5MiB", "4MiB"]
reserve = "0"
mode = "train"
axis = "frames"
bounds = "frames=1..64"
device = "cpu"
"""
    )
    store = Store(tmp_path / "s.sqlite")
    summary = run_suite(load_suite(suite, tmp_path), store)
    assert summary.statuses == {"predicted": 2} and not summary.failures
    rows = store.frame()
    assert set(rows["measurement"]) == {"fit"} and set(rows["answer"]) <= {"boundary", "all fit"}
    by = {(r["attention"], r["memory_bytes"]): r for r in rows.to_dict("records")}
    assert by["joint", int(2.5 * 2**20)]["largest"] < by["joint", 4 * 2**20]["largest"]
    assert all(r["largest_peak_bytes"] <= r["budget_bytes"] for r in by.values())
    again = run_suite(load_suite(suite, tmp_path), store)
    assert again.skipped == 2 and again.statuses == {}


def test_a_contended_row_is_stored_with_its_note_and_named_in_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tsfbench.runner as runner_module

    busy = "other processes 1.42 cores avg, load 3.1"

    def measured(task: object, env: object) -> tuple[str, dict[str, object]]:
        attention = task.config.attention  # type: ignore[attr-defined]
        contended = attention == "joint"
        note = busy if contended else None
        return "ok", {"attention": attention, "contended": contended, "contention": note}

    monkeypatch.setattr(runner_module, "_runtime_record", measured)
    suite_path = tmp_path / "tiny.toml"
    suite_path.write_text(TINY_RUNTIME)
    store = Store(tmp_path / "r.sqlite")
    summary = run_suite(load_suite(suite_path, tmp_path), store)
    assert [row["task"].split()[2] for row in summary.contended] == ["joint"]  # no quiet row
    marked = {row.record["attention"]: row.record["contended"] for row in store.rows()}
    assert marked == {"space": False, "joint": True, "divided": False, "axial": False}

    with stdout.capture() as captured:
        render_run(asdict(summary))
    assert (
        f"contended: runtime base joint 2x32 infer fp32 b1 (depth=1, dim=32, heads=2): {busy}"
        in (captured.get())
    )


def test_a_run_whose_rows_saw_the_machine_at_other_speeds_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The canary's medians of the run's rows, gathered in the summary; a spread beyond 10% is
    one line under the run's (no row is wrong; they are not comparable to each other)."""
    import tsfbench.runner as runner_module

    speeds = {"space": 38.0, "joint": 39.0, "divided": 50.0, "axial": 40.0}

    def measured(task: object, env: object) -> tuple[str, dict[str, object]]:
        attention = task.config.attention  # type: ignore[attr-defined]
        return "ok", {"attention": attention, "canary_ms": speeds[attention]}

    monkeypatch.setattr(runner_module, "_runtime_record", measured)
    suite_path = tmp_path / "tiny.toml"
    suite_path.write_text(TINY_RUNTIME)
    summary = run_suite(load_suite(suite_path, tmp_path), Store(tmp_path / "r.sqlite"))
    assert sorted(summary.canary_ms) == sorted(speeds.values())
    with stdout.capture() as captured:
        render_run(asdict(summary))
    assert "note: the machine's speed varied 1.32x between these rows" in captured.get()
