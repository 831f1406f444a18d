"""The demo command end to end (shortened: one MKGformer epoch, two TransE epochs; both tables), as a newcomer runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch
from click.testing import CliRunner

from pykeen_mkgformer.cli import main
from pykeen_mkgformer.demo import TEXT_ONLY_NOTE

#: a warning on the terminal: Python's ``UserWarning: ...`` (with or without FILE:LINE before it) or a log record
WARNING = re.compile(r"(\b\w*Warning: .*|\b(?:WARNING|ERROR|CRITICAL):\S+:.*)$")


def terminal_lines(stderr: str) -> list[str]:
    """The lines of a terminal stream, progress bars' carriage returns included."""
    return [part.strip() for line in stderr.split("\n") for part in line.split("\r") if part.strip()]


def run_demo_command(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    """``pykeen-mkgformer demo`` as on a fresh machine: a new process, no benchmark data, no thread variables."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYKEEN_MKGFORMER_DATA", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    command = Path(sys.executable).with_name("pykeen-mkgformer")
    process = subprocess.run(
        [str(command), "demo", "--output", str(tmp_path), *arguments], cwd=tmp_path,
        env={**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}, capture_output=True, text=True, timeout=600,
    )
    assert process.returncode == 0, process.stderr[-5000:]
    return process


def test_demo_prints_the_table_and_only_what_a_newcomer_needs(tmp_path):
    process = run_demo_command(tmp_path, "--model", "MKGformer", "--model", "TransE", "--epochs", "1", "--kge-epochs", "2",
                               "--entity-modeling-epochs", "0", "--shapes-epochs", "1")
    output = process.stdout
    assert "| MKGformer |" in output and "| TransE |" in output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["model"] for row in summary] == ["MKGformer", "TransE"]
    for row in summary:
        assert 0.0 < row["mrr"] <= 1.0 and row["mr"] >= 1.0 and row["parameters"] > 0
    assert (tmp_path / "MKGformer" / "trained_model.pkl").is_file()
    # the ShapesKG table: MKGformer with and without images, TransE (RotatE was not asked for)
    assert "ShapesKG" in output and "| MKGformer (no images) |" in output
    shapes = json.loads((tmp_path / "ShapesKG" / "summary.json").read_text())
    assert [row["model"] for row in shapes] == ["MKGformer", "MKGformer (no images)", "TransE"]
    for row in shapes:
        assert 0.0 < row["mrr"] <= 1.0 and row["mr"] >= 1.0
    assert (tmp_path / "ShapesKG" / "MKGformer_no_images" / "trained_model.pkl").is_file()
    # the no-images model reads no pixels
    assert torch.load(tmp_path / "ShapesKG" / "MKGformer_no_images" / "trained_model.pkl", weights_only=False).images is None

    # the terminal: progress bars, the tables, and one note (text-only WN18IMGMini), no library warning, no INFO log
    lines = terminal_lines(process.stderr)
    warnings = [match.group(1) for line in lines if (match := WARNING.search(line))]
    assert warnings == [f"UserWarning: {TEXT_ONLY_NOTE}"], warnings
    assert not [line for line in lines if re.search(r"\bINFO:", line)]
    assert any("Training epochs on cpu" in line for line in lines)


def test_verbose_shows_everything(tmp_path):
    """What the default terminal leaves out is there with --verbose: PyKEEN's INFO log, torch_max_mem's CPU note."""
    process = run_demo_command(tmp_path, "--verbose", "--threads", "2", "--model", "TransE", "--kge-epochs", "1", "--no-shapes")
    lines = terminal_lines(process.stderr)
    assert "using 2 CPU threads (--threads)" in lines
    assert any(re.search(r"\bINFO:pykeen\.", line) for line in lines)
    assert any(re.search(r"\bWARNING:torch_max_mem\.api:Encountered tensors on device_types=\{'cpu'\}", line) for line in lines)


def test_demo_rejects_unknown_models(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--output", str(tmp_path), "--model", "DistMult"])
    assert result.exit_code != 0 and "DistMult" in result.output


def test_memory_options_follow_the_device():
    from pykeen_mkgformer.demo import training_kwargs_for

    assert training_kwargs_for("cpu") == dict(training_kwargs=dict(pin_memory=False),
                                              training_loop_kwargs=dict(automatic_memory_optimization=False))
    assert training_kwargs_for("cuda:0")["training_kwargs"]["pin_memory"] is True
    assert training_kwargs_for("cuda")["training_loop_kwargs"]["automatic_memory_optimization"] is True
