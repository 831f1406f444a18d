"""What RE and NER share: images per instance (missing ones counted), low-resource sampling, encoders."""

from __future__ import annotations

import json

import pytest
import torch

from pykeen_mkgformer.tasks.encoders import load_encoder, tiny_vision_config, vision_config_from_spec
from pykeen_mkgformer.tasks.images import InstanceImages
from pykeen_mkgformer.tasks.sampling import sample_fraction, sample_shots


def test_images_missing_and_unreadable_run_text_only(shared_data, tmp_path, tiny_text):
    bundle = load_encoder(tiny_text, "tiny")
    real = sorted((shared_data / "mnre" / "images").glob("*.jpg"))[0]
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "real.jpg").write_bytes(real.read_bytes())
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "real_0.jpg").write_bytes(real.read_bytes())  # an object crop of real.jpg
    images = InstanceImages(folder, bundle.image_processor, crops_folder=folder, max_crops=2)
    with pytest.warns(UserWarning, match="broken.jpg"):
        items = images.prepare(["real.jpg", "gone.jpg", "broken.jpg", None], progress=False)
    assert items[0][0].shape == (3, 32, 32) and len(items[0][1]) == 1
    assert [main is None for main, _ in items] == [False, True, True, True]
    summary = images.summary(items)
    assert summary["with_image"] == 1 and summary["text_only"] == 3 and summary["crops"] == 1
    summary = images.file_summary()
    assert summary["missing"] == 1 and summary["unreadable"] == [str(folder / "broken.jpg")]
    assert [entry["path"] for entry in summary["skipped"]] == [str(folder / "broken.jpg")]
    assert "not a readable image" in summary["skipped"][0]["reason"]
    (pixels, crops), (mask, crop_mask) = images.batch(items)
    assert pixels.shape == (4, 1, 3, 32, 32) and crops.shape == (4, 2, 3, 32, 32)
    assert mask[:, 0].tolist() == [True, False, False, False]
    assert crop_mask.tolist() == [[True, False], [False, False], [False, False], [False, False]]
    assert images.batch(items[1:]) is None  # no image at all: the encoder runs text-only
    # the encoder takes the batch as it is
    output = bundle.encoder(
        input_ids=torch.ones(4, 5, dtype=torch.long), attention_mask=torch.ones(4, 5), pixel_values=[pixels, crops], image_mask=[mask, crop_mask]
    )
    assert output.text_last_hidden_state.shape == (4, 5, 32)


def test_vision_specs(tmp_path):
    assert vision_config_from_spec("tiny").to_dict() == tiny_vision_config().to_dict()
    path = tmp_path / "vit.json"
    path.write_text(json.dumps({"model_type": "vit", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                                "intermediate_size": 32, "image_size": 32, "patch_size": 16}))
    assert vision_config_from_spec(str(path)).model_type == "vit"
    assert vision_config_from_spec("google/vit-base-patch16-224") is None  # a checkpoint, loaded as such


def test_fraction_is_seeded_and_ordered():
    items = list(range(100))
    first = sample_fraction(items, 0.1, seed=3)
    assert len(first) == 10 and first == sorted(first) and first == sample_fraction(items, 0.1, seed=3)
    assert first != sample_fraction(items, 0.1, seed=4)
    with pytest.raises(ValueError):
        sample_fraction(items, 0.0, seed=0)


def test_shots_give_k_per_class():
    items = [("a", i) for i in range(30)] + [("b", i) for i in range(5)] + [("c", 0)]
    chosen = sample_shots(items, 4, lambda item: {item[0]}, seed=0)
    counts = {label: sum(item[0] == label for item in chosen) for label in "abc"}
    assert counts == {"a": 4, "b": 4, "c": 1}
    assert chosen == sample_shots(items, 4, lambda item: {item[0]}, seed=0)
    with pytest.raises(ValueError):
        sample_shots(items, 0, lambda item: {item[0]}, seed=0)


def test_vision_checkpoint_folder_loads_weights_and_processor(tmp_path, tiny_text):
    """A ViT/CLIP folder (weights + image processor) is loaded as is, not re-initialised."""
    from transformers import CLIPImageProcessorPil, CLIPVisionModel

    torch.manual_seed(1)
    vision = CLIPVisionModel(tiny_vision_config())
    vision.save_pretrained(tmp_path / "vision")
    CLIPImageProcessorPil(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48}).save_pretrained(tmp_path / "vision")
    bundle = load_encoder(tiny_text, tmp_path / "vision", fusion_layers=1)
    assert bundle.description["vision_weights"] == "pretrained"
    assert bundle.image_processor.crop_size["height"] == 48
    loaded = bundle.encoder.vision_model.embeddings.patch_embedding.weight
    assert torch.equal(loaded, vision.embeddings.patch_embedding.weight)


def test_length_buckets_cover_every_instance_once():
    from pykeen_mkgformer.tasks.training import length_bucketed_batches

    lengths = [(7 * index) % 23 + 1 for index in range(103)]
    shuffled = length_bucketed_batches(lengths, 8, torch.Generator().manual_seed(0), bucket_batches=4)
    assert sorted(index for batch in shuffled for index in batch) == list(range(103))
    assert all(len(batch) <= 8 for batch in shuffled)
    assert shuffled == length_bucketed_batches(lengths, 8, torch.Generator().manual_seed(0), bucket_batches=4)
    assert shuffled != length_bucketed_batches(lengths, 8, torch.Generator().manual_seed(1), bucket_batches=4)
    # within a window the batches are sorted by length, so a batch spans few lengths
    spread = sum(max(lengths[i] for i in batch) - min(lengths[i] for i in batch) for batch in shuffled) / len(shuffled)
    assert spread < 8
    ordered = length_bucketed_batches(lengths, 8)
    flat = [index for batch in ordered for index in batch]
    assert [lengths[index] for index in flat] == sorted(lengths)


def test_training_settings_are_the_recipes_numbers():
    """Every field of TrainingSettings but the seed is a TaskRecipe field of the same name and default."""
    import dataclasses

    from pykeen_mkgformer.tasks.recipe import TaskRecipe
    from pykeen_mkgformer.tasks.runner import training_settings
    from pykeen_mkgformer.tasks.training import TrainingSettings

    recipe_fields = {item.name: item for item in dataclasses.fields(TaskRecipe)}
    numbers = [item for item in dataclasses.fields(TrainingSettings) if item.name != "seed"]
    for item in numbers:
        assert item.name in recipe_fields and recipe_fields[item.name].default == item.default, item.name
    # values that differ from every default arrive unchanged
    changed = dict(epochs=7, batch_size=3, lr=1e-3, head_lr=2e-3, vision_lr=3e-3, weight_decay=0.5, decay_all=True,
                   warmup_ratio=0.25, max_grad_norm=None)
    assert set(changed) == {item.name for item in numbers}
    assert training_settings(TaskRecipe(**changed), seed=5) == TrainingSettings(**changed, seed=5)
