r"""NER head: a linear-chain CRF (pytorch-crf) over the first word piece of every word.

With :math:`h_i` the last text state of word :math:`i`'s first piece, emission scores
:math:`e_i = W h_i + b`, and the CRF's transition scores :math:`A` (plus start/end scores),

.. math::

    s(x, y) = \pi_{y_1} + \sum_{i} e_{i, y_i} + \sum_{i > 1} A_{y_{i-1}, y_i} + \omega_{y_n},\qquad
    \mathcal{L} = -\big(s(x, y) - \log \textstyle\sum_{y'} \exp s(x, y')\big)

Decoding is Viterbi. The CRF runs over words, not pieces, so its mask is on from the first step
(as pytorch-crf requires) and only labelled positions enter the loss.
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

    def __init__(self, encoder: HybridTransformer, num_tags: int, *, dropout: float | None = None):
        super().__init__(encoder)
        self.dropout = nn.Dropout(encoder.text_config.hidden_dropout_prob if dropout is None else dropout)
        self.emission = nn.Linear(encoder.text_config.hidden_size, num_tags)
        self.crf = CRF(num_tags, batch_first=True)

    def emissions(self, batch: dict[str, Any]) -> torch.Tensor:
        """Per-word tag scores ``(batch, n_words, num_tags)``, gathered at ``word_index``."""
        states = self.text_states(batch)
        index = batch["word_index"].unsqueeze(-1).expand(-1, -1, states.shape[-1])
        return self.emission(self.dropout(states.gather(1, index)))

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Mean negative log-likelihood of the gold tag sequences."""
        return -self.crf(self.emissions(batch), batch["tags"], mask=batch["word_mask"], reduction="mean")

    def predict(self, batch: dict[str, Any]) -> list[list[int]]:
        """Viterbi tag ids of each sentence's words."""
        return self.crf.decode(self.emissions(batch), mask=batch["word_mask"])
