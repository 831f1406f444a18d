"""DB15K, MKG-W, MKG-Y (:mod:`pykeen_mkgformer.data.mmkgc`): exact counts from the shared data, quirks, errors."""

from __future__ import annotations

import gzip
import pathlib
import subprocess
import sys

import pytest
import torch

from pykeen_mkgformer.data import DB15K, MKGW, MKGY
from pykeen_mkgformer.data.datasets import MissingDataError
from pykeen_mkgformer.data.errors import MalformedLineError
from pykeen_mkgformer.data.mmkgc import entity_short_name, read_openke_ids


@pytest.mark.parametrize(
    ("cls", "counts", "unseen_test"),
    [
        (DB15K, (12_842, 279, 79_222, 9_904, 9_902), 84),
        (MKGW, (15_000, 169, 34_196, 4_276, 4_274), 306),
        (MKGY, (15_000, 28, 21_310, 2_665, 2_663), 388),
    ],
)
def test_counts_and_quirks(shared_data, cls, counts, unseen_test):
    dataset = cls(shared_data)
    entities, relations, train, valid, test = counts
    assert dataset.training.num_entities == entities == cls.num_entities_expected
    assert dataset.training.real_num_relations == relations
    assert dataset.quirks["lines"] == {"training": train, "validation": valid, "testing": test}
    assert dataset.quirks["testing_unseen_any"] == unseen_test
    assert dataset.training.num_triples == train
    assert dataset.testing.num_triples == test
    assert dataset.training.metadata["quirks"] == dataset.quirks


def test_db15k_validation_quirks_counted_not_hidden(shared_data, caplog):
    dataset = DB15K(shared_data)
    with caplog.at_level("WARNING"):
        assert dataset.validation.num_triples == 7_481  # distinct triples, by default
    assert dataset.quirks["duplicate_lines"]["validation"] == 9_904 - 7_481
    assert dataset.quirks["validation_in_testing"] == 824
    assert "2,423 repeated lines" in caplog.text and "824 validation triples also in testing" in caplog.text
    kept = DB15K(shared_data, keep_duplicates=True)
    assert kept.validation.num_triples == 9_904


def test_ids_and_names_as_the_files_give_them(shared_data):
    dataset = DB15K(shared_data)
    # entity2id line 2: "<http://dbpedia.org/resource/Anarchism> 0"; test2id line 2: "4504 2 0" (h t r)
    assert dataset.training.entity_to_id["<http://dbpedia.org/resource/Anarchism>"] == 0
    assert dataset.training.entity_names[0] == "Anarchism"
    assert dataset.training.relation_texts[0] == "seeAlso"
    assert (dataset.testing.mapped_triples == torch.tensor([4504, 0, 2])).all(dim=1).any()
    yago = MKGY(shared_data)
    assert yago.training.entity_names[0] == "Gilles Mbang Ondo"
    assert yago.training.relation_texts[0] == "wasBornIn"
    assert MKGW(shared_data).training.entity_names[0] == "Q370252"


def test_short_names():
    assert entity_short_name("<http://dbpedia.org/resource/New_York_City>") == "New_York_City"
    assert entity_short_name("<http://dbpedia.org/resource/Caf%C3%A9>") == "Café"
    assert entity_short_name("http://www.wikidata.org/entity/Q42") == "Q42"
    assert entity_short_name("Gilles_Mbang_Ondo") == "Gilles_Mbang_Ondo"


def _write(folder: pathlib.Path, name: str, lines: list[str]) -> None:
    with gzip.open(folder / f"{name}.gz", "wt", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")


def _tiny(folder: pathlib.Path) -> pathlib.Path:
    folder.mkdir(parents=True)
    _write(folder, "entity2id.txt", ["3", "Alpha_One\t0", "Beta 1", "Gamma 2"])
    _write(folder, "relation2id.txt", ["1", "likes 0"])
    _write(folder, "train2id.txt", ["2", "0 1 0", "1 0 0"])
    _write(folder, "valid2id.txt", ["2", "0 1 0", "0 1 0"])
    _write(folder, "test2id.txt", ["1", "0 2 0"])
    return folder


def test_found_by_path_env_and_layout(tmp_path, monkeypatch):
    folder = _tiny(tmp_path / "mmkgc" / "MKG-Y")
    (folder / "images" / "Beta").mkdir(parents=True)
    (folder / "images" / "Beta" / "a.jpg").write_bytes(b"x")
    (folder / "MKG-Y-visual.pth").write_bytes(b"")
    monkeypatch.setenv("PYKEEN_MKGFORMER_DATA", str(tmp_path))
    dataset = MKGY()
    assert dataset.files.folder == folder
    assert dataset.training.entity_names == ["Alpha One", "Beta", "Gamma"]
    assert [len(paths) for paths in dataset.training.entity_images] == [0, 1, 0]
    assert dataset.feature_files == {"visual": folder / "MKG-Y-visual.pth"}
    assert dataset.quirks["duplicate_lines"]["validation"] == 1
    assert dataset.quirks["training_in_validation"] == 1
    assert dataset.quirks["testing_unseen_entity"] == 1  # Gamma never occurs in training
    assert MKGY(folder).files.folder == folder  # path= may name the dataset folder itself


def test_missing_and_malformed(tmp_path):
    with pytest.raises(MissingDataError, match="MKG-W"):
        MKGW(tmp_path)
    folder = _tiny(tmp_path / "DB15K")
    _write(folder, "test2id.txt", ["1", "0 9 0"])
    with pytest.raises(MalformedLineError, match=r"test2id\.txt\.gz:2: entity id out of range"):
        DB15K(tmp_path).testing  # noqa: B018
    _write(folder, "relation2id.txt", ["2", "likes 0"])
    with pytest.raises(MalformedLineError, match=r"relation2id\.txt\.gz:1: the count line says 2, but 1"):
        read_openke_ids(folder / "relation2id.txt.gz")


def test_entry_points_in_a_fresh_interpreter(tmp_path):
    _tiny(tmp_path / "MKG-Y")
    code = (
        "from pykeen.datasets import dataset_resolver as r\n"
        "print(sorted(n for n in ('db15k', 'mkgw', 'mkgy') if n in r.lookup_dict))\n"
        "print(r.lookup('MKG-Y').__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:2] == ["['db15k', 'mkgw', 'mkgy']", "MKGY"]
