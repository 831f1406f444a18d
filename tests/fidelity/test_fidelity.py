"""The ``"official"`` fusion variant equals the official MKGformer encoder; every difference is pinned.

The reference (:mod:`official_reference`) is an independent functional reading of the official code,
run in float64 on the same weights, on a 12 + 12-layer tiny configuration fused in its last 4 layers.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from official_reference import official_encoder, official_grouped_vision, official_lp_vision
from transformers import BertConfig, CLIPVisionConfig

from pykeen_mkgformer.encoder import HybridConfig, HybridTransformer
from pykeen_mkgformer.encoder.config import FUSION_VARIANTS

VOCAB = 40
TOLERANCE = 1e-6
#: a reintroduced difference must move the final text states by far more than the tolerance
CHANGED = 1e-3
#: RE / NER: 3 crops at 32 px and 3 at 16 px, 16 px patches: 3 * 4 and 3 * 1 visual tokens
GROUP_POSITIONS = (12, 3)


def _configs(dropout: float = 0.1):
    text = BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=12, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=32, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
    )
    vision = CLIPVisionConfig(
        hidden_size=32, num_hidden_layers=12, num_attention_heads=4, intermediate_size=64,
        image_size=64, patch_size=16, attention_dropout=0.0,
    )
    return text, vision


def _build(config: HybridConfig, state=None) -> HybridTransformer:
    torch.manual_seed(0)
    model = HybridTransformer(config).double().eval()
    if state is None:
        # every weight perturbed: biases and norms are no longer 0 / 1, so each path shows
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.1 * torch.randn_like(parameter))
    else:
        model.load_state_dict(state, strict=False)
    return model


def _official_config(task: str, dropout: float = 0.1, **switches) -> HybridConfig:
    text, vision = _configs(dropout)
    if task != "lp":
        switches = {"vision_embedding": "class_and_groups", "group_positions": GROUP_POSITIONS, **switches}
    return HybridConfig(text=text, vision=vision, fusion_layers=4, fusion_variant="official", **switches)


def _inputs(task: str, padded: bool, seed: int = 3):
    generator = torch.Generator().manual_seed(seed)
    batch, length = 3, 9
    ids = torch.randint(1, VOCAB, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=torch.long)
    if padded:
        mask[1, 6:] = 0
        mask[2, 4:] = 0
    if task == "lp":  # 1 image at 64 px, 3 at 32 px, 3 at 16 px (the official 224 / 128 / 64 px, scaled)
        shapes = [(1, 64), (3, 32), (3, 16)]
    else:  # the official RE / NER: 3 object crops at 128 px and 3 at 64 px, scaled
        shapes = [(3, 32), (3, 16)]
    groups = [torch.randn(batch, n, 3, size, size, generator=generator, dtype=torch.float64) for n, size in shapes]
    masks = [torch.ones(batch, n, dtype=torch.bool) for n, _ in shapes]
    return ids, mask, groups, masks


def _reference(model: HybridTransformer, task: str, ids, mask, groups):
    with torch.no_grad():
        if task == "lp":
            vision = official_lp_vision(model, groups)
        else:
            tables = [embedding.weight for embedding in model.group_position_embeddings]
            vision = official_grouped_vision(model, groups, tables)
        return official_encoder(model, ids, mask, torch.zeros_like(ids), vision)


def _plugin(model: HybridTransformer, ids, mask, groups, masks):
    with torch.no_grad():
        output = model(input_ids=ids, attention_mask=mask, pixel_values=groups, image_mask=masks)
    return output.text_last_hidden_state, output.vision_last_hidden_state


@pytest.fixture(scope="module")
def official_models():
    return {task: _build(_official_config(task)) for task in ("lp", "re")}


@pytest.mark.parametrize("task", ["lp", "re"])
@pytest.mark.parametrize("padded", [False, True])
def test_official_variant_equals_the_official_encoder(official_models, task, padded):
    model = official_models[task]
    ids, mask, groups, masks = _inputs(task, padded)
    text, vision = _plugin(model, ids, mask, groups, masks)
    reference_text, reference_vision = _reference(model, task, ids, mask, groups)
    assert text.dtype == torch.float64
    assert (text - reference_text).abs().max() <= TOLERANCE
    assert (vision - reference_vision).abs().max() <= TOLERANCE
    # the fused layers matter: the states are far from a run without fusion
    unfused = _build(dataclasses.replace(model.config, fusion_layers=0), model.state_dict())
    assert (_plugin(unfused, ids, mask, groups, masks)[0] - reference_text).abs().max() > CHANGED


@pytest.mark.parametrize(
    ("task", "switch", "paper_value", "padded"),
    [
        ("lp", "prefix_source", "same_layer", False),  # item 1
        ("lp", "caf_query", "layer_input", False),  # item 2
        ("lp", "vision_embedding", "tower", False),  # item 3
        ("lp", "caf_bias", False, False),  # official W_f bias
        ("lp", "mask_text_padding", True, True),  # item 5
        ("re", "vision_embedding", "patches", False),  # RE / NER vision input
        ("re", "prefix_source", "same_layer", True),
    ],
)
def test_each_difference_reintroduced_breaks_exactness(official_models, task, switch, paper_value, padded):
    model = official_models[task]
    ids, mask, groups, masks = _inputs(task, padded)
    reference_text, _ = _reference(model, task, ids, mask, groups)
    overrides = {switch: paper_value}
    if switch == "vision_embedding" and task == "re":
        overrides["group_positions"] = None
    changed = _build(dataclasses.replace(model.config, **overrides), model.state_dict())
    assert getattr(changed.config, switch) == paper_value
    text, _ = _plugin(changed, ids, mask, groups, masks)
    assert (text - reference_text).abs().max() > CHANGED


@pytest.mark.parametrize(("fusion_dropout", "exact"), [(0.0, True), (0.1, False)])
def test_caf_dropout_is_the_only_train_mode_difference(fusion_dropout, exact):
    """Item 4: with every other dropout at 0, train mode is exact only without CAF dropout."""
    model = _build(_official_config("lp", dropout=0.0, fusion_dropout=fusion_dropout))
    ids, mask, groups, masks = _inputs("lp", padded=True)
    reference_text, _ = _reference(model, "lp", ids, mask, groups)
    model.train()
    torch.manual_seed(1)
    text, _ = _plugin(model, ids, mask, groups, masks)
    difference = (text - reference_text).abs().max()
    assert difference <= TOLERANCE if exact else difference > CHANGED


def test_variants_set_defaults_and_switches_override_them():
    text, vision = _configs()
    paper = HybridConfig(text=text, vision=vision)
    official = HybridConfig(text=text, vision=vision, fusion_variant="official")
    assert paper.switches() == FUSION_VARIANTS["paper"]
    assert official.switches() == FUSION_VARIANTS["official"]
    assert paper.fusion_dropout == 0.1 and official.fusion_dropout == 0.0
    # M: the paper's 3 fused layers, the official code's 4 (its loop fuses layers 8..11 of 12)
    assert paper.fusion_layers == 3 and official.fusion_layers == 4
    assert HybridTransformer(official).config.fusion_layers == 4
    mixed = HybridConfig(text=text, vision=vision, fusion_variant="official", mask_text_padding=True)
    assert mixed.mask_text_padding is True and mixed.prefix_source == "previous_layer"
    with pytest.raises(ValueError, match="fusion_variant"):
        HybridConfig(text=text, vision=vision, fusion_variant="offical")
    with pytest.raises(ValueError, match="caf_query"):
        HybridConfig(text=text, vision=vision, caf_query="context")
    with pytest.raises(ValueError, match="group_positions"):
        HybridConfig(text=text, vision=vision, vision_embedding="class_and_groups")


def test_official_config_round_trips_through_save_and_load(official_models, tmp_path):
    model = official_models["re"]
    loaded = HybridTransformer.load(model.save_pretrained(tmp_path / "official")).double().eval()
    assert loaded.config.switches() == model.config.switches()
    assert loaded.config.group_positions == GROUP_POSITIONS
    assert loaded.state_dict().keys() == model.state_dict().keys()
    ids, mask, groups, masks = _inputs("re", padded=True)
    # the reload builds float32 weights, so compare at float32 precision
    torch.testing.assert_close(
        _plugin(loaded, ids, mask, groups, masks)[0], _plugin(model, ids, mask, groups, masks)[0], atol=1e-4, rtol=1e-4
    )


def test_group_sizes_must_match_the_configuration(official_models):
    model = official_models["re"]
    ids, mask, groups, masks = _inputs("re", padded=False)
    with pytest.raises(ValueError, match="group_positions\\[0\\] = 12"):
        model(input_ids=ids, attention_mask=mask, pixel_values=[groups[0][:, :2], groups[1]],
              image_mask=[masks[0][:, :2], masks[1]])


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_items_without_images_stay_finite_in_every_dtype(variant, dtype):
    """Item 6: an item with no image gets no CAF term and finite states, in float64 and bf16 too."""
    text, vision = _configs()
    text.num_hidden_layers = vision.num_hidden_layers = 3
    config = HybridConfig(text=text, vision=vision, fusion_layers=2, fusion_variant=variant)
    torch.manual_seed(0)
    model = HybridTransformer(config).to(dtype).eval()
    ids, mask, groups, masks = _inputs("lp", padded=True)
    groups = [g.to(dtype) for g in groups]
    masks = [m.clone() for m in masks]
    for m in masks:
        m[0] = False  # item 0 has no image at all
    with torch.no_grad():
        output = model(input_ids=ids, attention_mask=mask, pixel_values=groups, image_mask=masks)
        text_only = model(input_ids=ids[:1], attention_mask=mask[:1])
    assert torch.isfinite(output.text_last_hidden_state).all()
    # without images, the item is exactly what it is text-only
    torch.testing.assert_close(output.text_last_hidden_state[:1], text_only.text_last_hidden_state)


def test_official_variant_with_gradient_checkpointing_gives_the_same_gradients():
    """The previous layer's keys / values travel through the checkpointed fused steps unchanged."""
    text, vision = _configs(dropout=0.0)
    text.num_hidden_layers = vision.num_hidden_layers = 4
    config = HybridConfig(text=text, vision=vision, fusion_layers=3, fusion_variant="official")
    ids, mask, groups, masks = _inputs("lp", padded=True)
    gradients = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = HybridTransformer(config).double().train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        output = model(input_ids=ids, attention_mask=mask, pixel_values=groups, image_mask=masks)
        output.text_last_hidden_state.square().sum().backward()
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    assert gradients[0].keys() == gradients[1].keys()
    # the last unfused text layer's key projection feeds the first fused vision layer
    assert any(name.startswith("text_model.encoder.layer.0.attention.self.key") for name in gradients[0])
    for name, gradient in gradients[0].items():
        torch.testing.assert_close(gradients[1][name], gradient, rtol=1e-10, atol=1e-12, msg=name)
