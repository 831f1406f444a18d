r"""Relation extraction head: entity markers around head and tail, their states -> a classifier.

The sentence is encoded with the markers ``<s> head </s>`` and ``<o> tail </o>`` around the two
mentions; with :math:`h_s` and :math:`h_o` the last text states at ``<s>`` and ``<o>``,

.. math::

    p(r \mid x) = \mathrm{softmax}\big(W [h_s ; h_o] + b\big)

trained with cross entropy.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..encoder import HybridTransformer
from ..tasks.task import TaskModel
from .data import RelationInstance

__all__ = ["ENTITY_MARKERS", "HEAD_START", "TAIL_START", "mark_entities", "escape_markers", "count_markers", "RelationClassifier"]

HEAD_START, HEAD_END, TAIL_START, TAIL_END = "<s>", "</s>", "<o>", "</o>"
#: the four marker tokens, added to the tokenizer as special tokens
ENTITY_MARKERS = (HEAD_START, HEAD_END, TAIL_START, TAIL_END)


def escape_markers(token: str) -> str:
    """A word of the text with every marker string in it broken up (``<s>`` -> ``< s>``), so that only
    the markers :func:`mark_entities` inserts are read as markers."""
    for marker in ENTITY_MARKERS:
        if marker in token:
            token = token.replace(marker, f"{marker[0]} {marker[1:]}")
    return token


def count_markers(instance: RelationInstance) -> int:
    """How many marker strings the instance's own words hold (escaped by :func:`mark_entities`)."""
    return sum(token.count(marker) for token in instance.tokens for marker in ENTITY_MARKERS if marker in token)


def mark_entities(instance: RelationInstance, placement: str = "nested") -> list[str]:
    """The instance's words with ``<s> </s>`` around the head mention and ``<o> </o>`` around the tail
    (marker strings inside the words themselves escaped: :func:`escape_markers`).

    :param placement: ``"nested"`` (closing markers right after a span's last word), or ``"official"``
        (every marker goes before a word: ``</s>`` before the word at the head's end position, so a span
        that ends the sentence has no closing marker; before one word the order is ``<s> </s> <o> </o>``)
    """
    if placement == "official":
        return _official_marks(instance)
    words: list[str] = []
    for index, token in enumerate(instance.tokens):
        token = escape_markers(token)
        if index == instance.head.start:
            words.append(HEAD_START)
        if index == instance.tail.start:
            words.append(TAIL_START)
        words.append(token)
        if index == instance.tail.end - 1:
            words.append(TAIL_END)
        if index == instance.head.end - 1:
            words.append(HEAD_END)
    return words


def _official_marks(instance: RelationInstance) -> list[str]:
    head, tail = instance.head, instance.tail
    words: list[str] = []
    for index, token in enumerate(instance.tokens):
        for position, marker in ((head.start, HEAD_START), (head.end, HEAD_END), (tail.start, TAIL_START), (tail.end, TAIL_END)):
            if index == position:
                words.append(marker)
        words.append(escape_markers(token))
    return words


class RelationClassifier(TaskModel):
    """:math:`\\mathrm{softmax}(W [h_{<s>} ; h_{<o>}] + b)` on top of the hybrid encoder."""

    def __init__(
        self, encoder: HybridTransformer, num_relations: int, *, dropout: float | None = None, train_classifier: bool = True
    ):
        """
        :param dropout: on :math:`[h_s; h_o]` (None: the text tower's hidden dropout; the official code: 0)
        :param train_classifier: False keeps :math:`W, b` at their initial values (the official optimizer
            never sees them)
        """
        super().__init__(encoder)
        width = encoder.text_config.hidden_size
        self.dropout = nn.Dropout(encoder.text_config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(2 * width, num_relations)
        self.classifier.requires_grad_(train_classifier)

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        """Relation scores ``(batch, num_relations)`` from the ``<s>`` and ``<o>`` states."""
        states = self.text_states(batch)
        rows = torch.arange(states.shape[0], device=states.device)
        pair = torch.cat([states[rows, batch["head_index"]], states[rows, batch["tail_index"]]], dim=-1)
        return self.classifier(self.dropout(pair))

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Cross entropy against the gold relation ids."""
        return nn.functional.cross_entropy(self.logits(batch), batch["labels"])

    def predict(self, batch: dict[str, Any]) -> Sequence[int]:
        """The highest-scoring relation id of each instance."""
        return self.logits(batch).argmax(dim=-1).tolist()
