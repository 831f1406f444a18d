"""The CPU thread policy of the commands, and the plugin's warnings pointing at the caller."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from kgc_support import REPO_ROOT

from pykeen_mkgformer.threads import DEFAULT_THREADS, ThreadChoice, choose_threads

# a command added to the group after the package's own: it must get the policy like every other
PROBE = """
import torch
from pykeen_mkgformer.cli import main

@main.command()
def probe():
    print("threads", torch.get_num_threads())

main()
"""


def probe(*arguments: str, **environment: str) -> int:
    """The intra-op thread count a command sees, in a fresh interpreter with exactly this thread environment."""
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    process = subprocess.run([sys.executable, "-c", PROBE, "probe", *arguments], env={**env, **environment},
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-3000:]
    lines = [line for line in process.stdout.splitlines() if line.startswith("threads ")]
    return int(lines[-1].split()[1])


def test_decisions():
    assert choose_threads(None, {}) == ThreadChoice(DEFAULT_THREADS, "default")
    assert choose_threads(None, {"OMP_NUM_THREADS": "3"}) == ThreadChoice(3, "OMP_NUM_THREADS")
    assert choose_threads(None, {"MKL_NUM_THREADS": "2"}) == ThreadChoice(2, "MKL_NUM_THREADS")
    # PyTorch reads OMP_NUM_THREADS first
    assert choose_threads(None, {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "2"}).threads == 3
    # unusable values are PyTorch's business, not a reason to take more threads than the default
    assert choose_threads(None, {"OMP_NUM_THREADS": "many"}) == ThreadChoice(DEFAULT_THREADS, "default")
    assert choose_threads(None, {"OMP_NUM_THREADS": "0"}) == ThreadChoice(DEFAULT_THREADS, "default")
    assert choose_threads(2, {"OMP_NUM_THREADS": "3"}) == ThreadChoice(2, "--threads")
    with pytest.raises(ValueError, match="0"):
        choose_threads(0, {})


def test_a_command_runs_with_the_default_the_environment_or_threads():
    # torch alone would take one thread per core (2 on the 2-core machine of the measurements); the command, the default
    assert probe() == DEFAULT_THREADS == 1
    # the user's environment is respected (PyTorch caps it at the core count)
    assert probe(OMP_NUM_THREADS="2") == min(2, os.cpu_count())
    # --threads wins over the environment
    assert probe("--threads", "3", OMP_NUM_THREADS="1") == 3


def test_every_command_has_the_options():
    from pykeen_mkgformer.cli import main

    assert {"demo", "re", "ner", "explain", "predict"} <= set(main.commands)
    for name, command in main.commands.items():
        options = {option for parameter in command.params for option in parameter.opts}
        assert {"--threads", "--verbose"} <= options, name


def test_the_plugin_warning_points_at_the_caller_through_pykeen(tmp_path):
    """``No entity has an image`` raised two frames deep in the model, built by PyKEEN's class-resolver: the
    warning names this file, not ``class_resolver/api.py``."""
    from kgc_support import tiny_model_kwargs
    from pykeen.models import model_resolver

    from pykeen_mkgformer.data import MultimodalTriplesFactory

    triples = np.array([["a", "r", "b"], ["b", "r", "c"], ["c", "r", "a"]])
    factory = MultimodalTriplesFactory.from_labeled_triples(
        triples, entity_descriptions={"a": "one", "b": "two", "c": "three"}, create_inverse_triples=True
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model_resolver.make("MKGformer", triples_factory=factory, **tiny_model_kwargs(tmp_path))
    [warning] = [w for w in caught if "No entity has an image" in str(w.message)]
    assert warning.filename == __file__


def test_an_in_process_command_restores_threads_terminal_and_environment(monkeypatch):
    """Tests and notebooks run commands in-process: the policy and the terminal hold for the command only."""
    import logging

    import click
    import torch
    from click.testing import CliRunner

    from pykeen_mkgformer.cli import _Commands

    group, seen = _Commands(), {}

    @group.command()
    def probe():
        seen.update(threads=torch.get_num_threads(), variable=os.environ.get("OMP_NUM_THREADS"),
                    showwarning=warnings.showwarning, root=logging.getLogger().level)
        click.echo("ran")

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    showwarning, root = warnings.showwarning, logging.getLogger().level
    try:
        torch.set_num_threads(2)
        result = CliRunner().invoke(group, ["probe"])
        assert result.exit_code == 0 and "ran" in result.output, result.output
        assert seen["threads"] == DEFAULT_THREADS and seen["variable"] == str(DEFAULT_THREADS)
        assert seen["showwarning"] is not showwarning and seen["root"] == logging.WARNING
        assert torch.get_num_threads() == 2 and "OMP_NUM_THREADS" not in os.environ
        assert warnings.showwarning is showwarning and logging.getLogger().level == root
        result = CliRunner().invoke(group, ["probe", "--threads", "2", "--verbose"])
        assert result.exit_code == 0 and "using 2 CPU threads (--threads)" in result.output, result.output
        assert seen["threads"] == 2 and seen["root"] == logging.INFO
    finally:
        torch.set_num_threads(before)
