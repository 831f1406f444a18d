"""Text inputs of MKGformer: the tokenizer, pre-tokenised entity/relation texts, and query assembly.

Every entity and relation text is tokenised **once**, when the model is built; a batch of queries is
then assembled from those cached id tensors with a handful of vectorised tensor operations, so no
tokenizer runs during training or evaluation.

Entity and relation tokens are not added to the tokenizer: they are ids appended after the text
vocabulary (``entity e -> vocab_size + e``, ``directed relation d -> vocab_size + num_entities + d``),
and the text tower's word embeddings are resized to match. The two query layouts are

- link prediction (stage 2), for a query ``(h, r, ?)``::

      [CLS] <h token> [SEP] <r text> <r token> [SEP] [MASK] <h text> [SEP]

- entity modeling (stage 1), for an entity ``e``::

      [CLS] [MASK] is <e text> [SEP]

Both are cut to ``max_seq_length`` by shortening the texts (entity text first, then relation text);
the special and entity/relation tokens are never cut.

``query_format="official"`` gives the official code's strings instead (``MKG/data/processor.py``):
stage 1 ``[CLS] the description of [MASK] is that <e text> . [SEP]`` (cut from its end), and a head
query ``(?, r, t)`` is ``[CLS] [MASK] [SEP] <r text> <r token> [SEP] <t token> <t text> [SEP]`` with
the *forward* relation's text and token, cut as transformers' ``longest_first`` cuts the pair
(``[MASK] [SEP] <r text> <r token>``, ``<t token> <t text>``): the longer part loses its last token
first, ties from the second part; when the first part is cut, its last token, the relation token, goes
first, as in the official code. Tail queries are the same in both formats.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

__all__ = [
    "QueryBatch",
    "QueryAssembler",
    "QueryLayout",
    "TokenizedTexts",
    "build_tokenizer",
    "train_wordpiece_tokenizer",
    "concatenate_segments",
    "entity_texts",
    "directed_relation_texts",
    "recover_tokenizer",
    "TOKEN_PAD",
]

#: the padding value of token tables (:meth:`QueryAssembler.entity_tokens`): never a real token id
TOKEN_PAD = -1


def entity_texts(triples_factory: Any, description: str = "description") -> list[str]:
    """The text each entity is read with: its description (its name when it has none), or its name.

    :param triples_factory: a :class:`~pykeen_mkgformer.data.MultimodalTriplesFactory`
    :param description: ``"description"`` or ``"name"``
    """
    names = list(triples_factory.entity_names)
    if description == "name":
        return names
    return [text if text and text.strip() else name for name, text in zip(names, triples_factory.entity_descriptions)]


def directed_relation_texts(triples_factory: Any) -> list[str]:
    """Texts of the directed relations: ``2r`` is relation ``r``'s text, ``2r + 1`` is 'inverse of' it.

    :raises ValueError: if the factory has not one text per real relation
    """
    texts = list(triples_factory.relation_texts)
    real = triples_factory.real_num_relations if hasattr(triples_factory, "real_num_relations") else len(texts)
    if len(texts) != real:
        raise ValueError(f"relation_texts has {len(texts)} entries, but the factory has {real} real relations.")
    directed = []
    for text in texts:
        directed.extend([text, f"inverse of {text}"])
    return directed

logger = logging.getLogger(__name__)

#: special tokens of a tokenizer trained from scratch (BERT's names)
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_wordpiece_tokenizer(texts: Sequence[str], *, vocab_size: int = 2000) -> PreTrainedTokenizerFast:
    """Build a small BERT-style WordPiece tokenizer (lower-cased) from some texts, deterministically.

    Used when the text encoder is a config dict (random weights) and no ``tokenizer`` is given: the
    vocabulary then fits the knowledge graph's own texts instead of a foreign checkpoint's. The
    vocabulary is: the special tokens, every character (alone and as a ``##`` continuation, so
    every word can be spelled), then the most frequent whole words (ties by spelling) up to
    ``vocab_size``. (``tokenizers``' own WordPiece trainer assigns ids in hash order, which differs
    between processes, so it is not used.)

    :param texts: the texts
    :param vocab_size: the largest vocabulary size (at least the special tokens and the alphabet are kept)
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    characters = sorted({character for word in words for character in word})
    vocabulary = [*SPECIAL_TOKENS, *characters, *(f"##{character}" for character in characters)]
    known = set(vocabulary)
    for word, _ in sorted(words.items(), key=lambda item: (-item[1], item[0])):
        if len(vocabulary) >= vocab_size:
            break
        if word not in known:
            vocabulary.append(word)
            known.add(word)
    backend = Tokenizer(models.WordPiece(vocab={token: i for i, token in enumerate(vocabulary)}, unk_token="[UNK]"))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def build_tokenizer(
    text_encoder: Any,
    tokenizer: str | Path | PreTrainedTokenizerBase | None,
    texts: Sequence[str],
    *,
    vocab_size: int = 2000,
) -> PreTrainedTokenizerBase:
    """The tokenizer for a text encoder.

    - ``tokenizer`` given (a name, a folder or a tokenizer object): that one;
    - else a pretrained ``text_encoder`` (a name or folder): its own tokenizer;
    - else (a config dict or config object, i.e. random weights): a WordPiece tokenizer trained on
      ``texts`` (see :func:`train_wordpiece_tokenizer`).

    :raises ValueError: if the tokenizer lacks one of ``[CLS] [SEP] [MASK] [PAD]``
    """
    if isinstance(tokenizer, PreTrainedTokenizerBase):
        result = tokenizer
    elif tokenizer is not None:
        result = AutoTokenizer.from_pretrained(str(tokenizer))
    elif isinstance(text_encoder, (str, Path)):
        result = AutoTokenizer.from_pretrained(str(text_encoder))
    else:
        result = train_wordpiece_tokenizer(texts, vocab_size=vocab_size)
    missing = [
        name for name in ("cls_token_id", "sep_token_id", "mask_token_id", "pad_token_id") if getattr(result, name) is None
    ]
    if missing:
        raise ValueError(f"The tokenizer {type(result).__name__} has no {', '.join(missing)}; MKGformer needs BERT-style special tokens.")
    return result


@dataclass
class TokenizedTexts:
    """Texts tokenised once: padded ids ``(n, max_len)`` and true lengths ``(n,)``."""

    ids: torch.LongTensor
    lengths: torch.LongTensor

    @classmethod
    def from_texts(
        cls, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], *, max_length: int, batch_size: int = 4096
    ) -> TokenizedTexts:
        """Tokenise without special tokens, each text cut to ``max_length`` tokens."""
        rows: list[list[int]] = []
        for start in range(0, len(texts), batch_size):
            encoded = tokenizer(
                list(texts[start : start + batch_size]),
                add_special_tokens=False,
                truncation=True,
                max_length=max(max_length, 1),
            )["input_ids"]
            rows.extend(encoded)
        width = max([len(row) for row in rows], default=0)
        ids = torch.full((len(rows), max(width, 1)), int(tokenizer.pad_token_id), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        lengths = torch.as_tensor([len(row) for row in rows], dtype=torch.long)
        return cls(ids=ids, lengths=lengths)


@dataclass
class QueryBatch:
    """Assembled text inputs of a batch of queries."""

    #: ``(batch, n_tokens)``
    input_ids: torch.LongTensor
    #: ``(batch, n_tokens)``, 1 for real tokens
    attention_mask: torch.LongTensor
    #: ``(batch,)``, where the ``[MASK]`` token sits
    mask_position: torch.LongTensor


def concatenate_segments(
    segments: Sequence[tuple[torch.Tensor, torch.Tensor]], *, pad_id: int
) -> tuple[torch.LongTensor, torch.LongTensor, torch.LongTensor]:
    """Concatenate per-row variable-length segments into one padded batch, without a Python loop over rows.

    :param segments: ``(ids, lengths)`` pairs; ``ids`` is ``(batch, width)``, ``lengths`` is ``(batch,)``
        with ``lengths <= width`` (only the first ``lengths[i]`` ids of row ``i`` are used)
    :param pad_id: the id written after each row's end
    :return: ``input_ids (batch, total_max)``, ``attention_mask`` and the start of every segment ``(batch, n_segments)``
    """
    lengths = torch.stack([length for _, length in segments], dim=1)  # (b, s)
    starts = torch.cumsum(lengths, dim=1) - lengths
    total = lengths.sum(dim=1)
    batch_size = lengths.shape[0]
    width = int(total.max()) if batch_size else 0
    positions = torch.arange(width, device=lengths.device).unsqueeze(0)  # (1, w)
    input_ids = torch.full((batch_size, width), pad_id, dtype=torch.long, device=lengths.device)
    for index, (ids, _) in enumerate(segments):
        offset = positions - starts[:, index : index + 1]
        inside = (offset >= 0) & (offset < lengths[:, index : index + 1])
        values = ids.gather(1, offset.clamp(0, ids.shape[1] - 1))
        input_ids = torch.where(inside, values, input_ids)
    attention_mask = (positions < total.unsqueeze(1)).long()
    return input_ids, attention_mask, starts


def _constant(value: int | torch.Tensor, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A one-token segment ``(ids (batch, 1), lengths (batch,))``."""
    ids = torch.as_tensor(value, dtype=torch.long, device=device).expand(batch_size).reshape(batch_size, 1)
    return ids, torch.ones(batch_size, dtype=torch.long, device=device)


def _split_table(table: torch.LongTensor) -> tuple[torch.LongTensor, torch.LongTensor, torch.LongTensor]:
    """``(token, text ids, text lengths)`` of ``[token, text ids..., TOKEN_PAD...]`` rows."""
    text = table[:, 1:]
    return table[:, 0], text, (text != TOKEN_PAD).sum(dim=1)


@dataclass(frozen=True)
class QueryLayout:
    """How a link prediction query is written: special token ids, the longest query, the format.

    It assembles queries from *token tables* (:meth:`QueryAssembler.entity_tokens`,
    :meth:`QueryAssembler.relation_tokens`), so that whoever holds the tables (the model's
    representations) can build the input without the texts.
    """

    cls_id: int
    sep_id: int
    mask_id: int
    pad_id: int
    max_seq_length: int
    #: ``"plugin"`` or ``"official"`` (see the module docstring)
    query_format: str = "plugin"

    def link_prediction(self, entity_tokens: torch.LongTensor, relation_tokens: torch.LongTensor) -> QueryBatch:
        """Queries ``(e, r, ?)`` from token tables.

        :param entity_tokens: ``(batch, 1 + width)`` the known entity's token and text (:data:`TOKEN_PAD`-padded)
        :param relation_tokens: ``(batch, 2, 1 + width)`` the directed relation's and its forward relation's
            token and text (:meth:`QueryAssembler.relation_tokens`); ``(batch, 1, 1 + width)`` suffices for the
            plugin's format
        :raises ValueError: for the official format without the forward relations' rows
        """
        tail = self._tail_query(entity_tokens, relation_tokens[:, 0])
        if self.query_format != "official":
            return tail
        if relation_tokens.shape[1] < 2:
            raise ValueError("The official query format needs the forward relation's tokens (relation_tokens row 1).")
        # head-side queries (odd directed ids) are those whose own token differs from the forward one
        head_side = relation_tokens[:, 0, 0] != relation_tokens[:, 1, 0]
        if not bool(head_side.any()):
            return tail
        head = self._official_head_query(entity_tokens, relation_tokens[:, 1])
        width = max(tail.input_ids.shape[1], head.input_ids.shape[1])
        pad = lambda x, value: torch.nn.functional.pad(x, (0, width - x.shape[1]), value=value)  # noqa: E731
        rows = head_side.unsqueeze(1)
        return QueryBatch(
            input_ids=torch.where(rows, pad(head.input_ids, self.pad_id), pad(tail.input_ids, self.pad_id)),
            attention_mask=torch.where(rows, pad(head.attention_mask, 0), pad(tail.attention_mask, 0)),
            mask_position=torch.where(head_side, head.mask_position, tail.mask_position),
        )

    def _tail_query(self, entity_tokens: torch.LongTensor, relation_tokens: torch.LongTensor) -> QueryBatch:
        """``[CLS] <e token> [SEP] <r text> <r token> [SEP] [MASK] <e text> [SEP]``, texts cut entity first."""
        batch_size, device = entity_tokens.shape[0], entity_tokens.device
        entity, entity_ids, entity_lengths = _split_table(entity_tokens)
        relation, relation_ids, relation_lengths = _split_table(relation_tokens)
        budget = self.max_seq_length - 7
        relation_lengths = relation_lengths.clamp(max=budget)
        entity_lengths = entity_lengths.clamp(max=budget - relation_lengths)
        segments = [
            _constant(self.cls_id, batch_size, device),
            _constant(entity, batch_size, device),
            _constant(self.sep_id, batch_size, device),
            (relation_ids, relation_lengths),
            _constant(relation, batch_size, device),
            _constant(self.sep_id, batch_size, device),
            _constant(self.mask_id, batch_size, device),
            (entity_ids, entity_lengths),
            _constant(self.sep_id, batch_size, device),
        ]
        input_ids, attention_mask, starts = concatenate_segments(segments, pad_id=self.pad_id)
        return QueryBatch(input_ids=input_ids, attention_mask=attention_mask, mask_position=starts[:, 6])

    def _official_head_query(self, entity_tokens: torch.LongTensor, forward_tokens: torch.LongTensor) -> QueryBatch:
        """``[CLS] [MASK] [SEP] <r text> <r> [SEP] <t> <t text> [SEP]``, cut like ``longest_first``."""
        batch_size, device = entity_tokens.shape[0], entity_tokens.device
        entity, entity_ids, entity_lengths = _split_table(entity_tokens)
        relation, relation_ids, relation_lengths = _split_table(forward_tokens)
        first = 3 + relation_lengths  # [MASK] [SEP] <r text> <r>
        second = 1 + entity_lengths  # <t> <t text>
        remove = (first + second - (self.max_seq_length - 3)).clamp(min=0)
        # the longer part loses tokens until both are equal, then they alternate, the second part first
        from_first = torch.minimum(remove, (first - second).clamp(min=0))
        from_second = torch.minimum(remove, (second - first).clamp(min=0))
        rest = remove - from_first - from_second
        from_first = from_first + rest // 2
        from_second = from_second + rest - rest // 2
        keep_relation_token = (from_first == 0).long()
        relation_lengths = (relation_lengths - (from_first - 1).clamp(min=0)).clamp(min=0)
        entity_lengths = (entity_lengths - from_second).clamp(min=0)
        segments = [
            _constant(self.cls_id, batch_size, device),
            _constant(self.mask_id, batch_size, device),
            _constant(self.sep_id, batch_size, device),
            (relation_ids, relation_lengths),
            (relation.unsqueeze(1), keep_relation_token),
            _constant(self.sep_id, batch_size, device),
            _constant(entity, batch_size, device),
            (entity_ids, entity_lengths),
            _constant(self.sep_id, batch_size, device),
        ]
        input_ids, attention_mask, starts = concatenate_segments(segments, pad_id=self.pad_id)
        return QueryBatch(input_ids=input_ids, attention_mask=attention_mask, mask_position=starts[:, 1])


class QueryAssembler(nn.Module):
    """Builds the token ids of link prediction and entity modeling queries from cached tokenised texts.

    Its tensors are non-persistent buffers: they follow the model to its device but stay out of the
    state dict (they are rebuilt from the texts, deterministically, whenever the model is built).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        *,
        entity_texts: Sequence[str],
        relation_texts: Sequence[str],
        max_seq_length: int,
        query_format: str = "plugin",
    ):
        """Tokenise every text once.

        :param tokenizer: the text tokenizer (not stored)
        :param entity_texts: one text per entity id
        :param relation_texts: one text per *directed* relation id (forward and inverse)
        :param max_seq_length: the longest query, special and entity/relation tokens included
        :param query_format: ``"plugin"`` or ``"official"`` (see the module docstring)
        """
        super().__init__()
        if query_format not in ("plugin", "official"):
            raise ValueError(f"query_format must be 'plugin' or 'official', got {query_format!r}.")
        self.query_format = query_format
        if max_seq_length < 8:
            raise ValueError(f"max_seq_length must be at least 8 (the query's fixed tokens), got {max_seq_length}.")
        self.max_seq_length = max_seq_length
        self.base_vocab_size = len(tokenizer)
        self.num_entities = len(entity_texts)
        self.num_directed_relations = len(relation_texts)
        self.cls_id = int(tokenizer.cls_token_id)
        self.sep_id = int(tokenizer.sep_token_id)
        self.mask_id = int(tokenizer.mask_token_id)
        self.pad_id = int(tokenizer.pad_token_id)
        entities = TokenizedTexts.from_texts(tokenizer, entity_texts, max_length=max_seq_length)
        relations = TokenizedTexts.from_texts(tokenizer, relation_texts, max_length=max_seq_length)
        self.register_buffer("entity_text_ids", entities.ids, persistent=False)
        self.register_buffer("entity_text_lengths", entities.lengths, persistent=False)
        self.register_buffer("relation_text_ids", relations.ids, persistent=False)
        self.register_buffer("relation_text_lengths", relations.lengths, persistent=False)
        is_ids = tokenizer("is", add_special_tokens=False)["input_ids"]
        self.register_buffer("is_ids", torch.as_tensor(is_ids, dtype=torch.long), persistent=False)
        # the official stage-1 sentence around the mask and the text
        for name, text in (("description_ids", "The description of"), ("is_that_ids", "is that"), ("period_ids", ".")):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            self.register_buffer(name, torch.as_tensor(ids, dtype=torch.long), persistent=False)

    def add_entity_texts(self, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> None:
        """Tokenise the texts of new entities (ids ``num_entities ..``) and append them; the relation tokens move up."""
        if len(tokenizer) != self.base_vocab_size:
            raise ValueError(
                f"The tokenizer has {len(tokenizer)} tokens, but the model was built with {self.base_vocab_size}."
            )
        added = TokenizedTexts.from_texts(tokenizer, texts, max_length=self.max_seq_length)
        old = self.entity_text_ids
        width = max(old.shape[1], added.ids.shape[1])
        ids = torch.full((old.shape[0] + added.ids.shape[0], width), self.pad_id, dtype=torch.long, device=old.device)
        ids[: old.shape[0], : old.shape[1]] = old
        ids[old.shape[0] :, : added.ids.shape[1]] = added.ids.to(old.device)
        self.entity_text_ids = ids
        self.entity_text_lengths = torch.cat([self.entity_text_lengths, added.lengths.to(old.device)])
        self.num_entities += len(texts)

    # ------------------------------------------------------------------ vocabulary layout
    @property
    def vocab_size(self) -> int:
        """Text vocabulary + one token per entity + one per directed relation."""
        return self.base_vocab_size + self.num_entities + self.num_directed_relations

    @property
    def entity_token_offset(self) -> int:
        """The token id of entity 0."""
        return self.base_vocab_size

    @property
    def relation_token_offset(self) -> int:
        """The token id of directed relation 0."""
        return self.base_vocab_size + self.num_entities

    def _constant(self, value: int | torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _constant(value, batch_size, self.entity_text_ids.device)

    # ------------------------------------------------------------------ token tables
    def _table(self, tokens: torch.LongTensor, ids: torch.LongTensor, lengths: torch.LongTensor) -> torch.LongTensor:
        """``[token, text ids..., TOKEN_PAD...]`` rows: a token followed by its padded text."""
        width = ids.shape[-1]
        inside = torch.arange(width, device=ids.device) < lengths.unsqueeze(-1)
        return torch.cat([tokens.unsqueeze(-1), torch.where(inside, ids, TOKEN_PAD)], dim=-1)

    def entity_tokens(self, entities: torch.LongTensor | None = None) -> torch.LongTensor:
        """Each entity's own token and its text, ``(*entities.shape, 1 + width)`` (all entities for None).

        Position 0 is the entity's token id, then the ids of its text, padded with :data:`TOKEN_PAD`.
        """
        if entities is None:
            entities = torch.arange(self.num_entities, device=self.entity_text_ids.device)
        entities = entities.to(self.entity_text_ids.device)
        return self._table(
            entities + self.entity_token_offset, self.entity_text_ids[entities], self.entity_text_lengths[entities]
        )

    def relation_tokens(
        self, directed_relations: torch.LongTensor | None = None, *, with_forward: bool = True
    ) -> torch.LongTensor:
        """Token and text of each directed relation and of its forward relation, ``(*shape, 2, 1 + width)``.

        Row 0 is the relation itself (``2r`` or ``2r + 1``), row 1 its forward relation ``2r`` (the same
        for a forward relation): the official head query reads the forward relation. Without
        ``with_forward`` only row 0, ``(*shape, 1, 1 + width)`` (all the plugin's queries need).
        """
        if directed_relations is None:
            directed_relations = torch.arange(self.num_directed_relations, device=self.relation_text_ids.device)
        own = directed_relations.to(self.relation_text_ids.device)
        rows = [own, own - own % 2] if with_forward else [own]
        tables = [
            self._table(d + self.relation_token_offset, self.relation_text_ids[d], self.relation_text_lengths[d])
            for d in rows
        ]
        return torch.stack(tables, dim=-2)

    @property
    def layout(self) -> QueryLayout:
        """The special tokens, length and format of the queries (what the interaction needs to assemble one)."""
        return QueryLayout(
            cls_id=self.cls_id,
            sep_id=self.sep_id,
            mask_id=self.mask_id,
            pad_id=self.pad_id,
            max_seq_length=self.max_seq_length,
            query_format=self.query_format,
        )

    # ------------------------------------------------------------------ queries
    def link_prediction(self, known_entities: torch.LongTensor, directed_relations: torch.LongTensor) -> QueryBatch:
        """``[CLS] <e token> [SEP] <r text> <r token> [SEP] [MASK] <e text> [SEP]`` for queries ``(e, r, ?)``.

        :param known_entities: ``(batch,)`` the known entity of each query
        :param directed_relations: ``(batch,)`` directed relation ids (forward ``2r``, inverse ``2r + 1``)
        """
        return self.layout.link_prediction(
            self.entity_tokens(known_entities),
            self.relation_tokens(directed_relations, with_forward=self.query_format == "official"),
        )

    def entity_modeling(self, entities: torch.LongTensor) -> QueryBatch:
        """``[CLS] [MASK] is <e text> [SEP]`` for each entity ``e`` (stage 1); the official sentence with ``"official"``."""
        if self.query_format == "official":
            return self._official_entity_modeling(entities)
        batch_size = entities.shape[0]
        is_ids = self.is_ids.unsqueeze(0).expand(batch_size, -1)
        is_lengths = torch.full((batch_size,), self.is_ids.shape[0], dtype=torch.long, device=is_ids.device)
        budget = self.max_seq_length - 3 - self.is_ids.shape[0]
        segments = [
            self._constant(self.cls_id, batch_size),
            self._constant(self.mask_id, batch_size),
            (is_ids, is_lengths),
            (self.entity_text_ids[entities], self.entity_text_lengths[entities].clamp(max=budget)),
            self._constant(self.sep_id, batch_size),
        ]
        input_ids, attention_mask, starts = concatenate_segments(segments, pad_id=self.pad_id)
        return QueryBatch(input_ids=input_ids, attention_mask=attention_mask, mask_position=starts[:, 1])

    def _official_entity_modeling(self, entities: torch.LongTensor) -> QueryBatch:
        """``[CLS] the description of [MASK] is that <e text> . [SEP]``, cut from its end (the period first)."""
        batch_size = entities.shape[0]
        device = self.entity_text_ids.device

        def fixed(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return ids.unsqueeze(0).expand(batch_size, -1), torch.full((batch_size,), ids.shape[0], device=device)

        room = self.max_seq_length - 3 - self.description_ids.shape[0] - self.is_that_ids.shape[0]
        text_lengths = self.entity_text_lengths[entities]
        period = self.period_ids.shape[0]
        keep_period = (text_lengths + period <= room).long() * period
        text_lengths = torch.minimum(text_lengths, (room - keep_period).clamp(min=0))
        period_ids, _ = fixed(self.period_ids)
        segments = [
            self._constant(self.cls_id, batch_size),
            fixed(self.description_ids),
            self._constant(self.mask_id, batch_size),
            fixed(self.is_that_ids),
            (self.entity_text_ids[entities], text_lengths),
            (period_ids, keep_period),
            self._constant(self.sep_id, batch_size),
        ]
        input_ids, attention_mask, starts = concatenate_segments(segments, pad_id=self.pad_id)
        return QueryBatch(input_ids=input_ids, attention_mask=attention_mask, mask_position=starts[:, 2])


def recover_tokenizer(model: Any, factory: Any, known: int = 0, directed: int = 0) -> PreTrainedTokenizerBase | None:
    """The tokenizer a model was built with: the one it keeps, else rebuilt and checked against its token ids.

    Models keep their tokenizer (``model.tokenizer``, saved with them). For a model without one
    (saved by an older version) it is rebuilt the way the model built it (:func:`build_tokenizer`:
    the text encoder's own tokenizer, or the WordPiece vocabulary trained on the graph's texts), and
    accepted only if it has the model's vocabulary size and re-tokenises entity ``known``'s and
    directed relation ``directed``'s texts into the stored ids. Returns None when no candidate passes.

    :param model: an :class:`~pykeen_mkgformer.kgc.MKGformer`
    :param factory: the model's labels and texts (``model.label_factory``)
    :param known: the entity whose text is checked
    :param directed: the directed relation whose text is checked
    """
    kept = getattr(model, "tokenizer", None)
    if kept is not None:
        return kept
    queries = model.queries
    relation_texts = directed_relation_texts(factory)
    for mode in ("description", "name"):
        texts = entity_texts(factory, mode)
        try:
            tokenizer = build_tokenizer(
                model.spec["text_encoder"], None, [*texts, *relation_texts, "is"], vocab_size=queries.base_vocab_size
            )
        except (OSError, ValueError) as error:
            logger.warning("cannot rebuild the tokenizer: %s", error)
            return None
        if len(tokenizer) != queries.base_vocab_size:
            continue
        ok = True
        for text, ids, lengths, row in (
            (texts[known], queries.entity_text_ids, queries.entity_text_lengths, known),
            (relation_texts[directed], queries.relation_text_ids, queries.relation_text_lengths, directed),
        ):
            again = TokenizedTexts.from_texts(tokenizer, [text], max_length=queries.max_seq_length)
            stored = ids[row, : int(lengths[row])].cpu()
            if not torch.equal(again.ids[0, : int(again.lengths[0])], stored):
                ok = False
        if ok:
            return tokenizer
    return None
