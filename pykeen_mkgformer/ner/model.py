r"""NER head: a linear-chain CRF (pytorch-crf) over the first word piece of every word.

With :math:`h_i` the last text state of word :math:`i`'s first piece, emission scores
:math:`e_i = W h_i + b`, and the CRF's transition scores :math:`A` (plus start/end scores),

.. math::

    s(x, y) = \pi_{y_1} + \sum_{i} e_{i, y_i} + \sum_{i > 1} A_{y_{i-1}, y_i} + \omega_{y_n},\qquad
    \mathcal{L} = -\big(s(x, y) - \log \textstyle\sum_{y'} \exp s(x, y')\big)

Decoding is Viterbi. The CRF runs over words, not pieces, so its mask is on from the first step
(as pytorch-crf requires) and only labelled positions enter the loss.

With ``scope="pieces"`` (the official MNER head) the CRF runs over every position the attention mask
covers instead (``[CLS]``, every piece, ``[SEP]``), with the official tag set
(:data:`~pykeen_mkgformer.ner.recipe.OFFICIAL_TAGS`); a word's prediction is the tag decoded at its
first piece.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchcrf import CRF

from ..encoder import HybridTransformer
from ..tasks.task import TaskModel

__all__ = ["CRFTagger"]


class CRFTagger(TaskModel):
    """Emission scores from the words' first-piece states, a CRF on top."""

    def __init__(
        self,
        encoder: HybridTransformer,
        num_tags: int,
        *,
        dropout: float | None = None,
        scope: str = "words",
        unlabelled_tag: int = 0,
    ):
        """
        :param scope: ``"words"`` (first pieces) or ``"pieces"`` (every attended position, official)
        :param unlabelled_tag: ``scope="pieces"``: the tag of a word that has no piece (``O``)
        """
        super().__init__(encoder)
        if scope not in ("words", "pieces"):
            raise ValueError(f"scope must be 'words' or 'pieces', got {scope!r}.")
        self.scope = scope
        self.unlabelled_tag = unlabelled_tag
        self.dropout = nn.Dropout(encoder.text_config.hidden_dropout_prob if dropout is None else dropout)
        self.emission = nn.Linear(encoder.text_config.hidden_size, num_tags)
        self.crf = CRF(num_tags, batch_first=True)

    def emissions(self, batch: dict[str, Any]) -> torch.Tensor:
        """Tag scores per CRF step: ``(batch, n_words, num_tags)`` gathered at ``word_index``, or
        ``(batch, n_tokens, num_tags)`` at every position (``scope="pieces"``)."""
        states = self.text_states(batch)
        if self.scope == "pieces":
            return self.emission(self.dropout(states))
        index = batch["word_index"].unsqueeze(-1).expand(-1, -1, states.shape[-1])
        return self.emission(self.dropout(states.gather(1, index)))

    def _crf_mask(self, batch: dict[str, Any]) -> torch.Tensor:
        return batch["attention_mask"].bool() if self.scope == "pieces" else batch["word_mask"]

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Mean negative log-likelihood of the gold tag sequences."""
        return -self.crf(self.emissions(batch), batch["tags"], mask=self._crf_mask(batch), reduction="mean")

    def predict(self, batch: dict[str, Any]) -> list[list[int]]:
        """Viterbi tag ids of each sentence's words (``scope="pieces"``: the tag at each word's first piece)."""
        paths = self.crf.decode(self.emissions(batch), mask=self._crf_mask(batch))
        if self.scope == "words":
            return paths
        predictions = []
        for path, starts, mask in zip(paths, batch["word_index"].tolist(), batch["word_mask"].tolist()):
            words = sum(mask)  # a prefix: the words that fit max_length
            predictions.append([path[p] if p > 0 else self.unlabelled_tag for p in starts[:words]])
        return predictions
