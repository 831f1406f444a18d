r"""The MKGformer interaction: encode each (known entity, relation) query once, score every candidate with one matmul.

For a query :math:`(h, r, ?)` the hybrid transformer reads the query text (:mod:`.inputs`) with the
images of :math:`h` on the vision side, and the state of the ``[MASK]`` token
:math:`\mathbf{m}_{h,r} \in \mathbb{R}^d` goes through BERT's masked-language-model transform
(dense, activation, LayerNorm). Every entity :math:`t` is a token with embedding
:math:`\mathbf{e}_t` and a bias :math:`b_t`:

.. math::

    f(h, r, t) = \mathrm{LN}\big(\sigma(\mathbf{W}\mathbf{m}_{h,r} + \mathbf{c})\big)^{\top}\mathbf{e}_t + b_t

so :math:`f(h, r, \cdot)` for all entities is one ``(batch, d) x (d, num_entities)`` product: the
masked-token prediction over the entity vocabulary that BERT's MLM head does over words.

As a :class:`pykeen.nn.modules.Interaction` it declares which entity representations feed each slot
(:attr:`~pykeen.nn.modules.Interaction.head_indices` / ``tail_indices``): the head slot receives the
known entity's token ids (:class:`~.representation.EntityTextTokens`) and, when the model reads
images, its pixels (:class:`~.representation.EntityImageRepresentation`); the tail slot receives only
the entity token embedding and bias (:class:`~.representation.EntityTokenEmbedding`,
:class:`~.representation.EntityBias`), so candidates never load text or images. The relation slot is
the directed relation's token ids (:class:`~.representation.RelationTextTokens`). Under PyKEEN's
broadcasting (``score_t``: head and relation ``(batch, 1, ...)``, tails ``(1, N, ...)``) the
transformer runs once per element of the broadcast (head, relation) shape, never per candidate.

The scoring head is the part after the encoder: :meth:`MKGformerInteraction.score_candidates`
(the 1-N MLM head above). Another head is a subclass that overrides it (and, if it needs other
candidate representations, ``entity_shape`` / ``_tail_indices``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from docdata import parse_docdata
import torch
from pykeen.nn.modules import Interaction
from torch import nn

from .inputs import QueryBatch, QueryLayout

__all__ = ["MKGformerInteraction"]


@parse_docdata
class MKGformerInteraction(Interaction):
    r"""MKGformer's interaction: the hybrid encoder plus the MLM transform, scored against entity tokens.

    .. math::

        f(h, r, t) = \mathrm{MLM}\big(\mathrm{Hybrid}(\text{query}(h, r), \text{images}(h))_{[MASK]}\big)^{\top}
        \mathbf{e}_t + b_t

    Entity representations (in this order): 0 the known entity's token ids, 1 the entity token
    embedding, 2 the entity bias, 3 the images (only with ``use_images``); relation representation:
    the directed relation's token ids.
    ---
    citation:
        author: Chen
        year: 2022
        link: https://arxiv.org/abs/2205.02357
        github: zjunlp/MKGformer
    """

    # symbolic shapes: token ids of width "w", the embedding "d", the scalar bias, the image batch
    entity_shape = ("w", "d", "", "")
    relation_shape = ("rw",)
    _head_indices = (0, 3)
    _tail_indices = (1, 2)

    def __init__(
        self,
        encoder: nn.Module,
        mlm_transform: nn.Module | None = None,
        *,
        layout: QueryLayout | None = None,
        use_images: bool = True,
    ):
        """Wrap an encoder.

        :param encoder: the :class:`~pykeen_mkgformer.encoder.HybridTransformer` (its word embeddings already
            hold the entity and relation tokens)
        :param mlm_transform: BERT's ``cls.predictions.transform`` (dense + act + LayerNorm); by default a
            randomly initialised one for the text tower's config
        :param layout: how queries are written (special token ids, length, format); needed to score from token
            ids (not for :meth:`encode`)
        :param use_images: whether the head slot receives the known entity's images (entity representation 3)
        """
        super().__init__()
        if mlm_transform is None:
            from transformers.models.bert.modeling_bert import BertPredictionHeadTransform

            mlm_transform = BertPredictionHeadTransform(encoder.text_config)
        self.encoder = encoder
        self.mlm_transform = mlm_transform
        self.layout = layout
        self.use_images = use_images
        if not use_images:
            self.entity_shape = ("w", "d", "")
            self._head_indices = (0,)

    # ------------------------------------------------------------------ encoding
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

    def encode_hr(self, h: Any, r: torch.LongTensor) -> torch.FloatTensor:
        """Query vectors ``(*prefix, dim)`` for broadcast head and relation representations, one encoder row each.

        :param h: the known entities' token ids ``(*ph, 1 + w)``, or ``[token ids, ImageBatch]`` with images
        :param r: the directed relations' token ids ``(*pr, 2, 1 + w')``
        """
        if self.layout is None:
            raise ValueError("MKGformerInteraction needs a QueryLayout to assemble queries from token ids.")
        tokens, images = (h[0], h[1]) if isinstance(h, Sequence) and not torch.is_tensor(h) else (h, None)
        shapes = [tokens.shape[:-1], r.shape[:-2]] + ([images.shape] if images is not None else [])
        prefix = tuple(torch.broadcast_shapes(*shapes))
        n = int(torch.Size(prefix).numel())
        tokens = tokens.expand(*prefix, tokens.shape[-1]).reshape(n, tokens.shape[-1])
        r = r.expand(*prefix, *r.shape[-2:]).reshape(n, *r.shape[-2:])
        query = self.layout.link_prediction(tokens, r)
        pixel_values = image_mask = None
        if images is not None:
            pixel_values, image_mask = images.flatten_to(prefix)
        return self.encode(query, pixel_values, image_mask).view(*prefix, -1)

    # ------------------------------------------------------------------ the scoring head
    @staticmethod
    def score_candidates(
        queries: torch.FloatTensor, entity_embeddings: torch.FloatTensor, entity_bias: torch.FloatTensor
    ) -> torch.FloatTensor:
        r"""Scores :math:`\mathbf{q}^{\top}\mathbf{e}_t + b_t` (the 1-N MLM head).

        :param queries: ``(batch, dim)``
        :param entity_embeddings: ``(num, dim)`` shared candidates, or ``(batch, num, dim)`` per query
        :param entity_bias: ``(num,)`` or ``(batch, num)``
        :return: ``(batch, num)``
        """
        if entity_embeddings.dim() == 2:
            return queries @ entity_embeddings.t() + entity_bias.unsqueeze(0)
        return torch.einsum("bd,bnd->bn", queries, entity_embeddings) + entity_bias

    def _score_broadcast(
        self, queries: torch.FloatTensor, embeddings: torch.FloatTensor, bias: torch.FloatTensor
    ) -> torch.FloatTensor:
        """Scores of broadcast queries ``(*pq, d)`` and candidates ``(*pt, d)``, always through :meth:`score_candidates`.

        ``score_t``'s shapes (``(b, 1, d)`` against ``(1, n, d)`` or ``(b, n, d)``) are one product; any other
        broadcast is flattened to one candidate per query.
        """
        if queries.dim() == 3 and embeddings.dim() == 3 and queries.shape[1] == 1:
            if embeddings.shape[0] == 1:  # score_t: (b, 1, d) x (1, n, d)
                return self.score_candidates(queries[:, 0], embeddings[0], bias[0])
            if embeddings.shape[0] == queries.shape[0]:  # per-query candidates: (b, 1, d) x (b, n, d)
                return self.score_candidates(queries[:, 0], embeddings, bias)
        prefix = torch.broadcast_shapes(queries.shape[:-1], embeddings.shape[:-1], bias.shape)
        n, dim = prefix.numel(), queries.shape[-1]
        scores = self.score_candidates(
            queries.expand(*prefix, dim).reshape(n, dim),
            embeddings.expand(*prefix, dim).reshape(n, 1, dim),
            bias.expand(prefix).reshape(n, 1),
        )
        return scores.view(prefix)

    # docstr-coverage: inherited
    def forward(self, h: Any, r: torch.LongTensor, t: Sequence[torch.FloatTensor]) -> torch.FloatTensor:
        """Scores of broadcast ``(head inputs, relation token ids, (candidate embeddings, biases))``: one encoder pass per query row."""
        embeddings, bias = t
        queries = self.encode_hr(h, r)
        return self._score_broadcast(queries, embeddings, bias)

    def reset_parameters(self) -> None:
        """Nothing to do: the encoder is pretrained (or initialised by its own config); the model rebuilds it on reset."""
