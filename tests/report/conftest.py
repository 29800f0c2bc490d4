"""Hand-written result records with the real key names, stored through `Store.put`."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from tsfbench.config import ProbeSettings
from tsfbench.environment import environment_summary
from tsfbench.measure.contention import Contention
from tsfbench.measure.energy import Energy
from tsfbench.measure.latency import Latency
from tsfbench.measure.memory import Memory
from tsfbench.store import Row, Store, digest, environment_id

GPU_ENV = {
    "tsfbench": "0.1.0", "git_commit": "abc1234", "host": "gpu-node", "python": "3.11.7",
    "platform": "Linux", "cpu": "AMD EPYC", "cpu_count": 16, "torch": "2.4.0", "cuda": "12.1",
    "cuda_available": True, "gpus": ["NVIDIA H100"], "nvml_driver": "550.54",
}  # fmt: skip
_clock = itertools.count(1_700_000_000)
SPREAD = (-3, -2, -1, 0, 0, 0, 0, 1, 2, 3)  # % around the median: 10 samples, median exact


def config(
    model: str = "base", attention: str = "divided", frames: int = 8, size: int = 224, **extra: Any
) -> dict[str, Any]:
    """`RunConfig.as_dict()` keys, without going through the registry (CNNs may be absent)."""
    cnn = attention == "-"
    pos = "-" if cnn else ("space" if attention == "space" else "space_time")
    fields = {"pos_embed": pos, "classes": 400, "views": 30 if cnn else 3}
    return {"model": model, "attention": attention, "frames": frames, "size": size, **fields} | (
        extra
    )


def flops_record(gflops: float, params: int, **cfg: Any) -> dict[str, Any]:
    record = config(**cfg)
    return record | {
        "params": params,
        "flops_per_view": int(gflops * 1e9),
        "gflops_per_view": gflops,
        "tflops": gflops * record["views"] / 1e3,
        "counter": "fvcore",
        "unsupported_ops": {},
    }


def runtime_record(
    status: str = "ok",
    latency_ms: float = 100.0,
    peak_bytes: int = 2 * 2**30,
    dtype: str = "fp16",
    device: str = "cuda",
    backend: str = "sdpa",
    **cfg: Any,
) -> dict[str, Any]:
    """What `measure.sweep.measure` returns: config, settings, prediction, figures, status."""
    settings = ProbeSettings(dtype=dtype, backend=backend, device="cpu").as_dict()
    settings |= {"device": device} | {k: cfg.pop(k) for k in ("mode", "memory_limit") if k in cfg}
    figures: dict[str, Any] = {
        **Latency(tuple(latency_ms * (1 + d / 100) for d in SPREAD)).as_record(),
        **Contention(other_cpu_cores=0.01, contended=False).as_record(),
        **Memory(max_ram=peak_bytes // 2, max_process_vram=peak_bytes).as_record(),
        **Energy(joules=50.0, joules_per_clip=5.0, watts=300.0).as_record(),
    }
    if status != "ok":
        figures = dict.fromkeys(figures)
    record = config(**cfg) | settings | {"predicted_peak_bytes": None, "predicted_fits": None}
    error = None if status == "ok" else "CUDA out of memory"
    return record | figures | {"status": status, "error": error}


def predicted_record(
    gib: float | None,
    backend: str = "sdpa",
    mode: str = "train",
    limit_gib: float = 32,
    cpu_alloc_gib: float | None = None,
    device: str = "cpu",
    **cfg: Any,
) -> dict[str, Any]:
    """What a `predict_only` runtime task stores: the prediction, no figures."""
    record = runtime_record("predicted", backend=backend, device=device, dtype="fp32", **cfg)
    limit = int(limit_gib * 2**30)
    peak = None if gib is None else int(gib * 2**30)
    record |= {"mode": mode, "memory_limit": limit, "predicted_peak_bytes": peak, "error": None}
    record["predicted_fits"] = None if peak is None else peak <= limit
    if cpu_alloc_gib is not None:
        record["measured_cpu_alloc_bytes"] = int(cpu_alloc_gib * 2**30)
    return record


def accuracy_record(
    top1: float,
    top5: float,
    classes: int = 400,
    dataset: str | None = "k400",
    rate: int = 32,
    views: int = 3,
    **cfg: Any,
) -> dict[str, Any]:
    """What `evaluate.accuracy` returns (the figures that matter here); `dataset=None` is a row
    stored before results recorded their dataset."""
    identity = {} if dataset is None else {"dataset": dataset}
    return config(classes=classes, **cfg) | identity | {
        "data": "k400/val.csv", "format": "kinetics", "subset": "", "per_class_subset": 0,
        "seed": 0, "rate": rate, "temporal_clips": views // 3, "spatial_crops": 3,
        "sampling": "dense", "batch": 8, "workers": 2, "device": "cuda:0", "videos": 100,
        "evaluated": 100, "skipped": 0, "top1": top1, "top5": top5, "views": views,
        "clips": 100 * views,
    }  # fmt: skip


# Predicted train peaks (GiB, batch 1, fp32) by (attention, backend) at 8 / 16 / 32 frames: the
# issue's first measurement; the size axis (8 frames at 336 / 448) made up in proportion
ISSUE_PEAKS = {
    ("joint", "math"): (3.13, 8.67, 28.99),
    ("divided", "math"): (2.37, 3.83, 6.79),
    ("joint", "sdpa"): (1.55, 2.45, 4.25),
    ("divided", "sdpa"): (2.19, 3.47, 6.03),
}
ISSUE_SIZES = {
    ("joint", "math"): (10.2, 30.5),
    ("divided", "math"): (3.9, 6.9),
    ("joint", "sdpa"): (2.6, 4.4),
    ("divided", "sdpa"): (3.5, 6.1),
}


class Results:
    """A results store that tests fill one record at a time, as `runner.run_suite` does."""

    env = GPU_ENV
    ISSUE_PEAKS, ISSUE_SIZES = ISSUE_PEAKS, ISSUE_SIZES

    def __init__(self, path: Path) -> None:
        self.store = Store(path)

    def add(
        self,
        measurement: str,
        record: dict[str, Any],
        env: dict[str, Any] = GPU_ENV,
        overrides: dict[str, Any] | None = None,
        suite: str = "quick",
    ) -> None:
        record = {"overrides": overrides or {}, **record} | environment_summary(env)
        status = record.get("status", "ok")
        task = digest({k: v for k, v in record.items() if not k.startswith("env_")})
        row = Row(measurement, task, environment_id(env), suite, status, next(_clock), record)
        assert self.store.put(row)

    def flops(self, gflops: float, params: int, **cfg: Any) -> None:
        options = {k: cfg.pop(k) for k in ("env", "overrides", "suite") if k in cfg}
        self.add("flops", flops_record(gflops, params, **cfg), **options)

    def runtime(self, status: str = "ok", **cfg: Any) -> None:
        options = {k: cfg.pop(k) for k in ("env", "overrides", "suite") if k in cfg}
        self.add("runtime", runtime_record(status, **cfg), **options)

    def predicted(self, gib: float | None, **cfg: Any) -> None:
        options = {k: cfg.pop(k) for k in ("env", "overrides", "suite") if k in cfg}
        self.add("runtime", predicted_record(gib, **cfg), **options)

    def figure3(
        self,
        peaks: dict[tuple[str, str], tuple[float, ...]] = ISSUE_PEAKS,
        sizes: dict[tuple[str, str], tuple[float, ...]] = ISSUE_SIZES,
    ) -> None:
        """Predicted Figure 3 memory (frames 8, 16, 32 at 224; crops 336, 448 at 8 frames) and
        the GFLOPs of joint and divided at those frames."""
        for (attention, backend), values in peaks.items():
            for frames, gib in zip((8, 16, 32), values, strict=True):
                self.predicted(gib, attention=attention, backend=backend, frames=frames)
            for size, gib in zip((336, 448), sizes[attention, backend], strict=True):
                self.predicted(gib, attention=attention, backend=backend, size=size)
        gflops = {"joint": (179.7, 406.3, 1094.2), "divided": (196.1, 392.2, 784.4)}
        for attention, values in gflops.items():
            for frames, value in zip((8, 16, 32), values, strict=True):
                self.flops(value, 121_566_352, attention=attention, frames=frames)

    def accuracy(self, top1: float, top5: float, **cfg: Any) -> None:
        options = {k: cfg.pop(k) for k in ("env", "overrides", "suite") if k in cfg}
        self.add("accuracy", accuracy_record(top1, top5, **cfg), **options)


@pytest.fixture
def results(tmp_path: Path) -> Results:
    return Results(tmp_path / "results.sqlite")


@pytest.fixture
def paper_like(results: Results) -> Results:
    """Table 1 schemes, Table 2 models, a Figure 3 sweep with joint OOM, an accuracy."""
    schemes = {
        "space": (140.65, 86_106_256),
        "joint": (179.71, 86_112_400),
        "divided": (196.05, 121_566_352),
        "local_global": (207.15, 121_566_352),
        "axial": (249.71, 157_020_304),
    }
    for attention, (gflops, params) in schemes.items():
        results.flops(gflops, params, attention=attention)
        results.runtime(attention=attention)
    results.flops(1700.0, 121_566_352, model="hr", frames=16, size=448)
    slowfast = {"model": "slowfast_r50", "attention": "-", "frames": 32, "size": 256}
    results.flops(65.5, 34_566_488, **slowfast)
    results.runtime(**slowfast)
    for attention, size in itertools.product(("joint", "divided"), (336, 448)):
        results.flops(size / 2, 121_566_352, attention=attention, size=size)
        results.runtime("oom" if attention == "joint" and size == 448 else "ok",
                        attention=attention, size=size)  # fmt: skip
    results.accuracy(77.5, 93.0)
    return results


@pytest.fixture
def figure3(results: Results) -> Results:
    results.figure3()
    return results
