r"""A functional reading of the official MKGformer encoder, for the exactness tests.

What the official code (``zjunlp/MKGformer``; ``MKG``, ``MRE`` and ``MNER``, each in
``models/modeling_unimo.py``) computes, written here from its description as plain tensor functions
over the weights of an already built model (Hugging Face ``BertLayer`` / ``CLIPEncoderLayer``
parameters, read by name; no module's ``forward`` is called):

- text: BERT embeddings; padding masked in text self-attention by adding :math:`-10000`;
- vision, link prediction (``MKG``): the patch embeddings of every image (no class token, no
  position embeddings), images of an item one after another, then CLIP's pre-LayerNorm;
- vision, RE / NER (``MRE``, ``MNER``): the bare class embedding, then each pixel group's patch
  embeddings plus a learned position per token (object crops at 128 px and 64 px there), then the
  pre-LayerNorm; the main image is not used;
- the loop: for each depth :math:`l`, vision layer :math:`l` first, then text layer :math:`l`; in the
  last M layers the vision self-attention gets as prefix the keys and values (split into heads)
  that text layer :math:`l-1` computed on its own input, unmasked; the text layer then compares its
  self-attention context :math:`C` with the new visual states :math:`V`,
  :math:`A = \mathrm{softmax}(C V^\top) V`, and adds :math:`W_f A + b_f` to its intermediate
  pre-activation; no mask on the visual side anywhere, no dropout (eval).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = ["official_encoder", "official_lp_vision", "official_grouped_vision"]


def _linear(x, module):
    return F.linear(x, module.weight, module.bias)


def _norm(x, module):
    return F.layer_norm(x, (x.shape[-1],), module.weight, module.bias, module.eps)


def _split(x, heads):
    batch, length, width = x.shape
    return x.reshape(batch, length, heads, width // heads).permute(0, 2, 1, 3)


def _merge(x):
    batch, heads, length, size = x.shape
    return x.permute(0, 2, 1, 3).reshape(batch, length, heads * size)


def _gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def _bert_embeddings(embeddings, input_ids, token_type_ids):
    length = input_ids.shape[1]
    summed = (
        embeddings.word_embeddings.weight[input_ids]
        + embeddings.token_type_embeddings.weight[token_type_ids]
        + embeddings.position_embeddings.weight[:length]
    )
    return _norm(summed, embeddings.LayerNorm)


def _text_layer(layer, x, additive_mask, heads, visual=None, fusion_dense=None):
    """One BERT layer of the official code; returns its output and its (key, value) split into heads."""
    attention = layer.attention.self
    query = _split(_linear(x, attention.query), heads)
    key = _split(_linear(x, attention.key), heads)
    value = _split(_linear(x, attention.value), heads)
    scores = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1]) + additive_mask
    context = _merge(torch.softmax(scores, dim=-1) @ value)
    hidden = _norm(_linear(context, layer.attention.output.dense) + x, layer.attention.output.LayerNorm)
    intermediate = _linear(hidden, layer.intermediate.dense)
    if visual is not None:
        weights = torch.softmax(context @ visual.transpose(-1, -2), dim=-1)
        intermediate = intermediate + _linear(weights @ visual, fusion_dense)
    output = _norm(_linear(_gelu(intermediate), layer.output.dense) + hidden, layer.output.LayerNorm)
    return output, (key, value)


def _vision_layer(layer, x, heads, past=None):
    """One pre-norm CLIP layer of the official code, with the text (key, value) prepended when given."""
    attention = layer.self_attn
    normed = _norm(x, layer.layer_norm1)
    head_size = x.shape[-1] // heads
    query = _split(_linear(normed, attention.q_proj) * head_size**-0.5, heads)
    key = _split(_linear(normed, attention.k_proj), heads)
    value = _split(_linear(normed, attention.v_proj), heads)
    if past is not None:
        key = torch.cat([past[0], key], dim=2)
        value = torch.cat([past[1], value], dim=2)
    context = _merge(torch.softmax(query @ key.transpose(-1, -2), dim=-1) @ value)
    x = x + _linear(context, attention.out_proj)
    mlp = layer.mlp
    return x + _linear(_quick_gelu(_linear(_norm(x, layer.layer_norm2), mlp.fc1)), mlp.fc2)


def _patches(vision_model, pixels):
    """``(batch, n_images, 3, H, W)`` -> ``(batch, n_images * n_patches, width)``, images one after another."""
    batch, n_images = pixels.shape[:2]
    conv = vision_model.embeddings.patch_embedding
    embedded = F.conv2d(pixels.flatten(0, 1), conv.weight, stride=conv.stride)
    embedded = embedded.flatten(2).transpose(1, 2)
    return embedded.reshape(batch, n_images * embedded.shape[1], -1)


def official_lp_vision(model, groups):
    """Link prediction: the patches of every group's images, then the pre-LayerNorm."""
    vision_model = model.vision_model
    return _norm(torch.cat([_patches(vision_model, pixels) for pixels in groups], dim=1), vision_model.pre_layrnorm)


def official_grouped_vision(model, groups, position_tables):
    """RE / NER: the class embedding, then each group's patches plus its learned positions; pre-LayerNorm."""
    vision_model = model.vision_model
    batch = groups[0].shape[0]
    parts = [vision_model.embeddings.class_embedding.expand(batch, 1, -1)]
    for pixels, table in zip(groups, position_tables):
        parts.append(_patches(vision_model, pixels) + table)
    return _norm(torch.cat(parts, dim=1), vision_model.pre_layrnorm)


def official_encoder(model, input_ids, attention_mask, token_type_ids, vision_embeds):
    """Final (text, vision) states of the official encoder loop, fused in the last ``fusion_layers``."""
    text_config, vision_config = model.text_model.config, model.vision_model.config
    assert text_config.hidden_act == "gelu" and vision_config.hidden_act == "quick_gelu"
    text_layers, vision_layers = model.text_model.encoder.layer, model.vision_model.encoder.layers
    depth = len(text_layers)
    assert depth == len(vision_layers), "the official loop pairs layers one to one"
    first_fused = depth - model.config.fusion_layers
    text = _bert_embeddings(model.text_model.embeddings, input_ids, token_type_ids)
    additive = (1.0 - attention_mask[:, None, None, :].to(text.dtype)) * -10000.0
    vision = vision_embeds
    text_heads, vision_heads = text_config.num_attention_heads, vision_config.num_attention_heads
    previous = None
    for index in range(depth):
        fused = index >= first_fused
        vision = _vision_layer(vision_layers[index], vision, vision_heads, past=previous if fused else None)
        text, previous = _text_layer(
            text_layers[index],
            text,
            additive,
            text_heads,
            visual=vision if fused else None,
            fusion_dense=text_layers[index].fusion.dense if fused else None,
        )
    return text, vision
