"""A tiny hybrid encoder with the CRF head learns NER: it beats the all-``O`` (majority) baseline."""

from __future__ import annotations

import random

from pykeen_mkgformer.ner.train import NamedEntityRecognition
from pykeen_mkgformer.tasks.runner import RunOptions, run_task
from task_fixtures import write_conll_folder

PEOPLE = [["alice"], ["bob", "smith"], ["carol"], ["dave", "jones"], ["erin"], ["frank", "li"]]
PLACES = [["paris"], ["new", "york"], ["oslo"], ["cairo"], ["san", "jose"]]


def _tagged(words: list[str], kind: str) -> list[tuple[str, str]]:
    return [(word, ("B-" if index == 0 else "I-") + kind) for index, word in enumerate(words)]


def _sentence(rng: random.Random) -> list[tuple[str, str]]:
    person, place = rng.choice(PEOPLE), rng.choice(PLACES)
    shape = rng.randrange(3)
    if shape == 0:
        return [("i", "O"), ("met", "O"), *_tagged(person, "PER"), ("in", "O"), *_tagged(place, "LOC"), ("today", "O")]
    if shape == 1:
        return [*_tagged(person, "PER"), ("flew", "O"), ("to", "O"), *_tagged(place, "LOC")]
    return [("what", "O"), ("a", "O"), ("day", "O"), ("in", "O"), *_tagged(place, "LOC"), ("!", "O")]


def test_tiny_crf_tagger_beats_all_o(tmp_path, tiny_text):
    rng = random.Random(0)
    splits = {"train": [_sentence(rng) for _ in range(160)], "dev": [_sentence(rng) for _ in range(30)],
              "test": [_sentence(rng) for _ in range(60)]}
    folder = write_conll_folder(tmp_path / "twitter", splits)
    metrics = run_task(NamedEntityRecognition, RunOptions(
        data=folder, output=tmp_path / "out", text_encoder=str(tiny_text), epochs=6, batch_size=16, lr=2e-3,
        head_lr=1e-2, seed=0, progress=False))
    # predicting O everywhere (the majority tag) finds no entity: F1 0
    assert metrics["test"]["token_accuracy"] > 0.9
    assert metrics["f1"] > 0.7
    assert metrics["test"]["per_label"]["PER"]["f1"] > 0.5
