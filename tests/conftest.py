"""Shared fixtures: the read-only real data beside the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("SIMLOSS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def shared_path(*parts: str) -> Path:
    """Path under the shared data folder; skips the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (set SIMLOSS_SHARED_DATA)")
    return path


@pytest.fixture
def shared_data() -> Path:
    """The shared real-data folder (``../shared/data``); skips when absent."""
    return shared_path()
