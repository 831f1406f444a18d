"""The heatmap colours, shared by the page (:mod:`.html`, also in its script) and the PNG (:mod:`.figure`).

A weight :math:`w` of a token over a patch is shown relative to the largest patch weight of that
token and layer over all images, :math:`v = w / \\max w \\in [0, 1]`: the colour is an inferno-like
map of :math:`v` laid over the image with opacity :math:`0.75\\,v`, so patches the token ignores
leave the image visible.
"""

from __future__ import annotations

import base64
import io

import numpy as np

__all__ = ["COLORMAP", "MAX_OPACITY", "color", "overlay", "png_data_uri", "weight_text"]

#: anchors of the colour map, evenly spaced over [0, 1] (after matplotlib's "inferno")
COLORMAP: tuple[tuple[int, int, int], ...] = (
    (0, 0, 4),
    (40, 11, 84),
    (101, 21, 110),
    (159, 42, 99),
    (212, 72, 66),
    (245, 125, 21),
    (250, 193, 39),
    (252, 255, 164),
)
#: opacity of a patch with the largest weight
MAX_OPACITY = 0.75


def color(value: float) -> tuple[int, int, int]:
    """The colour of a relative weight ``value`` in [0, 1] (linear between the anchors)."""
    value = min(max(float(value), 0.0), 1.0) * (len(COLORMAP) - 1)
    low = min(int(value), len(COLORMAP) - 2)
    frac = value - low
    return tuple(round(a + (b - a) * frac) for a, b in zip(COLORMAP[low], COLORMAP[low + 1]))  # type: ignore[return-value]


def overlay(pixels: np.ndarray, relative: np.ndarray, size: int) -> np.ndarray:
    """An image ``(h, w, 3)`` with a patch grid of relative weights ``(g, g)`` laid over it, at ``size`` px.

    :return: ``(size, size, 3)`` ``uint8``
    """
    from PIL import Image

    base = np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.NEAREST), dtype=np.float32)
    grid = relative.shape[0]
    cells = np.clip(relative, 0.0, 1.0)
    rgb = np.asarray([[color(v) for v in row] for row in cells], dtype=np.float32)  # (g, g, 3)
    alpha = (MAX_OPACITY * cells)[..., None]
    # cell index of every output pixel
    index = np.minimum(np.arange(size) * grid // size, grid - 1)
    rgb, alpha = rgb[index][:, index], alpha[index][:, index]
    return np.clip(base * (1 - alpha) + rgb * alpha + 0.5, 0, 255).astype(np.uint8)


def png_data_uri(pixels: np.ndarray) -> str:
    """``data:image/png;base64,...`` of a ``uint8`` ``(h, w, 3)`` image."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def weight_text(weight: float) -> str:
    """An attention weight as the page and the PNG print it: 4 decimals from 0.001 up, below that two
    significant digits (``1.2e-4``, never ``0.0000`` for a weight that is not 0), ``0`` for exactly 0.

    The page's script has the same function, ``fmt`` (:data:`pykeen_mkgformer.explain.html.SCRIPT`).
    """
    weight = float(weight)
    if weight == 0:
        return "0"
    if not abs(weight) < 1e-3:  # also inf / nan
        return f"{weight:.4f}"
    mantissa, exponent = f"{weight:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"

