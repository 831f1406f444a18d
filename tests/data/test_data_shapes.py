"""ShapesKG: deterministic, answers consistent with the rendered attributes, visible only in images."""

from __future__ import annotations

import filecmp
import itertools

import numpy as np
import pytest
from PIL import Image

from pykeen_mkgformer.data import ShapesKG
from pykeen_mkgformer.data.shapes import COLOURS, SHAPES, SIZES


def read_attributes(folder) -> dict[str, tuple[str, str, str]]:
    lines = folder.joinpath("attributes.tsv").read_text().splitlines()[1:]
    return {entity: (colour, shape, size) for entity, colour, shape, size in (line.split("\t") for line in lines)}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return ShapesKG(cache_root=tmp_path_factory.mktemp("shapes"), images_per_entity=2)


def test_generation_is_deterministic(shapes, tmp_path):
    again = ShapesKG(cache_root=tmp_path, images_per_entity=2)
    first, second = shapes.files.training.parent, again.files.training.parent
    comparison = filecmp.dircmp(first, second)
    assert not comparison.left_only and not comparison.right_only
    names = ["train.tsv", "valid.tsv", "test.tsv", "entity2text.tsv", "attributes.tsv"]
    assert filecmp.cmpfiles(first, second, names, shallow=False)[0] == names
    for entity in ("object_000", "object_031"):
        images = [f"images/{entity}/{k}.png" for k in range(2)]
        assert filecmp.cmpfiles(first, second, images, shallow=False)[0] == images
    other_seed = ShapesKG(cache_root=tmp_path, images_per_entity=2, seed=1).files.training.parent
    assert read_attributes(other_seed) != read_attributes(first)


def test_triples_follow_the_attributes(shapes):
    folder = shapes.files.training.parent
    attributes = read_attributes(folder)
    assert len(attributes) == 48 and len(set(attributes.values())) == 48  # every combination once
    factories = [shapes.training, shapes.validation, shapes.testing]
    labelled = {tuple(map(str, row)) for tf in factories for row in tf.label_triples(tf.mapped_triples)}
    rank = {name: i for i, name in enumerate(SIZES)}
    for h, r, t in labelled:
        (hc, hs, hz), (tc, ts, tz) = attributes[h], attributes[t]
        assert {"same_colour_as": hc == tc, "same_shape_as": hs == ts, "larger_than": rank[hz] > rank[tz]}[r]
    # and every true fact between a head and a training entity is there
    training_entities = {e for h, _, t in shapes.training.label_triples(shapes.training.mapped_triples) for e in (h, t)}
    for h, t in itertools.permutations(attributes, 2):
        if t in training_entities and attributes[h][0] == attributes[t][0]:
            assert (h, "same_colour_as", t) in labelled


def test_held_out_heads_and_texts_reveal_nothing(shapes):
    training, validation, testing = shapes.training, shapes.validation, shapes.testing
    train_entities = set(training.mapped_triples[:, [0, 2]].unique().tolist())
    for tf in (validation, testing):
        heads = set(tf.mapped_triples[:, 0].tolist())
        assert heads and not heads & train_entities  # answers need the head's image
        assert set(tf.mapped_triples[:, 2].tolist()) <= train_entities
    assert not set(validation.mapped_triples[:, 0].tolist()) & set(testing.mapped_triples[:, 0].tolist())
    words = {*COLOURS, *SHAPES, *SIZES}
    for text in training.entity_descriptions + training.entity_names:
        assert text and not words & set(text.split())
    assert training.relation_texts == ["larger than", "same colour as", "same shape as"]


def test_images_show_the_attributes(shapes):
    attributes = read_attributes(shapes.files.training.parent)
    training = shapes.training
    areas = {}
    for label, (colour, _shape, size) in attributes.items():
        paths = training.entity_images[training.entity_to_id[label]]
        assert len(paths) == 2
        for path in paths:
            pixels = np.asarray(Image.open(path).convert("RGB"), dtype=int)
            assert pixels.shape == (32, 32, 3)
            drawn = (pixels != 255).any(axis=-1)
            mean = pixels[drawn].mean(axis=0)
            assert np.abs(mean - np.array(COLOURS[colour])).max() < 30, (label, mean)
            areas.setdefault(size, []).append(drawn.sum())
    assert np.mean(areas["small"]) < np.mean(areas["medium"]) < np.mean(areas["large"])


def test_image_size_is_configurable(tmp_path):
    small = ShapesKG(cache_root=tmp_path, image_size=16, num_entities=12)
    assert small.training.num_entities == 12
    path = small.training.entity_images[0][0]
    assert Image.open(path).size == (16, 16)
    with pytest.raises(ValueError, match="num_entities=2"):
        ShapesKG(cache_root=tmp_path, num_entities=2)


def test_pykeen_dataset_operations_keep_the_attributes(shapes):
    for derived in (shapes.remix(random_state=0), shapes.restrict(relations={"same_colour_as", "larger_than"})):
        for tf in (derived.training, derived.validation, derived.testing):
            assert len(tf.entity_images) == tf.num_entities
            for label, i in tf.entity_to_id.items():
                assert tf.entity_images[i] == shapes.training.entity_images[shapes.training.entity_to_id[label]]
    restricted = shapes.restrict(relations={"same_colour_as", "larger_than"})
    assert restricted.training.relation_texts == ["larger than", "same colour as"]


def test_test_answers_follow_from_the_head_images_alone(shapes, tmp_path):
    """Read colour and size off the cached pixels: they give exactly the true tails of every test query."""
    import torch
    from transformers import ViTImageProcessorPil

    from pykeen_mkgformer.data import ImageLayout, PixelCache

    training, testing = shapes.training, shapes.testing
    cache = PixelCache(
        training.entity_images,
        processor=ViTImageProcessorPil(size={"height": 32, "width": 32}, do_normalize=False),
        layout=ImageLayout.single(32),
        cache_dir=tmp_path,
        progress=False,
    )
    pixels = cache.lookup(torch.arange(training.num_entities))[0][0][:, 0] * 255  # (E, 3, 32, 32)
    drawn = (pixels < 250).any(dim=1)  # (E, 32, 32)
    mean_colour = (pixels * drawn[:, None]).sum(dim=(2, 3)) / drawn.sum(dim=(1, 2))[:, None]
    palette = torch.tensor(list(COLOURS.values()), dtype=torch.float)
    colour = torch.cdist(mean_colour, palette).argmin(dim=1)
    extent = torch.maximum(drawn.any(dim=1).sum(dim=1), drawn.any(dim=2).sum(dim=1))  # bounding box side

    relations = training.relation_to_id
    train_entities = training.mapped_triples[:, [0, 2]].unique().tolist()
    for h in testing.mapped_triples[:, 0].unique().tolist():
        for name, predicate in (
            ("same_colour_as", lambda t: colour[t] == colour[h]),
            ("larger_than", lambda t: extent[h] > 1.3 * extent[t]),
        ):
            true = testing.mapped_triples[
                (testing.mapped_triples[:, 0] == h) & (testing.mapped_triples[:, 1] == relations[name]), 2
            ]
            predicted = {t for t in train_entities if predicate(t)}
            assert predicted == set(true.tolist()), (name, h)


def test_plain_pykeen_pipeline_runs_on_the_datasets(tmp_path):
    from pykeen.pipeline import pipeline

    from pykeen_mkgformer.data import WN18IMGMini

    for dataset, loop in (
        (ShapesKG(cache_root=tmp_path, create_inverse_triples=True), "lcwa"),
        (WN18IMGMini(), "slcwa"),
    ):
        result = pipeline(
            dataset=dataset,
            model="TransE",
            model_kwargs=dict(embedding_dim=8),
            training_loop=loop,
            training_kwargs=dict(num_epochs=1, batch_size=256, use_tqdm=False),
            evaluation_kwargs=dict(use_tqdm=False, batch_size=512),
            random_seed=0,
        )
        assert 0 < result.metric_results.get_metric("mean_reciprocal_rank") <= 1
