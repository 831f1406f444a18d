"""The official link-prediction image path, from a WN18-layout folder to the fused encoder's states.

Entities with 0, 1, 3 and 9 images: the official collator (``MKG/data/data_module.py``) lists an
entity's folder with ``os.listdir``, draws ``random.sample(k=7)`` after ``random.seed(1)`` when there
are more than 7, puts the first at 224 px, the next 3 at 128 px and the last 3 at 64 px, and fills
empty slots with zero images that the encoder attends to. The plugin's ``recipe="official"``
(``image_choice="official"``, ``missing_images="zeros"``) must give the same pixels, and the
official encoder (:mod:`official_reference`) on them the same states (float64).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessorPil

from kgc_support import tiny_model_kwargs
from official_reference import official_encoder, official_lp_vision
from pykeen_mkgformer.data.images import ImageLayout
from pykeen_mkgformer.data.multimodal import MultimodalTriplesFactory
from pykeen_mkgformer.data.readers import list_entity_images
from pykeen_mkgformer.kgc import MKGformer
from pykeen_mkgformer.kgc.presets import tiny_vision_encoder
from pykeen_mkgformer.kgc.recipe import choose_images

COUNTS = {"n0": 0, "n1": 1, "n3": 3, "n9": 9}
SLOTS = ((1, 224), (3, 128), (3, 64))


@pytest.fixture(scope="module")
def wn18_layout(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wn18_images")
    for seed, (entity, count) in enumerate(COUNTS.items()):
        folder = root / entity
        folder.mkdir()
        # names whose sorted order differs from creation order
        for index in range(count):
            generator = np.random.default_rng(100 * seed + index)
            pixels = generator.integers(0, 256, (48 + 8 * index, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{entity}_{(7 * index) % 10}{index}.png")
    return root


def _official_pixels(root: Path, entity: str) -> list[torch.Tensor]:
    """The official collator's three groups for one entity (float64)."""
    folder = root / entity
    files = [os.path.join(folder, name) for name in os.listdir(folder)] if folder.is_dir() else []
    if len(files) > 7:
        random.seed(1)
        files = random.sample(files, k=7)
    groups, start = [], 0
    for count, side in SLOTS:
        processor = CLIPImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
        chosen = files[start : start + count]
        start += count
        stack = []
        for path in chosen:
            with Image.open(path) as image:
                stack.append(processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"][0])
        stack += [torch.zeros(3, side, side)] * (count - len(chosen))
        groups.append(torch.stack(stack).double())
    return groups


def _model(root: Path, cache: Path, recipe: str | dict) -> tuple[MKGformer, MultimodalTriplesFactory]:
    images = list_entity_images(root)
    triples = np.array([["n0", "r", "n1"], ["n1", "r", "n3"], ["n3", "r", "n9"], ["n9", "r", "n0"]])
    factory = MultimodalTriplesFactory.from_labeled_triples(triples, entity_images=images)
    torch.manual_seed(0)
    model = MKGformer(
        triples_factory=factory,
        recipe=recipe,
        fusion_variant="official",
        random_seed=0,
        **tiny_model_kwargs(
            cache, fusion_layers=2, max_images=None, image_layout=ImageLayout.official(),
            vision_encoder=tiny_vision_encoder(image_size=224, patch_size=32),
        ),
    )
    return model, factory


def test_official_image_choice_is_listdir_order_and_the_seeded_draw(wn18_layout):
    folder = wn18_layout / "n9"
    paths = sorted(str(path) for path in folder.iterdir())
    listed = [os.path.join(folder, name) for name in os.listdir(folder)]
    random.seed(1)
    expected = random.sample(listed, k=7)
    state = random.getstate()
    assert choose_images(paths, "official") == expected
    assert random.getstate() == state  # the global random state is not used
    assert choose_images(paths, "sorted") == paths
    three = sorted(str(path) for path in (wn18_layout / "n3").iterdir())
    assert choose_images(three, "official") == [os.path.join(wn18_layout / "n3", n) for n in os.listdir(wn18_layout / "n3")]


def test_official_lp_pixels_and_states_equal_the_reference(wn18_layout, tmp_path):
    model, factory = _model(wn18_layout, tmp_path / "cache", "official")
    model = model.double().eval()
    entities = torch.tensor([factory.entity_to_id[label] for label in COUNTS])
    pixel_values, image_mask = model.images.lookup(entities, device=torch.device("cpu"))
    reference = [torch.stack(group) for group in zip(*(_official_pixels(wn18_layout, label) for label in COUNTS))]
    for ours, theirs in zip(pixel_values, reference):
        assert ours.shape == theirs.shape
        assert float((ours.double() - theirs).abs().max()) <= 1e-5  # float32 pixels, uint8-resized
    assert all(mask.all() for mask in image_mask)  # zero images are attended (item 9)

    encoder = model.interaction.encoder
    query = model.queries.link_prediction(entities, torch.zeros_like(entities))
    with torch.no_grad():
        ours = encoder(
            input_ids=query.input_ids, attention_mask=query.attention_mask,
            pixel_values=[p.double() for p in pixel_values], image_mask=image_mask,
        ).text_last_hidden_state
        theirs, _ = official_encoder(
            encoder, query.input_ids, query.attention_mask, torch.zeros_like(query.input_ids),
            official_lp_vision(encoder, reference),
        )
    assert float((ours - theirs).abs().max()) <= 1e-6


@pytest.mark.parametrize("change", [{"image_choice": "sorted"}, {"missing_images": "masked"}])
def test_each_lp_switch_is_needed(wn18_layout, tmp_path, change):
    """Items 8 and 9: the plugin's choice (sorted names, masked slots) differs from the official input."""
    model, factory = _model(wn18_layout, tmp_path / "cache", {"base": "official", **change})
    entities = torch.tensor([factory.entity_to_id[label] for label in COUNTS])
    pixel_values, image_mask = model.images.lookup(entities, device=torch.device("cpu"))
    reference = [torch.stack(group) for group in zip(*(_official_pixels(wn18_layout, label) for label in COUNTS))]
    same_pixels = all(float((o.double() - t).abs().max()) <= 1e-5 for o, t in zip(pixel_values, reference))
    all_attended = all(mask.all() for mask in image_mask)
    assert not (same_pixels and all_attended)


# ------------------------------------------------------------------------------ item 11: texts and entity set
def test_official_text_cleaning_by_hand():
    from pykeen_mkgformer.kgc.recipe import KGCRecipe, clean_text

    raw = 'Born in Paris.\\nHe said \\"yes\\" \\\\ later'
    assert clean_text(raw) == 'Born in Paris. He said "yes"  later'
    assert clean_text(raw, "none") == raw
    assert KGCRecipe.official().text_cleaning == "official" and KGCRecipe().text_cleaning == "none"


def test_official_queries_read_the_cleaned_texts(wn18_layout, tmp_path):
    images = list_entity_images(wn18_layout)
    triples = np.array([["n0", "r", "n1"], ["n1", "r", "n3"]])
    descriptions = {"n0": "a\\nb", "n1": "c\\\\d", "n3": "plain"}
    factory = MultimodalTriplesFactory.from_labeled_triples(triples, entity_images=images, entity_descriptions=descriptions)
    texts = {}
    for recipe in ("plugin", "official"):
        model = MKGformer(triples_factory=factory, recipe=recipe, random_seed=0, **tiny_model_kwargs(tmp_path / "cache", max_images=0))
        query = model.queries.entity_modeling(torch.tensor([factory.entity_to_id["n0"]]))
        texts[recipe] = model.tokenizer.decode(query.input_ids[0][query.attention_mask[0].bool()])
    assert texts["official"].endswith("a b [UNK] [SEP]") and "\\" not in texts["official"]
    assert texts["plugin"] == "[CLS] [MASK] is a \\ nb [SEP]"  # the escape read as text


def test_entity2text_entities_are_ranked_too(tmp_path):
    from pykeen_mkgformer.data.readers import MultimodalFiles, load_multimodal_splits

    for name, lines in {
        "train.tsv": ["a\tr\tb", "b\tr\tc"], "valid.tsv": ["a\tr\tc"], "test.tsv": ["c\tr\ta"],
        "entity2text.tsv": ["a\tA", "b\tB", "c\tC", "d\tD only in the text table"], "relation2text.tsv": ["r\tR"],
    }.items():
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    files = MultimodalFiles(
        training=tmp_path / "train.tsv", validation=tmp_path / "valid.tsv", testing=tmp_path / "test.tsv",
        entity_texts=tmp_path / "entity2text.tsv", relation_texts=tmp_path / "relation2text.tsv",
    )
    training, _, testing = load_multimodal_splits(files)
    assert training.num_entities == 3
    training, _, testing = load_multimodal_splits(files, entities="entity2text")
    assert training.num_entities == testing.num_entities == 4 and "d" in training.entity_to_id


# ------------------------------------------------------------------------------ item 10: stage-1 selection
@pytest.mark.parametrize(("checkpoint_metric", "kept"), [("hits_at_10", 2.0), ("mrr", 1.0)])
def test_stage1_early_stops_on_mrr_and_keeps_the_best_hits_at_10(monkeypatch, checkpoint_metric, kept):
    """Validations with (MRR, Hits@10) = (0.525, 0.5), (0.5725, 0.55), (0.455, 0.9), (0.2483, 0.7), patience 2:
    stop after the 4th (two without a better MRR), keep the rows of the 3rd (best Hits@10, official) or,
    with ``entity_modeling_checkpoint_metric="mrr"``, of the 2nd (best MRR)."""
    from pykeen_mkgformer.kgc.entity_modeling import EntityModeling, _Selection

    n = 20
    plans = [  # rank of every entity at each validation
        [1] * 10 + [20] * 10,   # MRR (10 + 10/20)/20 = 0.525, hits 0.5
        [1] * 11 + [20] * 9,    # 0.5725, 0.55
        [2] * 18 + [20] * 2,    # 0.455, 0.9
        [3] * 14 + [20] * 6,    # (14/3 + 6/20)/20 = 0.2483, 0.7
    ]
    calls = {"validation": 0}

    def fake_logits(model, batch):
        ranks = torch.tensor(plans[calls["validation"]])[batch]
        logits = torch.full((len(batch), n), -1.0)
        for row, (entity, rank) in enumerate(zip(batch.tolist(), ranks.tolist())):
            others = [e for e in range(n) if e != entity][: rank - 1]
            logits[row, others] = 1.0
            logits[row, entity] = 0.0
        return logits

    monkeypatch.setattr(EntityModeling, "logits", staticmethod(fake_logits))
    selection, weight = _Selection(patience=2, checkpoint_metric=checkpoint_metric), torch.zeros(3)
    stops = []
    for validation in range(4):
        weight.fill_(validation)
        calls["validation"] = validation
        stops.append(selection.check(torch.nn.Linear(1, 1), torch.arange(n), weight, batch_size=7))
    assert stops == [False, False, False, True]
    assert [round(h["mrr"], 4) for h in selection.history] == [0.525, 0.5725, 0.455, 0.2483]
    selection.restore(weight)
    assert torch.equal(weight, torch.full((3,), kept))  # official: the third validation's rows (Hits@10 0.9)


def test_stage1_selection_switch(tmp_path):
    """The official recipe validates stage 1 (every epoch by default, every 10 in the WN18 file) and hands the
    best-Hits@10 rows to stage 2; the plugin's never validates (the last rows go on)."""
    from pykeen_mkgformer.data import ShapesKG

    dataset = ShapesKG(create_inverse_triples=True)
    for recipe, every in (("plugin", 0), ("official", 1), ({"base": "official", "entity_modeling_validate_every": 10}, 10)):
        model = MKGformer(triples_factory=dataset.training, recipe=recipe, random_seed=0,
                          **tiny_model_kwargs(tmp_path / "cache", max_images=0))
        assert (model.entity_modeling.validate_every, model.entity_modeling.patience) == (every, 5)
        assert model.entity_modeling.checkpoint_metric == ("mrr" if recipe == "plugin" else "hits_at_10")
