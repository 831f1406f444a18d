"""Low-resource training subsets, sampled with a seed (``--train-fraction``, ``--shots``)."""

from __future__ import annotations

import random
from typing import Callable, Sequence, TypeVar

__all__ = ["sample_fraction", "sample_shots"]

T = TypeVar("T")


def sample_fraction(instances: Sequence[T], fraction: float, *, seed: int) -> list[T]:
    """A uniform random ``fraction`` of the instances (at least one), in their original order.

    :raises ValueError: unless ``0 < fraction <= 1``
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"The train fraction must be in (0, 1], got {fraction}.")
    count = max(1, round(fraction * len(instances)))
    chosen = sorted(random.Random(seed).sample(range(len(instances)), count))
    return [instances[index] for index in chosen]


def sample_shots(instances: Sequence[T], shots: int, classes: Callable[[T], set[str]], *, seed: int) -> list[T]:
    """K-shot sampling: visit the instances in a seeded random order and keep an instance while any
    of its classes has fewer than ``shots`` kept instances (each class then has ``min(K, available)``).

    For relation extraction an instance's class is its relation; for NER, the entity types in the
    sentence (``{"O"}`` for a sentence without entities). Returned in their original order.

    :raises ValueError: unless ``shots >= 1``
    """
    if shots < 1:
        raise ValueError(f"The number of shots must be at least 1, got {shots}.")
    order = list(range(len(instances)))
    random.Random(seed).shuffle(order)
    counts: dict[str, int] = {}
    chosen = []
    for index in order:
        labels = classes(instances[index])
        if any(counts.get(label, 0) < shots for label in labels):
            chosen.append(index)
            for label in labels:
                counts[label] = counts.get(label, 0) + 1
    return [instances[index] for index in sorted(chosen)]
