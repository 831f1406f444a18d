"""``pykeen-mkgformer explain`` on a relation extraction run: tokens with markers, image, heatmaps, distribution."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from kgc_support import single_thread
from PIL import Image

from pykeen_mkgformer.cli import main
from pykeen_mkgformer.explain import explain_relation_extraction, render_html
from pykeen_mkgformer.re.train import RelationExtraction
from pykeen_mkgformer.tasks.runner import RunOptions, run_task
from task_fixtures import write_mnre_folder

RELATIONS = ["None", "/per/loc/place_of_residence", "/org/org/subsidiary"]
WORDS = ["Alice", "lives", "in", "Paris", "and", "Acme", "owns", "Beta", "today"]


def _record(index: int, relation: str, image: str | None) -> dict:
    head, tail = ((0, 1), (3, 4)) if index % 2 else ((5, 6), (7, 8))
    record = {"token": WORDS, "h": {"name": WORDS[head[0]], "pos": list(head)},
              "t": {"name": WORDS[tail[0]], "pos": list(tail)}, "relation": relation}
    if image:
        record["img_id"] = image
    return record


@pytest.fixture(scope="module")
def re_run(tmp_path_factory, tiny_text):
    root = tmp_path_factory.mktemp("re")
    (root / "data" / "images").mkdir(parents=True)
    for index, colour in enumerate([(220, 30, 30), (30, 60, 220), (30, 170, 40)]):
        image = Image.new("RGB", (48, 40), (255, 255, 255))
        image.paste(colour, (8, 8, 30, 30))
        image.save(root / "data" / "images" / f"img{index}.png")
    splits = {
        split: [_record(i, RELATIONS[i % 3], f"img{i % 3}.png") for i in range(count)]
        for split, count in (("train", 12), ("dev", 3), ("test", 3))
    }
    splits["test"][1]["img_id"] = "missing.png"  # runs text-only
    write_mnre_folder(root / "data", splits, RELATIONS)
    with single_thread():
        torch.manual_seed(0)
        run_task(
            RelationExtraction,
            RunOptions(data=root / "data", output=root / "out", text_encoder=str(tiny_text), epochs=1, batch_size=4,
                       max_length=32, progress=False, seed=1),
        )
    return root


def test_instance_with_image(re_run):
    with single_thread():
        result = explain_relation_extraction(re_run / "out", 0)
    texts = [tok.text for tok in result.tokens]
    assert texts[0] == "[CLS]" and {"<s>", "</s>", "<o>", "</o>"} <= set(texts)
    entity = [tok.text for tok in result.tokens if tok.kind == "entity"]
    # the markers and the (lower-cased, word-piece) mentions: <s> acme </s> ... <o> beta </o>
    head = entity[: entity.index("</s>") + 1]
    assert head[0] == "<s>" and "".join(piece.removeprefix("##") for piece in head[1:-1]) == "acme"
    assert entity[len(head)] == "<o>" and entity[-1] == "</o>"
    assert result.token_order()[: len(entity)] == [tok.index for tok in result.tokens if tok.kind == "entity"]
    assert [a.label for a in result.answers] != [] and sorted(a.label for a in result.answers) == sorted(RELATIONS)
    assert sum(a.probability for a in result.answers) == pytest.approx(1.0, abs=1e-5)
    probabilities = [a.probability for a in result.answers]
    assert probabilities == sorted(probabilities, reverse=True)
    assert result.target == RELATIONS[0] and sum(a.is_target for a in result.answers) == 1
    (slot,) = result.images
    assert slot.present and slot.pixels.shape == (32, 32, 3) and slot.has_class_token and slot.grid == 4
    # the red square is what the model saw (resized, centre-cropped): mostly red in the middle
    assert tuple(slot.pixels[16, 12]) == pytest.approx((220, 30, 30), abs=40)
    for layer in result.layers:
        rows = np.stack([layer.heatmap(t, slot).sum() + layer.class_weight(t, slot) for t in range(len(result.tokens))])
        np.testing.assert_allclose(rows, 1.0, atol=1e-5)
        assert layer.pgi is not None and layer.pgi.shape == (len(result.tokens),)
    page = render_html(result)
    assert "Predicted relation distribution" in page and "Gold label" in page


def test_instance_without_image_and_errors(re_run, tmp_path):
    with single_thread():
        result = explain_relation_extraction(re_run / "out", 1)
    assert result.images == [] and any("no image" in note for note in result.notes)
    assert all(layer.caf is None for layer in result.layers)
    with pytest.raises(ValueError, match=r"Instance 7 is outside the test split .*\(3 instances"):
        explain_relation_extraction(re_run / "out", 7)


def test_command(re_run, tmp_path):
    page = tmp_path / "re.html"
    with single_thread():
        result = CliRunner().invoke(main, ["explain", "--model", str(re_run / "out"), "--instance", "2", "--output", str(page),
                                           "--png", str(tmp_path / "re.png")])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    data = json.loads(text.split('id="explanation-data">', 1)[1].split("</script>", 1)[0])
    assert data["tokens"][0] == "[CLS]" and len(data["layers"]) >= 1 and data["layers"][0]["caf"] is not None
    assert (tmp_path / "re.png").stat().st_size > 0
    wrong = CliRunner().invoke(main, ["explain", "--model", str(re_run / "out"), "--head", "x", "--relation", "y",
                                      "--output", str(page), "--overwrite"])
    assert wrong.exit_code != 0 and "relation extraction model takes --instance" in wrong.output
    # an existing page is replaced only with --overwrite; the run's own files never
    again = CliRunner().invoke(main, ["explain", "--model", str(re_run / "out"), "--instance", "2", "--output", str(page)])
    assert again.exit_code != 0 and "exists already; give --overwrite" in again.output
    over = CliRunner().invoke(main, ["explain", "--model", str(re_run / "out"), "--instance", "2",
                                     "--output", str(re_run / "out" / "metrics.json"), "--overwrite"])
    assert over.exit_code != 0 and "would write over the input --model" in over.output


def test_official_variant_run_is_explained_on_its_crop_input(re_run, tmp_path, tiny_text):
    """A run trained with ``--fusion-variant official`` read object crops at two sizes behind one bare
    class token; the page shows those crops and the CAF weights over them (not the main image)."""
    crops = tmp_path / "crops"
    crops.mkdir()
    for index in range(3):
        for k in range(2):  # two crops per image: the image itself stands in for a detector crop
            (crops / f"img{index}_{k}.png").write_bytes((re_run / "data" / "images" / f"img{index}.png").read_bytes())
    with single_thread():
        torch.manual_seed(0)
        run_task(
            RelationExtraction,
            RunOptions(data=re_run / "data", output=tmp_path / "out", text_encoder=str(tiny_text), epochs=1,
                       batch_size=4, max_length=32, progress=False, seed=1, fusion_variant="official", crops=crops,
                       small_crops=crops),
        )
        result = explain_relation_extraction(tmp_path / "out", 0)
    # 3 large crops (4 x 4 patches of 8 px) and 3 small ones (2 x 2), two of each present
    assert [(slot.group, slot.grid, slot.present) for slot in result.images] == [
        (0, 4, True), (0, 4, True), (0, 4, False), (1, 2, True), (1, 2, True), (1, 2, False)
    ]
    assert not any(slot.has_class_token for slot in result.images) and result.images[0].token_start == 1
    assert all("object crop" in slot.source for slot in result.images if slot.present)
    present = [slot for slot in result.images if slot.present]
    for layer in result.layers:
        # the shared class token (visual token 0) and the real crops' patches hold all of CAF's weight
        rows = np.array([layer.caf[t, 0] + sum(layer.heatmap(t, s).sum() for s in present)
                         for t in range(len(result.tokens))])
        np.testing.assert_allclose(rows, 1.0, atol=1e-5)
    assert "object crop 1 (large)" in render_html(result)
