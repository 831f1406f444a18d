"""Shared fixtures: the benchmark data folder and tiny Hugging Face configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_shared_data() -> Path | None:
    """``$PYKEEN_MKGFORMER_DATA``, else ``<repo root>/../shared/data``; None when neither exists."""
    candidates = [os.environ.get("PYKEEN_MKGFORMER_DATA"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only benchmark data; skipped when absent, except under CI where that is a failure."""
    path = find_shared_data()
    if path is None:
        message = "benchmark data not found: set PYKEEN_MKGFORMER_DATA or place it at ../shared/data"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
