"""Shared fixtures: tiny model configurations (depth 2, width 64, 4 frames, 32 px), and the
benchmark scripts as modules."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch

# PyAV before any test module imports decord, or PyAV's VP9 encoder cannot open in this process
# (`tsfbench.data.decoders.import_decord` says why).
with contextlib.suppress(ImportError):
    import av  # noqa: F401

TINY = {"dim": 64, "depth": 2, "heads": 4, "drop_path": 0.0}


@pytest.fixture
def tiny() -> dict[str, object]:
    """The tiny TimeSformer every test builds: `build_model` / probe overrides (depth 2, width
    64, 4 heads) and no stochastic depth, so that a train-mode step is deterministic."""
    return dict(TINY)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests run where CUDA is, and are skipped (not failed) elsewhere."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """`load_benchmark("vs_reference")`: `benchmarks/vs_reference.py` imported as a module (the
    scripts are not a package), once per session."""

    def load(name: str) -> ModuleType:
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses look their module up there
            spec.loader.exec_module(module)
        return sys.modules[name]

    return load
