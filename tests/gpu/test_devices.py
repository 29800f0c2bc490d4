"""Which GPU each process uses: accuracy's default device, `bind_rank_gpu` under torchrun,
and the NCCL path of a distributed evaluation (two GPUs; skipped with the reason on one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[2]
TORCHRUN_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                 "MASTER_PORT")  # fmt: skip


def python(code: str, *args: str, **env: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter (CUDA not yet initialised, as in a torchrun rank) with
    `env` on top of this environment; its last stdout line, as JSON."""
    environ = {k: v for k, v in os.environ.items() if k not in TORCHRUN_KEYS}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=environ, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def uuid(index: int) -> str:
    return str(torch.cuda.get_device_properties(index).uuid)


ACCURACY = """
import json, sys
from tsfbench.config import AccuracySettings, RunConfig
from tsfbench.evaluate import accuracy
config = RunConfig(frames=2, size=32, classes=2, views=1)
settings = AccuracySettings(sys.argv[1], batch=2, workers=0, rate=1)
record = accuracy(config, settings, distributed_eval=False, depth=2, dim=64, heads=4)
print(json.dumps({"device": record["device"], "evaluated": record["evaluated"]}))
"""


def test_a_rank_of_run_evaluates_accuracy_on_the_one_gpu_it_sees(tmp_path: Path) -> None:
    """`tsfbench run` under torchrun leaves rank 1 one visible GPU (cuda:0 to it) and
    LOCAL_RANK=1: asking for cuda:LOCAL_RANK named a GPU that does not exist."""
    pytest.importorskip("decord")
    from tsfbench.data.synth import write_synthetic

    csv = write_synthetic(tmp_path, classes=2, per_class=1, frames=8)
    own_gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or "0"
    out = python(ACCURACY, str(csv), CUDA_VISIBLE_DEVICES=own_gpu, LOCAL_RANK="1", RANK="1")
    assert out == {"device": "cuda:0", "evaluated": 2}


BIND = """
import json, os, torch
from tsfbench.runner import bind_rank_gpu
bind_rank_gpu()
print(json.dumps({"visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
                  "count": torch.cuda.device_count(),
                  "uuid": str(torch.cuda.get_device_properties(0).uuid)}))
"""


def test_bind_rank_gpu_leaves_a_rank_exactly_its_own_gpu() -> None:
    """One rank per node (two nodes of one GPU each): it sees one GPU, the node's first."""
    out = python(BIND, LOCAL_RANK="0", RANK="1", WORLD_SIZE="2", LOCAL_WORLD_SIZE="1")
    assert out["count"] == 1 and out["uuid"] == uuid(0)


def two_gpus() -> None:
    if torch.cuda.device_count() < 2:
        pytest.skip(f"needs two GPUs; {torch.cuda.device_count()} visible (the NCCL path and "
                    "one GPU per rank cannot be shown on one)")  # fmt: skip


def test_bind_rank_gpu_gives_two_ranks_two_different_gpus() -> None:
    two_gpus()
    seen = [
        python(BIND, LOCAL_RANK=str(rank), RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
        for rank in (0, 1)
    ]
    assert [out["count"] for out in seen] == [1, 1]
    assert [out["uuid"] for out in seen] == [uuid(0), uuid(1)]


NCCL = """
import json, os, torch
import torch.distributed as dist
from tsfbench.evaluate import distributed
rank, world = distributed()
on_cpu = torch.tensor([rank + 1])  # what evaluate reduces: counts and rates on the CPU
dist.all_reduce(on_cpu)
on_gpu = torch.tensor([rank + 1.0], device="cuda")
dist.all_reduce(on_gpu)
print(json.dumps({"rank": rank, "world": world, "local": int(os.environ["LOCAL_RANK"]),
                  "device": torch.cuda.current_device(), "cpu": int(on_cpu),
                  "gpu": float(on_gpu)}), flush=True)
dist.barrier()
dist.destroy_process_group()
"""


def test_two_ranks_join_on_their_own_gpus_and_reduce_cpu_and_gpu_tensors(
    tmp_path: Path,
) -> None:
    two_gpus()
    script = tmp_path / "nccl.py"
    script.write_text(NCCL)
    environ = {k: v for k, v in os.environ.items() if k not in TORCHRUN_KEYS}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(script)],
        env=environ, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line[line.index("{") :] for line in done.stdout.splitlines() if '{"rank"' in line]
    ranks = sorted((json.loads(line) for line in lines), key=lambda out: out["rank"])
    assert [(r["world"], r["device"], r["cpu"], r["gpu"]) for r in ranks] == [
        (2, r["local"], 3, 3.0) for r in ranks
    ]
    assert sorted(r["local"] for r in ranks) == [0, 1]
