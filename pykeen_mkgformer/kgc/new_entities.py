r"""New entities after training: grow a trained :class:`~pykeen_mkgformer.kgc.MKGformer` from text and images.

MKGformer reads an entity through its token, its text and its images, so an entity that was not in
the training graph can still be scored once it has a token. :func:`add_entities` gives each new
entity :math:`e` a token row initialised exactly as at construction, the mean word embedding of its
text :math:`x_1 \dots x_n`,

.. math::

    \mathbf{e} = \frac{1}{n} \sum_{i=1}^{n} \mathbf{w}_{x_i}, \qquad b_e = 0,

adds its images to the model's pixel cache (a cache of their own, the existing one stays valid),
and updates PyKEEN's entity count and the model's label mappings (:attr:`MKGformer.label_factory`),
so the new entities can be the known entity of a query and candidate answers of any query. The
word embedding matrix keeps its layout ``text vocabulary | entities (old, then new) | relations``:
the relation rows move up by the number of new entities.

Optionally stage 1 (:mod:`.entity_modeling`) then runs on the **new rows only**: the queries
``[CLS] [MASK] is <e text> [SEP]`` of the new entities, with every other weight frozen.

:func:`extend_triples_factory` builds the matching
:class:`~pykeen_mkgformer.data.MultimodalTriplesFactory` (same ids), e.g. to continue training with
PyKEEN's loops on triples that mention the new entities. The extended model is the new starting
point of training: the reset PyKEEN does when a training starts keeps its weights (a new training
loop, or ``pipeline(model=model, training=extended_factory, ...)``, continues from it; optimizers
created before :func:`add_entities` hold the old embedding matrix and must be recreated).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from ..data import MultimodalTriplesFactory
    from .model import MKGformer

__all__ = ["NewEntityError", "add_entities", "extend_triples_factory", "read_new_entities"]

logger = logging.getLogger(__name__)


class NewEntityError(ValueError):
    """New entities cannot be added (an existing or repeated label, a missing description, mismatched lists)."""


def _as_list(name: str, values: Sequence[Any] | Mapping[str, Any] | None, labels: Sequence[str], default: Any) -> list:
    """Per-label values from a sequence (same order as ``labels``) or a label-keyed mapping."""
    if values is None:
        return [default(label) for label in labels]
    if isinstance(values, Mapping):
        unknown = sorted(set(values) - set(labels))
        if unknown:
            raise NewEntityError(f"{name} names labels that are not among the new entities: {unknown[:10]}.")
        return [values[label] if label in values else default(label) for label in labels]
    if isinstance(values, str):
        raise NewEntityError(f"{name} must be one entry per new entity, not a single string.")
    values = list(values)
    if len(values) != len(labels):
        raise NewEntityError(f"{name} has {len(values)} entries for {len(labels)} new entities.")
    return values


def _validate(
    existing: Mapping[str, int],
    labels: Sequence[str],
    descriptions: Sequence[str] | Mapping[str, str],
    images: Sequence[Sequence[str | Path]] | Mapping[str, Sequence[str | Path]] | None,
    names: Sequence[str] | Mapping[str, str] | None,
) -> tuple[list[str], list[str], list[tuple[str, ...]], list[str]]:
    """Checked, normalised lists; raises :class:`NewEntityError` naming every offending label."""
    if isinstance(labels, str):
        raise NewEntityError("labels must be a list of labels, not a single string.")
    labels = list(labels)
    if not labels:
        raise NewEntityError("No new entities given.")
    bad = [label for label in labels if not isinstance(label, str) or not label.strip()]
    if bad:
        raise NewEntityError(f"Entity labels must be non-empty strings; got {bad[:10]}.")
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise NewEntityError(f"Labels given more than once: {repeated[:10]}.")
    present = [label for label in labels if label in existing]
    if present:
        raise NewEntityError(f"{len(present)} labels already exist in the model: {present[:10]}.")
    from ..data.labels import label_key

    keys = {label_key(label): label for label in existing}
    close = [(label, keys[label_key(label)]) for label in labels if label_key(label) in keys]
    if close:
        raise NewEntityError(
            f"{len(close)} labels equal existing ones after Unicode normalisation and white-space stripping "
            f"(write them the same way, or choose another label): {close[:10]}."
        )
    from ..data.labels import check_labels

    try:
        check_labels("new entity labels", labels)
    except ValueError as error:
        raise NewEntityError(str(error)) from error
    descriptions = _as_list("descriptions", descriptions, labels, default=lambda _: "")
    missing = [label for label, text in zip(labels, descriptions) if not isinstance(text, str) or not text.strip()]
    if missing:
        raise NewEntityError(
            f"{len(missing)} new entities have no description (the text their token is initialised from and read "
            f"with): {missing[:10]}."
        )
    images = _as_list("images", images, labels, default=lambda _: ())
    images = [(str(item),) if isinstance(item, (str, Path)) else tuple(str(p) for p in item) for item in images]
    names = _as_list("names", names, labels, default=lambda label: label)
    return labels, [text.strip() for text in descriptions], images, [str(name) for name in names]


def extend_triples_factory(
    factory: MultimodalTriplesFactory,
    labels: Sequence[str],
    descriptions: Sequence[str] | Mapping[str, str],
    images: Sequence[Sequence[str | Path]] | Mapping[str, Sequence[str | Path]] | None = None,
    *,
    names: Sequence[str] | Mapping[str, str] | None = None,
    triples: Any = None,
) -> MultimodalTriplesFactory:
    """A factory with the new entities appended (ids ``factory.num_entities ..`` in the order of ``labels``).

    :param factory: a :class:`~pykeen_mkgformer.data.MultimodalTriplesFactory` (e.g. the training factory)
    :param labels: the new entities' labels
    :param descriptions: their descriptions (one per label, or a label-keyed mapping)
    :param images: their image paths (one sequence per label, or a mapping); default: none
    :param names: their short names; default: the labels
    :param triples: label-based triples ``(n, 3)`` to add (their entities may be old or new, their
        relations must exist); default: keep the factory's triples only
    :raises NewEntityError: as :func:`add_entities`, or for triples with unknown labels
    """
    from ..data import MultimodalTriplesFactory

    labels, descriptions, images, names = _validate(factory.entity_to_id, labels, descriptions, images, names)
    entity_to_id = dict(factory.entity_to_id)
    for offset, label in enumerate(labels):
        entity_to_id[label] = factory.num_entities + offset
    mapped = factory.mapped_triples
    if triples is not None:
        rows = [tuple(map(str, row)) for row in (triples.tolist() if hasattr(triples, "tolist") else triples)]
        unknown_entities = sorted({e for h, _, t in rows for e in (h, t) if e not in entity_to_id})
        unknown_relations = sorted({r for _, r, _ in rows if r not in factory.relation_to_id})
        if unknown_entities or unknown_relations:
            raise NewEntityError(
                f"Triples with unknown entities {unknown_entities[:10]} or relations {unknown_relations[:10]}."
            )
        added = torch.as_tensor(
            [[entity_to_id[h], factory.relation_to_id[r], entity_to_id[t]] for h, r, t in rows], dtype=torch.long
        ).view(-1, 3)
        mapped = torch.cat([mapped, added.to(mapped.device)])
    return MultimodalTriplesFactory(
        mapped_triples=mapped,
        entity_to_id=entity_to_id,
        relation_to_id=factory.relation_to_id,
        create_inverse_triples=factory.create_inverse_triples,
        metadata=factory.metadata,
        entity_names=[*factory.entity_names, *names],
        entity_descriptions=[*factory.entity_descriptions, *descriptions],
        entity_images=[*factory.entity_images, *images],
        relation_texts=factory.relation_texts,
    )


def _tokenizer(model: MKGformer, tokenizer: Any) -> Any:
    """The tokenizer the model was built with: given, kept on the model, or rebuilt and checked."""
    if tokenizer is not None:
        from .inputs import build_tokenizer

        return build_tokenizer(model.spec["text_encoder"], tokenizer, [])
    from .inputs import recover_tokenizer

    recovered = recover_tokenizer(model, model.label_factory, 0, 0)
    if recovered is None:
        raise NewEntityError(
            "The model keeps no tokenizer (saved by an older version) and it cannot be rebuilt; pass tokenizer=..."
        )
    return recovered


def add_entities(
    model: MKGformer,
    labels: Sequence[str],
    descriptions: Sequence[str] | Mapping[str, str],
    images: Sequence[Sequence[str | Path]] | Mapping[str, Sequence[str | Path]] | None = None,
    *,
    names: Sequence[str] | Mapping[str, str] | None = None,
    entity_modeling_epochs: int = 0,
    entity_modeling_batch_size: int | None = None,
    entity_modeling_lr: float | None = None,
    tokenizer: Any = None,
    triples_factory: MultimodalTriplesFactory | None = None,
    initialization: str = "text",
) -> dict[str, int]:
    """Add entities to a (trained) model; see the module docstring. Returns label -> new id.

    :param model: an :class:`~pykeen_mkgformer.kgc.MKGformer`
    :param labels: the new entities' labels (not yet in the model)
    :param descriptions: their descriptions, required (one per label, or a label-keyed mapping)
    :param images: their image paths (one sequence per label, or a mapping); files that cannot be read
        are named in a warning, skipped and counted (:attr:`EntityImages.skipped`)
    :param names: their short names (default: the labels)
    :param entity_modeling_epochs: stage-1 epochs on the new rows only (0: text initialisation only)
    :param entity_modeling_batch_size: its batch size (default: the model's stage-1 setting)
    :param entity_modeling_lr: its learning rate (default: the model's stage-1 setting)
    :param tokenizer: the model's tokenizer, only needed for models saved without one
    :param initialization: ``"text"`` (the mean word embedding of the text, as at construction) or
        ``"random"`` (the text tower's random init only: a baseline)
    :param triples_factory: the model's training factory, only needed for models saved without
        :attr:`~pykeen_mkgformer.kgc.MKGformer.label_factory` (older versions)
    :raises NewEntityError: for a label that exists or repeats, a missing description, mismatched lists;
        nothing is changed then
    """
    from .entity_modeling import EntityModeling
    from .representation import initialize_token_rows_from_text

    factory = getattr(model, "label_factory", None)
    if factory is None:
        if triples_factory is None:
            raise NewEntityError("The model keeps no labels (saved by an older version): pass triples_factory=...")
        if triples_factory.num_entities != model.num_entities:
            raise NewEntityError(
                f"triples_factory has {triples_factory.num_entities} entities, the model {model.num_entities}."
            )
        factory = model.label_factory = triples_factory.clone_and_exchange_triples(
            mapped_triples=torch.empty((0, 3), dtype=torch.long)
        )
    labels, descriptions, images, names = _validate(factory.entity_to_id, labels, descriptions, images, names)
    if initialization not in ("text", "random"):
        raise NewEntityError(f"initialization must be 'text' or 'random', got {initialization!r}.")
    tokenizer = _tokenizer(model, tokenizer)
    texts = names if getattr(model, "description_mode", "description") == "name" else descriptions
    old_count, count = model.num_entities, len(labels)
    new_ids = torch.arange(old_count, old_count + count)

    # the token rows: text vocabulary | old entities | new entities | relations
    queries = model.queries
    encoder = model.interaction.encoder
    embedding = encoder.get_input_embeddings()
    old = embedding.weight
    split = queries.relation_token_offset
    with torch.no_grad():
        std = float(getattr(encoder.text_config, "initializer_range", 0.02))
        fresh = torch.empty(count, old.shape[1], dtype=old.dtype, device=old.device).normal_(0.0, std)
        weight = torch.cat([old[:split], fresh, old[split:]])
    queries.add_entity_texts(tokenizer, texts)
    embedding.weight = nn.Parameter(weight, requires_grad=old.requires_grad)
    embedding.num_embeddings = weight.shape[0]
    encoder.text_config.vocab_size = weight.shape[0]
    if initialization == "text":
        initialize_token_rows_from_text(
            embedding,
            rows=new_ids + queries.entity_token_offset,
            text_ids=queries.entity_text_ids[old_count:].cpu(),
            text_lengths=queries.entity_text_lengths[old_count:].cpu(),
        )

    # images, PyKEEN's entity count, the labels
    if model.images is not None:
        skipped = model.images.extend(images)
        if skipped:
            warnings.warn(
                f"{len(skipped)} of {sum(map(len, images))} images of the new entities could not be used and were "
                f"skipped: " + "; ".join(f"{path}: {reason}" for path, reason in skipped[:10]),
                stacklevel=3,
            )
    elif any(images):
        warnings.warn("The model was built without images (text-only): the new entities' images are not used.", stacklevel=3)
    model.num_entities += count
    model._entities_added(count)
    model.num_added_entities = getattr(model, "num_added_entities", 0) + count
    model.label_factory = extend_triples_factory(factory, labels, descriptions, images, names=names)

    if entity_modeling_epochs:
        stage = EntityModeling(
            epochs=entity_modeling_epochs,
            batch_size=entity_modeling_batch_size or model.entity_modeling.batch_size,
            lr=entity_modeling_lr or model.entity_modeling.lr,
            progress=model.entity_modeling.progress,
        )
        model._running_entity_modeling = True
        try:
            losses = stage.run(model, entities=new_ids.to(weight.device))
        finally:
            model._running_entity_modeling = False
        logger.info("stage 1 on %d new entities: loss per epoch %s", count, losses)
    # the extended model is the new starting point: PyKEEN's reset at the start of the next training
    # keeps it (also after saving and loading)
    model._initial_fingerprint = None
    return {label: int(i) for label, i in zip(labels, new_ids.tolist())}


def read_new_entities(path: str | Path) -> dict[str, list]:
    """Read new entities from a JSON Lines file: one object per line with ``label``, ``description``,
    optionally ``images`` (paths, relative ones to the file's folder) and ``name``.

    :return: keyword arguments of :func:`add_entities` (``labels``, ``descriptions``, ``images``, ``names``)
    :raises NewEntityError: naming ``file:line`` and the field of a malformed line (not JSON, nested
        too deeply, a field of the wrong type, a lone surrogate, a label given twice or equal to
        another after Unicode normalisation and white-space stripping)
    """
    import json
    import re

    from ..data.errors import DataError
    from ..data.labels import label_key, printable
    from ..data.textfiles import numbered_lines

    surrogate = re.compile("[\ud800-\udfff]")
    path = Path(path)
    labels, descriptions, images, names = [], [], [], []
    seen: dict[str, tuple[str, int]] = {}

    def text(entry: dict, field: str, number: int, *, required: bool) -> str | None:
        value = entry.get(field)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise NewEntityError(f"{path}:{number}: field {field!r} must be a string, got {type(value).__name__}.")
        if surrogate.search(value):
            raise NewEntityError(f"{path}:{number}: field {field!r} holds a lone surrogate ({ascii(value)}).")
        return value

    try:
        lines = list(numbered_lines(path))
    except DataError as error:
        raise NewEntityError(str(error)) from error
    for number, line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise NewEntityError(f"{path}:{number}: not valid JSON ({error.msg}, column {error.colno}).") from error
        except RecursionError as error:
            raise NewEntityError(f"{path}:{number}: JSON nested too deeply.") from error
        if not isinstance(entry, dict):
            raise NewEntityError(f"{path}:{number}: expected an object with a 'label' string, got {type(entry).__name__}.")
        if "label" not in entry:
            raise NewEntityError(f"{path}:{number}: expected an object with a 'label' string (field 'label' is missing).")
        label = text(entry, "label", number, required=True)
        if not label.strip():
            raise NewEntityError(f"{path}:{number}: field 'label' is empty.")
        key = label_key(label)
        if key in seen:
            other, where = seen[key]
            same = "given again" if other == label else f"equal to {printable(other)!r} after Unicode normalisation and stripping"
            raise NewEntityError(f"{path}:{number}: field 'label' {printable(label)!r} is {same} (line {where}).")
        seen[key] = (label, number)
        description = text(entry, "description", number, required=False) or ""
        name = text(entry, "name", number, required=False)
        paths = entry.get("images") or []
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not all(isinstance(p, str) and p and "\x00" not in p for p in paths):
            raise NewEntityError(f"{path}:{number}: field 'images' must be a path or a list of paths (strings).")
        labels.append(label)
        descriptions.append(description)
        images.append(tuple(str(path.parent.joinpath(p)) for p in paths))
        names.append(name or label)
    if not labels:
        raise NewEntityError(f"{path} holds no entity.")
    return dict(labels=labels, descriptions=descriptions, images=images, names=names)
