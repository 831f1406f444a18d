"""How the link-prediction model is set up and initialised: the plugin's way or the official code's.

:class:`KGCRecipe` gathers the choices of :class:`~pykeen_mkgformer.kgc.MKGformer` that are not
about the fused layers (those are :class:`~pykeen_mkgformer.encoder.HybridConfig`'s
``fusion_variant``) and in which the official code (``zjunlp/MKGformer``, ``MKG/``) differs from
this plugin's defaults. ``KGCRecipe.official()`` (``recipe="official"``) is what the official
scripts do; each field may be overridden.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Union

__all__ = ["KGCRecipe", "RecipeHint", "resolve_recipe"]

_CHOICES = {
    "query_format": ("plugin", "official"),
    "token_init": ("text_mean", "normal"),
    "mlm_transform": ("pretrained", "random"),
    "entity_modeling_rows": ("new", "all"),
}


@dataclass(frozen=True)
class KGCRecipe:
    """The plugin's defaults; :meth:`official` gives the official code's choices."""

    #: ``"plugin"``: stage 1 ``[CLS] [MASK] is <e text> [SEP]``; head prediction as the tail prediction
    #: of the inverse relation ``[CLS] <t> [SEP] <r⁻¹ text> <r⁻¹> [SEP] [MASK] <t text> [SEP]``.
    #: ``"official"``: stage 1 ``[CLS] the description of [MASK] is that <e text> . [SEP]``; head prediction
    #: ``[CLS] [MASK] [SEP] <r text> <r> [SEP] <t> <t text> [SEP]`` with the forward relation's token,
    #: both directions cut to the length as transformers' ``longest_first`` cuts the official pair
    query_format: str = "plugin"
    #: new entity / relation token rows: the mean word embedding of their text (``"text_mean"``), or
    #: drawn from :math:`N(0, \\sigma^2)` with the text tower's ``initializer_range`` (``"normal"``, official)
    token_init: str = "text_mean"
    #: the MLM transform before scoring: the text checkpoint's (``"pretrained"``) or freshly
    #: initialised (``"random"``: the official code never loads it)
    mlm_transform: str = "pretrained"
    #: stage 1 trains the ``"new"`` token rows only, or ``"all"`` rows of the word embeddings (official)
    entity_modeling_rows: str = "new"
    #: stage-1 loss: label smoothing of :class:`~.losses.SmoothedSoftmaxCrossEntropyLoss` (0: plain cross-entropy)
    entity_modeling_smoothing: float = 0.0
    #: stage-1 AdamW weight decay (the word embeddings decay; the official 0.01)
    entity_modeling_weight_decay: float = 0.0
    #: stage-1 linear warm-up share of all steps, then linear decay (None: constant learning rate)
    entity_modeling_warmup_ratio: float | None = None

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}.")
        if not 0.0 <= self.entity_modeling_smoothing < 1.0 or self.entity_modeling_weight_decay < 0.0:
            raise ValueError("entity_modeling_smoothing must be in [0, 1) and entity_modeling_weight_decay >= 0.")
        ratio = self.entity_modeling_warmup_ratio
        if ratio is not None and not 0.0 <= ratio < 1.0:
            raise ValueError(f"entity_modeling_warmup_ratio must be in [0, 1) or None, got {ratio!r}.")

    @classmethod
    def official(cls, **overrides: Any) -> "KGCRecipe":
        """The official scripts' choices (``MKG/data/processor.py``, ``MKG/lit_models/transformer.py``)."""
        values: dict[str, Any] = dict(
            query_format="official",
            token_init="normal",
            mlm_transform="random",
            entity_modeling_rows="all",
            entity_modeling_smoothing=0.1,
            entity_modeling_weight_decay=0.01,
            entity_modeling_warmup_ratio=0.1,
        )
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


#: ``"plugin"``, ``"official"``, a dict (``{"base": "official", ...overrides}`` or plain fields) or a recipe
RecipeHint = Union[None, str, Mapping[str, Any], KGCRecipe]


def resolve_recipe(hint: RecipeHint) -> KGCRecipe:
    """Turn a recipe hint into a :class:`KGCRecipe`.

    :raises ValueError: for an unknown name or field
    """
    if isinstance(hint, KGCRecipe):
        return hint
    if hint is None or hint == "plugin":
        return KGCRecipe()
    if hint == "official":
        return KGCRecipe.official()
    if isinstance(hint, Mapping):
        values = dict(hint)
        base = values.pop("base", "plugin")
        unknown = set(values) - {field.name for field in dataclasses.fields(KGCRecipe)}
        if unknown:
            raise ValueError(f"unknown recipe fields {sorted(unknown)}; known: {[f.name for f in dataclasses.fields(KGCRecipe)]}.")
        return KGCRecipe.official(**values) if base == "official" else KGCRecipe(**values)
    raise ValueError(f"recipe must be 'plugin', 'official', a dict or a KGCRecipe, got {hint!r}.")
