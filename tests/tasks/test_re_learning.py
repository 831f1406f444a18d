"""A tiny hybrid encoder learns relation extraction: it beats the majority-class baseline."""

from __future__ import annotations

import random

from pykeen_mkgformer.re import relation_scores
from pykeen_mkgformer.re.train import RelationExtraction
from pykeen_mkgformer.tasks.runner import RunOptions, run_task
from task_fixtures import write_mnre_folder

PEOPLE = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
PLACES = ["paris", "rome", "oslo", "lima", "cairo", "delhi", "tokyo", "quito"]
#: (template, relation) with the relation decided by the words between the mentions
TEMPLATES = [
    ("{p} lives in {l}", "/per/loc/place_of_residence"),
    ("{p} now lives in {l} with friends", "/per/loc/place_of_residence"),
    ("{p} was born in {l}", "/per/loc/place_of_birth"),
    ("{p} was born in lovely {l}", "/per/loc/place_of_birth"),
    ("{p} posted a photo of {l}", "None"),
]
RELATIONS = ["None", "/per/loc/place_of_residence", "/per/loc/place_of_birth"]


def _instances(count: int, rng: random.Random) -> list[dict]:
    records = []
    for _ in range(count):
        template, relation = rng.choice(TEMPLATES)
        tokens = template.format(p=rng.choice(PEOPLE), l=rng.choice(PLACES)).split()
        records.append({"token": tokens, "h": {"name": tokens[0], "pos": [0, 1]},
                        "t": {"name": tokens[-1], "pos": [len(tokens) - 1, len(tokens)]}
                        if not tokens[-1] == "friends" else {"name": tokens[3], "pos": [3, 4]},
                        "img_id": "none.jpg", "relation": relation})
    return records


def test_tiny_model_beats_majority_baseline(tmp_path, tiny_text):
    rng = random.Random(0)
    splits = {"train": _instances(128, rng), "dev": _instances(40, rng), "test": _instances(80, rng)}
    folder = write_mnre_folder(tmp_path / "mnre", splits, RELATIONS)
    metrics = run_task(RelationExtraction, RunOptions(
        data=folder, output=tmp_path / "out", text_encoder=str(tiny_text), epochs=5, batch_size=16, lr=2e-3, seed=0,
        progress=False))
    gold = [record["relation"] for record in splits["test"]]
    majority = max(RELATIONS, key=[record["relation"] for record in splits["train"]].count)
    baseline = relation_scores(gold, [majority] * len(gold), RELATIONS)
    assert metrics["images"]["test"]["text_only"] == 80  # none.jpg does not exist: text only, no crash
    assert metrics["test"]["accuracy"] > baseline["accuracy"] + 0.2
    assert metrics["f1"] > baseline["f1"] + 0.2
