"""The Twitter-2017 CoNLL reader (IMGID lines, BIO checks, bad lines) and word-piece alignment."""

from __future__ import annotations

from collections import Counter

import pytest

from pykeen_mkgformer.ner import align_words, read_conll
from pykeen_mkgformer.ner.data import read_conll_folder
from pykeen_mkgformer.ner.train import NamedEntityRecognition
from pykeen_mkgformer.tasks import BadLines, MalformedLineError


def test_reads_twitter2017_with_the_readme_counts(shared_data):
    folder = shared_data / "twitter2017"
    train = read_conll_folder(folder, "train")
    assert len(train) == 3373
    assert sum(len(sentence.words) for sentence in train) == 53007
    entities = Counter(tag[2:] for sentence in train for tag in sentence.tags if tag.startswith("B-"))
    assert entities == {"PER": 2943, "LOC": 731, "ORG": 1674, "MISC": 701}
    assert train[0].image == "17_06_12483.jpg"
    assert train[0].words[:4] == ("New", "Post", ":", "Blackburn") and train[0].tags[3] == "B-MISC"
    assert train[0].source.endswith("train.txt.gz:1")
    assert [len(read_conll_folder(folder, split)) for split in ("dev", "test")] == [723, 723]


@pytest.mark.parametrize(
    ("lines", "bad_line", "reason"),
    [
        (["IMGID:1", "Kawhi\tB-PER", "Leonard\tI-PER", "wins\tO", "the", "vote\tO"], 5, "1 field"),
        (["IMGID:1", "Kawhi\tB-PER", "Leonard\tI-PER\tO"], 3, "3 field"),
        (["IMGID:1", "at\tO", "Leonard\tI-PER"], 3, "does not continue a PER entity"),
        (["IMGID:1", "Spurs\tB-ORG", "Leonard\tI-PER"], 3, "does not continue a PER entity"),
        (["IMGID:1", "Spurs\tX-ORG"], 2, "is not O, B-TYPE or I-TYPE"),
        (["IMGID:1", "x\tO", "", "IMGID:2", "Leonard\tI-PER"], 5, "previous label: none"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, lines, bad_line, reason):
    path = tmp_path / "train.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MalformedLineError, match=reason) as error:
        read_conll(path)
    assert (error.value.path, error.value.line) == (str(path), bad_line)


def test_skip_bad_lines_skips_the_sentence_and_counts(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("IMGID:1\nA\tB-PER\n\nIMGID:2\nB\tO\nC\tI-LOC\n\nIMGID:3\nD\n\nIMGID:4\nE\tB-LOC\nF\tI-LOC\n")
    bad = BadLines(skip=True)
    sentences = read_conll(path, bad_lines=bad)
    assert [s.words for s in sentences] == [("A",), ("E", "F")]
    assert [(error.line, error.path) for error in bad.errors] == [(6, str(path)), (9, str(path))]


def test_first_piece_of_each_word_carries_its_label(minilm_tokenizer):
    words = ["Kawhi", "Leonard", "\u200b", "#NBA", "wins"]
    alignment = align_words(words, minilm_tokenizer, 64)
    pieces = minilm_tokenizer.convert_ids_to_tokens(alignment.input_ids)
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    assert len(alignment.word_starts) == len(words)
    assert alignment.word_starts == sorted(set(alignment.word_starts))
    assert pieces[alignment.word_starts[2]] == "[UNK]"  # a word with no piece keeps a position
    for start, word in zip(alignment.word_starts, words):
        assert not pieces[start].startswith("##")
    # the pieces between two starts belong to the first word: 'kawhi' -> several pieces
    assert alignment.word_starts[1] - alignment.word_starts[0] == len(minilm_tokenizer.tokenize("Kawhi"))


def test_words_beyond_max_length_are_cut_and_scored_as_o(minilm_tokenizer):
    words = ["a"] * 20
    alignment = align_words(words, minilm_tokenizer, 8)
    assert len(alignment.input_ids) == 8 and len(alignment.word_starts) == 6
    task = NamedEntityRecognition(".", bad_lines=BadLines())
    from pykeen_mkgformer.ner import Sentence

    sentence = Sentence(tuple(words), ("B-PER",) + ("O",) * 18 + ("B-LOC",), None, "x:1")
    task.setup(minilm_tokenizer, None, [sentence])
    feature = task.features(sentence, minilm_tokenizer, 8)
    assert feature["truncated"] and len(feature["tags"]) == 6
    record = task.prediction_record(sentence, [task.label_ids["B-PER"]] + [0] * 5)
    assert record["predicted"] == ["B-PER"] + ["O"] * 19
    assert task.score([sentence], [[task.label_ids["B-PER"]] + [0] * 5])["recall"] == pytest.approx(0.5)
