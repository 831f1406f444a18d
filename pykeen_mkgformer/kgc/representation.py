r"""Entity representations of MKGformer.

An entity appears in two roles:

- as the **known** entity of a query: its token, its text (:mod:`.inputs`) and its images, read
  lazily from a memory-mapped :class:`~pykeen_mkgformer.data.images.PixelCache` for the entities
  of the batch only (:class:`EntityImages`);
- as a **candidate** answer: its token embedding :math:`\mathbf{e}_e` (a row of the text tower's
  word embeddings, shared with the input side) and a bias :math:`b_e`
  (:class:`EntityTokenRepresentation`).

Entity (and relation) token embeddings start as the mean word embedding of their own text
(:func:`initialize_token_rows_from_text`), so a pretrained text tower knows roughly what they mean.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "EntityImages",
    "EntityTokenRepresentation",
    "initialize_token_rows_from_text",
]

logger = logging.getLogger(__name__)


class EntityTokenRepresentation(nn.Module):
    r"""The candidate side: entity token embeddings :math:`\mathbf{E}` (tied to the word embeddings) and biases :math:`\mathbf{b}`.

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
