"""One backbone module for every task: presets, towers, dropout, image processors, resizing, layouts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from transformers import BertConfig, BertModel

from pykeen_mkgformer.encoder import backbone
from pykeen_mkgformer.kgc import presets
from pykeen_mkgformer.tasks import encoders
from pykeen_mkgformer.tasks.images import OfficialCropImages


def test_presets_are_defined_once():
    assert presets.tiny_text_encoder is backbone.tiny_text_encoder
    assert presets.tiny_vision_encoder is backbone.tiny_vision_encoder
    assert presets.resolve_encoder is backbone.resolve_encoder
    # the RE / NER "tiny" vision tower is the link-prediction one
    tiny = encoders.tiny_vision_config()
    assert {k: getattr(tiny, k) for k in backbone.tiny_vision_encoder() if k != "model_type"} == {
        k: v for k, v in backbone.tiny_vision_encoder().items() if k != "model_type"
    }
    assert encoders.vision_config_from_spec("tiny").to_dict() == tiny.to_dict()
    with pytest.raises(KeyError, match="unknown encoder preset 'huge'"):
        backbone.preset_config("huge", "text")


@pytest.mark.parametrize("family", ["clip_vision_model", "vit"])
def test_processors_resize_to_the_side_asked_for(family):
    config = dict(model_type=family, hidden_size=16, num_hidden_layers=1, num_attention_heads=1, intermediate_size=32,
                  image_size=32, patch_size=8)
    processor = backbone.image_processor_for(config)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8))
    assert processor(images=image, return_tensors="pt")["pixel_values"].shape[-2:] == (32, 32)
    for side in (16, 64):
        resized = backbone.resized_processor(processor, side)
        assert resized(images=image, return_tensors="pt")["pixel_values"].shape[-2:] == (side, side)
    assert processor(images=image, return_tensors="pt")["pixel_values"].shape[-2:] == (32, 32)  # a copy was resized


def test_one_layout_concept_for_slots_and_crops():
    assert backbone.ImageLayout.official().groups == ((1, 224), (3, 128), (3, 64))
    crops = backbone.ImageLayout.official_crops(patch_size=32)
    assert crops.groups == ((3, 128), (3, 64)) and crops.max_images == 6
    assert OfficialCropImages.GROUPS == backbone.OFFICIAL_CROP_GROUPS
    # visual tokens per group: count * (side / patch)^2 = 3 * 16, 3 * 4
    assert OfficialCropImages.group_positions() == tuple(count * (side // 32) ** 2 for count, side in crops.groups)


def test_load_tower_with_dropout(tmp_path):
    BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                         intermediate_size=32)).save_pretrained(tmp_path)
    model, config = backbone.load_tower(tmp_path, role="text", dropout=0.0)
    assert model is not None and config.hidden_dropout_prob == 0.0 == model.config.attention_probs_dropout_prob
    model, config = backbone.load_tower(backbone.resolve_encoder("tiny", "vision"), role="vision", dropout=0.2)
    assert model is None and config.attention_dropout == 0.2 and config.model_type == "clip_vision_model"
    assert backbone.dropout_overrides(0.3, "text") == dict(hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.3)
