"""How the link-prediction model is set up and initialised: the plugin's way or the official code's.

:class:`KGCRecipe` gathers the choices of :class:`~pykeen_mkgformer.kgc.MKGformer` that are not
about the fused layers (those are :class:`~pykeen_mkgformer.encoder.HybridConfig`'s
``fusion_variant``) and in which the official code (``zjunlp/MKGformer``, ``MKG/``) differs from
this plugin's defaults. ``KGCRecipe.official()`` (``recipe="official"``) is what the official
scripts do; each field may be overridden. The stage-2 fields (``checkpoint_metric``,
``checkpoint_restore``, ``validation_filter``) act through the stopper
:class:`~pykeen_mkgformer.kgc.stopping.SelectingEarlyStopper`, which reads them from the model.
"""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Union

__all__ = ["KGCRecipe", "RecipeHint", "resolve_recipe", "choose_images", "clean_text"]

_CHOICES = {
    "query_format": ("plugin", "official"),
    "token_init": ("text_mean", "normal"),
    "mlm_transform": ("pretrained", "random"),
    "entity_modeling_rows": ("new", "all"),
    "image_choice": ("sorted", "official"),
    "missing_images": ("masked", "zeros"),
    "text_cleaning": ("none", "official"),
    "entity_modeling_checkpoint_metric": ("mrr", "hits_at_10"),
    "checkpoint_restore": ("on_stop", "always"),
    "validation_filter": ("training", "all"),
}

#: the official collator's cap on an entity's images and the seed of its draw (``MKG/data/data_module.py``)
OFFICIAL_IMAGE_COUNT, OFFICIAL_IMAGE_SEED = 7, 1


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
    #: which of an entity's images fill the layout's slots: ``"sorted"`` (file names in order), or
    #: ``"official"``: the folder's ``os.listdir`` order, and when there are more than 7, the 7 that
    #: ``random.seed(1); random.sample(files, k=7)`` picks, in that order (:func:`choose_images`)
    image_choice: str = "sorted"
    #: slots without an image: ``"masked"`` (left out of attention; no image = text only), or
    #: ``"zeros"``: zero images that PGI and CAF attend to, as the official collator feeds them
    missing_images: str = "masked"
    #: entity texts as read (``"none"``), or as the official processor cleans them (``"official"``: the
    #: two characters ``\\n`` become a space, then every backslash is removed; :func:`clean_text`)
    text_cleaning: str = "none"
    #: stage 1 validates every this many epochs (0: never, run all epochs and keep the last state):
    #: each entity's stage-1 query ranks it among all entities; training stops when the MRR has not
    #: improved for ``entity_modeling_patience`` validations, and the token rows of the validation
    #: with the best ``entity_modeling_checkpoint_metric`` go to stage 2 (the official ``EarlyStopping`` /
    #: ``ModelCheckpoint``; its scripts validate every 10 epochs on WN18, every epoch on FB15k-237)
    entity_modeling_validate_every: int = 0
    entity_modeling_patience: int = 5
    #: which validated stage-1 state goes to stage 2: the best ``"mrr"`` (the stopping metric's, as
    #: PyKEEN's stopper keeps), or the best ``"hits_at_10"`` (official: ``ModelCheckpoint(monitor=
    #: "Eval/hits10")``); only read when ``entity_modeling_validate_every`` > 0
    entity_modeling_checkpoint_metric: str = "mrr"
    # ---- stage 2, read by :class:`~pykeen_mkgformer.kgc.stopping.SelectingEarlyStopper` (``stopper="selectingearly"``)
    #: the validation metric (a PyKEEN metric name) whose best state is tested: None keeps the stopper's
    #: own ``metric`` (PyKEEN's ``EarlyStopper``); official: ``"hits_at_10"`` (while stopping on the MRR)
    checkpoint_metric: str | None = None
    #: when the best state is put back: ``"on_stop"`` (only after an early stop; a run that uses all
    #: its epochs keeps the last state, as PyKEEN's ``EarlyStopper``), or ``"always"`` (official: the
    #: test runs on the best checkpoint, ``MKG/main.py`` loads ``best_model_path`` after ``fit``)
    checkpoint_restore: str = "on_stop"
    #: the known triples filtered out of validation ranks: ``"training"`` (PyKEEN's stopper: training and
    #: validation triples) or ``"all"`` (official: training, validation and test triples)
    validation_filter: str = "training"

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}.")
        if not 0.0 <= self.entity_modeling_smoothing < 1.0 or self.entity_modeling_weight_decay < 0.0:
            raise ValueError("entity_modeling_smoothing must be in [0, 1) and entity_modeling_weight_decay >= 0.")
        if self.checkpoint_metric is not None and not isinstance(self.checkpoint_metric, str):
            raise ValueError(f"checkpoint_metric must be None or a metric name, got {self.checkpoint_metric!r}.")
        if self.entity_modeling_validate_every < 0 or self.entity_modeling_patience < 1:
            raise ValueError("entity_modeling_validate_every must be >= 0 and entity_modeling_patience >= 1.")
        ratio = self.entity_modeling_warmup_ratio
        if ratio is not None and not 0.0 <= ratio < 1.0:
            raise ValueError(f"entity_modeling_warmup_ratio must be in [0, 1) or None, got {ratio!r}.")

    @classmethod
    def official(cls, **overrides: Any) -> "KGCRecipe":
        """The official scripts' choices (``MKG/data/processor.py``, ``MKG/lit_models/transformer.py``,
        ``MKG/main.py``)."""
        values: dict[str, Any] = dict(
            query_format="official",
            token_init="normal",
            mlm_transform="random",
            entity_modeling_rows="all",
            entity_modeling_smoothing=0.1,
            entity_modeling_weight_decay=0.01,
            entity_modeling_warmup_ratio=0.1,
            image_choice="official",
            missing_images="zeros",
            text_cleaning="official",
            entity_modeling_validate_every=1,
            entity_modeling_patience=5,
            entity_modeling_checkpoint_metric="hits_at_10",
            checkpoint_metric="hits_at_10",
            checkpoint_restore="always",
            validation_filter="all",
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


def choose_images(paths: Sequence[str], choice: str = "sorted") -> list[str]:
    """An entity's images in the order they fill the layout's slots.

    ``"sorted"``: as given (the readers list them sorted by name). ``"official"``: the order in which
    ``os.listdir`` lists the entity's folder (the folder of the first path; files of other folders
    follow in the given order), then, with more than :data:`OFFICIAL_IMAGE_COUNT` images, the draw
    ``random.seed(1); random.sample(files, k=7)`` of ``MKG/data/data_module.py`` (an own
    :class:`random.Random`, so the global random state is untouched).
    """
    paths = [str(path) for path in paths]
    if choice == "sorted" or not paths:
        return paths
    if choice != "official":
        raise ValueError(f"image_choice must be one of {_CHOICES['image_choice']}, got {choice!r}.")
    folder = os.path.dirname(paths[0])
    given = set(paths)
    try:
        listed = [os.path.join(folder, name) for name in os.listdir(folder)]
    except OSError:
        listed = []
    ordered = [path for path in listed if path in given]
    ordered += [path for path in paths if path not in set(ordered)]
    if len(ordered) > OFFICIAL_IMAGE_COUNT:
        ordered = random.Random(OFFICIAL_IMAGE_SEED).sample(ordered, k=OFFICIAL_IMAGE_COUNT)
    return ordered


def clean_text(text: str, cleaning: str = "official") -> str:
    """An entity text as ``MKG/data/processor.py`` uses it: the escape ``\\n`` (backslash, n) becomes a
    space, then every remaining backslash is dropped (FB15k-237's descriptions hold such escapes)."""
    if cleaning == "none":
        return text
    return text.replace("\\n", " ").replace("\\", "")
