"""Shared fixtures: tiny model configurations (depth 2, width 64, 4 frames, 32 px)."""

from __future__ import annotations

import contextlib

import pytest
import torch

# PyAV before any test module imports decord, or PyAV's VP9 encoder cannot open in this process
# (`tsfbench.data.video.import_decord` says why).
with contextlib.suppress(ImportError):
    import av  # noqa: F401

TINY = {"dim": 64, "depth": 2, "heads": 4, "drop_path": 0.0}


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
