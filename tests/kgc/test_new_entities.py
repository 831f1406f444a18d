"""New entities after training (``MKGformer.add_entities``): scoring, labels, stage 1 on new rows, saving, errors."""

from __future__ import annotations

import copy

import pytest
import torch
from kgc_support import tiny_model_kwargs
from pykeen.pipeline import pipeline
from pykeen.predict import predict_target
from pykeen.training import LCWATrainingLoop

from pykeen_mkgformer.data import ShapesKG
from pykeen_mkgformer.kgc.new_entities import NewEntityError, extend_triples_factory
from pykeen_mkgformer.kgc.saved_model import save_pipeline_result


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> ShapesKG:
    return ShapesKG(cache_root=tmp_path_factory.mktemp("shapes"), num_entities=24, create_inverse_triples=True)


@pytest.fixture(scope="module")
def saved(shapes, tmp_path_factory):
    """A tiny model trained by ``pipeline`` and written with ``save_pipeline_result`` (PyKEEN's files + ``mkgformer/``)."""
    folder = tmp_path_factory.mktemp("trained")
    result = pipeline(
        dataset=shapes,
        model="MKGformer",
        model_kwargs=tiny_model_kwargs(tmp_path_factory.mktemp("pixels"), entity_modeling_epochs=1),
        training_loop="lcwa",
        training_kwargs=dict(num_epochs=1, batch_size=32, use_tqdm=False),
        evaluation_kwargs=dict(batch_size=64, use_tqdm=False),
        random_seed=3,
    )
    save_pipeline_result(result, folder, overwrite=True)
    return folder


def load(folder):
    model = torch.load(folder / "trained_model.pkl", weights_only=False)
    model.eval()
    return model


def new_entity_inputs(shapes: ShapesKG):
    """Two new entities: one drawn like an existing object (its image), one with an unreadable image."""
    image = shapes.training.entity_images[5][0]
    return ["new_a", "new_b"], ["object number 99", "a large red circle"], [[image], ["/no/such/image.png"]]


def test_add_entities_scores_new_entities_and_keeps_the_old_scores(saved, shapes):
    model = load(saved)
    old_count = model.num_entities
    queries = torch.tensor([[0, 0], [3, 2], [7, 1]])
    with torch.no_grad():
        tails_before = model.predict_t(queries)
        heads_before = model.predict_h(queries[:, [1, 0]])
    embedding = model.interaction.encoder.get_input_embeddings().weight.detach().clone()
    offset, relations = model.queries.entity_token_offset, model.queries.relation_token_offset

    labels, descriptions, images = new_entity_inputs(shapes)
    with pytest.warns(UserWarning, match="no/such/image.png"):
        ids = model.add_entities(labels, descriptions, images)
    assert ids == {"new_a": old_count, "new_b": old_count + 1}
    assert model.num_entities == old_count + 2 == model.label_factory.num_entities
    assert model.images.skipped == [("/no/such/image.png", "missing file")]
    assert model.images.num_images(ids["new_a"]) == 1 and model.images.num_images(ids["new_b"]) == 0

    # layout: text | old entities | new entities | relations (moved up by 2)
    after = model.interaction.encoder.get_input_embeddings().weight.detach()
    assert after.shape[0] == embedding.shape[0] + 2
    assert torch.equal(after[:relations], embedding[:relations])
    assert torch.equal(after[relations + 2 :], embedding[relations:])
    # new rows: the mean word embedding of the text, by hand
    for label, text in zip(labels, descriptions):
        token_ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert torch.allclose(after[offset + ids[label]], embedding[token_ids].mean(dim=0), atol=1e-6)

    with torch.no_grad():
        tails_after = model.predict_t(queries)
        heads_after = model.predict_h(queries[:, [1, 0]])
        # old queries: old candidates keep their scores, new ones are candidates too
        assert tails_after.shape == (3, old_count + 2)
        assert torch.allclose(tails_after[:, :old_count], tails_before, atol=1e-5)
        assert torch.allclose(heads_after[:, :old_count], heads_before, atol=1e-5)
        # a new entity as the known entity: its own token, text and image are read
        new_queries = model.predict_t(torch.tensor([[ids["new_a"], 0], [ids["new_b"], 0]]))
        assert not torch.allclose(new_queries[0], new_queries[1])

    # explain reads a new entity's text with the model's own tokenizer (a rebuilt one would differ: the
    # WordPiece vocabulary of a random text tower is trained on the graph's texts, which now include the new ones)
    from pykeen_mkgformer.explain.link_prediction import explain_link_prediction
    from pykeen_mkgformer.kgc.inputs import recover_tokenizer

    assert recover_tokenizer(model, model.label_factory, ids["new_a"], 0) is model.tokenizer
    explanation = explain_link_prediction(model, model.label_factory, head="new_b", relation=model.label_factory.relation_id_to_label[0])
    words = [token.text for token in explanation.tokens if token.kind == "text"]
    expected = model.tokenizer.tokenize("a large red circle")
    assert words[-len(expected) :] == expected

    relation = model.label_factory.relation_id_to_label[0]
    as_query = predict_target(model=model, head="new_a", relation=relation, triples_factory=model.label_factory).df
    assert len(as_query) == old_count + 2 and {"new_a", "new_b"} <= set(as_query["tail_label"])
    as_answer = predict_target(model=model, relation=relation, tail="object_000", triples_factory=model.label_factory).df
    assert "new_b" in set(as_answer["head_label"])


def test_stage_one_moves_only_the_new_rows(saved, shapes):
    model = load(saved)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    labels, descriptions, images = new_entity_inputs(shapes)
    text_initialised = copy.deepcopy(model)
    with pytest.warns(UserWarning):
        text_initialised.add_entities(labels, descriptions, images)
        ids = model.add_entities(labels, descriptions, images, entity_modeling_epochs=3, entity_modeling_lr=1e-2)
    offset = model.queries.entity_token_offset
    new_rows = [offset + i for i in ids.values()]
    weight = model.interaction.encoder.get_input_embeddings().weight.detach()
    reference = text_initialised.interaction.encoder.get_input_embeddings().weight.detach()
    moved = (weight != reference).any(dim=1).nonzero().view(-1).tolist()
    assert moved == new_rows
    for name, parameter in model.named_parameters():
        if parameter.shape == before[name].shape:  # every parameter but the grown embedding and bias
            assert torch.equal(parameter.detach(), before[name]), name
    assert not model._running_entity_modeling and model.training is False


def test_extended_model_saves_loads_and_continues_training(saved, shapes, tmp_path):
    model = load(saved)
    labels, descriptions, images = new_entity_inputs(shapes)
    with pytest.warns(UserWarning):
        ids = model.add_entities(labels, descriptions, images)
    torch.save(model, tmp_path / "extended.pkl")
    loaded = torch.load(tmp_path / "extended.pkl", weights_only=False)
    probe = torch.tensor([[ids["new_a"], 1], [2, 0]])
    with torch.no_grad():
        assert torch.allclose(loaded.predict_t(probe), model.predict_t(probe), atol=1e-6)
    assert loaded.label_factory.entity_to_id == model.label_factory.entity_to_id

    # PyKEEN's loop on a factory with triples about the new entities continues from the extended weights
    extended = extend_triples_factory(
        shapes.training,
        labels,
        descriptions,
        images,
        triples=[("new_a", "same_shape_as", "object_005"), ("object_005", "same_shape_as", "new_a")],
    )
    assert extended.entity_to_id == loaded.label_factory.entity_to_id
    assert extended.num_triples == shapes.training.num_triples + 2
    weight_before = loaded.interaction.encoder.get_input_embeddings().weight.detach().clone()
    loop = LCWATrainingLoop(model=loaded, triples_factory=extended, optimizer="adam", optimizer_kwargs=dict(lr=1e-3))
    losses = loop.train(triples_factory=extended, num_epochs=2, batch_size=32, use_tqdm=False)
    assert len(losses) == 2 and all(loss == loss for loss in losses)
    weight_after = loaded.interaction.encoder.get_input_embeddings().weight.detach()
    # trained on from the extended weights (no reset to a fresh model): small steps from where it was
    assert (weight_after - weight_before).abs().max() < 0.05
    assert not torch.equal(weight_after, weight_before)


def test_errors_name_the_offending_entities_and_change_nothing(saved):
    model = load(saved)
    count, vocabulary = model.num_entities, model.interaction.encoder.get_input_embeddings().num_embeddings
    with pytest.raises(NewEntityError, match="already exist.*object_001"):
        model.add_entities(["object_001"], ["a thing"])
    with pytest.raises(NewEntityError, match="more than once.*twin"):
        model.add_entities(["twin", "twin"], ["a", "b"])
    with pytest.raises(NewEntityError, match="no description.*mute"):
        model.add_entities(["fine", "mute"], ["described", "  "])
    with pytest.raises(NewEntityError, match="3 entries for 2"):
        model.add_entities(["x", "y"], ["a", "b", "c"])
    with pytest.raises(NewEntityError, match="images has 1 entries"):
        model.add_entities(["x", "y"], ["a", "b"], [["p.png"]])
    assert model.num_entities == count == model.label_factory.num_entities
    assert model.interaction.encoder.get_input_embeddings().num_embeddings == vocabulary


# ---------------------------------------------------------------------- the predict command
def test_predict_command_on_a_pipeline_folder_with_new_entities(saved, shapes, tmp_path):
    import json
    import shutil

    from click.testing import CliRunner

    from pykeen_mkgformer.cli import main

    runner = CliRunner()
    plain = runner.invoke(main, ["predict", "--model", str(saved), "--head", "object_001", "--relation",
                                 "same colour as", "--top", "3", "--json"])
    assert plain.exit_code == 0, plain.output
    answer = json.loads(plain.output)
    assert answer["query"] == ["object_001", "same_colour_as", "?"] and answer["side"] == "tail"
    assert [p["rank"] for p in answer["predictions"]] == [1, 2, 3]
    scores = [p["score"] for p in answer["predictions"]]
    assert scores == sorted(scores, reverse=True) and not any(p["new"] for p in answer["predictions"])
    # the same ranking as the model's own scores
    model = load(saved)
    with torch.no_grad():
        relation = model.label_factory.relation_to_id["same_colour_as"]
        best = model.predict_t(torch.tensor([[1, relation]]))[0].topk(3).indices.tolist()
    assert [p["id"] for p in answer["predictions"]] == best

    shutil.copy(shapes.training.entity_images[5][0], tmp_path / "picture.png")
    entities = tmp_path / "new.jsonl"
    entities.write_text(
        json.dumps({"label": "new_a", "description": "object number 99", "images": ["picture.png"]}) + "\n"
        + json.dumps({"label": "new_b", "description": "a red circle", "images": ["gone.png"], "name": "red circle"}) + "\n"
    )
    extended_dir = tmp_path / "extended"
    added = runner.invoke(main, ["predict", "--model", str(saved), "--add-entities", str(entities), "--save",
                                 str(extended_dir), "--head", "new_a", "--relation", "same_shape_as", "--top", "30",
                                 "--json", "--entity-modeling-epochs", "1"])
    assert added.exit_code == 0, added.output
    assert "gone.png" in added.stderr and "added 2 entities" in added.stderr
    answer = json.loads(added.stdout)
    assert answer["added"] == {"new_a": 24, "new_b": 25} and answer["query"][0] == "new_a"
    assert {p["label"] for p in answer["predictions"] if p["new"]} == {"new_a", "new_b"}

    # the saved folder: the new entities by label or by name, as query and as answer
    again = runner.invoke(main, ["predict", "--model", str(extended_dir), "--tail", "red circle", "--relation",
                                 "same_colour_as", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["query"] == ["?", "same_colour_as", "new_b"], again.stderr
    rank = runner.invoke(main, ["predict", "--model", str(extended_dir), "--head", "object_002", "--relation",
                                "larger_than", "--tail", "new_a"])
    assert rank.exit_code == 0 and "new_a: rank" in rank.output, rank.output

    # explain reads the saved extended folder too: a new entity's own query page
    page = runner.invoke(main, ["explain", "--model", str(extended_dir), "--head", "new_a", "--relation",
                                "same_shape_as", "--output", str(tmp_path / "new_a.html")])
    assert page.exit_code == 0, page.output
    assert "new_a" in (tmp_path / "new_a.html").read_text()

    # errors: an unknown label (with suggestions), a label that exists
    unknown = runner.invoke(main, ["predict", "--model", str(saved), "--head", "object_0001", "--relation", "larger_than"])
    assert unknown.exit_code != 0 and "Unknown entity 'object_0001'" in unknown.output
    entities.write_text(json.dumps({"label": "object_003", "description": "again"}) + "\n")
    exists = runner.invoke(main, ["predict", "--model", str(saved), "--add-entities", str(entities), "--head",
                                  "object_003", "--relation", "larger_than"])
    assert exists.exit_code != 0 and "already exist" in exists.output and "object_003" in exists.output


def test_new_entity_files_name_the_bad_line(tmp_path):
    from pykeen_mkgformer.kgc.new_entities import read_new_entities

    path = tmp_path / "new.jsonl"
    path.write_text('{"label": "a", "description": "first", "images": "a.png"}\n\n{"label": 3}\n')
    with pytest.raises(NewEntityError, match=r"new.jsonl:3: field 'label' must be a string, got int"):
        read_new_entities(path)
    path.write_text('{"label": "a", "description": "first", "images": "a.png"}\nnot json\n')
    with pytest.raises(NewEntityError, match=r"new.jsonl:2: not valid JSON"):
        read_new_entities(path)
    path.write_text('{"label": "a", "description": "first", "images": "a.png"}\n')
    assert read_new_entities(path) == dict(
        labels=["a"], descriptions=["first"], images=[(str(tmp_path / "a.png"),)], names=["a"]
    )
