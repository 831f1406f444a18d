"""Inductive link prediction: held-out entities added after training (``add_entities``), PyKEEN's filtered evaluator.

ShapesKG's test heads are held out entirely (no id at training). After training, they are added
from their text ("object number N", which says nothing) and their picture. Measured with this
configuration (``benchmarks/inductive.py``, RESULTS.md "Inductive link prediction"), seeds 0 to 4,
filtered MRR with the held-out entity as the *answer* of a query:

- random rows:          0.314 / 0.313 / 0.259 / 0.376 / 0.389
- text-initialised:     0.337 / 0.374 / 0.327 / 0.354 / 0.431
- + stage 1 (new rows): 0.328 / 0.534 / 0.362 / 0.543 / 0.511

so the test compares the means of seeds 0 and 1 (0.431 vs 0.356 and 0.314) with margins inside
that gap. As the *known* entity of a query, the held-out entities are read mostly through their
picture: text and random rows score alike there (MRR 0.54 to 0.73), and stage 1 does not help
(it lowers it; see RESULTS.md), which the test does not hide: it checks only the answer side.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from kgc_support import shapes_pipeline_kwargs
from pykeen.pipeline import pipeline

from pykeen_mkgformer.data import WN18IMGMini
from pykeen_mkgformer.data.inductive import hold_out_entities, sample_imaged_entities, shapes_inductive_split
from pykeen_mkgformer.kgc.inductive import evaluate_new_entities


def test_hold_out_removes_the_entities_and_keeps_their_triples(shapes):
    split = shapes_inductive_split(shapes)
    held = set(split.new_labels)
    test_heads = {h for h, _, _ in shapes.testing.triples.tolist()}
    assert held == test_heads and len(held) == 6
    assert not held & set(split.training.entity_to_id)
    assert split.training.num_entities == shapes.training.num_entities - len(held)
    # every triple touching a held-out entity is kept for evaluation, none is lost
    all_triples = [tuple(t) for f in (shapes.training, shapes.validation, shapes.testing) for t in f.triples.tolist()]
    touching = {t for t in all_triples if t[0] in held or t[2] in held}
    assert {tuple(t) for t in split.new_triples.tolist()} == touching
    assert split.training.num_triples + split.validation.num_triples + split.testing.num_triples + len(touching) == len(all_triples)
    # texts and images follow the labels
    source = shapes.training
    for label, description, images in zip(split.new_labels, split.new_descriptions, split.new_images):
        assert description == source.entity_descriptions[source.entity_to_id[label]]
        assert images == tuple(source.entity_images[source.entity_to_id[label]]) and len(images) == 1
    seen = split.training
    for label in ("object_000", "object_047"):
        if label in seen.entity_to_id:
            assert seen.entity_images[seen.entity_to_id[label]] == source.entity_images[source.entity_to_id[label]]
    with pytest.raises(ValueError, match="Unknown entities"):
        hold_out_entities(shapes, ["nobody"])


def test_wn18imgmini_holds_out_a_tenth_of_the_imaged_entities(shared_data):
    dataset = WN18IMGMini()
    training = dataset.training
    triples = [np.asarray(f.triples) for f in (dataset.training, dataset.validation, dataset.testing)]
    chosen = sample_imaged_entities(training, 0.1, seed=0, triples=triples)
    imaged = sum(1 for paths in training.entity_images if paths)
    assert imaged > 100 and abs(len(chosen) - 0.1 * imaged) <= 1
    assert all(training.entity_images[training.entity_to_id[label]] for label in chosen)
    assert chosen == sample_imaged_entities(training, 0.1, seed=0, triples=triples)
    split = hold_out_entities(dataset, chosen)
    assert len(split.new_triples) > len(chosen) and not set(chosen) & set(split.training.entity_to_id)


SEEDS = (0, 1)


def test_stage_one_on_new_rows_beats_text_and_random_rows(shapes, tmp_path):
    split = shapes_inductive_split(shapes)
    answers = {"random": [], "text": [], "stage 1": []}
    for seed in SEEDS:
        settings = shapes_pipeline_kwargs(tmp_path / "pixels", random_seed=seed)
        result = pipeline(dataset=split.dataset(), **settings)
        stage_1 = {key: settings["model_kwargs"][key] for key in ("entity_modeling_epochs", "entity_modeling_lr")}
        for name, kwargs in (
            ("random", dict(initialization="random")),
            ("text", {}),
            ("stage 1", stage_1),  # the model's own stage-1 settings, on the new rows
        ):
            model = copy.deepcopy(result.model)
            torch.manual_seed(seed)
            model.add_entities(**split.new_entity_kwargs(), **kwargs)
            metrics = evaluate_new_entities(model, split)
            assert metrics["query"]["count"] == metrics["answer"]["count"] == len(split.new_triples)
            answers[name].append(metrics["answer"]["mrr"])
    mean = {name: sum(values) / len(values) for name, values in answers.items()}
    assert mean["stage 1"] >= mean["text"] + 0.03, answers
    assert mean["stage 1"] >= mean["random"] + 0.05, answers
