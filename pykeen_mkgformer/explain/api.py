"""One entry point for a trained model folder: link prediction (PyKEEN results) or relation extraction (``re``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .explanation import Explanation

__all__ = ["explain"]


def explain(
    model: str | Path,
    *,
    relation: str | None = None,
    head: str | None = None,
    tail: str | None = None,
    side: str | None = None,
    top: int = 10,
    dataset: Any = None,
    dataset_kwargs: Mapping[str, Any] | None = None,
    replicate: int | None = None,
    instance: int | None = None,
    split: str = "test",
    data: str | Path | None = None,
    device: str | torch.device = "cpu",
    trust_pickles: bool = False,
) -> Explanation:
    """Explain a query of the model in folder ``model``.

    - a PyKEEN results or experiment folder (link prediction): give ``relation`` and ``head``
      (predict the tail) or ``tail`` (predict the head), or both with ``side``; see
      :func:`~pykeen_mkgformer.explain.explain_link_prediction` and
      :func:`~pykeen_mkgformer.explain.load_trained_model` (``dataset``, ``dataset_kwargs``, ``replicate``);
    - an output folder of ``pykeen-mkgformer re``: give ``instance`` (and ``split``, ``data``); see
      :func:`~pykeen_mkgformer.explain.relation_extraction.explain_relation_extraction`.

    :param trust_pickles: allow PyKEEN's pickled ``trained_model.pkl`` / ``base.pth`` (they can run code)
    :raises ValueError: when the arguments do not fit the kind of folder
    """
    folder = Path(model)
    if (folder / "model" / "task.json").is_file():
        if any(value is not None for value in (relation, head, tail)):
            raise ValueError("--head / --relation / --tail are for link prediction; a relation extraction model takes --instance.")
        if instance is None:
            raise ValueError(f"{folder} holds a relation extraction model: give the instance to explain (--instance).")
        from .relation_extraction import explain_relation_extraction

        return explain_relation_extraction(folder, instance, split=split, data=data, device=device)
    if instance is not None:
        raise ValueError(f"--instance is for relation extraction output folders; {folder} is not one (no model/task.json).")
    if relation is None or (head is None and tail is None):
        raise ValueError("Link prediction needs --relation and --head (predict the tail) or --tail (predict the head).")
    from .link_prediction import explain_link_prediction
    from ..kgc.saved_model import load_trained_model

    run = load_trained_model(
        folder, dataset=dataset, dataset_kwargs=dataset_kwargs, replicate=replicate, device=device, trust_pickles=trust_pickles
    )
    return explain_link_prediction(
        run.model,
        run.factory,
        relation=relation,
        head=head,
        tail=tail,
        side=side,
        top=top,
        known_triples=run.known_triples,
        facts=run.facts,
        notes=run.notes,
    )
