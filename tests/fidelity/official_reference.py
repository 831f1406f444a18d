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


# ---------------------------------------------------------------------------------------------------
# The official RE / NER *pipelines*, from the benchmark files to logits / emissions / CRF loss.
#
# Written from the description of ``MRE/processor/dataset.py``, ``MRE/models/unimo_model.py``,
# ``MNER/processor/datasets.py`` and ``MNER/models/unimo_model.py`` (read to learn what they do):
#
# - MRE: every marker is inserted *before* a word (``<s>`` at the head's start, ``</s>`` at its end
#   position, ``<o>`` / ``</o>`` likewise, in that order), the words are joined by spaces and
#   tokenized as one text, cut and padded to ``max_seq``; token types are 0. The large crops are the
#   first 3 files the per-split crop index lists under the instance's data id (its 0-based line), the
#   small ones the first 3 the detector index lists under the image's stem; each is opened as RGB and
#   resized / centre-cropped to its side; missing ones are zero images. The logits are the classifier
#   on the states at ``<s>`` and ``<o>``, with no dropout.
# - MNER: each word is split into pieces on its own; its tag goes on the first piece and ``X`` on the
#   others; 128 - 1 or more pieces are cut to max_seq - 2; ``[CLS]`` / ``[SEP]`` around them, tagged
#   ``[CLS]`` / ``[SEP]``; ids padded to max_seq with 0, tags padded with 0 (PAD). ``OTHER`` reads as
#   ``MISC``. Emissions are the emission layer on every state; the CRF runs over the attention mask.
# ---------------------------------------------------------------------------------------------------

OFFICIAL_NER_TAGS = ["O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "X", "[CLS]", "[SEP]"]


def _official_processor(side):
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side})


def _official_crop_stack(folder, files, side):
    """The first 3 listed crops of ``folder`` as ``(3, 3, side, side)``, zero images for the rest."""
    from PIL import Image

    processor = _official_processor(side)
    crops = []
    for name in files[:3]:
        with Image.open(folder / name) as image:
            crops.append(processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"][0])
    while len(crops) < 3:
        crops.append(torch.zeros(3, side, side))
    return torch.stack(crops)


def official_crops(crops_folder, small_folder, large_key, split, image_name, sides):
    """Both crop groups of one instance, as the official datasets build them."""
    import json as _json

    large_index = _json.loads((crops_folder / "index.json").read_text())
    small_index = _json.loads((small_folder / "index.json").read_text())
    large = large_index.get(split, {}).get(large_key, [])
    small = small_index.get(image_name.split(".")[0], [])
    return _official_crop_stack(crops_folder, large, sides[0]), _official_crop_stack(small_folder, small, sides[1])


def official_re_batch(split_file, tokenizer, max_seq, crops_folder, small_folder, split, sides):
    """``(input_ids, attention_mask, token_type_ids, (large, small))`` of a whole MNRE JSON-lines split."""
    import json as _json

    ids, masks, types, larges, smalls = [], [], [], [], []
    for data_id, line in enumerate(split_file.read_text().splitlines()):
        record = _json.loads(line)
        head, tail = record["h"]["pos"], record["t"]["pos"]
        words = []
        for index, word in enumerate(record["token"]):
            if index == head[0]:
                words.append("<s>")
            if index == head[1]:
                words.append("</s>")
            if index == tail[0]:
                words.append("<o>")
            if index == tail[1]:
                words.append("</o>")
            words.append(word)
        encoded = tokenizer(" ".join(words), max_length=max_seq, truncation=True, padding="max_length")
        ids.append(encoded["input_ids"])
        masks.append(encoded["attention_mask"])
        types.append(encoded["token_type_ids"])
        large, small = official_crops(crops_folder, small_folder, str(data_id), split, record["img_id"], sides)
        larges.append(large)
        smalls.append(small)
    return torch.tensor(ids), torch.tensor(masks), torch.tensor(types), (torch.stack(larges), torch.stack(smalls))


def official_re_logits(encoder, classifier, head_id, tail_id, input_ids, attention_mask, token_type_ids, crops):
    """The official RE head on the official encoder: classifier([h_<s> ; h_<o>]), no dropout."""
    tables = [table.weight for table in encoder.group_position_embeddings]
    vision = official_grouped_vision(encoder, list(crops), tables)
    text, _ = official_encoder(encoder, input_ids, attention_mask, token_type_ids, vision)
    rows = []
    for row in range(text.shape[0]):
        head = (input_ids[row] == head_id).nonzero().item()
        tail = (input_ids[row] == tail_id).nonzero().item()
        rows.append(torch.cat([text[row, head], text[row, tail]]))
    return F.linear(torch.stack(rows), classifier.weight, classifier.bias)


def official_ner_batch(split_file, tokenizer, max_seq, crops_folder, small_folder, split, sides):
    """``(input_ids, attention_mask, token_type_ids, labels, (large, small))`` of a CoNLL split with IMGID lines."""
    mapping = {label: index for index, label in enumerate(OFFICIAL_NER_TAGS, 1)}
    mapping["PAD"] = 0
    sentences, images, words, tags = [], [], [], []
    for line in split_file.read_text().splitlines(keepends=True):
        if line.startswith("IMGID:"):
            images.append(line.strip().split("IMGID:")[1] + ".jpg")
        elif line != "\n":
            word, label = line.split("\t")[0], line.split("\t")[1][:-1]
            words.append(word)
            tags.append(label[:2] + "MISC" if "OTHER" in label else label)
        else:
            sentences.append((words, tags))
            words, tags = [], []
    ids, masks, types, labels, larges, smalls = [], [], [], [], [], []
    for (words, tags), image in zip(sentences, images):
        pieces, piece_labels = [], []
        for word, tag in zip(words, tags):
            word_pieces = tokenizer.tokenize(word)
            pieces.extend(word_pieces)
            piece_labels.extend([mapping[tag]] + [mapping["X"]] * (len(word_pieces) - 1))
        if len(pieces) >= max_seq - 1:
            pieces, piece_labels = pieces[: max_seq - 2], piece_labels[: max_seq - 2]
        real = [tokenizer.cls_token_id, *tokenizer.convert_tokens_to_ids(pieces), tokenizer.sep_token_id]
        ids.append(real + [tokenizer.pad_token_id] * (max_seq - len(real)))
        masks.append([1] * len(real) + [0] * (max_seq - len(real)))
        types.append([0] * max_seq)
        labels.append([mapping["[CLS]"], *piece_labels, mapping["[SEP]"]] + [0] * (max_seq - len(piece_labels) - 2))
        large, small = official_crops(crops_folder, small_folder, image, split, image, sides)
        larges.append(large)
        smalls.append(small)
    return (
        torch.tensor(ids), torch.tensor(masks), torch.tensor(types), torch.tensor(labels),
        (torch.stack(larges), torch.stack(smalls)),
    )


def official_ner_emissions(encoder, emission, input_ids, attention_mask, token_type_ids, crops):
    """The emission layer on every last text state (no dropout)."""
    tables = [table.weight for table in encoder.group_position_embeddings]
    vision = official_grouped_vision(encoder, list(crops), tables)
    text, _ = official_encoder(encoder, input_ids, attention_mask, token_type_ids, vision)
    return F.linear(text, emission.weight, emission.bias)


def crf_nll(emissions, tags, mask, start, end, transitions):
    r"""Mean over the batch of :math:`-\log p(y \mid x)` of a linear-chain CRF, by the forward algorithm.

    ``mask`` is a prefix mask (on at step 0); ``start`` / ``end`` / ``transitions`` the CRF's scores.
    """
    losses = []
    for row in range(emissions.shape[0]):
        length = int(mask[row].sum())
        e, y = emissions[row, :length], tags[row, :length]
        score = start[y[0]] + e[0, y[0]]
        for t in range(1, length):
            score = score + transitions[y[t - 1], y[t]] + e[t, y[t]]
        score = score + end[y[length - 1]]
        alpha = start + e[0]
        for t in range(1, length):
            alpha = torch.logsumexp(alpha[:, None] + transitions + e[t][None, :], dim=0)
        log_partition = torch.logsumexp(alpha + end, dim=0)
        losses.append(log_partition - score)
    return torch.stack(losses).mean()
