"""The NER recipe: :class:`NERRecipe` (``pykeen-mkgformer ner --recipe paper|official``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..tasks.recipe import TaskRecipe

__all__ = ["NERRecipe", "OFFICIAL_TAGS"]

#: ``"words"``: the CRF runs over each word's first piece with the tags O + B-/I- of the training
#: data's types; ``"pieces"``: the official CRF over every position of the padded sequence that the
#: attention mask covers ([CLS], every piece, [SEP]) with :data:`OFFICIAL_TAGS`
CRFScope = Literal["words", "pieces"]

#: the official MNER tag set in id order: PAD (0), the BIO tags of MISC / PER / ORG / LOC, then the
#: tags of continuation pieces (X) and of [CLS] / [SEP]
OFFICIAL_TAGS = (
    "PAD", "O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "X", "[CLS]", "[SEP]",
)


@dataclass(frozen=True)
class NERRecipe(TaskRecipe):
    """:class:`~pykeen_mkgformer.tasks.recipe.TaskRecipe` plus the CRF's scope and the head's dropout."""

    crf_scope: CRFScope = "words"
    #: dropout on the text states before the emission layer (None: the text tower's hidden dropout)
    head_dropout: float | None = None

    @classmethod
    def official(cls, **overrides: Any) -> "NERRecipe":
        """``MNER/run_mner.sh`` with ``MNER/run.py``, ``MNER/processor/datasets.py``, ``MNER/modules/train.py``."""
        values: dict[str, Any] = dict(
            fusion_variant="official",
            padding="max_length",
            max_length=128,
            missing_images="zeros",
            crop_source="index",
            epochs=30,
            batch_size=16,
            lr=5e-5,
            vision_lr=3e-5,
            head_lr=5e-2,
            weight_decay=0.01,
            decay_all=True,
            warmup_ratio=0.01,
            max_grad_norm=None,
            crf_scope="pieces",
            head_dropout=0.1,
        )
        values.update(overrides)
        return cls(**values)
