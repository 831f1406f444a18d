"""The CAF heatmaps as a static PNG (for papers), drawn with Pillow.

One row per (fused layer, token), one column per real image of the query, each image with the
token's patch weights laid over it in the page's colours (:mod:`.colors`, relative to the row's
largest patch weight); under it the total weight of the image's patches and of its class token.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .colors import color, overlay, weight_text
from .explanation import Explanation

__all__ = ["render_png", "write_png", "default_png_tokens"]

CELL = 160
MIN_CELL = 64
MIN_COLUMN = 110
PAD = 12
LABEL_WIDTH = 210


def default_png_tokens(explanation: Explanation, count: int = 3) -> list[int]:
    """The first ``count`` tokens of the page's selector: ``[MASK]`` and the entity tokens first."""
    return explanation.token_order()[:count]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType support
        return ImageFont.load_default()


def render_png(explanation: Explanation, tokens: Sequence[int] | None = None):
    """The heatmaps as a Pillow image.

    :param explanation: the case analysis
    :param tokens: token indices to draw (default: :func:`default_png_tokens`)
    :raises ValueError: when the query has no images or no layer has CAF weights
    """
    from PIL import Image, ImageDraw

    present = [slot for slot in explanation.images if slot.present and slot.pixels is not None]
    layers = [(k, layer) for k, layer in enumerate(explanation.layers) if layer.caf is not None]
    if not present or not layers:
        raise ValueError(f"No heatmaps to draw for {explanation.query}: " + (
            "the query has no images." if not present else "no fused layer has CAF weights."
        ))
    tokens = list(tokens) if tokens is not None else default_png_tokens(explanation)
    for token in tokens:
        if not 0 <= token < len(explanation.tokens):
            raise ValueError(f"Token index {token} is outside the query's {len(explanation.tokens)} tokens.")
    largest = max(slot.side for slot in present)
    sizes = [max(MIN_CELL, round(CELL * slot.side / largest)) for slot in present]
    columns = [max(size, MIN_COLUMN) for size in sizes]
    title_font, font, small = _font(16), _font(13), _font(11)
    caption = 34
    row_height = CELL + caption + PAD
    title = f"MKGformer CAF weights: {explanation.query}".replace("⁻¹", "^-1")
    width = LABEL_WIDTH + sum(columns) + PAD * (len(columns) + 1)
    width = max(width, LABEL_WIDTH + 200 + 3 * PAD, round(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(title, font=title_font)) + 2 * PAD)
    header = 40
    legend = 40
    height = header + row_height * len(layers) * len(tokens) + legend
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, PAD), title, fill=(20, 20, 20), font=title_font)
    y = header
    for k, layer in layers:
        for token in tokens:
            row = layer.caf[token]
            top = max(float(layer.heatmap(token, slot).max()) for slot in present)
            name = explanation.tokens[token].text.replace("⁻¹", "^-1")  # the default font has no superscripts
            name = name if len(name) <= 26 else name[:25] + "…"
            draw.text((PAD, y + CELL // 2 - 18), f"fused layer {k + 1}, token", fill=(100, 100, 110), font=font)
            draw.text((PAD, y + CELL // 2), name, fill=(20, 20, 20), font=font)
            x = LABEL_WIDTH
            for slot, size, column in zip(present, sizes, columns):
                weights = layer.heatmap(token, slot)
                relative = weights / top if top > 0 else np.zeros_like(weights)
                canvas.paste(Image.fromarray(overlay(slot.pixels, relative, size)), (x, y + CELL - size))
                draw.rectangle([x - 1, y + CELL - size - 1, x + size, y + CELL], outline=(200, 200, 205))
                draw.text((x, y + CELL + 4), f"image {slot.index + 1}: patches {weight_text(weights.sum())}", fill=(80, 80, 90), font=small)
                if slot.has_class_token:
                    draw.text((x, y + CELL + 18), f"class token {weight_text(row[slot.token_start])}", fill=(80, 80, 90), font=small)
                x += column + PAD
            y += row_height
    # colour bar
    bar_x, bar_y = LABEL_WIDTH, y + 8
    for i in range(200):
        draw.line([(bar_x + i, bar_y), (bar_x + i, bar_y + 10)], fill=color(i / 199))
    draw.text((PAD, bar_y - 2), "patch weight / row max", fill=(80, 80, 90), font=small)
    draw.text((bar_x - 10, bar_y + 12), "0", fill=(80, 80, 90), font=small)
    draw.text((bar_x + 196, bar_y + 12), "1", fill=(80, 80, 90), font=small)
    return canvas


def write_png(explanation: Explanation, path: str | Path, tokens: Sequence[int] | None = None) -> Path:
    """Write :func:`render_png` to ``path`` (atomically: a temporary name, then a rename)."""
    from ..data.atomic import atomic_write

    path = Path(path)
    image = render_png(explanation, tokens)
    with atomic_write(path, "wb") as file:
        image.save(file, format="PNG", optimize=True)
    return path
