"""Shared fixtures: the benchmark data folder (../shared/data), skipped with a reason when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``$PYKEEN_MKGFORMER_DATA`` or ``<repo>/../shared/data``; skip when absent, fail when ``CI=true``."""
    path = Path(os.environ.get("PYKEEN_MKGFORMER_DATA", REPOSITORY.parent / "shared" / "data"))
    if not path.is_dir():
        message = f"benchmark data not found at {path} (set PYKEEN_MKGFORMER_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
