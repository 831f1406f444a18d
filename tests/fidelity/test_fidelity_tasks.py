"""``--fusion-variant official`` on the ``re`` / ``ner`` commands: the official encoder and its crop input."""

from __future__ import annotations

import json
import shutil

import torch
from click.testing import CliRunner

from pykeen_mkgformer.cli import main
from pykeen_mkgformer.encoder import HybridTransformer
from pykeen_mkgformer.re import read_mnre_folder
from pykeen_mkgformer.tasks.encoders import load_encoder
from pykeen_mkgformer.tasks.images import OfficialCropImages


def _crops(folder, tmp_path, per_image: int = 2):
    """Object crops ``<stem>_<n>.jpg``: copies of the MNRE images (a stand-in for detector crops)."""
    crops = tmp_path / "crops"
    crops.mkdir()
    for image in sorted((folder / "images").glob("*.jpg")):
        for index in range(per_image):
            shutil.copy(image, crops / f"{image.stem}_{index}.jpg")
    return crops


def test_official_crop_batches_have_the_official_shape(shared_data, tmp_path, tiny_text):
    folder = shared_data / "mnre"
    bundle = load_encoder(tiny_text, "tiny", fusion_variant="official")
    config = bundle.encoder.config
    assert config.fusion_variant == "official" and config.vision_embedding == "class_and_groups"
    assert config.group_positions == (48, 12) == OfficialCropImages.group_positions()
    crops = _crops(folder, tmp_path)
    images = OfficialCropImages(
        folder / "images", bundle.crop_processors, patch_size=8, crops_folder=crops, small_crops_folder=crops
    )
    names = [instance.image for instance in read_mnre_folder(folder, "train")[:6]]
    items = images.prepare([*names, "no_such_image.jpg"], progress=False)
    (large, small), (large_mask, small_mask) = images.batch(items)
    # 3 crops at 4 x 8 px and 3 at 2 x 8 px; two real crops per existing image, none for the missing one
    assert large.shape == (7, 3, 3, 32, 32) and small.shape == (7, 3, 3, 16, 16)
    available = {path.name for path in (folder / "images").iterdir()}
    expected = torch.tensor([[name in available] * 2 + [False] for name in [*names, "no_such_image.jpg"]])
    assert torch.equal(large_mask, expected) and torch.equal(small_mask, expected)
    ids = torch.ones(7, 5, dtype=torch.long)
    with torch.no_grad():
        output = bundle.encoder(input_ids=ids, pixel_values=[large, small], image_mask=[large_mask, small_mask])
    # the bare class token, then 48 + 12 visual tokens
    assert output.vision_last_hidden_state.shape[1] == 1 + 48 + 12
    assert output.vision_mask[:, 0].all()


def test_re_command_with_the_official_variant(shared_data, tmp_path, tiny_text):
    folder = shared_data / "mnre"
    output = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["re", "--data", str(folder), "--output", str(output), "--text-encoder", str(tiny_text),
         "--vision-encoder", "tiny", "--epochs", "1", "--batch-size", "16", "--limit", "24", "--seed", "1",
         "--fusion-variant", "official", "--crops", str(_crops(folder, tmp_path))],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["encoder"]["fusion_variant"] == "official" and metrics["encoder"]["fusion_layers"] == 2
    assert metrics["images"]["train"]["crops"][0] == 2 * metrics["images"]["train"]["with_image"] > 0
    encoder = HybridTransformer.load(output / "model" / "encoder")
    assert encoder.config.switches()["prefix_source"] == "previous_layer"
    assert encoder.config.group_positions == (48, 12)


def test_ner_command_accepts_the_official_variant(shared_data, tmp_path, tiny_text):
    output = tmp_path / "ner"
    result = CliRunner().invoke(
        main,
        ["ner", "--data", str(shared_data / "twitter2017"), "--output", str(output), "--text-encoder", str(tiny_text),
         "--epochs", "1", "--limit", "16", "--fusion-variant", "official"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((output / "metrics.json").read_text())["encoder"]["fusion_variant"] == "official"
