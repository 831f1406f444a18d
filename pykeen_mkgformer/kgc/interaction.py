r"""The MKGformer interaction: encode a query once, score every candidate entity with one matmul.

For a query :math:`(h, r, ?)` the hybrid transformer reads the query text (:mod:`.inputs`) with the
images of :math:`h` on the vision side, and the state of the ``[MASK]`` token
:math:`\mathbf{m}_{h,r} \in \mathbb{R}^d` goes through BERT's masked-language-model transform
(dense, activation, LayerNorm). Every entity :math:`t` is a token with embedding
:math:`\mathbf{e}_t` and a bias :math:`b_t`:

.. math::

    f(h, r, t) = \mathrm{LN}\big(\sigma(\mathbf{W}\mathbf{m}_{h,r} + \mathbf{c})\big)^{\top}\mathbf{e}_t + b_t

so :math:`f(h, r, \cdot)` for all entities is one ``(batch, d) x (d, num_entities)`` product: the
masked-token prediction over the entity vocabulary that BERT's MLM head does over words.

This is a plain :class:`torch.nn.Module`, not a :class:`pykeen.nn.modules.Interaction`: PyKEEN's
interactions are functions of (broadcast) *representation tensors* of head, relation and tail,
while here the head slot is a token sequence plus a variable set of images that must go through
a transformer once per query, never once per (query, candidate) pair.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.bert.modeling_bert import BertPredictionHeadTransform

from ..encoder import HybridTransformer
from .inputs import QueryBatch

__all__ = ["MKGformerInteraction"]


class MKGformerInteraction(nn.Module):
    """The hybrid encoder plus the MLM transform that turns a ``[MASK]`` state into a query vector."""

    def __init__(self, encoder: HybridTransformer, mlm_transform: nn.Module | None = None):
        """Wrap an encoder.

        :param encoder: the hybrid transformer (its word embeddings already hold the entity and relation tokens)
        :param mlm_transform: BERT's ``cls.predictions.transform`` (dense + act + LayerNorm); by default a
            randomly initialised one for the text tower's config
        """
        super().__init__()
        self.encoder = encoder
        self.mlm_transform = mlm_transform if mlm_transform is not None else BertPredictionHeadTransform(encoder.text_config)

    def encode(
        self,
        query: QueryBatch,
        pixel_values: list[torch.Tensor] | None = None,
        image_mask: list[torch.Tensor] | None = None,
    ) -> torch.FloatTensor:
        """The transformed ``[MASK]`` state of each query, ``(batch, dim)``.

        :param query: token ids, attention mask and ``[MASK]`` position of each query
        :param pixel_values: the known entity's images, one tensor per resolution (or None)
        :param image_mask: which images are real, one tensor per resolution (or None)
        """
        output = self.encoder(
            input_ids=query.input_ids,
            attention_mask=query.attention_mask,
            pixel_values=pixel_values,
            image_mask=image_mask,
        )
        states = output.text_last_hidden_state
        rows = torch.arange(states.shape[0], device=states.device)
        return self.mlm_transform(states[rows, query.mask_position])

    @staticmethod
    def score(
        queries: torch.FloatTensor, entity_embeddings: torch.FloatTensor, entity_bias: torch.FloatTensor
    ) -> torch.FloatTensor:
        r"""Scores :math:`\mathbf{q}^{\top}\mathbf{e}_t + b_t`.

        :param queries: ``(batch, dim)``
        :param entity_embeddings: ``(num, dim)`` shared candidates, or ``(batch, num, dim)`` per query
        :param entity_bias: ``(num,)`` or ``(batch, num)``
        :return: ``(batch, num)``
        """
        if entity_embeddings.dim() == 2:
            return queries @ entity_embeddings.t() + entity_bias.unsqueeze(0)
        return torch.einsum("bd,bnd->bn", queries, entity_embeddings) + entity_bias
