r"""The fused layers' attention of one encoded item, from the hybrid encoder's public outputs.

With ``output_attentions=True`` the :class:`~pykeen_mkgformer.encoder.HybridTransformer` returns

- ``caf_attentions``: per fused layer (with CAF and images) the token-to-patch weights
  :math:`S = \mathrm{softmax}(H_t H_v^\top)`, ``(batch, n_tokens, n_visual)``;
- ``vision_attentions``: per vision layer ``(batch, heads, n_visual, n_keys)``; in a fused layer with
  PGI the keys are ``[text prefix ; visual]``, so the first ``n_tokens`` columns are the attention of
  each visual token over the text prefix;
- ``vision_mask``: which visual tokens belong to a real image.

For the PGI bars this module reduces the prefix attention of the item's real visual tokens to one
number per text token,

.. math::

    g_j = \frac{1}{H\,|V|} \sum_{h=1}^{H} \sum_{v \in V} A^{(h)}_{v, j}

(:math:`V` the real visual tokens, :math:`H` the heads): the share of the vision side's attention
that text token :math:`j` receives. :math:`\sum_j g_j` is the share that goes to the text prefix
at all (the rest stays among the patches).
"""

from __future__ import annotations

import numpy as np
import torch

from ..encoder import HybridOutput, HybridTransformer
from .explanation import FusedLayer, ImageSlot, image_slots

__all__ = ["fused_layers", "query_images", "to_uint8_pixels"]


def fused_layers(output: HybridOutput, encoder: HybridTransformer, *, item: int = 0) -> list[FusedLayer]:
    """CAF weights and PGI bars of every fused layer for one item of an encoded batch.

    :param output: the encoder's output, computed with ``output_attentions=True``
    :param encoder: the encoder that produced it (for the layer counts)
    :param item: the item of the batch
    :raises ValueError: if the output holds no attentions, or their number does not match the fused layers
    """
    if output.text_attentions is None:
        raise ValueError("The encoder output holds no attentions; run it with output_attentions=True.")
    m = encoder.config.fusion_layers
    n_text_layers, n_vision_layers = len(encoder.text_layers), len(encoder.vision_layers)
    n_tokens = output.text_last_hidden_state.shape[1]
    vision_mask = output.vision_mask[item] if output.vision_mask is not None else None
    has_images = vision_mask is not None and bool(vision_mask.any())

    caf = output.caf_attentions or ()
    if caf and len(caf) != m:
        raise ValueError(f"Got CAF weights for {len(caf)} layers, but the encoder fuses {m}.")
    vision = output.vision_attentions or ()
    if vision and len(vision) != n_vision_layers:
        raise ValueError(f"Got attentions for {len(vision)} vision layers, but the vision tower has {n_vision_layers}.")

    layers = []
    for k in range(m):
        vision_layer = n_vision_layers - m + k
        caf_weights = pgi = None
        if caf and has_images:
            caf_weights = caf[k][item].detach().float().cpu().numpy()
        if vision and has_images:
            weights = vision[vision_layer][item].detach().float()  # (heads, n_visual, n_keys)
            n_visual = weights.shape[1]
            if weights.shape[-1] == n_tokens + n_visual:  # PGI: the text prefix comes first
                prefix = weights[:, vision_mask, :n_tokens]  # real visual queries only
                pgi = prefix.mean(dim=(0, 1)).cpu().numpy()
        layers.append(
            FusedLayer(text_layer=n_text_layers - m + k, vision_layer=vision_layer, caf=caf_weights, pgi=pgi)
        )
    return layers


def to_uint8_pixels(pixel_values: torch.Tensor, processor) -> np.ndarray:
    r"""Undo an image processor's normalisation: ``(3, H, W)`` floats -> ``(H, W, 3)`` ``uint8``.

    Inverts :math:`x = (u \cdot \text{rescale\_factor} - \mu) / \sigma`, i.e.
    :math:`u = (x \sigma + \mu) / \text{rescale\_factor}`, rounded.
    """
    x = pixel_values.detach().float().cpu()
    if getattr(processor, "do_normalize", True):
        mean = torch.as_tensor(processor.image_mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.as_tensor(processor.image_std, dtype=torch.float32).view(3, 1, 1)
        x = x * std + mean
    if getattr(processor, "do_rescale", True):
        x = x / float(processor.rescale_factor)
    return x.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def query_images(
    groups, patch_size: int, output: HybridOutput, pixel_values, image_mask, processor, *, item: int = 0
) -> list[ImageSlot]:
    """Every image slot of one item of a batch, with the pixels the model read (see :func:`image_slots`).

    :param groups: the ``(count, side)`` groups the pixel tensors follow
    :param patch_size: the vision tower's patch size
    :param output: the encoder's output (its ``vision_mask`` gives the number of visual tokens)
    :param pixel_values: one ``(batch, count, 3, side, side)`` tensor per group, normalised
    :param image_mask: one boolean ``(batch, count)`` tensor per group
    :param processor: the image processor that normalised the pixels
    """
    present = torch.cat([mask[item] for mask in image_mask]).tolist()
    slots = image_slots(groups, patch_size, output.vision_mask.shape[1], present)
    flat = [pixels[item, j] for pixels in pixel_values for j in range(pixels.shape[1])]
    for slot, pixels in zip(slots, flat):
        if slot.present:
            slot.pixels = to_uint8_pixels(pixels, processor)
    return slots
