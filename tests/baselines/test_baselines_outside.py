"""The outside check of issue 20: a baseline trained by name through PyKEEN's own ``pipeline`` on a graph
the project never ships, with features supplied the documented way (the papers' ``*-visual.pth`` /
``*-textual.pth`` files, one row per entity id, in a folder given as ``model_kwargs["features"]``).

The graph is made here: 4 groups of 15 entities, each entity ``member_of`` its group's hub and
``peer`` of others in its group. Eight "new" entities have no training triple at all; their test
triples ask for their hub. Only the features (group signal + noise) can answer those, so a model that
reads them beats random by far and the same model without features does not.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from pykeen.datasets import EagerDataset
from pykeen.pipeline import pipeline
from pykeen.triples import TriplesFactory

GROUPS, PER_GROUP, NEW_PER_GROUP = 4, 15, 2
KEY = "tail.realistic.adjusted_arithmetic_mean_rank_index"
HITS = "tail.realistic.hits_at_1"


@contextlib.contextmanager
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A fresh multimodal graph and its feature files in the papers' format."""
    rng = np.random.default_rng(0)
    members = {g: [f"e{g}_{i}" for i in range(PER_GROUP)] for g in range(GROUPS)}
    new = {g: members[g][:NEW_PER_GROUP] for g in range(GROUPS)}  # no training triples
    train, test = [], []
    for g, names in members.items():
        for name in names:
            (test if name in new[g] else train).append((name, "member_of", f"hub{g}"))
        known = names[NEW_PER_GROUP:]
        for name in known:
            for peer in rng.choice([n for n in known if n != name], size=3, replace=False):
                train.append((name, "peer", str(peer)))
    labels = sorted({x for h, _, t in train + test for x in (h, t)})
    entity_to_id = {label: i for i, label in enumerate(labels)}
    relation_to_id = {"member_of": 0, "peer": 1}
    make = lambda rows: TriplesFactory.from_labeled_triples(  # noqa: E731
        np.asarray(rows, dtype=str), entity_to_id=entity_to_id, relation_to_id=relation_to_id
    )
    training = make(train)
    dataset = EagerDataset(training=training, testing=make(test))  # no validation: fixed epochs

    folder = tmp_path_factory.mktemp("toy-features")
    group_of = [int(label[1]) if label.startswith("e") else int(label[3]) for label in labels]
    signal = torch.eye(GROUPS)[group_of]
    noise = torch.from_numpy(rng.normal(scale=0.3, size=(len(labels), 12))).float()
    torch.save(torch.cat([signal * 2, noise], dim=1), folder / "Toy-textual.pth")
    torch.save(torch.cat([noise.flip(1), signal], dim=1), folder / "Toy-visual.pth")
    return dataset, folder


def _train(dataset, features):
    with _one_thread():
        return pipeline(
            dataset=dataset,
            model="IKRL",  # by name: found through the plugin's entry points, nothing imported here
            model_kwargs=dict(embedding_dim=16, features=None if features is None else str(features)),
            training_kwargs=dict(num_epochs=60, batch_size=64, use_tqdm=False),
            optimizer_kwargs=dict(lr=1e-2),
            negative_sampler_kwargs=dict(num_negs_per_pos=4),
            evaluation_kwargs=dict(targets=("tail",), use_tqdm=False),
            random_seed=0,
        )


def test_feature_baseline_by_name_on_a_fresh_graph(toy):
    dataset, folder = toy
    with_features = _train(dataset, folder)
    assert type(with_features.model).__name__ == "IKRL"
    assert with_features.losses[-1] < with_features.losses[0]
    amri = with_features.metric_results.get_metric(KEY)
    assert amri > 0.5, f"AMRI {amri:.3f} with features"  # random scores: 0 in expectation
    # the hubs are easy to rank high from the relation alone; *which* hub is only in the features
    hits = with_features.metric_results.get_metric(HITS)
    without = _train(dataset, None).metric_results.get_metric(HITS)
    assert hits >= 0.625 and hits > without + 0.25, f"Hits@1 {hits:.3f} with features, {without:.3f} without"
