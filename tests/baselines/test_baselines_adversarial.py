"""AdaMF-MAT's modality-adversarial training as a PyKEEN training loop (``training_loop="ModalityAdversarial"``)."""

from __future__ import annotations

import pytest
import torch
from pykeen.pipeline import pipeline

from kgc_support import single_thread
from pykeen_mkgformer.baselines.adversarial import ModalityAdversarialTrainingLoop

KEY = "tail.realistic.adjusted_arithmetic_mean_rank_index"


def _train(dataset, features, **loop_kwargs):
    with single_thread():
        return pipeline(
            dataset=dataset,
            model="AdaMF",
            model_kwargs=dict(embedding_dim=16, features=str(features)),
            training_loop="ModalityAdversarial",  # by name, like PyKEEN's own loops
            training_loop_kwargs=dict(adversarial_weight=0.5, generator_lr=1e-3, **loop_kwargs),
            training_kwargs=dict(num_epochs=30, batch_size=64, use_tqdm=False),
            optimizer_kwargs=dict(lr=1e-2),
            negative_sampler_kwargs=dict(num_negs_per_pos=4),
            evaluation_kwargs=dict(targets=("tail",), use_tqdm=False),
            random_seed=0,
        )


@pytest.fixture(scope="module")
def trained(toy_multimodal_graph):
    dataset, folder = toy_multimodal_graph
    return _train(dataset, folder)


def test_adversarial_training_learns(trained):
    result = trained
    assert result.losses[-1] < result.losses[0]
    amri = result.metric_results.get_metric(KEY)
    assert amri > 0.5, f"AMRI {amri:.3f}"  # random scores: 0 in expectation


def test_generator_learns_to_fool_a_fixed_model(toy_multimodal_graph, trained):
    """With the model fixed, the generator's steps raise the scores of the adversarial triples."""
    dataset, _ = toy_multimodal_graph
    model = trained.model
    with single_thread():
        loop = ModalityAdversarialTrainingLoop(model=model, triples_factory=dataset.training, generator_lr=1e-2)
        positives = dataset.training.mapped_triples
        torch.manual_seed(0)
        _, before, _ = loop.adversarial_scores(positives)
        for _ in range(50):
            _, _, generator_loss = loop.adversarial_scores(positives)
            loop.generator_optimizer.zero_grad()
            generator_loss.backward()
            loop.generator_optimizer.step()
        assert all(p.grad is None or not p.grad.any() for p in model.parameters()), "the model must stay fixed"
        _, after, _ = loop.adversarial_scores(positives)
    assert after.mean() > before.mean() + 0.1, f"{before.mean():.3f} -> {after.mean():.3f}"


def test_needs_modality_views(toy_multimodal_graph):
    from pykeen.models import TransE

    dataset, _ = toy_multimodal_graph
    with pytest.raises(ValueError, match="TransE has 1 entity representation"):
        ModalityAdversarialTrainingLoop(model=TransE(triples_factory=dataset.training), triples_factory=dataset.training)
