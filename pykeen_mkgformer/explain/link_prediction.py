r"""Case analysis of one link prediction query of a trained :class:`~pykeen_mkgformer.kgc.MKGformer`.

For a query :math:`(h, r, ?)` the model reads ``[CLS] <h> [SEP] <r text> <r> [SEP] [MASK] <h text>
[SEP]`` with :math:`h`'s images; for :math:`(?, r, t)` it reads the mirrored query
:math:`(t, r^{-1}, ?)` with :math:`t`'s text and images (directed relation ids: :math:`2r` forward,
:math:`2r+1` inverse). The explanation runs that input once more through the hybrid encoder with
``output_attentions=True``, checks that the ``[MASK]`` state reproduces the model's own scores
(``predict_t`` / ``predict_h``), and keeps:

- the tokens, the known entity's images as the model read them (every slot of the image layout),
- per fused layer the CAF token-to-patch weights and the PGI prefix attention (:mod:`.attention`),
- the top-k answers with scores (marking those that are known triples of a split), and, when the
  true answer is given, its filtered realistic rank as PyKEEN's
  :class:`~pykeen.evaluation.RankBasedEvaluator` computes it (filtered with every known triple).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch

from ..data.labels import resolve_entity, resolve_relation
from ..kgc.saved_model import recover_tokenizer  # re-exported: the model's tokenizer lives with the model
from .attention import fused_layers, query_images, to_uint8_pixels
from .explanation import Answer, Explanation, QueryToken

__all__ = ["explain_link_prediction", "resolve_entity", "resolve_relation", "recover_tokenizer"]

logger = logging.getLogger(__name__)

Side = Literal["head", "tail"]


# labels: resolve_entity / resolve_relation live in pykeen_mkgformer.data.labels (shared with `predict`)


# ---------------------------------------------------------------------- tokens
def _query_tokens(model: Any, factory: Any, input_ids: torch.Tensor, tokenizer) -> list[QueryToken]:
    queries = model.queries
    specials = {queries.cls_id: "[CLS]", queries.sep_id: "[SEP]", queries.pad_id: "[PAD]"}
    tokens = []
    for index, token_id in enumerate(input_ids.tolist()):
        if token_id == queries.mask_id:
            text, kind = "[MASK]", "mask"
        elif token_id in specials:
            text, kind = specials[token_id], "special"
        elif queries.entity_token_offset <= token_id < queries.relation_token_offset:
            entity = token_id - queries.entity_token_offset
            label, name = factory.entity_id_to_label[entity], factory.entity_names[entity]
            text, kind = f"[E] {label}" + (f" ({name})" if name and name != label else ""), "entity"
        elif token_id >= queries.relation_token_offset:
            directed = token_id - queries.relation_token_offset
            label = factory.relation_id_to_label[directed // 2]
            text, kind = f"[R{'⁻¹' if directed % 2 else ''}] {label}", "relation"
        else:
            text = tokenizer.convert_ids_to_tokens(token_id) if tokenizer is not None else f"#{token_id}"
            kind = "text"
        tokens.append(QueryToken(index=index, text=text, kind=kind, token_id=token_id))
    return tokens


# ---------------------------------------------------------------------- images
def _first_images(model: Any, entities: Sequence[int]) -> list[np.ndarray | None]:
    """Each entity's first image as the model reads it (first filled slot in layout order), or None."""
    if model.images is None or not entities:
        return [None] * len(entities)
    pixel_values, image_mask = model.images.lookup(torch.as_tensor(list(entities)), device=torch.device("cpu"))
    first: list[np.ndarray | None] = [None] * len(entities)
    for pixels, mask in zip(pixel_values, image_mask):
        for row in range(len(entities)):
            if first[row] is None and bool(mask[row].any()):
                slot = int(mask[row].nonzero()[0])
                first[row] = to_uint8_pixels(pixels[row, slot], model.images.processor)
    return first


def _slot_sources(model: Any, factory: Any, entity: int) -> list[str]:
    """The files that fill the entity's image slots, in order (unusable files skipped, as the cache does)."""
    skipped = {path for path, _ in model.images.skipped}
    paths = [path for path in factory.entity_images[entity][: model.images.layout.max_images] if path not in skipped]
    return paths


# ---------------------------------------------------------------------- ranks
def _filtered_rank(model: Any, triple: tuple[int, int, int], side: Side, known: Mapping[str, torch.Tensor]) -> float:
    """The filtered realistic rank of a triple's ``side``, from PyKEEN's own rank-based evaluator."""
    from pykeen.evaluation import RankBasedEvaluator

    evaluator = RankBasedEvaluator(filtered=True)
    device = next(model.parameters()).device
    # torch_max_mem warns that it cannot size batches on a CPU: irrelevant for one triple
    memory_logger = logging.getLogger("torch_max_mem.api")
    level = memory_logger.level
    memory_logger.setLevel(logging.ERROR)
    try:
        results = evaluator.evaluate(
            model=model,
            mapped_triples=torch.as_tensor([triple], dtype=torch.long),
            additional_filter_triples=torch.cat(list(known.values())).to(device),
            batch_size=1,
            use_tqdm=False,
            targets=(side,),
        )
    finally:
        memory_logger.setLevel(level)
    return float(results.get_metric(f"{side}.realistic.arithmetic_mean_rank"))


# ---------------------------------------------------------------------- the explanation
@torch.no_grad()
def explain_link_prediction(
    model: Any,
    factory: Any,
    *,
    relation: str,
    head: str | None = None,
    tail: str | None = None,
    side: Side | None = None,
    top: int = 10,
    known_triples: Mapping[str, torch.Tensor] | None = None,
    facts: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> Explanation:
    """Explain one query of a trained MKGformer.

    :param model: the trained :class:`~pykeen_mkgformer.kgc.MKGformer`
    :param factory: a multimodal triples factory with the model's ids (labels, names, texts, images)
    :param relation: the relation (label or text)
    :param head: the head entity (label or unique name)
    :param tail: the tail entity
    :param side: what to predict; by default ``tail`` when ``head`` is given, else ``head``. With both
        ``head`` and ``tail`` given, the other one is the true answer whose rank is reported
    :param top: how many answers to list
    :param known_triples: split name -> id-based triples, to mark known answers and filter the rank
        (default: the factory's own triples as ``training``)
    :param facts: extra facts for the page (model folder, dataset)
    :param notes: extra notes for the page
    :raises ValueError: for unknown labels, or a query without a known entity
    """
    if side is None:
        side = "tail" if head is not None else "head"
    if side not in ("head", "tail"):
        raise ValueError(f"side must be 'head' or 'tail', got {side!r}.")
    known_label = head if side == "tail" else tail
    target_label = tail if side == "tail" else head
    if known_label is None:
        raise ValueError(f"Predicting the {side} needs the {'head' if side == 'tail' else 'tail'} entity.")
    known_entity = resolve_entity(factory, known_label)
    target = resolve_entity(factory, target_label) if target_label is not None else None
    relation_id = resolve_relation(factory, relation)
    directed = 2 * relation_id + int(side == "head")
    known_triples = dict(known_triples) if known_triples is not None else {"training": factory.mapped_triples}
    notes = list(notes)
    model.eval()
    device = next(model.parameters()).device

    # the model's own scores, as PyKEEN's predictors and evaluator compute them
    if side == "tail":
        scores = model.predict_t(torch.as_tensor([[known_entity, relation_id]], device=device))[0]
    else:
        scores = model.predict_h(torch.as_tensor([[relation_id, known_entity]], device=device))[0]
    scores = scores.float().cpu()

    # the same query once more, with attentions
    encoder = model.interaction.encoder
    query = model.queries.link_prediction(
        torch.as_tensor([known_entity], device=device), torch.as_tensor([directed], device=device)
    )
    pixel_values = image_mask = None
    if model.images is not None:
        pixel_values, image_mask = model.images.lookup(torch.as_tensor([known_entity]), device=device)
    output = encoder(
        input_ids=query.input_ids,
        attention_mask=query.attention_mask,
        pixel_values=pixel_values,
        image_mask=image_mask,
        output_attentions=True,
    )
    _check_reproduces(model, output, query, scores)

    tokenizer = recover_tokenizer(model, factory, known_entity, directed)
    if tokenizer is None:
        notes.append("The tokenizer could not be rebuilt exactly; word pieces are shown as token ids.")
    tokens = _query_tokens(model, factory, query.input_ids[0].cpu(), tokenizer)

    known_name = factory.entity_names[known_entity]
    known_display = factory.entity_id_to_label[known_entity] + (
        f" ({known_name})" if known_name != factory.entity_id_to_label[known_entity] else ""
    )
    images = []
    if model.images is None:
        notes.append(f"This model reads no images (text-only); {known_display} is explained by its text alone.")
    else:
        images = query_images(
            model.images.layout.groups, encoder.vision_config.patch_size, output, pixel_values, image_mask, model.images.processor
        )
        sources = iter(_slot_sources(model, factory, known_entity))
        for slot in images:
            if slot.present:
                slot.source = next(sources, None)
        if not any(slot.present for slot in images):
            notes.append(
                f"{known_display} has no images: the model read this query as text only, so there are no CAF "
                "heatmaps and no PGI attention to show."
            )
    layers = fused_layers(output, encoder)

    # answers
    relation_label = factory.relation_id_to_label[relation_id]
    order = torch.argsort(scores, descending=True, stable=True)[:top].tolist()
    answer_of = _known_answers(known_triples, known_entity, relation_id, side)
    first_images = _first_images(model, order)

    def answer(entity: int, position: int, image: np.ndarray | None) -> Answer:
        return Answer(
            position=position,
            label=factory.entity_id_to_label[entity],
            score=float(scores[entity]),
            name=factory.entity_names[entity],
            description=factory.entity_descriptions[entity],
            is_target=entity == target,
            known_in=tuple(split for split, entities in answer_of.items() if entity in entities),
            image=image,
        )

    answers = [answer(entity, position, image) for position, (entity, image) in enumerate(zip(order, first_images), start=1)]
    if target is not None and target not in order:
        # the true answer below the top k: listed after a gap, at its unfiltered position
        answers.append(answer(target, int((scores > scores[target]).sum()) + 1, _first_images(model, [target])[0]))
    target_rank = target_score = None
    if target is not None:
        triple = (known_entity, relation_id, target) if side == "tail" else (target, relation_id, known_entity)
        target_rank = _filtered_rank(model, triple, side, known_triples)
        target_score = float(scores[target])

    h = known_display if side == "tail" else "?"
    t = known_display if side == "head" else "?"
    text = factory.relation_texts[relation_id]
    facts = {
        **dict(facts or {}),
        "predicts": side,
        "relation": relation_label + (f" ({text})" if text != relation_label else ""),
        "model reads": f"({known_display}, {relation_label}{'⁻¹' if side == 'head' else ''}, ?) with {known_display}'s images",
        "fused layers": encoder.config.fusion_layers,
        "image layout": ", ".join(f"{count} × {side_px} px" for count, side_px in model.images.layout.groups)
        if model.images is not None
        else "none",
        "vision patch size": encoder.vision_config.patch_size,
        "entities ranked": int(scores.numel()),
    }
    return Explanation(
        task="link prediction",
        query=f"({h}, {relation_label}, {t})",
        tokens=tokens,
        images=images,
        layers=layers,
        answers=answers,
        target=factory.entity_id_to_label[target] if target is not None else None,
        target_rank=target_rank,
        target_score=target_score,
        facts=facts,
        notes=notes,
    )


def _known_answers(known: Mapping[str, torch.Tensor], entity: int, relation: int, side: Side) -> dict[str, set[int]]:
    """Per split, the answers that make a known triple with the query."""
    given, answer = (0, 2) if side == "tail" else (2, 0)
    result = {}
    for split, triples in known.items():
        triples = triples.cpu()
        rows = (triples[:, given] == entity) & (triples[:, 1] == relation)
        result[split] = set(triples[rows, answer].tolist())
    return result


def _check_reproduces(model: Any, output: Any, query: Any, scores: torch.Tensor) -> None:
    """The attention pass must give the model's own scores (else the explanation would explain another input)."""
    states = output.text_last_hidden_state[0, query.mask_position[0]]
    vector = model.interaction.mlm_transform(states.unsqueeze(0))
    embeddings, bias = model.entity_representation()
    again = model.interaction.score(vector, embeddings, bias)[0].float().cpu()
    if model.predict_with_sigmoid:
        again = torch.sigmoid(again)
    tolerance = 1e-3 * max(1.0, float(scores.abs().max()))
    if not torch.allclose(again, scores, atol=tolerance, rtol=0):
        raise RuntimeError(
            "The attention pass does not reproduce the model's scores (largest difference "
            f"{float((again - scores).abs().max()):.3g}); the explanation would not describe this model's input."
        )
