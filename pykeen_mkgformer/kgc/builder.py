"""Building MKGformer's parts: the two towers, the hybrid encoder with its new tokens, the MLM head, the pixel cache.

What :class:`~pykeen_mkgformer.kgc.MKGformer` needs at construction and again when PyKEEN resets it,
kept out of the model class: tower loading (Hugging Face names, folders, config dicts), reading BERT's
MLM transform from a checkpoint, and the image-layout policy.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..terminal import warn_at_caller
from .representation import EntityImages, initialize_token_rows_from_text

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from .inputs import QueryAssembler
    from .interaction import MKGformerInteraction
    from .recipe import KGCRecipe

__all__ = ["encoder_spec", "load_tower", "build_interaction", "build_images", "pretrained_mlm_transform"]

logger = logging.getLogger(__name__)


def encoder_spec(
    *,
    text_encoder: Any,
    text_encoder_kwargs: Mapping[str, Any] | None,
    vision_encoder: Any,
    vision_encoder_kwargs: Mapping[str, Any] | None,
    fusion_layers: int,
    use_pgi: bool,
    use_caf: bool,
    fusion_variant: str,
    fusion_kwargs: Mapping[str, Any] | None,
    dropout: float | None,
) -> dict[str, Any]:
    """The encoder's settings as plain data (kept on the model as ``spec``: picklable, JSON-friendly)."""
    return dict(
        text_encoder=_plain(text_encoder),
        text_encoder_kwargs=dict(text_encoder_kwargs or {}),
        vision_encoder=_plain(vision_encoder),
        vision_encoder_kwargs=dict(vision_encoder_kwargs or {}),
        fusion_layers=fusion_layers,
        use_pgi=use_pgi,
        use_caf=use_caf,
        fusion_variant=fusion_variant,
        fusion_kwargs=dict(fusion_kwargs or {}),
        dropout=dropout,
    )


def vision_config(spec: Mapping[str, Any]) -> PretrainedConfig:
    """The vision tower's config alone (no weights are read)."""
    from ..encoder.config import resolve_backbone_config

    source = spec["vision_encoder"]
    overrides = dict(spec["vision_encoder_kwargs"])
    if spec["dropout"] is not None:
        overrides.update(_dropout_overrides(spec["dropout"], "vision"))
    if isinstance(source, str):
        config = resolve_backbone_config(source, role="vision")
        for key, value in overrides.items():
            setattr(config, key, value)
        return config
    return resolve_backbone_config({**source, **overrides} if isinstance(source, Mapping) else source, role="vision")


def build_interaction(
    spec: Mapping[str, Any],
    queries: QueryAssembler,
    recipe: KGCRecipe,
    *,
    use_images: bool,
    interaction_class: type[MKGformerInteraction] | None = None,
) -> MKGformerInteraction:
    """The encoder (pretrained or random), resized for the new tokens, token rows initialised from text, the MLM head.

    :param interaction_class: the scoring head, :class:`~.interaction.MKGformerInteraction` or a subclass
    """
    from transformers.models.bert.modeling_bert import BertPredictionHeadTransform

    from ..encoder import HybridConfig, HybridTransformer
    from .interaction import MKGformerInteraction

    text_model, text_config = load_tower(spec["text_encoder"], spec["text_encoder_kwargs"], spec["dropout"], "text")
    vision_model, vision_cfg = load_tower(spec["vision_encoder"], spec["vision_encoder_kwargs"], spec["dropout"], "vision")
    if text_model is None:
        # a random text tower gets exactly the tokenizer's vocabulary
        text_config.vocab_size = queries.base_vocab_size
    elif text_model.get_input_embeddings().num_embeddings < queries.base_vocab_size:
        raise ValueError(
            f"The tokenizer has {queries.base_vocab_size} tokens but the text encoder only "
            f"{text_model.get_input_embeddings().num_embeddings} embeddings."
        )
    config = HybridConfig(
        text=text_config,
        vision=vision_cfg,
        fusion_layers=spec["fusion_layers"],
        use_pgi=spec["use_pgi"],
        use_caf=spec["use_caf"],
        fusion_dropout=spec["dropout"],  # None: the variant's (paper 0.1, official 0)
        fusion_variant=spec["fusion_variant"],
        **spec["fusion_kwargs"],
    )
    encoder = HybridTransformer(config, text_model=text_model, vision_model=vision_model)
    # new rows get the tower's ordinary random init; the entity/relation rows are then set from their texts
    encoder.text_model.resize_token_embeddings(queries.vocab_size, mean_resizing=False)
    word_embeddings = encoder.get_input_embeddings()
    if recipe.token_init == "text_mean":  # else: the resize's N(0, initializer_range) rows
        initialize_token_rows_from_text(
            word_embeddings,
            rows=torch.arange(queries.num_entities) + queries.entity_token_offset,
            text_ids=queries.entity_text_ids.cpu(),
            text_lengths=queries.entity_text_lengths.cpu(),
        )
        initialize_token_rows_from_text(
            word_embeddings,
            rows=torch.arange(queries.num_directed_relations) + queries.relation_token_offset,
            text_ids=queries.relation_text_ids.cpu(),
            text_lengths=queries.relation_text_lengths.cpu(),
        )
    transform = BertPredictionHeadTransform(encoder.text_config)
    if text_model is not None and recipe.mlm_transform == "pretrained":
        state = pretrained_mlm_transform(spec["text_encoder"])
        if state is not None:
            transform.load_state_dict(state)
            logger.info("loaded the MLM transform of %s", spec["text_encoder"])
    interaction_class = MKGformerInteraction if interaction_class is None else interaction_class
    return interaction_class(encoder, transform, layout=queries.layout, use_images=use_images)


def _plain(spec: Any) -> Any:
    """Specs kept on the model: paths as strings, configs as dicts (picklable, JSON-friendly)."""
    from transformers import PretrainedConfig

    if isinstance(spec, Path):
        return str(spec)
    if isinstance(spec, PretrainedConfig):
        return spec.to_dict()
    if isinstance(spec, Mapping):
        return dict(spec)
    return spec


def load_tower(
    spec: Any, overrides: Mapping[str, Any], dropout: float | None, role: str
) -> tuple[nn.Module | None, PretrainedConfig]:
    """A pretrained tower (for a name/folder) or only a config (for a dict: random weights, built by the encoder)."""
    from ..encoder.backbone import load_tower as load_backbone_tower

    return load_backbone_tower(spec, role=role, overrides=overrides, dropout=dropout)


def _dropout_overrides(dropout: float, role: str) -> dict[str, float]:
    from ..encoder.backbone import dropout_overrides

    return dropout_overrides(dropout, role)


def pretrained_mlm_transform(source: str) -> dict[str, torch.Tensor] | None:
    """BERT's ``cls.predictions.transform`` weights from a checkpoint, when it has them (else None)."""
    from transformers.utils import cached_file

    prefix = "cls.predictions.transform."
    for file_name in ("model.safetensors", "pytorch_model.bin"):
        try:
            path = cached_file(source, file_name, _raise_exceptions_for_missing_entries=False)
        except (OSError, ValueError):
            path = None
        if not path:
            continue
        if file_name.endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(path, framework="pt") as handle:
                state = {key[len(prefix) :]: handle.get_tensor(key) for key in handle.keys() if key.startswith(prefix)}
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
            state = {key[len(prefix) :]: value for key, value in raw.items() if key.startswith(prefix)}
        # old checkpoints name LayerNorm parameters gamma/beta
        state = {key.replace(".gamma", ".weight").replace(".beta", ".bias"): value for key, value in state.items()}
        return state or None
    return None


def build_images(
    image_paths: Sequence[Sequence[str]],
    *,
    vision: PretrainedConfig,
    vision_source: Any,
    max_images: int | None,
    image_layout: Any,
    cache_dir: str | Path | None,
    progress: bool,
) -> EntityImages | None:
    """The entities' pixel cache for the chosen layout, or None when no image is used."""
    from ..data.images import ImageLayout, image_processor_for

    image_size = vision.image_size if isinstance(vision.image_size, int) else vision.image_size[0]
    if image_layout is not None:
        layout = image_layout if isinstance(image_layout, ImageLayout) else ImageLayout(
            groups=tuple((int(count), int(side)) for count, side in image_layout)
        )
    elif max_images == 0:
        return None
    elif max_images is None and image_size == 224:
        layout = ImageLayout.official()
    else:
        layout = ImageLayout.single(image_size, count=max_images or 1)
    if layout.max_images == 0 or not any(image_paths):
        if not any(image_paths):
            warn_at_caller("No entity has an image: MKGformer runs text-only.")
        return None
    patch = vision.patch_size
    bad = [side for _, side in layout.groups if side % patch]
    if bad:
        raise ValueError(f"Image sides {bad} of the layout {layout.groups} are not multiples of the patch size {patch}.")
    source = vision_source if isinstance(vision_source, (str, Path)) else vision
    return EntityImages(
        image_paths, processor=image_processor_for(source), layout=layout, cache_dir=cache_dir, progress=progress
    )
