r"""The relation extraction task (``pykeen-mkgformer re``) and its metrics.

Metrics follow the MNRE literature (MEGA, MKGformer): micro scores over the relations other than
``None``. With :math:`\hat y` the prediction and :math:`y` the gold label of each instance,

.. math::

    P = \frac{|\{\hat y = y \ne \mathrm{None}\}|}{|\{\hat y \ne \mathrm{None}\}|},\quad
    R = \frac{|\{\hat y = y \ne \mathrm{None}\}|}{|\{y \ne \mathrm{None}\}|},\quad
    F_1 = \frac{2PR}{P + R}

plus the plain accuracy over all instances and per-relation figures.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from sklearn.metrics import precision_recall_fscore_support
from transformers import PreTrainedTokenizerBase

from ..encoder import HybridTransformer
from ..tasks.task import Task, pad_token_ids
from .data import NONE_RELATION, RelationInstance, load_relations, read_mnre_folder
from .model import ENTITY_MARKERS, HEAD_START, TAIL_START, RelationClassifier, count_markers, mark_entities
from .recipe import RERecipe

__all__ = ["RelationExtraction", "relation_scores"]


def relation_scores(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str], *, none: str = NONE_RELATION) -> dict[str, Any]:
    """Micro precision / recall / F1 over ``labels`` except ``none``, accuracy, and per-label figures."""
    if len(gold) != len(predicted):
        raise ValueError(f"Got {len(gold)} gold labels but {len(predicted)} predictions.")
    scored = [label for label in labels if label != none]
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold, predicted, labels=scored, average="micro", zero_division=0
    )
    per_p, per_r, per_f, support = precision_recall_fscore_support(
        gold, predicted, labels=scored, average=None, zero_division=0
    )
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "accuracy": sum(g == p for g, p in zip(gold, predicted)) / max(len(gold), 1),
        "instances": len(gold),
        "per_label": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(scored, per_p, per_r, per_f, support)
        },
    }


class RelationExtraction(Task[RelationInstance]):
    """MNRE: classify the relation between the marked head and tail mention of a tweet (with its image)."""

    name = "re"
    recipe_class = RERecipe
    recipe: RERecipe

    def read(self, split: str) -> list[RelationInstance]:
        """The split's instances, checked against ``rel2id.json`` when the folder has one."""
        return read_mnre_folder(self.data, split, bad_lines=self.bad_lines)

    def image_name(self, instance: RelationInstance) -> str | None:
        """MNRE names the image file (``img_id``)."""
        return instance.image

    def classes(self, instance: RelationInstance) -> set[str]:
        """K shots per relation."""
        return {instance.relation}

    def crop_key(self, instance: RelationInstance) -> str | None:
        """The official MRE crop index's key: the instance's 0-based line in its split file (its data id)."""
        return str(int(instance.source.rpartition(":")[2]) - 1)

    def setup(self, tokenizer: PreTrainedTokenizerBase, encoder: HybridTransformer, train: Sequence[RelationInstance]) -> None:
        """Labels from ``rel2id.json`` (else the training labels, ``None`` first); add the markers."""
        relations = load_relations(self.data)
        if relations is None:
            names = sorted({instance.relation for instance in train} - {NONE_RELATION})
            relations = {name: index for index, name in enumerate([NONE_RELATION, *names])}
        self.labels = sorted(relations, key=relations.__getitem__)
        self.label_ids = {label: index for index, label in enumerate(self.labels)}
        tokenizer.add_tokens(list(ENTITY_MARKERS), special_tokens=True)
        old_rows = encoder.get_input_embeddings().num_embeddings
        if len(tokenizer) > old_rows:
            encoder.resize_token_embeddings(len(tokenizer))
            if self.recipe.marker_init == "official":
                _official_new_rows(encoder, old_rows)
        self.head_start_id = tokenizer.convert_tokens_to_ids(HEAD_START)
        self.tail_start_id = tokenizer.convert_tokens_to_ids(TAIL_START)

    def features(self, instance: RelationInstance, tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict[str, Any]:
        """Token ids with markers; the positions of ``<s>`` and ``<o>`` (``[CLS]`` if truncated away)."""
        words = mark_entities(instance, self.recipe.marker_placement)
        if self.recipe.marker_placement == "official":  # the official reader tokenizes the words joined by spaces
            input_ids = tokenizer(" ".join(words), truncation=True, max_length=max_length)["input_ids"]
        else:
            input_ids = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)["input_ids"]
        head = input_ids.index(self.head_start_id) if self.head_start_id in input_ids else None
        tail = input_ids.index(self.tail_start_id) if self.tail_start_id in input_ids else None
        if instance.relation not in self.label_ids:
            raise ValueError(f"{instance.source}: relation {instance.relation!r} is not among the labels {self.labels}.")
        return {
            "input_ids": input_ids,
            "head_index": head if head is not None else 0,
            "tail_index": tail if tail is not None else 0,
            "label": self.label_ids[instance.relation],
            "truncated": head is None or tail is None,
            "escaped_markers": count_markers(instance),
        }

    def collate(self, features: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
        """Right-padded ids, their mask, marker positions and labels."""
        input_ids, attention_mask = pad_token_ids(
            [feature["input_ids"] for feature in features], pad_token_id, self.padded_length()
        )
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "head_index": torch.tensor([feature["head_index"] for feature in features]),
            "tail_index": torch.tensor([feature["tail_index"] for feature in features]),
            "labels": torch.tensor([feature["label"] for feature in features]),
        }

    def build_model(self, encoder: HybridTransformer) -> RelationClassifier:
        """The marker-pair classifier over :attr:`labels`."""
        return RelationClassifier(
            encoder, len(self.labels), dropout=self.recipe.head_dropout, train_classifier=self.recipe.train_classifier
        )

    def score(self, instances: Sequence[RelationInstance], predictions: Sequence[int]) -> dict[str, Any]:
        """:func:`relation_scores` of the predicted label ids."""
        return relation_scores(
            [instance.relation for instance in instances], [self.labels[p] for p in predictions], self.labels
        )

    def prediction_record(self, instance: RelationInstance, prediction: int) -> dict[str, Any]:
        """Source line, mentions, gold and predicted relation."""
        return {
            "source": instance.source,
            "head": instance.head.name,
            "tail": instance.tail.name,
            "img_id": instance.image,
            "gold": instance.relation,
            "predicted": self.labels[prediction],
        }

    def describe(self) -> dict[str, Any]:
        """The relation labels in id order and the markers."""
        return {
            "task": self.name,
            "labels": self.labels,
            "entity_markers": list(ENTITY_MARKERS),
            "recipe": self.recipe.to_dict(),
        }


def _official_new_rows(encoder: HybridTransformer, old_rows: int) -> None:
    """The official resizing: rows from ``old_rows`` on drawn from :math:`N(0, \\sigma^2)` (the text tower's
    ``initializer_range``), and no ``padding_idx`` (the ``[PAD]`` row gets gradients like any other)."""
    embeddings = encoder.get_input_embeddings()
    with torch.no_grad():
        embeddings.weight[old_rows:].normal_(mean=0.0, std=encoder.text_config.initializer_range)
    embeddings.padding_idx = None
