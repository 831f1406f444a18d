"""The hybrid encoder, its tokenizer and its image processor, from names, folders or configs.

The text encoder is always a checkpoint (Hugging Face name or local folder) that holds the
weights and the tokenizer. The vision encoder is a checkpoint too, or, when no vision weights are
at hand, a random tower built from a config: ``"tiny"`` (a 2-layer CLIP vision tower on 32 px
images) or the path of a JSON config file with a ``model_type``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    BaseImageProcessor,
    CLIPVisionConfig,
    PreTrainedTokenizerBase,
)

from ..encoder import HybridConfig, HybridTransformer
from ..encoder.backbone import image_processor_for, load_tower, preset_config, random_vision_config, resized_processor
from ..encoder.config import resolve_backbone_config

__all__ = ["EncoderBundle", "load_encoder", "tiny_vision_config", "vision_config_from_spec"]

#: the name that picks :func:`tiny_vision_config`
TINY = "tiny"


@dataclass
class EncoderBundle:
    """Everything a task needs from the backbone side."""

    encoder: HybridTransformer
    tokenizer: PreTrainedTokenizerBase
    image_processor: BaseImageProcessor
    #: how the vision tower was chosen, for metrics.json
    description: dict
    #: ``fusion_variant="official"``: one processor per crop group (4 and 2 patches a side)
    crop_processors: list[BaseImageProcessor] = field(default_factory=list)


def tiny_vision_config() -> CLIPVisionConfig:
    """The ``"tiny"`` vision preset (:mod:`pykeen_mkgformer.encoder.backbone`) as a config; random weights."""
    return resolve_backbone_config(preset_config(TINY, "vision"), role="vision")


#: old names of :func:`~pykeen_mkgformer.encoder.backbone.random_vision_config`,
#: :func:`~pykeen_mkgformer.encoder.backbone.image_processor_for` and
#: :func:`~pykeen_mkgformer.encoder.backbone.resized_processor`
vision_config_from_spec = random_vision_config
_processor_for_config = image_processor_for
_resized = resized_processor


def load_encoder(
    text: str | Path,
    vision: str | Path = TINY,
    *,
    fusion_layers: int | None = None,
    fusion_variant: str = "paper",
) -> EncoderBundle:
    """Load the text checkpoint (and its tokenizer) and the vision tower, and fuse their last layers.

    :param text: Hugging Face name or folder of a BERT-family checkpoint with its tokenizer
    :param vision: ``"tiny"``, a JSON config file (random tower), or a ViT/CLIP checkpoint
    :param fusion_layers: M; by default ``min(3, text depth, vision depth)`` (``"official"``: 4, as its code)
    :param fusion_variant: ``"paper"``, or ``"official"``: the official MRE / MNER encoder, whose
        vision input is a class token and object crops at two sizes (:class:`~.images.OfficialCropImages`)
    """
    from .images import OfficialCropImages

    text, vision = str(text), str(vision)
    tokenizer = AutoTokenizer.from_pretrained(text)
    random_vision = vision_config_from_spec(vision)
    vision_config = random_vision if random_vision is not None else resolve_backbone_config(vision, role="vision")
    if fusion_layers is None:
        text_depth = resolve_backbone_config(text, role="text").num_hidden_layers
        fusion_layers = min(4 if fusion_variant == "official" else 3, text_depth, vision_config.num_hidden_layers)
    switches: dict = {"fusion_variant": fusion_variant}
    if fusion_variant == "official":
        switches.update(vision_embedding="class_and_groups", group_positions=OfficialCropImages.group_positions())
    # the towers as link prediction loads them (encoder.backbone); a random vision tower is only its config
    text_model, text_config = load_tower(text, role="text")
    vision_model, vision_config = load_tower(vision if random_vision is None else random_vision, role="vision")
    config = HybridConfig(text=text_config, vision=vision_config, fusion_layers=fusion_layers, **switches)
    encoder = HybridTransformer(config, text_model=text_model, vision_model=vision_model)
    processor = AutoImageProcessor.from_pretrained(vision) if random_vision is None else image_processor_for(random_vision)
    crop_processors = []
    if fusion_variant == "official":
        patch = vision_config.patch_size
        crop_processors = [resized_processor(processor, side * patch) for _, side in OfficialCropImages.GROUPS]
    description = {
        "text_encoder": text,
        "vision_encoder": vision,
        "vision_weights": "pretrained" if random_vision is None else "random (config only)",
        "fusion_layers": fusion_layers,
        "fusion_variant": fusion_variant,
    }
    return EncoderBundle(
        encoder=encoder, tokenizer=tokenizer, image_processor=processor, description=description,
        crop_processors=crop_processors,
    )
