"""Typed recipes for relation extraction and NER: the paper's way, or the official scripts' pipeline.

A recipe holds every choice between the benchmark files and the logits (padding, images, markers,
tag set) and every training number (learning rates, decay, warm-up, clipping). ``Recipe.paper()``
is the plugin's default; ``Recipe.official()`` is what the official ``MRE/run_mre.sh`` and
``MNER/run_mner.sh`` run, defects included (see the README's Fidelity table). Each field can be
overridden: ``RERecipe.official(lr=3e-5)``, or ``--recipe official --lr 3e-5`` on the command line.
The recipe is saved with the model (``task.json``) and in ``metrics.json``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal, Mapping, TypeVar

__all__ = [
    "TaskRecipe",
    "RecipeName",
    "resolve_task_recipe",
]

#: the two named recipes
RecipeName = Literal["paper", "official"]
#: ``"longest"``: pad each batch to its longest instance; ``"max_length"``: every instance to ``max_length``
Padding = Literal["longest", "max_length"]
#: ``"masked"``: a missing image / crop is left out of attention; ``"zeros"``: it is a zero image, attended
MissingImages = Literal["masked", "zeros"]
#: ``"stem"``: crops are ``<image stem>_<n>`` files; ``"index"``: crops are listed in the folders' ``index.json``
CropSource = Literal["stem", "index"]

R = TypeVar("R", bound="TaskRecipe")


@dataclass(frozen=True)
class TaskRecipe:
    """What relation extraction and NER share: input pipeline and training numbers."""

    #: the encoder's fused layers: the paper's equations or the official code (:class:`~pykeen_mkgformer.encoder.HybridConfig`)
    fusion_variant: RecipeName = "paper"
    padding: Padding = "longest"
    #: sub-tokens per instance (the official ``--max_seq``)
    max_length: int = 128
    missing_images: MissingImages = "masked"
    crop_source: CropSource = "stem"
    epochs: int = 5
    batch_size: int = 16
    #: peak learning rate of the text tower (and of every encoder parameter unless ``vision_lr`` is set)
    lr: float = 5e-5
    #: learning rate of the vision tower's parameters (None: ``lr``)
    vision_lr: float | None = None
    #: learning rate of the task head (classifier, CRF; None: ``lr``)
    head_lr: float | None = None
    weight_decay: float = 0.01
    #: decay every parameter (official) rather than only matrices (no decay on biases and LayerNorms)
    decay_all: bool = False
    #: linear warm-up share of all steps, then linear decay to 0
    warmup_ratio: float = 0.1
    #: gradient-norm clipping (None: none, as the official trainers)
    max_grad_norm: float | None = 1.0

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            choices = typing.get_args(hints[field.name])
            if typing.get_origin(hints[field.name]) is Literal and getattr(self, field.name) not in choices:
                raise ValueError(f"{field.name} must be one of {choices}, got {getattr(self, field.name)!r}.")
        if self.max_length < 8 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("max_length must be >= 8, epochs and batch_size >= 1.")
        if not 0.0 <= self.warmup_ratio < 1.0 or self.weight_decay < 0.0:
            raise ValueError("warmup_ratio must be in [0, 1) and weight_decay >= 0.")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def paper(cls: type[R], **overrides: Any) -> R:
        """The plugin's choices (the paper's equations, masks where something is missing)."""
        return cls(**overrides)

    @classmethod
    def official(cls: type[R], **overrides: Any) -> R:
        """The official script's pipeline and numbers; subclasses give them."""
        raise NotImplementedError

    @classmethod
    def named(cls: type[R], name: RecipeName, **overrides: Any) -> R:
        """``paper`` or ``official``, with ``overrides`` (None values ignored)."""
        overrides = {key: value for key, value in overrides.items() if value is not None}
        if name == "paper":
            return cls.paper(**overrides)
        if name == "official":
            return cls.official(**overrides)
        raise ValueError(f"recipe must be 'paper' or 'official', got {name!r}.")

    @classmethod
    def field_names(cls) -> set[str]:
        return {field.name for field in dataclasses.fields(cls)}

    def replace(self: R, **changes: Any) -> R:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with the recipe's class name."""
        return {"recipe": type(self).__name__, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls: type[R], values: Mapping[str, Any]) -> R:
        """Inverse of :meth:`to_dict`.

        :raises ValueError: naming unknown fields
        """
        values = {key: value for key, value in values.items() if key != "recipe"}
        unknown = set(values) - cls.field_names()
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}.")
        return cls(**values)


def resolve_task_recipe(recipe_class: type[R], hint: None | str | Mapping[str, Any] | R) -> R:
    """A recipe from a name (``"paper"``, ``"official"``), a dict (``{"base": "official", **fields}``) or a recipe."""
    if isinstance(hint, recipe_class):
        return hint
    if hint is None:
        return recipe_class.paper()
    if isinstance(hint, str):
        return recipe_class.named(hint)  # type: ignore[arg-type]
    if isinstance(hint, Mapping):
        values = dict(hint)
        base = values.pop("base", "paper")
        unknown = set(values) - recipe_class.field_names()
        if unknown:
            raise ValueError(f"unknown {recipe_class.__name__} fields {sorted(unknown)}.")
        return recipe_class.named(base, **values)
    raise ValueError(f"recipe must be 'paper', 'official', a dict or a {recipe_class.__name__}, got {hint!r}.")
