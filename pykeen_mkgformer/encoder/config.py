"""Configuration of the hybrid text + vision transformer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Union

from transformers import AutoConfig, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

__all__ = [
    "HybridConfig",
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
    fusion_dropout: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.fusion_layers, int) or isinstance(self.fusion_layers, bool) or self.fusion_layers < 0:
            raise ValueError(f"fusion_layers must be a non-negative integer, got {self.fusion_layers!r}.")
        if not 0.0 <= self.fusion_dropout < 1.0:
            raise ValueError(f"fusion_dropout must be in [0, 1), got {self.fusion_dropout!r}.")

    def text_config(self) -> PretrainedConfig:
        """The resolved text tower config."""
        return resolve_backbone_config(self.text, role="text")

    def vision_config(self) -> PretrainedConfig:
        """The resolved vision tower config."""
        return resolve_backbone_config(self.vision, role="vision")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; backbone configs are stored in full so nothing is fetched on reload."""
        result = dataclasses.asdict(self)
        result["text"] = self.text_config().to_dict()
        result["vision"] = self.vision_config().to_dict()
        return result

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HybridConfig":
        """Inverse of :meth:`to_dict`."""
        return cls(**data)
