"""Inductive splits: a set of entities held out of training entirely, with every triple that touches them.

A model is trained on :attr:`InductiveSplit.training` (the held-out entities have no id there); the
held-out entities then arrive with their descriptions and images
(:meth:`pykeen_mkgformer.kgc.MKGformer.add_entities` with :meth:`InductiveSplit.new_entity_kwargs`)
and are evaluated on :attr:`InductiveSplit.new_triples` (:func:`pykeen_mkgformer.kgc.inductive.evaluate_new_entities`).
Validation and testing keep the original splits' triples among seen entities, for the transductive
score on the same model.

- :func:`hold_out_entities`: any set of entities of a multimodal dataset;
- :func:`shapes_inductive_split`: ShapesKG's held-out *test* heads (they never occur in training
  anyway; here they also get no id);
- :func:`sample_imaged_entities`: a seeded sample of entities that have images (WN18IMGMini: ~10%).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .multimodal import MultimodalTriplesFactory

__all__ = ["InductiveSplit", "hold_out_entities", "sample_imaged_entities", "shapes_inductive_split"]


@dataclass
class InductiveSplit:
    """Training without the held-out entities, and what is needed to add and evaluate them."""

    #: seen entities only (ids ``0 .. n-1``), training triples among them
    training: MultimodalTriplesFactory
    #: the original validation triples among seen entities (same ids)
    validation: MultimodalTriplesFactory
    #: the original testing triples among seen entities (same ids)
    testing: MultimodalTriplesFactory
    #: held-out entity labels, in the order they are to be added
    new_labels: list[str]
    new_descriptions: list[str]
    new_names: list[str]
    new_images: list[tuple[str, ...]]
    #: label-based triples ``(n, 3)`` of every split that touch a held-out entity
    new_triples: np.ndarray

    def new_entity_kwargs(self, *, images: bool = True) -> dict[str, Any]:
        """Keyword arguments of :meth:`~pykeen_mkgformer.kgc.MKGformer.add_entities` (``images=False``: without images)."""
        return dict(
            labels=list(self.new_labels),
            descriptions=list(self.new_descriptions),
            images=list(self.new_images) if images else None,
            names=list(self.new_names),
        )

    def dataset(self) -> Any:
        """The seen part as a PyKEEN dataset (for :func:`pykeen.pipeline.pipeline`); when no testing triple
        is left (ShapesKG: they all had a held-out head), the validation triples are the testing split."""
        from pykeen.datasets.base import EagerDataset

        testing = self.testing if self.testing.num_triples else self.validation
        return EagerDataset(training=self.training, validation=self.validation, testing=testing)

    def __repr__(self) -> str:  # noqa: D105
        return (
            f"InductiveSplit(seen_entities={self.training.num_entities}, training={self.training.num_triples}, "
            f"new_entities={len(self.new_labels)}, new_triples={len(self.new_triples)})"
        )


def _labeled(factory: MultimodalTriplesFactory) -> np.ndarray:
    return np.asarray(factory.triples, dtype=str).reshape(-1, 3)


def hold_out_entities(dataset: Any, entities: Iterable[str]) -> InductiveSplit:
    """Hold ``entities`` out of ``dataset`` with all their triples.

    :param dataset: a multimodal PyKEEN dataset (its three factories share ids, e.g. ``WN18IMGMini``)
    :param entities: labels of the entities to hold out
    :raises ValueError: for unknown labels or an empty set
    """
    source: MultimodalTriplesFactory = dataset.training
    held_out = list(dict.fromkeys(entities))
    if not held_out:
        raise ValueError("No entity to hold out.")
    unknown = [label for label in held_out if label not in source.entity_to_id]
    if unknown:
        raise ValueError(f"Unknown entities to hold out: {unknown[:10]}.")
    held = set(held_out)
    kept = [source.entity_id_to_label[i] for i in range(source.num_entities) if source.entity_id_to_label[i] not in held]
    entity_to_id = {label: i for i, label in enumerate(kept)}
    old_ids = [source.entity_to_id[label] for label in kept]

    def touches(triples: np.ndarray) -> np.ndarray:
        return np.isin(triples[:, 0], held_out) | np.isin(triples[:, 2], held_out)

    def seen_part(triples: np.ndarray) -> MultimodalTriplesFactory:
        seen = triples[~touches(triples)]
        mapped = torch.as_tensor(
            [[entity_to_id[h], source.relation_to_id[r], entity_to_id[t]] for h, r, t in seen.tolist()], dtype=torch.long
        ).view(-1, 3)
        return MultimodalTriplesFactory(
            mapped_triples=mapped,
            entity_to_id=entity_to_id,
            relation_to_id=source.relation_to_id,
            create_inverse_triples=source.create_inverse_triples,
            metadata=dict(source.metadata or {}, held_out_entities=len(held_out)),
            entity_names=[source.entity_names[i] for i in old_ids],
            entity_descriptions=[source.entity_descriptions[i] for i in old_ids],
            entity_images=[source.entity_images[i] for i in old_ids],
            relation_texts=source.relation_texts,
        )

    splits = [_labeled(factory) for factory in (dataset.training, dataset.validation, dataset.testing)]
    new_triples = np.concatenate([triples[touches(triples)] for triples in splits]).reshape(-1, 3)
    ids = [source.entity_to_id[label] for label in held_out]
    return InductiveSplit(
        training=seen_part(splits[0]),
        validation=seen_part(splits[1]),
        testing=seen_part(splits[2]),
        new_labels=held_out,
        new_descriptions=[source.entity_descriptions[i] or source.entity_names[i] for i in ids],
        new_names=[source.entity_names[i] for i in ids],
        new_images=[tuple(source.entity_images[i]) for i in ids],
        new_triples=new_triples,
    )


def sample_imaged_entities(
    factory: MultimodalTriplesFactory, fraction: float = 0.1, *, seed: int = 0, triples: Sequence[np.ndarray] = ()
) -> list[str]:
    """A seeded sample of ``fraction`` of the entities that have images (and occur in ``triples``, when given)."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}.")
    occurring = set(np.concatenate([t[:, [0, 2]].ravel() for t in triples]).tolist()) if triples else None
    candidates = [
        factory.entity_id_to_label[i]
        for i in range(factory.num_entities)
        if factory.entity_images[i] and (occurring is None or factory.entity_id_to_label[i] in occurring)
    ]
    if not candidates:
        raise ValueError("No entity has images: nothing to sample.")
    count = max(1, round(fraction * len(candidates)))
    return sorted(random.Random(seed).sample(candidates, count))


def shapes_inductive_split(dataset: Any) -> InductiveSplit:
    """ShapesKG's test heads held out (they have no training triple); the tails of their test triples are seen."""
    heads = sorted(set(_labeled(dataset.testing)[:, 0].tolist()))
    return hold_out_entities(dataset, heads)
