r"""Entity and relation representations of MKGformer, as PyKEEN :class:`~pykeen.nn.Representation` s.

An entity appears in two roles:

- as the **known** entity of a query (the head slot of :class:`~.interaction.MKGformerInteraction`):
  its token and its text (:class:`EntityTextTokens`, token ids from :mod:`.inputs`) and its images,
  read lazily from a memory-mapped :class:`~pykeen_mkgformer.data.images.PixelCache` for the
  entities of the batch only (:class:`EntityImageRepresentation` over :class:`EntityImages`);
- as a **candidate** answer (the tail slot): its token embedding :math:`\mathbf{e}_e` (a row of the
  text tower's word embeddings, shared with the input side, :class:`EntityTokenEmbedding`) and a
  bias :math:`b_e` (:class:`EntityBias`).

A relation is its token and text (:class:`RelationTextTokens`).
:class:`~.multimodal.MultimodalEntityRepresentation` turns an entity's text and images into one
vector for any other PyKEEN interaction.

Entity (and relation) token embeddings start as the mean word embedding of their own text
(:func:`initialize_token_rows_from_text`), so a pretrained text tower knows roughly what they mean.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pykeen.nn.representation import Representation
from torch import nn

__all__ = [
    "EntityImages",
    "EntityTokenRepresentation",
    "EntityTextTokens",
    "RelationTextTokens",
    "EntityTokenEmbedding",
    "EntityBias",
    "EntityImageRepresentation",
    "ImageBatch",
    "initialize_token_rows_from_text",
]

logger = logging.getLogger(__name__)


class EntityTokenRepresentation(nn.Module):
    r"""The candidate side: entity token embeddings :math:`\mathbf{E}` (tied to the word embeddings) and biases :math:`\mathbf{b}`.

    The 0.1 form, kept for code that builds it; :class:`~.model.MKGformer` now uses the PyKEEN
    representations :class:`EntityTokenEmbedding` and :class:`EntityBias`.

    The embeddings are a view on rows ``offset .. offset + num_entities`` of the text tower's word
    embedding matrix, so what stage 1 and the input side learn for an entity token is what the
    scorer compares against.
    """

    def __init__(self, word_embeddings: nn.Embedding, *, offset: int, num_entities: int):
        """Wrap the text tower's word embeddings.

        :param word_embeddings: the (resized) input embeddings of the text tower
        :param offset: the token id of entity 0
        :param num_entities: the number of entities
        """
        super().__init__()
        # a plain attribute, not a submodule: the embedding is owned (and saved) by the text tower
        self._word_embeddings = [word_embeddings]
        self.offset = offset
        self.num_entities = num_entities
        self.bias = nn.Parameter(torch.zeros(num_entities))

    @property
    def word_embeddings(self) -> nn.Embedding:
        """The text tower's word embeddings."""
        return self._word_embeddings[0]

    def forward(self, indices: torch.LongTensor | None = None) -> tuple[torch.FloatTensor, torch.FloatTensor]:
        """Embeddings ``(*, dim)`` and biases ``(*)`` of some entities (all when ``indices`` is None)."""
        weight = self.word_embeddings.weight[self.offset : self.offset + self.num_entities]
        if indices is None:
            return weight, self.bias
        return weight[indices], self.bias[indices]

    def reset_parameters(self) -> None:
        """Zero biases."""
        nn.init.zeros_(self.bias)


def _no_dropout(kwargs: dict[str, Any], name: str) -> None:
    if kwargs.get("dropout"):
        raise ValueError(f"{name} holds token ids or pixels: dropout does not apply to it.")


class _AssemblerBacked(Representation):
    """A representation read from a :class:`~.inputs.QueryAssembler`'s pre-tokenised texts.

    The assembler is a submodule (so its buffers follow the representation to its device); the
    model shares the same object, so entities added later (:func:`~.new_entities.add_entities`)
    show up here too.
    """

    def __init__(self, *, queries: Any, max_id: int, shape: tuple[int, ...], **kwargs: Any):
        _no_dropout(kwargs, type(self).__name__)
        kwargs.setdefault("unique", False)
        super().__init__(max_id=max_id, shape=shape, **kwargs)
        self.queries = queries


class EntityTextTokens(_AssemblerBacked):
    """The known entity as the transformer reads it: its token id, then the ids of its text (description or name).

    Shape ``(1 + width,)``, dtype long, padded with :data:`~.inputs.TOKEN_PAD` (-1).
    """

    def __init__(self, *, queries: Any, max_id: int | None = None, **kwargs: Any):
        """:param queries: the model's :class:`~.inputs.QueryAssembler`."""
        max_id = queries.num_entities if max_id is None else max_id
        super().__init__(queries=queries, max_id=max_id, shape=(1 + queries.entity_text_ids.shape[1],), **kwargs)

    def _plain_forward(self, indices: torch.LongTensor | None = None) -> torch.LongTensor:  # noqa: D102
        if indices is None:
            return self.queries.entity_tokens(None)
        return self.queries.entity_tokens(indices.reshape(-1)).view(*indices.shape, -1)


class RelationTextTokens(_AssemblerBacked):
    """A directed relation as the transformer reads it: ``(2, 1 + width)`` token ids.

    Row 0 is the relation's own token and text, row 1 those of its forward relation (the same row for
    a forward relation; the official head query reads the forward relation). Ids ``2r`` / ``2r + 1``.
    With ``with_forward=False`` (the plugin's query format needs no more) only row 0: ``(1, 1 + width)``.
    """

    def __init__(self, *, queries: Any, max_id: int | None = None, with_forward: bool | None = None, **kwargs: Any):
        """:param queries: the model's :class:`~.inputs.QueryAssembler`
        :param with_forward: whether row 1 is included; default: for the official query format only
        """
        max_id = queries.num_directed_relations if max_id is None else max_id
        with_forward = queries.query_format == "official" if with_forward is None else with_forward
        rows = 2 if with_forward else 1
        super().__init__(queries=queries, max_id=max_id, shape=(rows, 1 + queries.relation_text_ids.shape[1]), **kwargs)
        self.with_forward = with_forward

    def _plain_forward(self, indices: torch.LongTensor | None = None) -> torch.LongTensor:  # noqa: D102
        if indices is None:
            return self.queries.relation_tokens(None, with_forward=self.with_forward)
        tables = self.queries.relation_tokens(indices.reshape(-1), with_forward=self.with_forward)
        return tables.view(*indices.shape, *self.shape)


class EntityTokenEmbedding(Representation):
    r"""The candidate side: entity token embeddings :math:`\mathbf{e}_t`, rows of the text tower's word embeddings.

    A view on rows ``offset .. offset + max_id`` of the (resized) word embedding matrix, so what
    stage 1 and the input side learn for an entity token is what the scorer compares against. The
    embedding is owned (and saved) by the text tower; this module holds no parameter of its own.
    """

    def __init__(self, *, word_embeddings: nn.Embedding, offset: int, max_id: int, **kwargs: Any):
        """Wrap the text tower's word embeddings.

        :param word_embeddings: the (resized) input embeddings of the text tower
        :param offset: the token id of entity 0
        :param max_id: the number of entities
        """
        kwargs.setdefault("unique", False)
        super().__init__(max_id=max_id, shape=(word_embeddings.embedding_dim,), **kwargs)
        # a plain attribute, not a submodule: the embedding is owned by the text tower
        self._word_embeddings = [word_embeddings]
        self.offset = offset

    @property
    def word_embeddings(self) -> nn.Embedding:
        """The text tower's word embeddings."""
        return self._word_embeddings[0]

    def _plain_forward(self, indices: torch.LongTensor | None = None) -> torch.FloatTensor:  # noqa: D102
        weight = self.word_embeddings.weight[self.offset : self.offset + self.max_id]
        if indices is None:
            return weight
        return weight[indices.to(weight.device)]


class EntityBias(Representation):
    r"""A learned scalar bias :math:`b_t` per candidate entity (zeros at start), shape ``()``."""

    def __init__(self, *, max_id: int, **kwargs: Any):
        """:param max_id: the number of entities."""
        kwargs.setdefault("unique", False)
        super().__init__(max_id=max_id, shape=(), **kwargs)
        self.bias = nn.Parameter(torch.zeros(max_id))

    def _plain_forward(self, indices: torch.LongTensor | None = None) -> torch.FloatTensor:  # noqa: D102
        if indices is None:
            return self.bias
        return self.bias[indices.to(self.bias.device)]

    def reset_parameters(self) -> None:
        """Zero biases."""
        nn.init.zeros_(self.bias)

    def extend(self, count: int) -> None:
        """Append ``count`` zero biases (new entities)."""
        bias = self.bias
        self.bias = nn.Parameter(torch.cat([bias.detach(), bias.new_zeros(count)]), requires_grad=bias.requires_grad)
        self.max_id += count


class ImageBatch:
    """The images of some entities: one pixel tensor ``(*prefix, count, 3, side, side)`` and one mask
    ``(*prefix, count)`` per resolution of the image layout.

    What :class:`EntityImageRepresentation` returns; it broadcasts like a tensor with shape ``prefix``
    (:meth:`unsqueeze`, :meth:`expand_to`), so PyKEEN's interaction helpers can pass it around.
    """

    def __init__(self, pixel_values: Sequence[torch.Tensor], image_mask: Sequence[torch.Tensor], prefix: tuple[int, ...]):
        self.pixel_values = tuple(pixel_values)
        self.image_mask = tuple(image_mask)
        self.shape = torch.Size(prefix)

    def unsqueeze(self, dim: int) -> ImageBatch:
        """Insert a size-1 batch dimension at ``dim`` (counted within the prefix)."""
        dim = dim if dim >= 0 else len(self.shape) + 1 + dim
        prefix = (*self.shape[:dim], 1, *self.shape[dim:])
        return ImageBatch(
            [v.unsqueeze(dim) for v in self.pixel_values], [m.unsqueeze(dim) for m in self.image_mask], prefix
        )

    def split(self, split_size: int, dim: int = 0) -> list[ImageBatch]:
        """Split along a prefix dimension (PyKEEN's sliced scoring, :func:`pykeen.nn.modules.parallel_slice_batches`)."""
        dim = dim if dim >= 0 else len(self.shape) + dim
        values = [v.split(split_size, dim=dim) for v in self.pixel_values]
        masks = [m.split(split_size, dim=dim) for m in self.image_mask]
        parts = range(len(values[0])) if values else range(0)
        return [
            ImageBatch(
                [v[i] for v in values],
                [m[i] for m in masks],
                (*self.shape[:dim], values[0][i].shape[dim], *self.shape[dim + 1 :]),
            )
            for i in parts
        ]

    def flatten_to(self, prefix: tuple[int, ...]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Broadcast to ``prefix`` and flatten it: one row per query, as the encoder takes them."""
        n = int(torch.Size(prefix).numel())
        values = [v.expand(*prefix, *v.shape[len(self.shape):]).reshape(n, *v.shape[len(self.shape):]) for v in self.pixel_values]
        masks = [m.expand(*prefix, *m.shape[len(self.shape):]).reshape(n, *m.shape[len(self.shape):]) for m in self.image_mask]
        return values, masks


class EntityImageRepresentation(Representation):
    """The known entity's images, from the pixel cache (:class:`EntityImages`), as an :class:`ImageBatch`.

    The result is not a single tensor (one tensor per resolution plus masks): its
    :attr:`~pykeen.nn.Representation.shape` is ``()``, the per-entity part of each tensor follows the
    image layout. Normalisation, regularisation and dropout do not apply to pixels.
    """

    def __init__(self, *, images: EntityImages, max_id: int | None = None, **kwargs: Any):
        """:param images: the entities' pixel cache."""
        _no_dropout(kwargs, type(self).__name__)
        max_id = images.num_entities if max_id is None else max_id
        super().__init__(max_id=max_id, shape=(), unique=False, **kwargs)
        self.images = images
        # follows the module to its device: where the pixels go when no indices are given
        self.register_buffer("_device_marker", torch.empty(0), persistent=False)

    def _plain_forward(self, indices: torch.LongTensor | None = None) -> ImageBatch:  # noqa: D102
        device = self._device_marker.device
        if indices is None:
            indices = torch.arange(self.max_id)
        else:
            device = indices.device
        values, masks = self.images.lookup(indices.reshape(-1), device=device)
        prefix = tuple(indices.shape)
        return ImageBatch(
            [v.view(*prefix, *v.shape[1:]) for v in values], [m.view(*prefix, *m.shape[1:]) for m in masks], prefix
        )

    def forward(self, indices: torch.LongTensor | None = None) -> ImageBatch:
        """The images of these entities (all for None); no normalizer, regulariser or dropout."""
        return self._plain_forward(indices)


@torch.no_grad()
def initialize_token_rows_from_text(
    word_embeddings: nn.Embedding, *, rows: torch.LongTensor, text_ids: torch.LongTensor, text_lengths: torch.LongTensor
) -> None:
    r"""Set each new token's embedding to the mean word embedding of its text, :math:`\mathbf{e} = \frac{1}{n}\sum_{i=1}^{n} \mathbf{w}_{x_i}`.

    Rows whose text has no token keep their current value.

    :param word_embeddings: the text tower's (resized) word embeddings
    :param rows: ``(n,)`` the token ids to set
    :param text_ids: ``(n, width)`` padded token ids of each row's text
    :param text_lengths: ``(n,)`` the true lengths
    """
    weight = word_embeddings.weight
    text_ids = text_ids.to(weight.device)
    text_lengths = text_lengths.to(weight.device)
    rows = rows.to(weight.device)
    mask = torch.arange(text_ids.shape[1], device=weight.device).unsqueeze(0) < text_lengths.unsqueeze(1)
    for start in range(0, rows.shape[0], 4096):
        stop = start + 4096
        vectors = weight[text_ids[start:stop]]  # (n, width, dim)
        chunk_mask = mask[start:stop].unsqueeze(-1).to(vectors.dtype)
        counts = chunk_mask.sum(dim=1)
        means = (vectors * chunk_mask).sum(dim=1) / counts.clamp(min=1)
        has_text = counts.squeeze(-1) > 0
        weight[rows[start:stop][has_text]] = means[has_text]


class EntityImages:
    """The entities' preprocessed images, looked up for the known entities of a batch only.

    Wraps a :class:`~pykeen_mkgformer.data.images.PixelCache`. It pickles as its recipe (image paths,
    processor, layout, cache folder) and reopens the cache on first use after unpickling, so a saved
    model (``trained_model.pkl``) never embeds the pixels; the cache is found again on disk or rebuilt
    from the image files.
    """

    def __init__(
        self,
        image_paths: Sequence[Sequence[str]],
        *,
        processor: Any,
        layout: Any,
        cache_dir: str | Path | None = None,
        progress: bool = True,
    ):
        """Build (or find) the pixel cache for these images."""
        self.image_paths = [tuple(str(p) for p in paths) for paths in image_paths]
        self.processor = processor
        self.layout = layout
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self.progress = progress
        #: images of entities added after construction (:meth:`extend`), one list per call, in id order
        self.extra_image_paths: list[list[tuple[str, ...]]] = []
        #: their unusable files, ``(path, reason)``, per call
        self.extra_skipped: list[list[tuple[str, str]]] = []
        self._cache = None
        self._extra_caches: list[Any] | None = None
        self._open()

    def _open(self):
        from ..data.images import PixelCache

        if self._cache is None:
            self._cache = PixelCache(
                self.image_paths,
                processor=self.processor,
                layout=self.layout,
                cache_dir=self.cache_dir,
                progress=self.progress,
            )
        if getattr(self, "_extra_caches", None) is None:
            self._extra_caches = [self._new_cache(paths) for paths in getattr(self, "extra_image_paths", [])]
        return self._cache

    def _new_cache(self, image_paths: Sequence[Sequence[str]]):
        from ..data.images import PixelCache

        return PixelCache(
            image_paths, processor=self.processor, layout=self.layout, cache_dir=self.cache_dir, progress=self.progress
        )

    @property
    def cache(self):
        """The pixel cache of the entities the model was built with (opened on demand)."""
        return self._open()

    @property
    def num_entities(self) -> int:
        """Entities covered: those of construction and those added with :meth:`extend`."""
        return len(self.image_paths) + sum(map(len, getattr(self, "extra_image_paths", [])))

    def _parts(self) -> list[tuple[int, Any]]:
        """``(first entity id, pixel cache)`` of the construction-time cache and of each extension."""
        self._open()
        parts = [(0, self._cache)]
        start = len(self.image_paths)
        for paths, cache in zip(self.extra_image_paths, self._extra_caches, strict=True):
            parts.append((start, cache))
            start += len(paths)
        return parts

    def extend(self, image_paths: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
        """Add the images of new entities (ids following the current ones); return the skipped files ``(path, reason)``.

        The new entities get their own pixel cache (same processor, layout and cache folder), so the
        existing cache stays untouched and valid.
        """
        from ..data.decoding import file_digest

        self._open()
        paths = [tuple(str(p) for p in item) for item in image_paths]
        cache = self._new_cache(paths)
        self.extra_image_paths.append(paths)
        self._extra_caches.append(cache)
        # the cache records the names of its first build (entries are keyed by content): name this call's files
        used = list(dict.fromkeys(p for item in paths for p in item[: self.layout.max_images]))
        unusable = {p: digest.split(":", 1)[1] for p in used if (digest := file_digest(p)).startswith("unusable:")}
        recorded = dict(cache.skipped)
        skipped = [(p, unusable.get(p) or recorded[p]) for p in used if p in unusable or p in recorded]
        if len(skipped) < len(cache.skipped):
            logger.warning("%d more images were skipped (see EntityImages.skipped)", len(cache.skipped) - len(skipped))
        self.extra_skipped.append(skipped)
        return skipped

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Image files that could not be used, ``(path, reason)``, over all caches."""
        return [*self.cache.skipped, *(entry for entries in self.extra_skipped for entry in entries)]

    def num_images(self, entity: int) -> int:
        """How many images an entity has (after capping to the layout and skipping bad files)."""
        for start, cache in reversed(self._parts()):
            if entity >= start:
                return cache.num_images(entity - start)
        raise IndexError(entity)

    def lookup(
        self, entities: torch.LongTensor, device: torch.device | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Pixel values (one ``(batch, count, 3, side, side)`` tensor per resolution) and image masks of these entities.

        With ``missing_images="zeros"`` (the official recipe) every slot is marked real: empty ones are
        zero images, attended to.
        """
        pixel_values, image_mask = self._lookup(entities, device)
        if getattr(self, "missing_images", "masked") == "zeros":
            image_mask = [torch.ones_like(mask) for mask in image_mask]
        return pixel_values, image_mask

    def _lookup(
        self, entities: torch.LongTensor, device: torch.device | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        # uint8 pixels travel to the device and are normalised there
        device = device if device is not None else entities.device
        entities = entities.detach()
        parts = self._parts()
        if len(parts) == 1:
            return self._cache.lookup(entities, device=device)
        cpu = entities.view(-1).cpu()
        pixel_values: list[torch.Tensor] | None = None
        image_mask: list[torch.Tensor] | None = None
        for number, (start, cache) in enumerate(parts):
            stop = parts[number + 1][0] if number + 1 < len(parts) else self.num_entities
            where = ((cpu >= start) & (cpu < stop)).nonzero().view(-1)
            if not where.numel():
                continue
            values, masks = cache.lookup(cpu[where] - start, device=device)
            if pixel_values is None:
                pixel_values = [v.new_zeros((cpu.shape[0], *v.shape[1:])) for v in values]
                image_mask = [m.new_zeros((cpu.shape[0], *m.shape[1:])) for m in masks]
            rows = where.to(device)
            for target, value in zip(pixel_values, values, strict=True):
                target[rows] = value
            for target, mask in zip(image_mask, masks, strict=True):
                target[rows] = mask
        if pixel_values is None:  # an empty batch
            return self._cache.lookup(entities, device=device)
        return pixel_values, image_mask

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = None
        state["_extra_caches"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # models saved before entities could be added have no extensions
        self.__dict__.update({"extra_image_paths": [], "extra_skipped": [], "_extra_caches": None, **state})
