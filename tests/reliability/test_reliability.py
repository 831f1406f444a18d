"""Issue 11, "Why": every case that broke, as a test (each failed before the fix).

Only public entry points are used (``run_task`` and the CLI, ``WN18IMG(path=...)``, the readers,
``PixelCache``, ``InstanceImages``, ``load_rgb``), so the same tests ran against the old code.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from transformers import CLIPImageProcessorPil

from pykeen_mkgformer.cli import main
from pykeen_mkgformer.data import WN18IMG, ImageLayout, PixelCache, load_rgb
from pykeen_mkgformer.data.readers import read_text_table
from pykeen_mkgformer.ner import read_conll
from pykeen_mkgformer.ner.train import NamedEntityRecognition
from pykeen_mkgformer.re import read_mnre
from pykeen_mkgformer.re.train import RelationExtraction
from pykeen_mkgformer.tasks import BadLines, MalformedLineError
from pykeen_mkgformer.tasks.images import InstanceImages
from pykeen_mkgformer.tasks.runner import RunOptions, run_task
from pykeen_mkgformer.tasks.training import FineTuner
from task_fixtures import write_conll_folder, write_mnre_folder

RELATIONS = ["None", "/per/loc/place_of_residence"]
SENTENCE = [("Ann", "B-PER"), ("in", "O"), ("Rome", "B-LOC")]


def mnre_record(image: str = "ok.png", relation: str = "/per/loc/place_of_residence") -> dict:
    return {"token": ["Ann", "lives", "in", "Rome"], "h": {"name": "Ann", "pos": [0, 1]},
            "t": {"name": "Rome", "pos": [3, 4]}, "img_id": image, "relation": relation}


def small_image(path, size=(24, 16), colour=(200, 40, 30)):
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture()
def processor():
    return CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


# a decompression bomb in an MNRE / Twitter image folder ---------------------------------------------


def _bomb_folder(folder, monkeypatch):
    """An image folder with a good image and a 'bomb' (over a lowered MAX_IMAGE_PIXELS)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    folder.mkdir(parents=True, exist_ok=True)
    small_image(folder / "ok.png", size=(20, 20))
    small_image(folder / "bomb.png", size=(64, 64))  # 4,096 px > 2 x 1,000: Pillow's DecompressionBombError
    return folder


@pytest.mark.parametrize("task", ["re", "ner"])
def test_a_decompression_bomb_is_a_named_skip_in_re_and_ner(task, tmp_path, tiny_text, monkeypatch):
    if task == "re":
        records = [mnre_record("bomb.png"), mnre_record("ok.png"), mnre_record("ok.png", "None")]
        data = write_mnre_folder(tmp_path / "data", {"train": records, "dev": records, "test": records}, RELATIONS)
    else:
        data = write_conll_folder(tmp_path / "data", {"train": [SENTENCE] * 3, "dev": [SENTENCE] * 2, "test": [SENTENCE] * 2})
        for split in ("train", "valid", "test"):  # the IMGIDs written are <split>_<index>
            (data / f"{split}.txt").write_text((data / f"{split}.txt").read_text().replace("IMGID:", "IMGID:x"))
        text = (data / "train.txt").read_text().replace("IMGID:xtrain_0", "IMGID:bomb").replace("IMGID:xtrain_1", "IMGID:ok")
        (data / "train.txt").write_text(text)
    images = _bomb_folder(data / "images", monkeypatch)
    if task == "ner":
        os.rename(images / "bomb.png", images / "bomb.jpg")
        os.rename(images / "ok.png", images / "ok.jpg")
    result = CliRunner().invoke(
        main, [task, "--data", str(data), "--output", str(tmp_path / "out"), "--text-encoder", str(tiny_text), "--epochs", "1"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    skipped = metrics["image_files"]["skipped"]
    assert [entry["path"] for entry in skipped] == [str(images / ("bomb.png" if task == "re" else "bomb.jpg"))]
    assert "decompression bomb" in skipped[0]["reason"]
    assert metrics["images"]["train"]["with_image"] >= 1  # the good image was used
    assert "skipped 1 unusable image files" in result.output


# a symlink loop among the entity images (link prediction) ------------------------------------------


def write_lp_folder(root, *, valid="b\tr\tc\n", entity_texts="a\talpha, first\nb\tbeta, second\nc\tgamma, third\n",
                    relation_texts="r\trelated to\n"):
    """A WN18IMG folder in this package's layout, with images for entity 'a'."""
    folder = root / "wn18"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text("a\tr\tb\nb\tr\tc\n")
    (folder / "valid.tsv").write_text(valid)
    (folder / "test.tsv").write_text("a\tr\tc\n")
    (folder / "entity2text.tsv").write_bytes(entity_texts.encode("utf-8") if isinstance(entity_texts, str) else entity_texts)
    (folder / "relation2text.tsv").write_bytes(
        relation_texts.encode("utf-8") if isinstance(relation_texts, str) else relation_texts
    )
    images = root / "wn18_images"
    (images / "na").mkdir(parents=True)
    small_image(images / "na" / "good.png")
    return root


def test_symlink_loops_among_entity_images_are_named_skips(tmp_path, processor):
    root = write_lp_folder(tmp_path)
    images = root / "wn18_images"
    os.symlink("loop.jpg", images / "na" / "loop.jpg")  # an image file that is a symlink loop
    os.symlink("nb", images / "nb")  # an entity folder that is a symlink loop
    with pytest.warns(UserWarning, match="nb"):
        training = WN18IMG(path=root).training
    entity = training.entity_to_id["a"]
    assert sorted(os.path.basename(p) for p in training.entity_images[entity]) == ["good.png", "loop.jpg"]
    with pytest.warns(UserWarning, match="loop.jpg"):
        cache = PixelCache(training.entity_images, processor=processor, layout=ImageLayout.single(32, 2),
                           cache_dir=tmp_path / "cache", progress=False)
    assert [(os.path.basename(path), reason) for path, reason in cache.skipped] == [
        ("loop.jpg", "symlink loop (too many levels of symbolic links)")
    ]
    assert cache.num_images(entity) == 1


# one decoder: the RE/NER images equal the link-prediction images -----------------------------------


def exif_png(path, orientation: int, stored: Image.Image):
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, exif=exif)
    return path


def asymmetric(size=(6, 4)) -> Image.Image:
    """Every pixel a different colour, so any flip or rotation shows."""
    width, height = size
    array = np.arange(width * height * 3, dtype=np.uint8).reshape(height, width, 3) * 3
    return Image.fromarray(array)


#: EXIF orientation -> what turns the stored pixels upright (the EXIF 2.3 table, by hand)
UPRIGHT = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,  # "rotate 90 degrees clockwise to display"
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    stored = asymmetric()
    path = exif_png(tmp_path / f"o{orientation}.png", orientation, stored)
    expected = stored if UPRIGHT[orientation] is None else stored.transpose(UPRIGHT[orientation])
    decoded = load_rgb(path)
    assert decoded.size == expected.size
    assert np.array_equal(np.asarray(decoded), np.asarray(expected))


def test_phone_photo_jpeg_comes_out_upright(tmp_path):
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 20), (250, 250, 250)).save(path, exif=exif, quality=95)
    assert load_rgb(path).size == (20, 40)


def test_task_images_are_the_link_prediction_pixels(tmp_path, processor):
    """16-bit greys, transparency and EXIF orientation give the same pixels in RE/NER as in link prediction."""
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.full((8, 8), 32896, dtype=np.uint16)).save(folder / "deep.png")  # 16-bit mid grey
    Image.new("RGBA", (8, 8), (10, 20, 30, 0)).save(folder / "clear.png")  # fully transparent
    exif_png(folder / "turned.png", 6, asymmetric((12, 8)))
    names = ["deep.png", "clear.png", "turned.png"]
    assert load_rgb(folder / "deep.png").getpixel((0, 0)) == (128, 128, 128)
    assert load_rgb(folder / "clear.png").getpixel((0, 0)) == (255, 255, 255)

    task_pixels = InstanceImages(folder, processor).prepare(names, progress=False)
    cache = PixelCache([[folder / name] for name in names], processor=processor,
                       layout=ImageLayout.single(32), cache_dir=tmp_path / "cache", progress=False)
    lp_pixels = cache.lookup(torch.arange(3))[0][0][:, 0]
    for row, (name, (task_main, _)) in enumerate(zip(names, task_pixels)):
        reference = processor(images=load_rgb(folder / name), return_tensors="pt")["pixel_values"][0]
        torch.testing.assert_close(task_main, reference, msg=name)
        torch.testing.assert_close(lp_pixels[row], reference, atol=1e-5, rtol=0, msg=name)


# non-UTF-8 bytes in MNRE and CoNLL files ----------------------------------------------------------------


def _mnre_bytes(literal: bool) -> list[bytes]:
    records = [mnre_record(), mnre_record()]
    lines = [(repr(r) if literal else json.dumps(r)).encode() for r in records]
    lines.insert(1, lines[0].replace(b"Ann", b"An\xe9"))  # Latin-1 e-acute: not UTF-8
    return lines


@pytest.mark.parametrize("kind", ["mnre-jsonl", "mnre-txt", "conll"])
def test_non_utf8_bytes_name_file_and_line_and_can_be_skipped(tmp_path, kind):
    if kind == "conll":
        path = tmp_path / "train.txt"
        path.write_bytes(b"IMGID:1\nAnn\tB-PER\n\nIMGID:2\nJos\xe9\tB-PER\nin\tO\n\nIMGID:3\nRome\tB-LOC\n")
        read, bad_line = read_conll, 5
    else:
        path = tmp_path / ("train.txt" if kind == "mnre-txt" else "train.jsonl")
        path.write_bytes(b"\n".join(_mnre_bytes(kind == "mnre-txt")) + b"\n")
        read, bad_line = read_mnre, 2
    with pytest.raises(MalformedLineError) as error:
        read(path)
    assert (error.value.path, error.value.line) == (str(path), bad_line)
    assert "UTF-8" in str(error.value) and f"{path}:{bad_line}" in str(error.value)
    bad = BadLines(skip=True)
    assert len(read(path, bad_lines=bad)) == 2
    assert [e.line for e in bad.errors] == [bad_line] and bad.summary()["skipped"] == 1


def test_skip_bad_lines_skips_non_utf8_through_the_cli(tmp_path, tiny_text):
    data = write_conll_folder(tmp_path / "data", {"train": [SENTENCE] * 3, "dev": [SENTENCE] * 2, "test": [SENTENCE] * 2})
    with (data / "train.txt").open("ab") as file:
        file.write(b"\nIMGID:bad\nZ\xfcrich\tB-LOC\n")
    arguments = ["ner", "--data", str(data), "--text-encoder", str(tiny_text), "--epochs", "1"]
    failed = CliRunner().invoke(main, [*arguments, "--output", str(tmp_path / "a")])
    assert failed.exit_code != 0 and f"{data / 'train.txt'}:" in failed.output and "UTF-8" in failed.output
    skipped = CliRunner().invoke(main, [*arguments, "--output", str(tmp_path / "b"), "--skip-bad-lines"])
    assert skipped.exit_code == 0, skipped.output
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["bad_lines"]["skipped"] == 1 and metrics["instances"]["train"] == 3


# empty split files: an error naming the file, before training, nothing written --------------------------


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(FineTuner, "fit", refuse)


@pytest.mark.parametrize(
    ("task", "split", "file_name"),
    [("re", "test", "test.jsonl"), ("re", "train", "train.jsonl"), ("re", "dev", "val.jsonl"),
     ("ner", "test", "test.txt"), ("ner", "train", "train.txt"), ("ner", "dev", "valid.txt")],
)
def test_an_empty_split_is_an_error_naming_it_before_training(tmp_path, tiny_text, monkeypatch, task, split, file_name):
    if task == "re":
        records = [mnre_record(), mnre_record(relation="None")]
        data = write_mnre_folder(tmp_path / "data", {"train": records, "dev": records, "test": records}, RELATIONS)
    else:
        data = write_conll_folder(tmp_path / "data", {"train": [SENTENCE] * 2, "dev": [SENTENCE], "test": [SENTENCE]})
    (data / file_name).write_text("\n \n" if split == "dev" else "")  # blank lines count as empty
    output = tmp_path / "out"
    output.mkdir()
    (output / "metrics.json").write_text("the previous run's metrics")
    _no_training(monkeypatch)
    options = RunOptions(data=data, output=output, text_encoder=str(tiny_text), epochs=1, progress=False)
    with pytest.raises(ValueError) as error:
        run_task(RelationExtraction if task == "re" else NamedEntityRecognition, options)
    assert str(data / file_name) in str(error.value) and "empty" in str(error.value)
    assert sorted(os.listdir(output)) == ["metrics.json"]
    assert (output / "metrics.json").read_text() == "the previous run's metrics"


def test_a_split_whose_lines_were_all_skipped_is_an_error_too(tmp_path, tiny_text, monkeypatch):
    records = [mnre_record(), mnre_record(relation="None")]
    data = write_mnre_folder(tmp_path / "data", {"train": records, "dev": records, "test": records}, RELATIONS)
    (data / "test.jsonl").write_text("{not json\n[]\n")
    _no_training(monkeypatch)
    options = RunOptions(data=data, output=tmp_path / "out", text_encoder=str(tiny_text), skip_bad_lines=True,
                         progress=False)
    with pytest.raises(ValueError, match="all 2 malformed lines were skipped"):
        run_task(RelationExtraction, options)
    assert not (tmp_path / "out").exists()


# a UTF-8 BOM in entity2text / relation2text; an empty validation split (link prediction) ------------------


def test_a_bom_keeps_the_first_row(tmp_path):
    table = tmp_path / "entity2text.tsv"
    table.write_bytes(b"\xef\xbb\xbfa\talpha\nb\tbeta\n")
    assert read_text_table(table) == {"a": "alpha", "b": "beta"}
    root = write_lp_folder(tmp_path / "data", entity_texts=b"\xef\xbb\xbfa\talpha, first\nb\tbeta, x\nc\tgamma, y\n",
                           relation_texts=b"\xef\xbb\xbfr\trelated to\n")
    training = WN18IMG(path=root).training
    assert training.entity_names[training.entity_to_id["a"]] == "alpha"
    assert training.entity_descriptions[training.entity_to_id["a"]] == "alpha, first"
    assert training.relation_texts[training.relation_to_id["r"]] == "related to"


def test_an_empty_validation_split_is_an_error_naming_it(tmp_path):
    root = write_lp_folder(tmp_path, valid="\n")
    with pytest.raises(ValueError) as error:
        WN18IMG(path=root).training
    assert str(root / "wn18" / "valid.tsv") in str(error.value) and "no triples" in str(error.value)


# CoNLL: space-separated lines are reported; empty sentences are counted ----------------------------------


def test_conll_line_with_spaces_instead_of_a_tab_is_reported(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("IMGID:1\nAnn\tB-PER\nword O\n")
    with pytest.raises(MalformedLineError, match="no tab; separate token and label with a tab") as error:
        read_conll(path)
    assert error.value.line == 3


def test_conll_empty_sentences_are_counted(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("IMGID:1\nAnn\tB-PER\n\nIMGID:2\n\nIMGID:3\nIMGID:4\nRome\tB-LOC\n")
    bad = BadLines()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sentences = read_conll(path, bad_lines=bad)
    assert [s.words for s in sentences] == [("Ann",), ("Rome",)]
    summary = bad.summary()
    assert summary["notices"]["empty sentence"] == [f"{path}:4: an IMGID line with no words",
                                                    f"{path}:6: an IMGID line with no words"]
    assert sum("empty sentence" in str(w.message) for w in caught) == 2
