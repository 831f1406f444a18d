"""Fixtures of the baselines' tests: a small multimodal graph made on the fly (no project dataset)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pykeen.datasets import EagerDataset
from pykeen.triples import TriplesFactory

GROUPS, PER_GROUP, NEW_PER_GROUP = 4, 15, 2


@pytest.fixture(scope="module")
def toy_multimodal_graph(tmp_path_factory):
    """4 groups of 15 entities, each ``member_of`` its hub and ``peer`` of 3 others in its group; 2 entities
    per group have no training triple and are the heads of the test triples (``member_of`` their hub).

    Features in the papers' format (``Toy-visual.pth`` / ``Toy-textual.pth``, one row per entity id):
    the group as a one-hot signal plus Gaussian noise. Returns the dataset and the feature folder.
    """
    rng = np.random.default_rng(0)
    members = {g: [f"e{g}_{i}" for i in range(PER_GROUP)] for g in range(GROUPS)}
    train, test = [], []
    for g, names in members.items():
        new, known = names[:NEW_PER_GROUP], names[NEW_PER_GROUP:]
        for name in names:
            (test if name in new else train).append((name, "member_of", f"hub{g}"))
        for name in known:
            for peer in rng.choice([n for n in known if n != name], size=3, replace=False):
                train.append((name, "peer", str(peer)))
    labels = sorted({x for h, _, t in train + test for x in (h, t)})
    entity_to_id = {label: i for i, label in enumerate(labels)}
    relation_to_id = {"member_of": 0, "peer": 1}

    def factory(rows):
        labeled = np.asarray(rows, dtype=str)
        return TriplesFactory.from_labeled_triples(labeled, entity_to_id=entity_to_id, relation_to_id=relation_to_id)

    dataset = EagerDataset(training=factory(train), testing=factory(test))  # no validation: fixed epochs
    folder = tmp_path_factory.mktemp("toy-features")
    group_of = [int(label[1]) if label.startswith("e") else int(label[3]) for label in labels]
    signal = torch.eye(GROUPS)[group_of]
    noise = torch.from_numpy(rng.normal(scale=0.3, size=(len(labels), 12))).float()
    torch.save(torch.cat([signal * 2, noise], dim=1), folder / "Toy-textual.pth")
    torch.save(torch.cat([noise.flip(1), signal], dim=1), folder / "Toy-visual.pth")
    return dataset, folder
