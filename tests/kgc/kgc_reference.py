"""A frozen copy of MKGformer's scoring as it was before it became an ``ERModel`` (version 0.1, ``Model``).

The reference the ``ERModel`` form is tested against (``tests/kgc/test_kgc_ermodel.py``): the query
assembly of 0.1's ``QueryAssembler`` (``_tail_query`` / ``_official_link_prediction`` /
``_official_head_query``, reading the assembler's tokenised texts by id), the known entity's images
from the pixel cache, the hybrid encoder, BERT's MLM transform and the candidate product
``q @ E^T + b``, written out by hand. Do not "fix" it to follow the package: it is what scores were.
"""

from __future__ import annotations

import torch

from pykeen_mkgformer.kgc.inputs import QueryBatch, concatenate_segments


def _constant(queries, value, batch_size):
    device = queries.entity_text_ids.device
    ids = torch.as_tensor(value, dtype=torch.long, device=device).expand(batch_size).reshape(batch_size, 1)
    return ids, torch.ones(batch_size, dtype=torch.long, device=device)


def tail_query(queries, known_entities, directed_relations) -> QueryBatch:
    batch_size = known_entities.shape[0]
    budget = queries.max_seq_length - 7
    relation_lengths = queries.relation_text_lengths[directed_relations].clamp(max=budget)
    entity_lengths = queries.entity_text_lengths[known_entities].clamp(max=budget - relation_lengths)
    segments = [
        _constant(queries, queries.cls_id, batch_size),
        _constant(queries, known_entities + queries.entity_token_offset, batch_size),
        _constant(queries, queries.sep_id, batch_size),
        (queries.relation_text_ids[directed_relations], relation_lengths),
        _constant(queries, directed_relations + queries.relation_token_offset, batch_size),
        _constant(queries, queries.sep_id, batch_size),
        _constant(queries, queries.mask_id, batch_size),
        (queries.entity_text_ids[known_entities], entity_lengths),
        _constant(queries, queries.sep_id, batch_size),
    ]
    input_ids, attention_mask, starts = concatenate_segments(segments, pad_id=queries.pad_id)
    return QueryBatch(input_ids=input_ids, attention_mask=attention_mask, mask_position=starts[:, 6])


def official_head_query(queries, known_entities, forward_relations) -> QueryBatch:
    batch_size = known_entities.shape[0]
    relation_lengths = queries.relation_text_lengths[forward_relations]
    entity_lengths = queries.entity_text_lengths[known_entities]
    first = 3 + relation_lengths
    second = 1 + entity_lengths
    remove = (first + second - (queries.max_seq_length - 3)).clamp(min=0)
    from_first = torch.minimum(remove, (first - second).clamp(min=0))
    from_second = torch.minimum(remove, (second - first).clamp(min=0))
    rest = remove - from_first - from_second
    from_first = from_first + rest // 2
    from_second = from_second + rest - rest // 2
    keep_relation_token = (from_first == 0).long()
    relation_lengths = (relation_lengths - (from_first - 1).clamp(min=0)).clamp(min=0)
    entity_lengths = (entity_lengths - from_second).clamp(min=0)
    relation_token = forward_relations + queries.relation_token_offset
    segments = [
        _constant(queries, queries.cls_id, batch_size),
        _constant(queries, queries.mask_id, batch_size),
        _constant(queries, queries.sep_id, batch_size),
        (queries.relation_text_ids[forward_relations], relation_lengths),
        (relation_token.unsqueeze(1), keep_relation_token),
        _constant(queries, queries.sep_id, batch_size),
        _constant(queries, known_entities + queries.entity_token_offset, batch_size),
        (queries.entity_text_ids[known_entities], entity_lengths),
        _constant(queries, queries.sep_id, batch_size),
    ]
    input_ids, attention_mask, starts = concatenate_segments(segments, pad_id=queries.pad_id)
    return QueryBatch(input_ids=input_ids, attention_mask=attention_mask, mask_position=starts[:, 1])


def link_prediction(queries, known_entities, directed_relations) -> QueryBatch:
    tail = tail_query(queries, known_entities, directed_relations)
    if queries.query_format != "official":
        return tail
    head_side = directed_relations % 2 == 1
    if not bool(head_side.any()):
        return tail
    head = official_head_query(queries, known_entities, directed_relations - head_side.long())
    width = max(tail.input_ids.shape[1], head.input_ids.shape[1])
    pad = lambda x, value: torch.nn.functional.pad(x, (0, width - x.shape[1]), value=value)  # noqa: E731
    rows = head_side.unsqueeze(1)
    return QueryBatch(
        input_ids=torch.where(rows, pad(head.input_ids, queries.pad_id), pad(tail.input_ids, queries.pad_id)),
        attention_mask=torch.where(rows, pad(head.attention_mask, 0), pad(tail.attention_mask, 0)),
        mask_position=torch.where(head_side, head.mask_position, tail.mask_position),
    )


def reference_scores(model, known_entities, directed_relations, candidates=None) -> torch.FloatTensor:
    """0.1's ``_score_candidates``: ``(batch, num_candidates)`` for directed-relation queries ``(e, d, ?)``."""
    encoder = model.interaction.encoder
    query = link_prediction(model.queries, known_entities, directed_relations)
    pixel_values = image_mask = None
    if model.images is not None:
        pixel_values, image_mask = model.images.lookup(known_entities, device=query.input_ids.device)
    output = encoder(
        input_ids=query.input_ids, attention_mask=query.attention_mask, pixel_values=pixel_values, image_mask=image_mask
    )
    states = output.text_last_hidden_state
    rows = torch.arange(states.shape[0], device=states.device)
    vectors = model.interaction.mlm_transform(states[rows, query.mask_position])
    offset = model.queries.entity_token_offset
    weight = encoder.get_input_embeddings().weight[offset : offset + model.num_entities]
    bias = model.state_dict()["entity_representations.2.bias"]
    if candidates is None:
        return vectors @ weight.t() + bias.unsqueeze(0)
    if candidates.dim() == 1:
        return vectors @ weight[candidates].t() + bias[candidates].unsqueeze(0)
    return torch.einsum("bd,bnd->bn", vectors, weight[candidates]) + bias[candidates]
