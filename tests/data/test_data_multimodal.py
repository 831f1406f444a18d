"""MultimodalTriplesFactory: attributes stay aligned with PyKEEN's ids through everything PyKEEN does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pykeen.triples import TriplesFactory

from pykeen_mkgformer.data import MultimodalTriplesFactory

# labels that look like numbers, as WordNet's offsets do
TRIPLES = np.array(
    [
        ["00000010", "hypernym", "00000020"],
        ["00000020", "hypernym", "00000030"],
        ["00000030", "part_of", "00000040"],
        ["00000040", "part_of", "00000050"],
        ["00000050", "hypernym", "00000010"],
        ["00000010", "part_of", "00000030"],
        ["00000020", "part_of", "00000040"],
        ["00000030", "hypernym", "00000050"],
        ["00000040", "hypernym", "00000060"],
        ["00000060", "part_of", "00000010"],
    ]
)
ENTITIES = ["00000010", "00000020", "00000030", "00000040", "00000050", "00000060"]


def attributes_by_label(tf: MultimodalTriplesFactory) -> dict[str, tuple]:
    """label -> (name, description, images) as the factory holds them."""
    return {
        label: (tf.entity_names[i], tf.entity_descriptions[i], tf.entity_images[i])
        for label, i in tf.entity_to_id.items()
    }


@pytest.fixture()
def factory(tmp_path) -> MultimodalTriplesFactory:
    images = {e: tuple(str(tmp_path / f"{e}_{k}.jpg") for k in range(int(e[-2]) % 3)) for e in ENTITIES}
    return MultimodalTriplesFactory.from_labeled_triples(
        TRIPLES,
        entity_names={e: f"name {e}" for e in ENTITIES[:-1]},  # the last one falls back to its label
        entity_descriptions={e: f"text of {e}" for e in ENTITIES[1:]},  # the first has none
        entity_images=images,
        relation_texts={"hypernym": "is a kind of"},  # part_of falls back to its label
    )


def test_attributes_are_indexed_by_ids(factory):
    ids = factory.entity_to_id
    assert factory.entity_names[ids["00000010"]] == "name 00000010"
    assert factory.entity_names[ids["00000060"]] == "00000060"
    assert factory.entity_descriptions[ids["00000010"]] == ""
    assert factory.entity_descriptions[ids["00000030"]] == "text of 00000030"
    assert len(factory.entity_images[ids["00000020"]]) == 2
    assert factory.entity_images[ids["00000030"]] == ()
    assert factory.relation_texts[factory.relation_to_id["hypernym"]] == "is a kind of"
    assert factory.relation_texts[factory.relation_to_id["part_of"]] == "part_of"
    assert factory.num_described_entities == 5
    assert factory.num_imaged_entities == 4
    assert "num_imaged_entities=4" in repr(factory)


def test_defaults_and_length_checks():
    tf = TriplesFactory.from_labeled_triples(TRIPLES)
    plain = MultimodalTriplesFactory(
        mapped_triples=tf.mapped_triples, entity_to_id=tf.entity_to_id, relation_to_id=tf.relation_to_id
    )
    assert plain.entity_names == [tf.entity_id_to_label[i] for i in range(tf.num_entities)]
    assert plain.entity_descriptions == [""] * tf.num_entities
    assert plain.entity_images == [()] * tf.num_entities
    with pytest.raises(ValueError, match="entity_descriptions has 2 entries, but there are 6 ids"):
        MultimodalTriplesFactory(
            mapped_triples=tf.mapped_triples,
            entity_to_id=tf.entity_to_id,
            relation_to_id=tf.relation_to_id,
            entity_descriptions=["a", "b"],
        )


def test_split_keeps_ids_and_attributes(factory):
    parts = factory.split([0.6, 0.2, 0.2], random_state=0)
    assert sum(p.num_triples for p in parts) == factory.num_triples
    for part in parts:
        assert isinstance(part, MultimodalTriplesFactory)
        assert part.entity_to_id == factory.entity_to_id
        assert attributes_by_label(part) == attributes_by_label(factory)
        assert part.relation_texts == factory.relation_texts


def test_new_with_restriction_and_merge(factory):
    restricted = factory.new_with_restriction(relations={"hypernym"})
    assert isinstance(restricted, MultimodalTriplesFactory)
    assert restricted.num_triples == 5
    assert attributes_by_label(restricted) == attributes_by_label(factory)
    merged = restricted.merge(factory.new_with_restriction(relations={"part_of"}))
    assert isinstance(merged, MultimodalTriplesFactory)
    assert merged.num_triples == factory.num_triples
    assert attributes_by_label(merged) == attributes_by_label(factory)


def test_condense_remaps_attributes_by_label(factory):
    # drop every triple that touches 00000030, then condense: later ids shift, attributes must follow labels
    restricted = factory.new_with_restriction(entities={"00000030"}, invert_entity_selection=True)
    condensed = restricted.condense(entities=True)
    assert condensed.num_entities == 5
    assert "00000030" not in condensed.entity_to_id
    assert condensed.entity_to_id["00000060"] == 4
    expected = {k: v for k, v in attributes_by_label(factory).items() if k != "00000030"}
    assert attributes_by_label(condensed) == expected


def test_inverse_triples_keep_one_text_per_real_relation():
    tf = MultimodalTriplesFactory.from_labeled_triples(
        TRIPLES, relation_texts={"hypernym": "is a kind of", "part_of": "is part of"}, create_inverse_triples=True
    )
    assert tf.num_relations == 4 and tf.real_num_relations == 2
    assert len(tf.relation_texts) == 2
    training, testing = tf.split(0.8, random_state=1)
    assert training.create_inverse_triples and not testing.create_inverse_triples
    assert training.relation_texts == testing.relation_texts == tf.relation_texts


def test_binary_round_trip(factory, tmp_path):
    path = factory.to_path_binary(tmp_path / "binary")
    loaded = MultimodalTriplesFactory.from_path_binary(path)
    assert loaded == factory  # PyKEEN's equality: ids, mappings, triples
    # labels that look like numbers stay strings
    assert set(loaded.entity_to_id) == set(ENTITIES)
    assert attributes_by_label(loaded) == attributes_by_label(factory)
    assert loaded.relation_texts == factory.relation_texts
    assert torch.equal(loaded.mapped_triples, factory.mapped_triples)


def test_plain_binary_is_refused(tmp_path):
    path = TriplesFactory.from_labeled_triples(TRIPLES).to_path_binary(tmp_path / "plain")
    with pytest.raises(FileNotFoundError, match="multimodal.json.gz"):
        MultimodalTriplesFactory.from_path_binary(path)


def test_from_triples_factory_copies_attributes_by_label(factory):
    relabelled = TriplesFactory.from_labeled_triples(TRIPLES[[2, 3]])  # 00000030, 00000040, 00000050 get ids 0-2
    copied = MultimodalTriplesFactory.from_triples_factory(relabelled, attributes_from=factory)
    assert copied.entity_to_id == relabelled.entity_to_id != factory.entity_to_id
    expected = {k: v for k, v in attributes_by_label(factory).items() if k in relabelled.entity_to_id}
    assert attributes_by_label(copied) == expected
    assert copied.relation_texts == ["part_of"]
