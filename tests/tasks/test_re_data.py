"""The MNRE readers: the JSON lines of shared/data, the txt release (literals, never eval), bad lines."""

from __future__ import annotations

import json

import pytest

from pykeen_mkgformer.re import NONE_RELATION, load_relations, mark_entities, read_mnre, read_mnre_folder
from pykeen_mkgformer.re.train import RelationExtraction
from pykeen_mkgformer.tasks import BadLines, MalformedLineError
from task_fixtures import head_lines


def test_reads_the_mnre_splits(shared_data):
    """All three splits with the counts of the MNRE README; every label in rel2id, spans in range."""
    folder = shared_data / "mnre"
    relations = load_relations(folder)
    assert len(relations) == 23 and relations[NONE_RELATION] == 0
    counts = {split: read_mnre_folder(folder, split) for split in ("train", "dev", "test")}
    assert {split: len(items) for split, items in counts.items()} == {"train": 12247, "dev": 1624, "test": 1614}
    test_labels = {instance.relation for instance in counts["test"]}
    assert len(test_labels) == 21 and test_labels <= set(relations)
    first = counts["train"][0]
    assert first.tokens[first.head.start : first.head.end] == ("Circle", "Undone")
    assert first.tail.name == "Arkham Horror LCG" and first.image == "twitter_19_31_16_6.jpg"
    assert first.source.endswith("train.jsonl.gz:1")


def test_txt_release_equals_json(shared_data, tmp_path):
    """The original release (one Python dict literal per line) reads the same as the JSON lines."""
    lines = head_lines(shared_data / "mnre" / "val.jsonl.gz", 40)
    literal = tmp_path / "mnre_val.txt"
    literal.write_text("".join(repr(json.loads(line)) + "\n" for line in lines))
    (tmp_path / "as.jsonl").write_text("\n".join(lines) + "\n")
    from_literals = read_mnre(literal)
    from_json = read_mnre(tmp_path / "as.jsonl")
    assert [(i.tokens, i.head, i.tail, i.relation, i.image) for i in from_literals] == [
        (i.tokens, i.head, i.tail, i.relation, i.image) for i in from_json
    ]
    assert "'" in literal.read_text().splitlines()[0]  # really the single-quoted Python form


def test_txt_release_is_never_evaluated(tmp_path):
    """A line that would run code under eval is a malformed line, and nothing runs."""
    marker = tmp_path / "ran"
    path = tmp_path / "mnre_train.txt"
    path.write_text(f"__import__('pathlib').Path({str(marker)!r}).touch()\n")
    with pytest.raises(MalformedLineError) as error:
        read_mnre(path)
    assert error.value.line == 1 and str(path) in str(error.value)
    assert not marker.exists()


GOOD = {"token": ["Ann", "visits", "Rome"], "h": {"name": "Ann", "pos": [0, 1]}, "t": {"name": "Rome", "pos": [2, 3]},
        "img_id": "x.jpg", "relation": "/per/loc/place_of_residence"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"token": ["a"', "not valid JSON"),
        (json.dumps({**GOOD, "t": {"name": "Rome", "pos": [2, 4]}}), "out of range"),
        (json.dumps({**GOOD, "relation": "/per/loc/likes"}), "not in rel2id"),
        (json.dumps({key: value for key, value in GOOD.items() if key != "h"}), "missing field 'h'"),
        (json.dumps({**GOOD, "h": {"name": "Ann", "pos": [1, 0]}}), "out of range"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, line, reason):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + line + "\n")
    relations = {"None": 0, "/per/loc/place_of_residence": 1}
    with pytest.raises(MalformedLineError, match=reason) as error:
        read_mnre(path, relations=relations)
    assert (error.value.path, error.value.line) == (str(path), 2)
    assert f"{path}:2:" in str(error.value)


def test_skip_bad_lines_counts_them(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join([json.dumps(GOOD), "{oops", json.dumps(GOOD), json.dumps({**GOOD, "relation": "?"})]) + "\n")
    bad = BadLines(skip=True)
    instances = read_mnre(path, relations={"None": 0, GOOD["relation"]: 1}, bad_lines=bad)
    assert len(instances) == 2
    assert [error.line for error in bad.errors] == [2, 4]
    assert bad.summary()["skipped"] == 2


def test_markers_surround_the_mentions(shared_data, tmp_path, minilm_tokenizer):
    """``<s> head </s>`` and ``<o> tail </o>``; the features point at the ``<s>`` and ``<o>`` pieces."""
    task = RelationExtraction(shared_data / "mnre", bad_lines=BadLines())
    instances = task.read("dev")[:30]

    class Encoder:  # only the embedding size is looked at here
        def get_input_embeddings(self):
            return type("E", (), {"num_embeddings": 10**6})()

    task.setup(minilm_tokenizer, Encoder(), instances)
    first = instances[0]
    words = mark_entities(first)
    h0 = words.index("<s>")
    assert words[h0 + 1 : words.index("</s>")] == list(first.tokens[first.head.start : first.head.end])
    assert words[words.index("<o>") + 1 : words.index("</o>")] == list(first.tokens[first.tail.start : first.tail.end])
    for instance in instances:
        feature = task.features(instance, minilm_tokenizer, 128)
        pieces = minilm_tokenizer.convert_ids_to_tokens(feature["input_ids"])
        assert pieces[feature["head_index"]] == "<s>" and pieces[feature["tail_index"]] == "<o>"
        assert task.labels[feature["label"]] == instance.relation
