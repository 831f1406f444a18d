r"""What a case analysis holds: the query's tokens, the images, the fused layers' attention, the answers.

Everything is plain data (numpy arrays, strings, numbers), so notebooks can plot it their own way;
:mod:`.html` and :mod:`.figure` draw it as a page and as a PNG.

The CAF weights of fused layer :math:`l` are the token-to-patch probabilities
:math:`S^{(l)} = \mathrm{softmax}(H_t H_v^\top)` of the text feed-forward (one row per text token,
one column per visual token; a row sums to 1 over the item's real visual tokens). The visual tokens
are the images of the layout one after another, each image its (optional) class token followed by
its patches in row-major order; :class:`ImageSlot` records where each image's tokens start, so
:meth:`FusedLayer.heatmap` can fold a row back into a patch grid per image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "TokenKind",
    "QueryToken",
    "ImageSlot",
    "FusedLayer",
    "Answer",
    "Explanation",
    "image_slots",
]

#: what a query token is: ``mask`` ([MASK]), ``entity`` (an entity token or an entity marker / mention
#: word), ``relation`` (a relation token), ``special`` ([CLS], [SEP]) or ``text``
TokenKind = Literal["mask", "entity", "relation", "special", "text"]


@dataclass
class QueryToken:
    """One token of the input text, as the model reads it."""

    #: position in the input
    index: int
    #: what is shown (word piece, or ``[E] label`` / ``[R] text`` for entity and relation tokens)
    text: str
    kind: TokenKind
    #: the token id
    token_id: int


@dataclass
class ImageSlot:
    """One image of the layout and where its tokens lie among the visual tokens."""

    #: position among all image slots (0-based, layout order)
    index: int
    #: the resolution group (``ImageLayout.groups`` index) and the position within it
    group: int
    position: int
    #: side in pixels, patches per side
    side: int
    grid: int
    #: the first visual token of this image; its class token (if any) comes first
    token_start: int
    has_class_token: bool
    #: whether a real image fills this slot (else its tokens are masked out)
    present: bool
    #: ``(side, side, 3)`` ``uint8`` pixels as the model read them (resized, cropped); None for an empty slot
    pixels: np.ndarray | None = None
    #: the image file, when known
    source: str | None = None

    @property
    def num_tokens(self) -> int:
        """Visual tokens of this image: its patches plus the class token."""
        return self.grid * self.grid + int(self.has_class_token)

    @property
    def patch_start(self) -> int:
        """The visual token of the top-left patch."""
        return self.token_start + int(self.has_class_token)


def image_slots(
    groups: Sequence[tuple[int, int]],
    patch_size: int,
    num_visual_tokens: int,
    present: Sequence[bool],
) -> list[ImageSlot]:
    """Map the visual tokens to images and patches from the image layout.

    Each image of ``groups`` (``(count, side)`` pairs, in order) contributes
    :math:`(\text{side}/p)^2` patch tokens, plus one class token when the vision input keeps it
    (the hybrid encoder's default) and none when it holds patch embeddings only (the official
    code's link prediction input); the official RE / NER input has one bare class token before all
    images. Which form holds is read off the number of visual tokens.

    :param groups: the layout's ``(count, side)`` groups
    :param patch_size: the vision tower's patch size :math:`p`
    :param num_visual_tokens: the number of visual tokens the encoder produced
    :param present: per image slot, whether a real image fills it
    :raises ValueError: if a side is not a multiple of the patch size, or the token count fits neither form
    """
    sides = [int(side) for count, side in groups for _ in range(int(count))]
    if len(present) != len(sides):
        raise ValueError(f"Got {len(present)} image-present flags for a layout of {len(sides)} images {list(groups)}.")
    bad = sorted({side for side in sides if side % patch_size})
    if bad:
        raise ValueError(f"Image sides {bad} are not multiples of the patch size {patch_size}.")
    patches = sum((side // patch_size) ** 2 for side in sides)
    start = 0
    if num_visual_tokens == patches:
        class_token = False
    elif num_visual_tokens == patches + len(sides):
        class_token = True
    elif num_visual_tokens == patches + 1:
        # one bare class token before all images (the official RE / NER input, ``class_and_groups``)
        class_token, start = False, 1
    else:
        raise ValueError(
            f"{num_visual_tokens} visual tokens fit neither {patches} patches nor {patches + len(sides)} "
            f"(patches plus one class token per image) nor {patches + 1} (one leading class token) of the "
            f"layout {list(groups)} with {patch_size} px patches."
        )
    slots = []
    index = 0
    for group, (count, side) in enumerate(groups):
        for position in range(int(count)):
            grid = int(side) // patch_size
            slot = ImageSlot(
                index=index,
                group=group,
                position=position,
                side=int(side),
                grid=grid,
                token_start=start,
                has_class_token=class_token,
                present=bool(present[index]),
            )
            slots.append(slot)
            start += slot.num_tokens
            index += 1
    return slots


@dataclass
class FusedLayer:
    """The attention of one fused layer pair."""

    #: 0-based layer indices in the text and the vision tower
    text_layer: int
    vision_layer: int
    #: CAF token-to-patch weights :math:`S`, ``(n_tokens, n_visual)``; None without CAF or images
    caf: np.ndarray | None = None
    #: PGI: the attention the item's real visual tokens pay to each text token (the text prefix of
    #: the vision self-attention), averaged over heads and visual queries, ``(n_tokens,)``; None without PGI
    pgi: np.ndarray | None = None

    def heatmap(self, token: int, image: ImageSlot) -> np.ndarray:
        """CAF weights of one token over one image's patches, ``(grid, grid)`` (row-major patches)."""
        if self.caf is None:
            raise ValueError(f"Text layer {self.text_layer} has no CAF weights (CAF off, or no images).")
        row = self.caf[token, image.patch_start : image.patch_start + image.grid * image.grid]
        return row.reshape(image.grid, image.grid)

    def class_weight(self, token: int, image: ImageSlot) -> float | None:
        """CAF weight of one token on an image's class token (None when the image has none)."""
        if self.caf is None or not image.has_class_token:
            return None
        return float(self.caf[token, image.token_start])


@dataclass
class Answer:
    """One ranked answer: a candidate entity (link prediction) or a relation label (relation extraction)."""

    #: 1-based position in the ranking
    position: int
    label: str
    score: float
    #: an entity's short name (link prediction)
    name: str | None = None
    description: str | None = None
    #: the softmax probability over all labels (relation extraction)
    probability: float | None = None
    #: whether this is the given true answer
    is_target: bool = False
    #: for link prediction: the splits in which (query, answer) is a known triple (filtered in evaluation)
    known_in: tuple[str, ...] = ()
    #: ``(h, w, 3)`` ``uint8`` first image of the answer entity, when it has one
    image: np.ndarray | None = None


@dataclass
class Explanation:
    """A case analysis of one query (link prediction) or instance (relation extraction)."""

    #: ``"link prediction"`` or ``"relation extraction"``
    task: str
    #: the query in words, e.g. ``(dog, hypernym, ?)``
    query: str
    tokens: list[QueryToken]
    images: list[ImageSlot]
    layers: list[FusedLayer]
    answers: list[Answer]
    #: the true answer (label) if given, its filtered realistic rank and score
    target: str | None = None
    target_rank: float | None = None
    target_score: float | None = None
    #: facts shown on the page (model folder, dataset, side, ...)
    facts: dict[str, Any] = field(default_factory=dict)
    #: things the reader must know (e.g. "object_3 has no images: text-only query")
    notes: list[str] = field(default_factory=list)

    @property
    def has_images(self) -> bool:
        """Whether the query had at least one real image."""
        return any(slot.present for slot in self.images)

    def token_order(self) -> list[int]:
        """Token indices for the selector: ``[MASK]`` first, then entity, relation, text and special tokens."""
        priority = {"mask": 0, "entity": 1, "relation": 2, "text": 3, "special": 4}
        return [token.index for token in sorted(self.tokens, key=lambda token: (priority[token.kind], token.index))]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (arrays as lists; pixels left out)."""

        def convert(value: Any) -> Any:
            if isinstance(value, np.ndarray):
                return None if value.dtype == np.uint8 else value.tolist()
            if dataclasses.is_dataclass(value):
                return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
            if isinstance(value, (list, tuple)):
                return [convert(v) for v in value]
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            return value

        return convert(self)
