"""Configuration of the hybrid text + vision transformer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Union

from transformers import AutoConfig, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

__all__ = [
    "HybridConfig",
    "FUSION_VARIANTS",
    "BackboneSpec",
    "TEXT_MODEL_TYPES",
    "VISION_MODEL_TYPES",
    "resolve_backbone_config",
]

#: A backbone is named by a Hugging Face hub name, a local folder, a config dict
#: (with ``model_type``) or a :class:`transformers.PretrainedConfig`.
BackboneSpec = Union[str, dict, PretrainedConfig]

#: Text towers whose layers share BERT's layout (``attention.self.{query,key,value}``,
#: ``attention.output``, ``intermediate``, ``output``), so BERT checkpoints' weight names apply.
TEXT_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")
#: Vision towers: ViT and the vision half of CLIP (a full CLIP checkpoint gives its vision config).
VISION_MODEL_TYPES = ("vit", "clip_vision_model")


def resolve_backbone_config(spec: BackboneSpec, *, role: str) -> PretrainedConfig:
    """Turn a backbone spec into a :class:`transformers.PretrainedConfig`.

    :param spec: hub name, local folder, config dict with ``model_type``, or a config object
    :param role: ``"text"`` or ``"vision"``, to pick CLIP's vision half and to check the type
    :raises ValueError: for an unsupported model type or a dict without ``model_type``
    """
    if isinstance(spec, PretrainedConfig):
        config = spec
    elif isinstance(spec, dict):
        kwargs = dict(spec)
        model_type = kwargs.pop("model_type", None)
        if model_type not in CONFIG_MAPPING:
            raise ValueError(
                f"The {role} config dict needs a known 'model_type' (one of {_supported(role)}), "
                f"got {model_type!r}."
            )
        config = CONFIG_MAPPING[model_type](**kwargs)
    elif isinstance(spec, str):
        config = AutoConfig.from_pretrained(spec)
    else:
        raise TypeError(f"The {role} backbone must be a name, a folder, a dict or a config, got {type(spec)}.")
    if role == "vision" and config.model_type == "clip":
        config = config.vision_config
    allowed = TEXT_MODEL_TYPES if role == "text" else VISION_MODEL_TYPES
    if config.model_type not in allowed:
        raise ValueError(
            f"Unsupported {role} backbone of model type {config.model_type!r}; expected one of {_supported(role)}."
        )
    return config


#: The defaults each fusion variant gives the individual switches of :class:`HybridConfig`.
#:
#: ``"paper"`` is the equations of the paper as written; ``"official"`` is what the official code
#: (``zjunlp/MKGformer``, ``*/models/modeling_unimo.py``) computes, which produced the published numbers.
FUSION_VARIANTS: dict[str, dict[str, Any]] = {
    "paper": dict(
        prefix_source="same_layer",
        caf_query="layer_input",
        fusion_dropout=0.1,
        caf_bias=False,
        vision_embedding="tower",
        mask_text_padding=True,
    ),
    "official": dict(
        prefix_source="previous_layer",
        caf_query="attention_context",
        fusion_dropout=0.0,
        caf_bias=True,
        vision_embedding="patches",
        mask_text_padding=False,
    ),
}

#: the allowed values of the switches that take a name
_CHOICES = {
    "prefix_source": ("same_layer", "previous_layer"),
    "caf_query": ("layer_input", "attention_context"),
    "vision_embedding": ("tower", "patches", "class_and_groups"),
}


def _supported(role: str) -> tuple[str, ...]:
    return TEXT_MODEL_TYPES if role == "text" else (*VISION_MODEL_TYPES, "clip")


@dataclass
class HybridConfig:
    """What the hybrid transformer is made of.

    The text tower (T-Encoder) and the vision tower (V-Encoder) run side by side; their last
    ``fusion_layers`` (M) layers are fused: PGI lets visual queries attend over a prefix of text keys
    and values, CAF adds token-patch aggregated visual states into the text feed-forward.
    ``fusion_layers=0`` gives two independent towers.
    """

    #: the text backbone (BERT family): hub name, local folder, config dict or config
    text: BackboneSpec = "bert-base-uncased"
    #: the vision backbone (ViT or CLIP vision): hub name, local folder, config dict or config
    vision: BackboneSpec = "openai/clip-vit-base-patch32"
    #: M, the number of last layers of each tower that are fused
    fusion_layers: int = 3
    #: prefix-guided interaction (text prefix in the vision self-attention)
    use_pgi: bool = True
    #: correlation-aware fusion (visual states in the text feed-forward)
    use_caf: bool = True
    #: dropout on the aggregated visual states that CAF adds into the text FFN
    #: (None: the variant's, 0.1 for ``"paper"``, 0 for ``"official"``)
    fusion_dropout: float | None = None
    #: ``"paper"`` (the equations as written) or ``"official"`` (the official code); it sets the
    #: defaults of the switches below, each of which may be given explicitly instead
    fusion_variant: str = "paper"
    #: whose keys/values form vision layer l's PGI prefix: ``"same_layer"`` (text layer l's own) or
    #: ``"previous_layer"`` (those text layer l-1 computed on its input, as the official code)
    prefix_source: str | None = None
    #: what CAF compares with the patches and aggregates for: ``"layer_input"`` (:math:`H_t`, the
    #: post-LayerNorm attention output that enters :math:`W_1`) or ``"attention_context"`` (the
    #: self-attention context before the output projection, residual and LayerNorm)
    caf_query: str | None = None
    #: a bias on :math:`W_f` (the official ``fusion_dense`` has one; the paper's :math:`b` is :math:`W_1`'s)
    caf_bias: bool | None = None
    #: how images become visual tokens: ``"tower"`` (the tower's embeddings: class token and position
    #: embeddings per image), ``"patches"`` (patch embeddings only, the official link prediction) or
    #: ``"class_and_groups"`` (one bare class token, then each pixel group's patch embeddings plus a
    #: learned position per token, the official RE / NER; sizes in ``group_positions``)
    vision_embedding: str | None = None
    #: with ``vision_embedding="class_and_groups"``: the number of visual tokens of each pixel group
    #: (one learned position each), e.g. ``(48, 12)`` for 3 crops at 128 px and 3 at 64 px with 32 px patches
    group_positions: tuple[int, ...] | None = None
    #: mask text padding in the PGI prefix (the official code lets visual queries attend to it)
    mask_text_padding: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.fusion_layers, int) or isinstance(self.fusion_layers, bool) or self.fusion_layers < 0:
            raise ValueError(f"fusion_layers must be a non-negative integer, got {self.fusion_layers!r}.")
        if self.fusion_variant not in FUSION_VARIANTS:
            raise ValueError(
                f"fusion_variant must be one of {sorted(FUSION_VARIANTS)}, got {self.fusion_variant!r}."
            )
        for name, value in FUSION_VARIANTS[self.fusion_variant].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}.")
        if not 0.0 <= self.fusion_dropout < 1.0:
            raise ValueError(f"fusion_dropout must be in [0, 1), got {self.fusion_dropout!r}.")
        if self.vision_embedding == "class_and_groups":
            if not self.group_positions or any(
                not isinstance(n, int) or isinstance(n, bool) or n <= 0 for n in self.group_positions
            ):
                raise ValueError(
                    "vision_embedding='class_and_groups' needs group_positions, the positive number of visual "
                    f"tokens of each pixel group, e.g. (48, 12); got {self.group_positions!r}."
                )
            self.group_positions = tuple(self.group_positions)
        elif self.group_positions is not None:
            raise ValueError(
                f"group_positions is only used with vision_embedding='class_and_groups', not {self.vision_embedding!r}."
            )

    def switches(self) -> dict[str, Any]:
        """The resolved fusion switches (what the variant and any explicit overrides give)."""
        return {name: getattr(self, name) for name in FUSION_VARIANTS["paper"]}

    def text_config(self) -> PretrainedConfig:
        """The resolved text tower config."""
        return resolve_backbone_config(self.text, role="text")

    def vision_config(self) -> PretrainedConfig:
        """The resolved vision tower config."""
        return resolve_backbone_config(self.vision, role="vision")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; backbone configs are stored in full so nothing is fetched on reload."""
        result = dataclasses.asdict(self)
        if self.group_positions is not None:
            result["group_positions"] = list(self.group_positions)
        result["text"] = self.text_config().to_dict()
        result["vision"] = self.vision_config().to_dict()
        return result

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HybridConfig":
        """Inverse of :meth:`to_dict`."""
        return cls(**data)
