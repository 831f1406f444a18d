"""PyKEEN finds MKGformer in fresh interpreters that never imported the plugin (its entry points load it)."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import pytest

from kgc_support import REPO_ROOT, run_command, run_python


def test_model_resolver_lookup_in_a_fresh_interpreter(tmp_path):
    # importing pykeen.models first imports pykeen.datasets half-way through pykeen/models/__init__.py
    process = run_python(
        "import sys\n"
        "from pykeen.models import model_resolver\n"
        "cls = model_resolver.lookup('MKGformer')\n"
        "assert model_resolver.lookup('mkgformer') is cls\n"
        "print(cls.__module__, cls.__name__)\n",
        cwd=tmp_path,
    )
    assert process.stdout.split() == ["pykeen_mkgformer.kgc.model", "MKGformer"]


def test_pipeline_by_name_in_a_fresh_interpreter(tmp_path):
    code = f"""
from pykeen.pipeline import pipeline
from pykeen.datasets import dataset_resolver
result = pipeline(
    dataset="ShapesKG",
    dataset_kwargs=dict(cache_root={str(tmp_path / 'shapes')!r}, num_entities=16, create_inverse_triples=True),
    model="MKGformer",
    model_kwargs=dict(
        text_encoder=dict(model_type="bert", hidden_size=16, num_hidden_layers=1, num_attention_heads=1, intermediate_size=32),
        vision_encoder=dict(model_type="clip_vision_model", hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                            intermediate_size=32, image_size=32, patch_size=16),
        fusion_layers=1, max_seq_length=16, entity_modeling_epochs=1, image_cache_dir={str(tmp_path / 'pixels')!r},
    ),
    loss="bcewithlogits", training_kwargs=dict(num_epochs=1, batch_size=16, use_tqdm=False),
    evaluation_kwargs=dict(use_tqdm=False), random_seed=0,
)
print(type(result.model).__name__, result.metric_results.get_metric("mrr"))
"""
    name, mrr = run_python(code, cwd=tmp_path).stdout.split()[-2:]
    assert name == "MKGformer"
    assert 0.0 < float(mrr) <= 1.0


def test_tiny_experiment_file_through_the_cli(tmp_path):
    """``pykeen experiments run mkgformer_tiny.json``: filtered MRR at least 5x that of a random ranking."""
    config = REPO_ROOT / "benchmarks" / "configs" / "mkgformer_tiny.json"
    pykeen = Path(sys.executable).with_name("pykeen")
    output = tmp_path / "out"
    run_command([str(pykeen), "experiments", "run", str(config), "-d", str(output)], cwd=tmp_path, timeout=400)
    (results_file,) = output.glob("*/replicates/replicate-00000/results.json")
    both = json.loads(results_file.read_text())["metrics"]["both"]["realistic"]
    mrr = both["inverse_harmonic_mean_rank"]
    adjusted = both["adjusted_inverse_harmonic_mean_rank"]  # (MRR - E[MRR]) / (1 - E[MRR])
    expected_random = (mrr - adjusted) / (1 - adjusted)
    assert 0 < expected_random < 0.05
    assert mrr >= 5 * expected_random, f"MRR {mrr:.4f} vs random {expected_random:.4f}"


@pytest.mark.parametrize("name", ["mkgformer_wn18img.json", "mkgformer_fb15k237img.json", "mkgformer_tiny.json"])
def test_experiment_files_use_real_arguments(name):
    import torch
    from pykeen.datasets import dataset_resolver
    from pykeen.optimizers import optimizer_resolver
    from pykeen.pipeline import pipeline
    from pykeen.training.training_loop import _get_optimizer_kwargs

    from pykeen_mkgformer.kgc import MKGformer

    config = json.loads((REPO_ROOT / "benchmarks" / "configs" / name).read_text())
    settings = config["pipeline"]
    assert set(settings) <= set(inspect.signature(pipeline).parameters)
    assert set(settings["model_kwargs"]) <= set(inspect.signature(MKGformer.__init__).parameters)
    assert dataset_resolver.lookup(settings["dataset"]).__module__ == "pykeen_mkgformer.data.datasets"
    assert settings["dataset_kwargs"]["create_inverse_triples"] is True
    if "stopper" in settings:
        from pykeen.stoppers import stopper_resolver

        stopper = stopper_resolver.lookup(settings["stopper"])
        assert set(settings["stopper_kwargs"]) <= set(inspect.signature(stopper).parameters)
    # PyKEEN re-creates the optimizer from its param-group settings at the start of training
    optimizer = optimizer_resolver.make(
        settings["optimizer"], settings["optimizer_kwargs"], params=[torch.nn.Parameter(torch.zeros(1))]
    )
    type(optimizer)(params=[torch.nn.Parameter(torch.zeros(1))], **_get_optimizer_kwargs(optimizer))
    if name != "mkgformer_tiny.json":
        comment = config["metadata"]["_comment"]
        assert "M=3" in comment and f"uses {settings['model_kwargs']['fusion_layers']}" in comment
