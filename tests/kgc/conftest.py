"""Fixtures of the link prediction tests: one intra-op thread for every test, ShapesKG and a pixel cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykeen_mkgformer.data import ShapesKG


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs tiny models on one intra-op thread (see the root ``one_thread``)."""
    yield


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> ShapesKG:
    """ShapesKG at its default size with inverse triples (a module overrides it for a smaller graph)."""
    return ShapesKG(cache_root=tmp_path_factory.mktemp("shapes"), create_inverse_triples=True)


@pytest.fixture(scope="module")
def image_cache(tmp_path_factory) -> Path:
    """A module-local pixel cache folder."""
    return tmp_path_factory.mktemp("pixels")
