"""Datasets: the benchmark counts, both file layouts, clear errors, and PyKEEN's entry points."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap

import pytest

from pykeen_mkgformer.data import WN18IMG, FB15k237IMG, MissingDataError, MultimodalTriplesFactory, WN18IMGMini
from pykeen_mkgformer.data.readers import read_text_table, read_triples


def count_lines(path) -> int:
    with gzip.open(path, "rt", encoding="utf-8") as file:
        return sum(1 for line in file if line.strip())


def check_shared(dataset):
    """Three multimodal factories sharing ids and attributes."""
    factories = [dataset.training, dataset.validation, dataset.testing]
    for tf in factories:
        assert isinstance(tf, MultimodalTriplesFactory)
        assert tf.entity_to_id == dataset.training.entity_to_id
        assert tf.relation_to_id == dataset.training.relation_to_id
        assert tf.entity_images is dataset.training.entity_images or tf.entity_images == dataset.training.entity_images
    return factories


@pytest.fixture(scope="module")
def wn18img(shared_data):
    return WN18IMG(path=shared_data)


@pytest.fixture(scope="module")
def fb15k237img(shared_data):
    return FB15k237IMG(path=shared_data)


def test_wn18img_counts(wn18img, shared_data):
    training, validation, testing = check_shared(wn18img)
    assert training.num_entities == 40_943
    assert training.num_relations == 18
    assert (training.num_triples, validation.num_triples, testing.num_triples) == (141_442, 5_000, 5_000)
    assert training.num_imaged_entities == 477
    assert sum(map(len, training.entity_images)) == 1_028
    assert training.num_described_entities == 40_943
    shark = training.entity_to_id["01484850"]
    assert training.entity_names[shark] == "white shark"
    assert training.entity_descriptions[shark].startswith("white shark, large aggressive shark")
    assert training.entity_images[shark] == (
        str(shared_data.resolve() / "wn18_images/n01484850/n01484850_great_white_shark.JPEG"),
    )
    assert training.relation_texts[training.relation_to_id["_hypernym"]] == "hypernym"


def test_fb15k237img_counts_and_eval_only_entities(fb15k237img, shared_data, caplog):
    with caplog.at_level("INFO"):
        training, validation, testing = check_shared(fb15k237img)
    assert training.num_relations == 237
    assert (training.num_triples, validation.num_triples, testing.num_triples) == (272_115, 17_535, 20_466)
    # no triple dropped: the files' line counts
    for tf, name in ((training, "train"), (validation, "valid"), (testing, "test")):
        assert tf.num_triples == count_lines(shared_data / f"fb15k237/{name}.tsv.gz")
    assert training.num_entities == 14_541
    assert training.num_described_entities == 14_541
    # entities that never occur in training keep their ids (and their text)
    seen = set(training.mapped_triples[:, [0, 2]].unique().tolist())
    eval_only = set(testing.mapped_triples[:, [0, 2]].unique().tolist()) | set(
        validation.mapped_triples[:, [0, 2]].unique().tolist()
    )
    eval_only -= seen
    assert len(eval_only) == 36
    assert "36 entities occur only in validation/testing" in caplog.text
    assert all(training.entity_descriptions[i] for i in eval_only)
    irons = training.entity_to_id["/m/016ywr"]
    assert training.entity_names[irons] == training.entity_descriptions[irons] == "Jeremy Irons"
    assert training.num_imaged_entities == 10 and sum(map(len, training.entity_images)) == 19
    assert len(training.entity_images[training.entity_to_id["/m/0_jm"]]) == 2


def write_mkgformer_release(root, long_texts=True):
    """A tiny copy of MKGformer's data release layout."""
    folder = root / "FB15k-237"
    folder.mkdir(parents=True)
    rows = {
        "train": ["/m/a\t/r/x\t/m/b", "/m/b\t/r/y\t/m/c"],
        "dev": ["/m/a\t/r/y\t/m/c"],
        "test": ["/m/c\t/r/x\t/m/d"],
    }
    for name, lines in rows.items():
        (folder / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    (folder / "entity2text.txt").write_text("/m/a\tAlpha\n/m/b\tBeta\n/m/c\tGamma\n/m/d\tDelta\n/m/z\tUnused\n")
    if long_texts:
        (folder / "entity2textlong.txt").write_text("/m/a\tAlpha is the first letter.\n")
    (folder / "relation2text.txt").write_text("/r/x\tex\n/r/y\twhy\n/r/unused\tnot in the graph\n")
    images = root / "FB15k-images" / "m.b"
    images.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (8, 8)).save(images / "1.jpg")
    (images / "notes.txt").write_text("not an image")
    return folder


@pytest.mark.parametrize("point_at_split_folder", [False, True])
def test_mkgformer_release_layout(tmp_path, point_at_split_folder):
    folder = write_mkgformer_release(tmp_path)
    dataset = FB15k237IMG(path=folder if point_at_split_folder else tmp_path)
    training, validation, testing = check_shared(dataset)
    assert (training.num_triples, validation.num_triples, testing.num_triples) == (2, 1, 1)
    assert training.num_entities == 4  # /m/d occurs only in testing and keeps its id
    ids = training.entity_to_id
    assert training.entity_descriptions[ids["/m/a"]] == "Alpha is the first letter."  # the long text wins
    assert training.entity_descriptions[ids["/m/b"]] == "Beta"
    assert training.entity_names[ids["/m/a"]] == "Alpha"
    assert training.entity_images[ids["/m/b"]] == (str(tmp_path / "FB15k-images/m.b/1.jpg"),)
    assert training.entity_images[ids["/m/a"]] == ()
    assert training.relation_texts == ["ex", "why"]


def test_duplicate_triples_are_counted_once_and_logged(tmp_path, caplog):
    folder = write_mkgformer_release(tmp_path)
    with (folder / "train.tsv").open("a") as file:
        file.write("/m/a\t/r/x\t/m/b\n")
    with caplog.at_level("WARNING"):
        assert FB15k237IMG(path=tmp_path).training.num_triples == 2
    assert f"{folder / 'train.tsv'}: 1 duplicate triples counted once" in caplog.text


def test_missing_files_error_lists_every_expected_file(tmp_path, monkeypatch):
    monkeypatch.delenv("PYKEEN_MKGFORMER_DATA", raising=False)
    (tmp_path / "wn18").mkdir()
    (tmp_path / "wn18" / "train.tsv").write_text("a\tr\tb\n")
    with pytest.raises(MissingDataError) as info:
        WN18IMG(path=tmp_path)
    message = str(info.value)
    for expected in (
        f"{tmp_path}/wn18/train.tsv[.gz]  (found)",
        f"{tmp_path}/wn18/valid.tsv[.gz]  (MISSING)",
        f"{tmp_path}/wn18/entity2text.tsv[.gz]  (MISSING)",
        f"{tmp_path}/WN18/dev.tsv[.gz]  (MISSING)",
        f"{tmp_path}/WN18/relation2text.txt[.gz]  (MISSING)",
        f"{tmp_path}/wn18-images/<entity folder>/*.jpg",
        "PYKEEN_MKGFORMER_DATA",
        "README.rst",
    ):
        assert expected in message


def test_malformed_lines_name_file_and_line(tmp_path):
    bad = tmp_path / "train.tsv"
    for content, line in (
        ("a\tr\tb\n\nc\tr\n", 3),  # a field missing
        ("a\tr\tb\nc\tr\td\te\n", 2),  # one too many
        ("a\tr\tb\nc\t \td\n", 2),  # a blank field
    ):
        bad.write_text(content)
        with pytest.raises(ValueError, match=rf"{bad}:{line}: expected 'head<TAB>relation<TAB>tail'"):
            read_triples(bad)
    good = tmp_path / "good.tsv"
    good.write_text("a\tr\tb\n \t\t \n\nNA\tr\tnull\n")  # blank lines are skipped; "NA" is a label
    assert read_triples(good).tolist() == [["a", "r", "b"], ["NA", "r", "null"]]
    texts = tmp_path / "entity2text.tsv"
    texts.write_text("a\tfirst\nno tab here\n")
    with pytest.raises(ValueError, match=rf"{texts}:2: expected 'key<TAB>text'"):
        read_text_table(texts)
    texts.write_text("a\tfirst\na\tagain\n")
    with pytest.raises(ValueError, match=rf"{texts}:2: key 'a' appears a second time"):
        read_text_table(texts)


def test_wn18imgmini_is_bundled_connected_and_deterministic(monkeypatch, shared_data):
    monkeypatch.delenv("PYKEEN_MKGFORMER_DATA", raising=False)
    mini = WN18IMGMini()
    training, validation, testing = check_shared(mini)
    assert 1_000 <= training.num_entities <= 3_000
    assert training.num_imaged_entities == 0  # no images shipped
    assert all(training.entity_descriptions)
    # every evaluation entity and relation occurs in training, and the graph is connected
    train_ids = training.mapped_triples
    seen = set(train_ids[:, [0, 2]].unique().tolist())
    for tf in (validation, testing):
        assert set(tf.mapped_triples[:, [0, 2]].unique().tolist()) <= seen
        assert set(tf.mapped_triples[:, 1].tolist()) <= set(train_ids[:, 1].tolist())
    neighbours = {i: set() for i in range(training.num_entities)}
    for tf in (training, validation, testing):
        for h, _, t in tf.mapped_triples.tolist():
            neighbours[h].add(t)
            neighbours[t].add(h)
    component, stack = {0}, [0]
    while stack:
        for other in neighbours[stack.pop()] - component:
            component.add(other)
            stack.append(other)
    assert len(component) == training.num_entities
    # images come from the data folder when one is named
    with_images = WN18IMGMini(image_root=shared_data / "wn18_images")
    assert with_images.training.entity_to_id == training.entity_to_id
    assert with_images.training.num_imaged_entities > 400
    monkeypatch.setenv("PYKEEN_MKGFORMER_DATA", str(shared_data))
    assert WN18IMGMini().training.entity_images == with_images.training.entity_images


def run_fresh(code: str, tmp_path, **env) -> dict:
    """Run ``code`` in a fresh interpreter (PyKEEN's home in tmp_path) and parse its last line as JSON."""
    environment = {k: v for k, v in os.environ.items() if k != "PYKEEN_MKGFORMER_DATA"}
    environment.update(PYSTOW_HOME=str(tmp_path / "pystow"), **{k: str(v) for k, v in env.items()})
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "could not load" not in result.stderr, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


SUMMARY = """
import json
from pykeen.datasets import get_dataset
out = {}
for name in NAMES:
    for attempt in ("built", "cached"):  # the second call reads PyKEEN's binary cache
        ds = get_dataset(dataset=name)
        tf = ds.training
        out[f"{name}/{attempt}"] = dict(
            cls=type(tf).__name__,
            entities=tf.num_entities,
            relations=tf.num_relations,
            triples=[tf.num_triples, ds.validation.num_triples, ds.testing.num_triples],
            imaged=tf.num_imaged_entities,
            images=sum(map(len, tf.entity_images)),
            described=tf.num_described_entities,
        )
print(json.dumps(out))
"""


def test_get_dataset_in_a_fresh_interpreter(shared_data, tmp_path):
    out = run_fresh(SUMMARY.replace("NAMES", '["WN18IMG", "FB15k237IMG"]'), tmp_path, PYKEEN_MKGFORMER_DATA=shared_data)
    for attempt in ("built", "cached"):
        wn18 = out[f"WN18IMG/{attempt}"]
        assert wn18 == dict(
            cls="MultimodalTriplesFactory",
            entities=40_943,
            relations=18,
            triples=[141_442, 5_000, 5_000],
            imaged=477,
            images=1_028,
            described=40_943,
        )
        fb = out[f"FB15k237IMG/{attempt}"]
        assert fb["relations"] == 237 and fb["triples"] == [272_115, 17_535, 20_466]
        assert fb["described"] == 14_541 and fb["cls"] == "MultimodalTriplesFactory"


def test_bundled_and_synthetic_datasets_need_no_variable(shared_data, tmp_path):
    code = SUMMARY.replace("NAMES", '["WN18IMGMini", "ShapesKG", "wn18_img_mini", "shapes-kg"]')
    out = run_fresh(code, tmp_path)
    mini = out["WN18IMGMini/built"]
    assert mini["cls"] == "MultimodalTriplesFactory" and mini["imaged"] == 0
    assert out["wn18_img_mini/cached"] == mini
    shapes = out["ShapesKG/built"]
    assert shapes["imaged"] == shapes["entities"] == 48
    assert out["shapes-kg/cached"] == shapes
    # PyKEEN's cache was built without images; with the variable set, it is rebuilt with them
    again = run_fresh(SUMMARY.replace("NAMES", '["WN18IMGMini"]'), tmp_path, PYKEEN_MKGFORMER_DATA=shared_data)
    assert again["WN18IMGMini/built"]["imaged"] > 400
    assert again["WN18IMGMini/cached"] == again["WN18IMGMini/built"]
