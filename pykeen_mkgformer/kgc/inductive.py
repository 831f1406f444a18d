r"""Evaluating entities added after training, with PyKEEN's filtered :class:`~pykeen.evaluation.RankBasedEvaluator`.

For a triple :math:`(h, r, t)` that touches a new entity, the two link prediction queries split by
the new entity's role:

- **as query**: the new entity is the *known* entity (tail prediction when :math:`h` is new, head
  prediction when :math:`t` is new): the model reads its token, text and images;
- **as answer**: the new entity is the one to find among all entities, old and new (head
  prediction when :math:`h` is new, tail prediction when :math:`t` is new): only its token row
  (:math:`\mathbf{e}_e, b_e`) matters.

A triple between two new entities counts on both sides. Ranks are PyKEEN's realistic filtered
ranks, filtered with every known triple (seen triples of all splits and all new triples), over all
entities of the extended model; MRR and Hits@k of a side are means over its ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from ..data.inductive import InductiveSplit
    from .model import MKGformer

__all__ = ["evaluate_new_entities", "METRICS"]

#: the metrics reported (PyKEEN's names, realistic ranks)
METRICS = {"mrr": "inverse_harmonic_mean_rank", "hits_at_1": "hits_at_1", "hits_at_3": "hits_at_3", "hits_at_10": "hits_at_10"}


def _map(triples: np.ndarray, factory: Any) -> torch.LongTensor:
    entity, relation = factory.entity_to_id, factory.relation_to_id
    unknown = sorted({e for row in triples.tolist() for e in (row[0], row[2]) if e not in entity})
    if unknown:
        raise ValueError(f"Entities {unknown[:10]} are not in the model: add them first (add_entities).")
    return torch.as_tensor(
        [[entity[h], relation[r], entity[t]] for h, r, t in triples.tolist()], dtype=torch.long
    ).view(-1, 3)


def _evaluate(model: Any, triples: torch.LongTensor, side: str, filters: list[torch.LongTensor], batch_size: int) -> tuple[dict[str, float], int]:
    from pykeen.evaluation import RankBasedEvaluator

    if not len(triples):
        return {name: float("nan") for name in METRICS}, 0
    evaluator = RankBasedEvaluator(filtered=True)
    result = evaluator.evaluate(
        model,
        mapped_triples=triples,
        additional_filter_triples=filters,
        targets=(side,),
        batch_size=batch_size,
        use_tqdm=False,
    )
    return {name: float(result.get_metric(f"{side}.realistic.{key}")) for name, key in METRICS.items()}, len(triples)


def _pool(parts: Sequence[tuple[dict[str, float], int]]) -> dict[str, float]:
    """Means over all ranks of several evaluations (weighted by their numbers of ranks)."""
    total = sum(count for _, count in parts)
    pooled = {
        name: (sum(metrics[name] * count for metrics, count in parts if count) / total if total else float("nan"))
        for name in METRICS
    }
    pooled["count"] = total
    return pooled


def evaluate_new_entities(
    model: MKGformer,
    split: InductiveSplit,
    *,
    batch_size: int = 64,
    extra_filter_triples: Sequence[np.ndarray] = (),
) -> dict[str, dict[str, float]]:
    """Filtered rank-based metrics of the new entities' triples after :meth:`~pykeen_mkgformer.kgc.MKGformer.add_entities`.

    :param model: a model trained on ``split.training`` to which ``split``'s held-out entities were added
    :param split: the inductive split
    :param batch_size: evaluation batch size
    :param extra_filter_triples: more label-based triples to filter with
    :return: ``{"query": ..., "answer": ..., "both": ...}``, each with ``mrr``, ``hits_at_1``,
        ``hits_at_3``, ``hits_at_10`` and ``count`` (the number of ranks)
    """
    factory = model.label_factory
    new = set(split.new_labels)
    missing = sorted(new - set(factory.entity_to_id))
    if missing:
        raise ValueError(f"{len(missing)} held-out entities are not in the model (add_entities first): {missing[:10]}.")
    triples = split.new_triples
    head_new = np.isin(triples[:, 0], list(new))
    tail_new = np.isin(triples[:, 2], list(new))
    device = next(model.parameters()).device
    mapped = _map(triples, factory).to(device)
    filters = [mapped] + [
        factory_part.mapped_triples.to(device) for factory_part in (split.training, split.validation, split.testing)
    ]
    filters += [_map(np.asarray(extra, dtype=str).reshape(-1, 3), factory).to(device) for extra in extra_filter_triples]
    head_rows = torch.as_tensor(head_new.nonzero()[0], dtype=torch.long)
    tail_rows = torch.as_tensor(tail_new.nonzero()[0], dtype=torch.long)
    was_training = model.training
    model.eval()
    try:
        query = [
            _evaluate(model, mapped[head_rows], "tail", filters, batch_size),
            _evaluate(model, mapped[tail_rows], "head", filters, batch_size),
        ]
        answer = [
            _evaluate(model, mapped[head_rows], "head", filters, batch_size),
            _evaluate(model, mapped[tail_rows], "tail", filters, batch_size),
        ]
    finally:
        model.train(was_training)
    return {"query": _pool(query), "answer": _pool(answer), "both": _pool(query + answer)}

