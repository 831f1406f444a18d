"""The backbone towers, in one place for link prediction, RE and NER.

- **Presets** (:data:`ENCODER_PRESETS`, defined once): ``"tiny"``, a 2-layer, 32-wide BERT and a
  2-layer, 32-wide CLIP vision tower on 32 px images (8 px patches), random weights.
- **Towers** (:func:`load_tower`): a Hugging Face name or folder gives the pretrained tower, a config
  dict (with ``model_type``) or a preset name only its config (random weights, built by the encoder);
  :func:`dropout_overrides` sets both towers' dropout at once.
- **Image processors and resizing**: :func:`image_processor_for` (the tower's own
  ``preprocessor_config.json``, else CLIP's or ViT's processor at its image size) and
  :func:`resized_processor` (the same processor at another side).
- **Image layouts** (:class:`ImageLayout`): how many images an item gets at which size: the link
  prediction slots (:meth:`ImageLayout.official`: 1 x 224 + 3 x 128 + 3 x 64 px) and the RE / NER object
  crops (:meth:`ImageLayout.official_crops`: 3 crops at 4 patches a side, 3 at 2) alike.

The image side is defined in :mod:`pykeen_mkgformer.data.images` (the pixel caches below the encoder
use it) and re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from transformers import PretrainedConfig

from ..data.images import OFFICIAL_CROP_GROUPS, ImageLayout, image_processor_for, resized_processor
from .config import resolve_backbone_config

__all__ = [
    "ENCODER_PRESETS",
    "OFFICIAL_CROP_GROUPS",
    "ImageLayout",
    "dropout_overrides",
    "image_processor_for",
    "load_tower",
    "preset_config",
    "random_vision_config",
    "resized_processor",
    "resolve_encoder",
    "tiny_text_encoder",
    "tiny_vision_encoder",
]


def tiny_text_encoder(
    *, hidden_size: int = 32, num_layers: int = 2, num_heads: int = 2, max_length: int = 64
) -> dict[str, Any]:
    """A small random BERT config dict."""
    return dict(
        model_type="bert",
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=max_length,
    )


def tiny_vision_encoder(
    *, hidden_size: int = 32, num_layers: int = 2, num_heads: int = 2, image_size: int = 32, patch_size: int = 8
) -> dict[str, Any]:
    """A small random CLIP vision config dict."""
    return dict(
        model_type="clip_vision_model",
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=2 * hidden_size,
        image_size=image_size,
        patch_size=patch_size,
    )


#: encoder presets by name: the text and the vision config (dict) of each
ENCODER_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(text=tiny_text_encoder, vision=tiny_vision_encoder),
}


def preset_config(name: str, role: Literal["text", "vision"]) -> dict[str, Any]:
    """The config dict of preset ``name`` for ``role``.

    :raises KeyError: naming the known presets
    """
    if name not in ENCODER_PRESETS:
        raise KeyError(f"unknown encoder preset {name!r}; known: {sorted(ENCODER_PRESETS)}")
    return ENCODER_PRESETS[name][role]()


def resolve_encoder(spec: Any, role: Literal["text", "vision"]) -> Any:
    """A preset name (e.g. ``"tiny"``) becomes its config dict; anything else (a Hugging Face name, a
    folder, a config) is returned as is. An existing folder of that name wins over the preset.
    """
    if isinstance(spec, str) and spec in ENCODER_PRESETS and not Path(spec).exists():
        return preset_config(spec, role)
    return spec


def random_vision_config(spec: str) -> PretrainedConfig | None:
    """The config of a random vision tower named by ``spec`` (a preset or a ``.json`` config file); None for a checkpoint."""
    if spec in ENCODER_PRESETS and not Path(spec).exists():
        return resolve_backbone_config(preset_config(spec, "vision"), role="vision")
    path = Path(spec)
    if path.suffix == ".json" and path.is_file():
        return resolve_backbone_config(json.loads(path.read_text(encoding="utf-8")), role="vision")
    return None


def dropout_overrides(dropout: float, role: Literal["text", "vision"]) -> dict[str, float]:
    """Config overrides that set a tower's hidden and attention dropout to ``dropout`` (BERT, ViT and CLIP names)."""
    if role == "text":
        return dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, attention_dropout=dropout, dropout=dropout)


def load_tower(
    spec: Any,
    *,
    role: Literal["text", "vision"],
    overrides: Mapping[str, Any] | None = None,
    dropout: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[nn.Module | None, PretrainedConfig]:
    """A pretrained tower (for a name or folder) or only its config (for a dict or a config: random weights).

    Link prediction, RE and NER all load their towers here.

    :param spec: Hugging Face name, folder, config dict with ``model_type`` or config
    :param role: ``"text"`` (a BERT-family model) or ``"vision"`` (CLIP vision or ViT)
    :param overrides: config values that replace the checkpoint's (e.g. ``hidden_dropout_prob``)
    :param dropout: if given, the tower's hidden and attention dropout (:func:`dropout_overrides`)
    :param dtype: the weights' dtype (float32, the fused layers' dtype, whatever the checkpoint was saved in)
    :return: ``(model or None, config)``
    """
    from transformers import AutoModel, CLIPVisionModel, ViTModel

    overrides = dict(overrides or {})
    if dropout is not None:
        overrides.update(dropout_overrides(dropout, role))
    if isinstance(spec, (str, Path)):
        spec = str(spec)
        config = resolve_backbone_config(spec, role=role)
        for key, value in overrides.items():
            setattr(config, key, value)
        # the checkpoint's own config unless something is overridden
        config_kwargs = dict(config=config) if overrides else {}
        if role == "text":
            model = AutoModel.from_pretrained(spec, dtype=dtype, **config_kwargs)
        else:
            model_class = CLIPVisionModel if config.model_type == "clip_vision_model" else ViTModel
            model = model_class.from_pretrained(spec, dtype=dtype, **config_kwargs)
        return model, config
    config = resolve_backbone_config({**spec, **overrides} if isinstance(spec, Mapping) else spec, role=role)
    return None, config
