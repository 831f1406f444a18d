"""The relation extraction recipe: :class:`RERecipe` (``pykeen-mkgformer re --recipe paper|official``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..tasks.recipe import TaskRecipe

__all__ = ["RERecipe"]

#: new marker rows: transformers' resizing (mean of the vocabulary, ``padding_idx`` kept), or the
#: official one (:math:`N(0, \sigma^2)` with the text tower's ``initializer_range``, no ``padding_idx``,
#: so the ``[PAD]`` row is trained too)
MarkerInit = Literal["transformers", "official"]
#: ``"nested"``: ``<s>``/``</s>`` and ``<o>``/``</o>`` around each span, closing markers after the span's
#: last word; ``"official"``: every marker is inserted *before* a word (``</s>`` before the word at the
#: span's end), so a span that ends the sentence gets no closing marker, and where one span ends where the
#: other starts the order is ``<s> </s> <o> </o>`` before that word
MarkerPlacement = Literal["nested", "official"]


@dataclass(frozen=True)
class RERecipe(TaskRecipe):
    """:class:`~pykeen_mkgformer.tasks.recipe.TaskRecipe` plus the marker and head choices."""

    marker_init: MarkerInit = "transformers"
    marker_placement: MarkerPlacement = "nested"
    #: dropout on :math:`[h_s; h_o]` before the classifier (None: the text tower's hidden dropout)
    head_dropout: float | None = None
    #: train the classifier; the official optimizer only takes parameters named ``model.*``, so its
    #: classifier keeps its random initial weights (reproduced with ``False``)
    train_classifier: bool = True

    @classmethod
    def official(cls, **overrides: Any) -> "RERecipe":
        """``MRE/run_mre.sh`` with ``MRE/run.py``, ``MRE/processor/dataset.py``, ``MRE/modules/train.py``."""
        values: dict[str, Any] = dict(
            fusion_variant="official",
            padding="max_length",
            max_length=80,
            missing_images="zeros",
            crop_source="index",
            epochs=12,
            batch_size=32,
            lr=1e-5,
            weight_decay=0.01,
            decay_all=True,
            warmup_ratio=0.06,
            max_grad_norm=None,
            marker_init="official",
            marker_placement="official",
            # nn.Dropout(0.5) is defined in UnimoREModel and never called
            head_dropout=0.0,
            train_classifier=False,
        )
        values.update(overrides)
        return cls(**values)
