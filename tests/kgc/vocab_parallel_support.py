"""The tiny MKGformer of the vocabulary-parallel tests: 11 entities, text only, float64, no dropout."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pykeen_mkgformer.kgc import presets

NUM_ENTITIES = 11
#: (loss, label smoothing) cases: PyKEEN's BCE and cross-entropy with label smoothing, the official loss
CASES = [("bce", 0.1), ("softmax", 0.2), ("official", 0.1)]
LR = 0.05
#: the global batch: LCWA (head, relation) rows; rank 0 takes the first 4, rank 1 the other 3
GLOBAL_ROWS = 7
SPLIT = 4


def triples() -> np.ndarray:
    rng = np.random.default_rng(3)
    rows = {(f"e{h}", f"r{r}", f"e{t}") for h, r, t in zip(rng.integers(0, NUM_ENTITIES, 40), rng.integers(0, 2, 40),
                                                          rng.integers(0, NUM_ENTITIES, 40)) if h != t}
    return np.asarray(sorted(rows), dtype=str)


def factory():
    from pykeen_mkgformer.data import MultimodalTriplesFactory

    words = ["red", "blue", "round", "square", "small", "large", "fast", "slow", "warm", "cold", "bright"]
    return MultimodalTriplesFactory.from_labeled_triples(
        triples(),
        entity_descriptions={f"e{i}": f"a {words[i]} {words[(3 * i + 1) % 11]} thing" for i in range(NUM_ENTITIES)},
        relation_texts={"r0": "is next to", "r1": "is part of"},
        create_inverse_triples=True,
    )


def model_kwargs(**overrides: Any) -> dict[str, Any]:
    return presets.tiny_model_kwargs(
        **{"max_images": 0, "entity_modeling_epochs": 0, "progress": False, "dropout": 0.0, "random_seed": 7,
           "head_parallel": "vocab", **overrides}
    )


def build(loss: str = "bce", smoothing: float = 0.0):
    """The model in float64, with the case's PyKEEN loss (the official one carries its own smoothing)."""
    from pykeen_mkgformer.kgc import MKGformer

    loss_kwargs = {"smoothing": smoothing} if loss == "official" else None
    name = {"bce": "bcewithlogits", "softmax": "crossentropy", "official": "smoothedsoftmaxcrossentropy"}[loss]
    model = MKGformer(triples_factory=factory(), loss=name, loss_kwargs=loss_kwargs, **model_kwargs())
    # random entity biases, so that the bias gradients and the ranks depend on them
    with torch.no_grad():
        model.entity_representations[2].bias.copy_(torch.linspace(-0.3, 0.4, NUM_ENTITIES))
    return model.double()


def global_batch() -> dict[str, torch.Tensor]:
    """The first rows of PyKEEN's LCWA instances: (head, relation) pairs, (row, tail) positives, one tail per row."""
    tf = factory()
    from pykeen.triples import LCWAInstances

    lcwa = LCWAInstances.from_triples_factory(tf)
    pairs = torch.as_tensor(lcwa.pairs[:GLOBAL_ROWS], dtype=torch.long)
    coo = lcwa.compressed[:GLOBAL_ROWS].tocoo()
    positives = torch.stack([torch.as_tensor(coo.row, dtype=torch.long), torch.as_tensor(coo.col, dtype=torch.long)], 1)
    labels = torch.zeros(GLOBAL_ROWS, NUM_ENTITIES, dtype=torch.float64)
    labels[positives[:, 0], positives[:, 1]] = 1.0
    first = torch.as_tensor(lcwa.compressed[:GLOBAL_ROWS].argmax(axis=1)).view(-1).long()
    # evaluation: the first triples (PyKEEN's ids), as tail queries (h, 2r) and mirrored head queries (t, 2r + 1)
    hrt = tf.mapped_triples[:GLOBAL_ROWS]
    known = tf._add_inverse_triples_if_necessary(tf.mapped_triples)
    return dict(pairs=pairs, positives=positives, labels=labels, tails=first, hrt=hrt, known=known,
                original_known=tf.mapped_triples)


def local(batch: dict[str, torch.Tensor], rank: int) -> dict[str, torch.Tensor]:
    rows = slice(0, SPLIT) if rank == 0 else slice(SPLIT, GLOBAL_ROWS)
    inside = (batch["positives"][:, 0] >= rows.start) & (batch["positives"][:, 0] < rows.stop)
    positives = batch["positives"][inside].clone()
    positives[:, 0] -= rows.start
    hrt = batch["hrt"][rows]
    return dict(pairs=batch["pairs"][rows], positives=positives, tails=batch["tails"][rows],
                tail_queries=torch.stack([hrt[:, 0], 2 * hrt[:, 1]], 1), tail_answers=hrt[:, 2],
                head_queries=torch.stack([hrt[:, 2], 2 * hrt[:, 1] + 1], 1), head_answers=hrt[:, 0])
