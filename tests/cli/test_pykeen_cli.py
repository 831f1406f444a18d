"""PyKEEN's own command line with the plugin installed: no warnings, and ``pykeen train mkgformer`` trains offline."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import sys
from pathlib import Path

import torch
from kgc_support import REPO_ROOT, run_command

import pykeen_mkgformer
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


#: a warning as Python prints it: ``FILE:LINE: CATEGORY: MESSAGE`` (FILE may hold spaces and colons)
WARNING_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<category>\w*(?:Warning|Error)): (?P<message>.*)$")
PACKAGE = Path(pykeen_mkgformer.__file__).resolve().parent


def plugin_warnings(stderr: str) -> list[str]:
    """The warnings that concern the plugin, by category and origin: a warning raised in the plugin's package,
    a warning whose message (not its path: the checkout may lie anywhere, under any name) names MKGformer, or a
    WARNING record of the plugin's loggers. Library warnings about other things (``pin_memory``, ...) pass."""
    found = []
    for line in stderr.splitlines():
        line = line.rstrip()
        match = WARNING_LINE.match(line)
        if match:
            origin = Path(match["file"]).resolve()
            if origin.is_relative_to(PACKAGE) or "mkgformer" in match["message"].lower():
                found.append(line)
        elif re.match(r"^(WARNING|ERROR|CRITICAL):pykeen_mkgformer\b", line):
            found.append(line)
    return found


def test_plugin_warnings_are_told_by_origin_and_message_not_path(tmp_path):
    checkout = tmp_path / "a dir" / "pykeen-mkgformer"
    library = f"{checkout}/.venv/lib/python3.11/site-packages/torch/utils/data/dataloader.py"
    stderr = "\n".join([
        f"{library}:759: UserWarning: 'pin_memory' argument is set as true but no accelerator is found",
        "  super().__init__(loader)",
        f"{PACKAGE / 'kgc' / 'model.py'}:670: UserWarning: something of the plugin",
        f"{checkout}/run.py:3: UserWarning: No entity has an image: MKGformer runs text-only.",
        "WARNING:pykeen_mkgformer.data.readers:a record of the plugin",
        "WARNING:torch_max_mem.api:a record of a library",
        "INFO:pykeen_mkgformer.demo:training MKGformer",
    ])
    assert plugin_warnings(stderr) == stderr.splitlines()[2:5]


def assert_quiet(process) -> None:
    assert "Unable to handle parameter" not in process.stdout + process.stderr, process.stderr[-3000:]
    warnings = plugin_warnings(process.stderr)
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
