"""The outside check of issue 20: a baseline trained by name through PyKEEN's own ``pipeline`` on a graph
the project never ships, with features supplied the documented way (the papers' ``*-visual.pth`` /
``*-textual.pth`` files, one row per entity id, in a folder given as ``model_kwargs["features"]``).

The graph is made on the fly (``toy_multimodal_graph`` in ``tests/baselines/conftest.py``): 4 groups
of 15 entities, each ``member_of`` its group's hub and ``peer`` of others in its group. Eight "new"
entities have no training triple at all; their test triples ask for their hub. Any trained model ranks
the 4 hubs high for ``member_of``; only the features (group signal + noise) tell *which* hub, so the
model with features puts the right one first far more often than the same model without them.
"""

from __future__ import annotations

from pykeen.pipeline import pipeline

from kgc_support import single_thread

KEY = "tail.realistic.adjusted_arithmetic_mean_rank_index"
HITS = "tail.realistic.hits_at_1"


def _train(dataset, features):
    with single_thread():
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


def test_feature_baseline_by_name_on_a_fresh_graph(toy_multimodal_graph):
    dataset, folder = toy_multimodal_graph
    with_features = _train(dataset, folder)
    assert type(with_features.model).__name__ == "IKRL"
    assert with_features.losses[-1] < with_features.losses[0]
    amri = with_features.metric_results.get_metric(KEY)
    assert amri > 0.5, f"AMRI {amri:.3f} with features"  # random scores: 0 in expectation
    # the hubs are easy to rank high from the relation alone; *which* hub is only in the features
    hits = with_features.metric_results.get_metric(HITS)
    without = _train(dataset, None).metric_results.get_metric(HITS)
    assert hits >= 0.625 and hits > without + 0.25, f"Hits@1 {hits:.3f} with features, {without:.3f} without"
