"""GPU tests: each module is marked `gpu` (skipped without CUDA by tests/conftest.py); tiny
models (depth 2, width 64, 4 heads) so that the whole folder fits the first minutes on a GPU."""

from __future__ import annotations

import pytest

TINY = {"dim": 64, "depth": 2, "heads": 4}


@pytest.fixture
def tiny() -> dict[str, object]:
    return dict(TINY)
