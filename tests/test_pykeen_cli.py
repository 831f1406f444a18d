"""PyKEEN's own command line with the plugin installed: no warnings, and ``pykeen train mkgformer`` trains offline."""

from __future__ import annotations

import inspect
import json
import shutil
import sys
from pathlib import Path

import torch
from kgc_support import REPO_ROOT, run_command

from pykeen_mkgformer.kgc import MKGformer
from pykeen_mkgformer.kgc.presets import resolve_encoder, tiny_text_encoder, tiny_vision_encoder
from pykeen_mkgformer.pykeen_cli import _no_option, mkgformer_options


def pykeen_command() -> list[str]:
    executable = shutil.which("pykeen", path=str(Path(sys.executable).parent)) or shutil.which("pykeen")
    assert executable, "the pykeen console script is not installed"
    return [executable]


def pykeen(*args: str, tmp_path: Path, timeout: float = 240):
    env = {"PYSTOW_HOME": str(tmp_path / "pystow"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return run_command([*pykeen_command(), *args], cwd=tmp_path, env=env, timeout=timeout)


def assert_quiet(process) -> None:
    assert "Unable to handle parameter" not in process.stdout + process.stderr, process.stderr[-3000:]
    warnings = [line for line in process.stderr.splitlines() if "mkgformer" in line.lower() and "warn" in line.lower()]
    assert not warnings, warnings


def test_help_and_ls_print_no_warning(tmp_path):
    assert_quiet(pykeen("--help", tmp_path=tmp_path))
    # a bare `pykeen ls` fails in PyKEEN 1.11.1 itself (its default sub-command "github-readme" does not exist)
    listing = pykeen("ls", "models", tmp_path=tmp_path)
    assert_quiet(listing)
    assert "mkgformer" in listing.stdout.lower()


def test_train_mkgformer_exposes_the_options():
    from click.testing import CliRunner
    from pykeen.cli import main

    result = CliRunner().invoke(main, ["train", "mkgformer", "--help"])
    assert result.exit_code == 0, result.output
    for flag in ("--text-encoder", "--vision-encoder", "--fusion-layers", "--use-pgi / --no-use-pgi", "--dropout",
                 "--entity-modeling-epochs", "--max-seq-length", "--description [name|description]"):
        assert flag in result.output, flag
    assert "--kwargs" not in result.output and "--image-layout" not in result.output


def test_options_cover_every_parameter():
    options = mkgformer_options(MKGformer)
    parameters = set(inspect.signature(MKGformer.__init__).parameters) - {"self", "triples_factory", "loss"}
    assert set(options) == parameters
    assert options["image_layout"] is _no_option and options["kwargs"] is _no_option
    assert options["text_encoder"] is not _no_option


def test_encoder_presets_by_name(tmp_path, monkeypatch):
    assert resolve_encoder("tiny", "text") == tiny_text_encoder()
    assert resolve_encoder("tiny", "vision") == tiny_vision_encoder()
    assert resolve_encoder("bert-base-uncased", "text") == "bert-base-uncased"
    # a folder of that name wins
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()
    assert resolve_encoder("tiny", "text") == "tiny"


def test_pykeen_train_mkgformer_offline(tmp_path):
    out = tmp_path / "out"
    process = pykeen(
        "train", "mkgformer", "--dataset", "shapeskg", "-I", "--training-loop", "lcwa", "--loss", "bcewithlogits",
        "--text-encoder", "tiny", "--vision-encoder", "tiny", "--fusion-layers", "1", "--max-seq-length", "32",
        "--entity-modeling-epochs", "1", "--no-progress", "--dropout", "0.0",
        "-n", "2", "-b", "32", "--random-seed", "1", "--no-automatic-memory-optimization",
        "--output-directory", str(out),
        tmp_path=tmp_path,
    )
    assert_quiet(process)
    results = json.loads((out / "results.json").read_text())
    hits = results["metrics"]["both"]["realistic"]["hits_at_10"]
    assert 0.0 < hits <= 1.0
    model = torch.load(out / "trained_model.pkl", weights_only=False)
    assert type(model).__name__ == "MKGformer"
    assert model.spec["text_encoder"] == tiny_text_encoder()
    assert model.spec["vision_encoder"] == tiny_vision_encoder()
    assert model.spec["fusion_layers"] == 1 and model.spec["dropout"] == 0.0
    assert bool(model.entity_modeling_done)
    assert len(results["losses"]) == 2
