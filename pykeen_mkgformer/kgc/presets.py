"""Tiny random encoder configs, for tests, CPU demos and smoke runs (no download, seconds per epoch).

Pass them as ``text_encoder`` / ``vision_encoder`` of :class:`~pykeen_mkgformer.kgc.MKGformer`,
as dicts or by name (``text_encoder="tiny"``, also ``pykeen train mkgformer --text-encoder tiny``);
with a config-dict text encoder and no ``tokenizer``, a WordPiece tokenizer is trained on the
graph's own texts.
"""

from __future__ import annotations

from typing import Any

# the presets are defined once, with the towers (old names kept here)
from ..encoder.backbone import ENCODER_PRESETS, resolve_encoder, tiny_text_encoder, tiny_vision_encoder

__all__ = ["ENCODER_PRESETS", "resolve_encoder", "tiny_text_encoder", "tiny_vision_encoder", "tiny_model_kwargs"]


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
