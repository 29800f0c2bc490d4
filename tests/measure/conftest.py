"""Tiny model overrides for the runtime probes (depth 2, width 64, 4 heads)."""

from __future__ import annotations

import pytest

TINY = {"dim": 64, "depth": 2, "heads": 4, "drop_path": 0.0}


@pytest.fixture
def tiny() -> dict[str, object]:
    return dict(TINY)
