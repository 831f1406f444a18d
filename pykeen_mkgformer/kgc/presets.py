"""Tiny random encoder configs, for tests, CPU demos and smoke runs (no download, seconds per epoch).

Pass them as ``text_encoder`` / ``vision_encoder`` of :class:`~pykeen_mkgformer.kgc.MKGformer`,
as dicts or by name (``text_encoder="tiny"``, also ``pykeen train mkgformer --text-encoder tiny``);
with a config-dict text encoder and no ``tokenizer``, a WordPiece tokenizer is trained on the
graph's own texts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

__all__ = ["ENCODER_PRESETS", "resolve_encoder", "tiny_text_encoder", "tiny_vision_encoder", "tiny_model_kwargs"]


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


def tiny_model_kwargs(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments of a tiny :class:`~pykeen_mkgformer.kgc.MKGformer`: the two towers above, one
    fused layer, one image per known entity, queries of at most 32 tokens; ``overrides`` win.

    The demo, the ShapesKG quality test and ``benchmarks/ablations.py`` all start from it.
    """
    kwargs: dict[str, Any] = dict(
        text_encoder=tiny_text_encoder(),
        vision_encoder=tiny_vision_encoder(),
        fusion_layers=1,
        max_images=1,
        max_seq_length=32,
    )
    kwargs.update(overrides)
    return kwargs


#: encoder presets by name: the text and the vision config of each
ENCODER_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(text=tiny_text_encoder, vision=tiny_vision_encoder),
}


def resolve_encoder(spec: Any, role: Literal["text", "vision"]) -> Any:
    """A preset name (e.g. ``"tiny"``) becomes its config dict; anything else (a Hugging Face name, a
    folder, a config) is returned as is. An existing folder of that name wins over the preset.
    """
    if isinstance(spec, str) and spec in ENCODER_PRESETS and not Path(spec).exists():
        return ENCODER_PRESETS[spec][role]()
    return spec
