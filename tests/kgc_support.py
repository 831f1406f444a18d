"""Helpers shared by the link prediction tests (tiny encoders on ShapesKG)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import torch

from pykeen_mkgformer.demo import shapes_model_settings
from pykeen_mkgformer.kgc import presets

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Tiny models are dominated by per-op overhead: one intra-op thread is faster and does not fight other processes."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def tiny_model_kwargs(image_cache_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The package's tiny MKGformer preset, quiet, without stage 1, with a test-local pixel cache."""
    return presets.tiny_model_kwargs(
        **{"entity_modeling_epochs": 0, "image_cache_dir": str(image_cache_dir), "progress": False, **overrides}
    )


def shapes_pipeline_kwargs(image_cache_dir: Path, *, random_seed: int, **model_overrides: Any) -> dict[str, Any]:
    """``pipeline`` keyword arguments of the ShapesKG table's MKGformer (:func:`pykeen_mkgformer.demo.shapes_model_settings`:
    2 fused layers, 30 + 30 epochs), quiet, with a test-local pixel cache, evaluated on tail prediction;
    ``model_overrides`` win."""
    settings = shapes_model_settings()["MKGformer"]
    model_kwargs = {**settings["model_kwargs"], "image_cache_dir": str(image_cache_dir), "progress": False}
    return dict(
        settings,
        model_kwargs={**model_kwargs, **model_overrides},
        training_kwargs={**settings["training_kwargs"], "use_tqdm": False},
        evaluation_kwargs=dict(batch_size=64, targets=("tail",), use_tqdm=False),
        random_seed=random_seed,
    )


def run_python(code: str, *, cwd: Path, timeout: float = 240, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (one thread), failing with its output when it fails."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
    return run_command([sys.executable, "-c", code], cwd=cwd, timeout=timeout, env=full_env)


def run_command(
    command: list[str], *, cwd: Path, timeout: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a command, asserting success and showing its output otherwise."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
    process = subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    assert process.returncode == 0, f"{command} failed:\nSTDOUT:\n{process.stdout[-4000:]}\nSTDERR:\n{process.stderr[-6000:]}"
    return process
