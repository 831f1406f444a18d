"""Predictions from a saved MKGformer, optionally after adding new entities: ``pykeen-mkgformer predict``.

A model folder is a safe saved model (:mod:`pykeen_mkgformer.kgc.saved_model`: safetensors + JSON,
written by :func:`~pykeen_mkgformer.kgc.saved_model.save_pipeline_result`, the demo or ``--save``),
or, with ``trust_pickles=True`` only, what :meth:`pykeen.pipeline.PipelineResult.save_to_directory`
or ``pykeen experiments run`` writes. Labels come from the model's own
:attr:`~pykeen_mkgformer.kgc.MKGformer.label_factory`.
Entities and relations are named by label or by unique name (:mod:`pykeen_mkgformer.data.labels`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["Prediction", "PredictionResult", "load_model", "predict", "save_model"]

logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    """One ranked answer."""

    rank: int
    id: int
    label: str
    name: str
    score: float
    #: whether the entity was added after training (:meth:`MKGformer.add_entities`)
    new: bool


@dataclass
class PredictionResult:
    """The answers to one query."""

    #: ``(head, relation, ?)`` or ``(?, relation, tail)``, as labels
    query: tuple[str, str, str]
    #: ``"tail"`` or ``"head"``
    side: str
    predictions: list[Prediction]
    #: the given answer's (unfiltered) rank among all entities, when both head and tail were given
    target: str | None = None
    target_rank: int | None = None
    #: entities added before predicting, label -> id
    added: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    def to_json(self) -> str:
        """As a JSON document."""
        return json.dumps(self.to_dict(), indent=2)


def load_model(
    folder: str | Path, *, device: str | torch.device = "cpu", replicate: int | None = None, trust_pickles: bool = False
) -> Any:
    """The trained MKGformer of a folder (:func:`pykeen_mkgformer.kgc.saved_model.load_model`), checked to take new entities."""
    from .saved_model import load_model as load_saved

    model = load_saved(folder, device=device, replicate=replicate, trust_pickles=trust_pickles)
    if not hasattr(model, "add_entities"):
        raise TypeError(f"{folder} holds a {type(model).__name__}, not an MKGformer: it cannot read new entities.")
    return model


def predict(
    model: Any,
    *,
    relation: str,
    head: str | None = None,
    tail: str | None = None,
    top: int = 10,
    new_entities: Mapping[str, int] | None = None,
) -> PredictionResult:
    """Rank the answers of ``(head, relation, ?)`` (or ``(?, relation, tail)`` when only ``tail`` is given).

    With both ``head`` and ``tail``, the tail is predicted and the given tail's rank reported.

    :raises ValueError: for unknown labels or a query without a known entity
    """
    from ..data.labels import resolve_entity, resolve_relation

    if head is None and tail is None:
        raise ValueError("Give --head (predict the tail) or --tail (predict the head).")
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}.")
    factory = model.label_factory
    relation_id = resolve_relation(factory, relation)
    side = "tail" if head is not None else "head"
    known = resolve_entity(factory, head if side == "tail" else tail)
    target = resolve_entity(factory, tail) if side == "tail" and tail is not None else None
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        if side == "tail":
            scores = model.predict_t(torch.as_tensor([[known, relation_id]], device=device))[0]
        else:
            scores = model.predict_h(torch.as_tensor([[relation_id, known]], device=device))[0]
    scores = scores.float().cpu()
    order = torch.argsort(scores, descending=True, stable=True)
    added = dict(new_entities or {})
    first_new = model.num_entities - _num_added(model)
    id_to_label = factory.entity_id_to_label
    predictions = [
        Prediction(
            rank=rank,
            id=int(entity),
            label=id_to_label[int(entity)],
            name=factory.entity_names[int(entity)],
            score=float(scores[entity]),
            new=int(entity) >= first_new,
        )
        for rank, entity in enumerate(order[:top].tolist(), start=1)
    ]
    label = factory.relation_id_to_label[relation_id]
    query = (id_to_label[known], label, "?") if side == "tail" else ("?", label, id_to_label[known])
    target_rank = None
    if target is not None:
        target_rank = int((scores > scores[target]).sum()) + 1
    return PredictionResult(
        query=query,
        side=side,
        predictions=predictions,
        target=None if target is None else id_to_label[target],
        target_rank=target_rank,
        added=added,
    )


def _num_added(model: Any) -> int:
    """Entities added after construction (recorded by :func:`~pykeen_mkgformer.kgc.new_entities.add_entities`)."""
    return int(getattr(model, "num_added_entities", 0))


def save_model(
    model: Any, folder: str | Path, *, known_triples: Mapping[str, torch.Tensor] | None = None, overwrite: bool = False
) -> Path:
    """Write an (extended) model as a safe folder that ``predict`` and ``explain`` read (no pickle).

    ``folder/mkgformer/`` (:func:`pykeen_mkgformer.kgc.saved_model.save_model`) with ``known_triples``
    (e.g. those of the source folder: ids of old entities keep their meaning), written atomically; an
    existing ``folder`` is replaced only with ``overwrite``.
    """
    from ..data.atomic import atomic_folder
    from .saved_model import SAFE_FOLDER
    from .saved_model import save_model as save_safe

    with atomic_folder(folder, overwrite=overwrite) as staging:
        save_safe(model, staging / SAFE_FOLDER, known_triples=dict(known_triples or {}))
    logger.info("saved the model to %s", folder)
    return Path(folder)
