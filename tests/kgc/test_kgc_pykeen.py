"""PyKEEN features with MKGformer: training loops, evaluation, stopping, checkpoints, trackers, prediction, saving."""

from __future__ import annotations

import math

import pytest
import torch
from kgc_support import tiny_model_kwargs
from pykeen.pipeline import pipeline
from pykeen.predict import predict_target
from pykeen.trackers import PythonResultTracker

from pykeen_mkgformer.data import ShapesKG


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory):
    return tmp_path_factory.mktemp("shapes")


@pytest.fixture(scope="module")
def shapes(shapes_root) -> ShapesKG:
    return ShapesKG(cache_root=shapes_root, num_entities=24, create_inverse_triples=True)


def run(dataset, image_cache, *, model_kwargs=None, training_kwargs=None, **kwargs):
    """A short pipeline run with a tiny MKGformer; evaluation on both sides, filtered."""
    settings = dict(
        dataset=dataset,
        model="MKGformer",
        model_kwargs=tiny_model_kwargs(image_cache, **(model_kwargs or {})),
        training_loop="lcwa",
        loss="bcewithlogits",
        optimizer="adam",
        optimizer_kwargs=dict(lr=3e-3),
        training_kwargs={**dict(num_epochs=2, batch_size=32, use_tqdm=False), **(training_kwargs or {})},
        evaluation_kwargs=dict(batch_size=64, use_tqdm=False),
        random_seed=7,
    )
    settings.update(kwargs)
    return pipeline(**settings)


def metrics(result) -> dict[str, float]:
    return {
        side: result.metric_results.get_metric(f"{side}.realistic.inverse_harmonic_mean_rank")
        for side in ("head", "tail", "both")
    }


def test_lcwa_with_label_smoothing_evaluates_both_sides(shapes, image_cache):
    result = run(shapes, image_cache, training_kwargs=dict(label_smoothing=0.1))
    assert len(result.losses) == 2 and all(math.isfinite(loss) for loss in result.losses)
    values = metrics(result)
    assert all(0.0 < value <= 1.0 for value in values.values())
    assert values["head"] != values["tail"]
    assert result.metric_results.get_metric("both.realistic.hits_at_10") > 0


def test_slcwa(shapes, image_cache):
    result = run(
        shapes,
        image_cache,
        training_loop="slcwa",
        loss="softplus",
        negative_sampler="basic",
        negative_sampler_kwargs=dict(num_negs_per_pos=2),
    )
    assert all(math.isfinite(loss) for loss in result.losses)
    assert 0.0 < metrics(result)["both"] <= 1.0


def test_symmetric_lcwa_trains_both_directions(shapes_root, image_cache):
    # SymmetricLCWA feeds the factory's raw relation ids to score_h and score_t: use it without inverse triples
    dataset = ShapesKG(cache_root=shapes_root, num_entities=24, create_inverse_triples=False)
    result = run(dataset, image_cache, training_loop="SymmetricLCWA")
    assert all(math.isfinite(loss) for loss in result.losses)
    assert 0.0 < metrics(result)["both"] <= 1.0


def test_early_stopping_and_result_tracker(shapes, image_cache):
    tracker = PythonResultTracker()
    result = run(
        shapes,
        image_cache,
        training_kwargs=dict(num_epochs=8),
        stopper="early",
        # no improvement can be large enough: stops after `patience` evaluations
        stopper_kwargs=dict(frequency=1, patience=1, relative_delta=10.0, metric="mrr"),
        result_tracker=tracker,
    )
    assert result.stopper.stopped
    assert len(result.losses) == len(result.stopper.results) < 8
    # per epoch: the training loss and the stopper's validation metrics; at the end: the test metrics
    for epoch, loss in enumerate(result.losses, start=1):
        assert tracker.metrics[epoch]["loss"] == pytest.approx(loss)
        assert tracker.metrics[epoch]["validation.both.realistic.inverse_harmonic_mean_rank"] == pytest.approx(
            result.stopper.results[epoch - 1]
        )
    assert any(key.startswith("testing.") for step in tracker.metrics.values() for key in step)


def test_checkpoint_resume_gives_the_same_result(shapes, image_cache, tmp_path):
    settings = dict(model_kwargs=dict(entity_modeling_epochs=1))
    uninterrupted = run(
        shapes,
        image_cache,
        training_kwargs=dict(
            num_epochs=3, checkpoint_name="full.pt", checkpoint_directory=tmp_path, checkpoint_frequency=0
        ),
        **settings,
    )
    # "killed" after one epoch ...
    run(
        shapes,
        image_cache,
        training_kwargs=dict(num_epochs=1, checkpoint_name="cut.pt", checkpoint_directory=tmp_path, checkpoint_frequency=0),
        **settings,
    )
    checkpoint = torch.load(tmp_path / "cut.pt", weights_only=False)
    assert bool(checkpoint["model_state_dict"]["entity_modeling_done"])
    # ... and resumed: stage 1 is not repeated, and the run ends where the uninterrupted one did
    resumed = run(
        shapes,
        image_cache,
        training_kwargs=dict(num_epochs=3, checkpoint_name="cut.pt", checkpoint_directory=tmp_path, checkpoint_frequency=0),
        **settings,
    )
    assert resumed.losses == pytest.approx(uninterrupted.losses, rel=1e-6)
    assert metrics(resumed) == pytest.approx(metrics(uninterrupted), rel=1e-6)


def test_predict_target_with_labels_and_saving(shapes, image_cache, tmp_path):
    result = run(shapes, image_cache, training_kwargs=dict(num_epochs=1))
    model, factory = result.model, shapes.training
    head, relation = factory.entity_id_to_label[0], factory.relation_id_to_label[0]
    tails = predict_target(model=model, head=head, relation=relation, triples_factory=factory).df
    assert len(tails) == factory.num_entities
    assert set(tails["tail_label"]) == set(factory.entity_to_id)
    heads = predict_target(model=model, relation=relation, tail=head, triples_factory=factory).df
    assert set(heads["head_label"]) == set(factory.entity_to_id)
    # the ranking is the model's own score_t
    with torch.no_grad():
        scores = model.predict_t(torch.tensor([[0, 0]]))[0]
    best = factory.entity_id_to_label[int(scores.argmax())]
    assert tails.sort_values("score", ascending=False)["tail_label"].iloc[0] == best

    # saved the way PyKEEN does, loaded back with torch.load
    result.save_to_directory(tmp_path)
    loaded = torch.load(tmp_path / "trained_model.pkl", weights_only=False)
    with torch.no_grad():
        assert torch.allclose(loaded.predict_t(torch.tensor([[0, 0]]))[0], scores)
        assert torch.allclose(
            loaded.predict_h(torch.tensor([[0, 3]])), model.predict_h(torch.tensor([[0, 3]]))
        )


def test_automatic_batch_size_does_not_crash(shapes, image_cache):
    result = run(
        shapes,
        image_cache,
        training_kwargs=dict(num_epochs=1, batch_size=None),
        evaluation_kwargs=dict(batch_size=None, use_tqdm=False),
    )
    assert math.isfinite(result.losses[0])
    assert 0.0 < metrics(result)["both"] <= 1.0


def test_hpo_pipeline_uses_the_model_defaults(shapes, image_cache):
    from pykeen.hpo import hpo_pipeline

    result = hpo_pipeline(
        dataset=shapes,
        model="MKGformer",
        model_kwargs=tiny_model_kwargs(image_cache),
        loss="bcewithlogits",
        training_loop="lcwa",
        training_kwargs=dict(num_epochs=1, batch_size=32, use_tqdm=False),
        evaluation_kwargs=dict(batch_size=64, use_tqdm=False),
        optimizer_kwargs=dict(lr=3e-3),
        n_trials=1,
    )
    (trial,) = result.study.trials
    assert 0.0 <= trial.params["model.dropout"] <= 0.3
    assert 0.0 < trial.value <= 1.0
