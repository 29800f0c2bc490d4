"""A synthetic data set written once per session (4 motion classes, 3 videos each)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("av")
    from tsfbench.data.synth import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("synth"), classes=4, per_class=3, seed=0)
