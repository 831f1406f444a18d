"""MKGformer as an ERModel: identical scores to the 0.1 ``Model`` form, parts in PyKEEN's resolvers, composition."""

from __future__ import annotations

import pytest
import torch
from kgc_reference import reference_scores
from kgc_support import REPO_ROOT, run_python, tiny_model_kwargs
from pykeen.models import ERModel

from pykeen_mkgformer.kgc import MKGformer
from pykeen_mkgformer.kgc.interaction import MKGformerInteraction


def _perturb(model: MKGformer) -> None:
    """Weights that are not the initial ones (biases, token rows), so the test sees every term."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        bias = model.entity_representations[2].bias
        bias.copy_(torch.randn(bias.shape, generator=generator))
        weight = model.interaction.encoder.get_input_embeddings().weight
        weight.add_(0.1 * torch.randn(weight.shape, generator=generator))


@pytest.mark.parametrize("recipe", ["plugin", "official"])
def test_scores_equal_the_model_form_reference(shapes, image_cache, recipe):
    """score_t / score_h / score_hrt / restricted candidates == 0.1's hand-written forward, to the bit."""
    model = MKGformer(triples_factory=shapes.training, random_seed=0, recipe=recipe, **tiny_model_kwargs(image_cache))
    assert isinstance(model, ERModel) and isinstance(model.interaction, MKGformerInteraction)
    assert model.images is not None
    _perturb(model)
    model.eval()
    hrt = shapes.training.mapped_triples[:7].clone()
    with torch.no_grad():
        expected_tails = reference_scores(model, hrt[:, 0], hrt[:, 1])
        assert torch.equal(model.score_t(hrt[:, :2]), expected_tails)
        # (?, r, t) is the query (t, r xor 1, ?): in the official format the head layout
        expected_heads = reference_scores(model, hrt[:, 2], hrt[:, 1] ^ 1)
        assert torch.equal(model.score_h(hrt[:, 1:]), expected_heads)
        subset = torch.tensor([5, 0, 2])
        assert torch.equal(model.score_t(hrt[:, :2], tails=subset), reference_scores(model, hrt[:, 0], hrt[:, 1], subset))
        per_query = torch.randint(shapes.training.num_entities, (7, 4), generator=torch.Generator().manual_seed(1))
        assert torch.allclose(
            model.score_t(hrt[:, :2], tails=per_query), reference_scores(model, hrt[:, 0], hrt[:, 1], per_query), atol=1e-6
        )
        hrt_scores = model.score_hrt(hrt)
        assert torch.allclose(hrt_scores[:, 0], expected_tails.gather(1, hrt[:, 2:3])[:, 0], atol=1e-5)
        # ERModel's general broadcast forward: (b, 1) heads and relations against (1, n) tails
        every = torch.arange(model.num_entities).unsqueeze(0)
        broadcast = model(hrt[:, 0:1], hrt[:, 1:2], every, mode=None)
        assert torch.allclose(broadcast, expected_tails, atol=1e-5)


def test_text_only_model_has_no_image_slot(shapes, image_cache):
    model = MKGformer(triples_factory=shapes.training, random_seed=0, **tiny_model_kwargs(image_cache, max_images=0))
    assert model.images is None and list(model.interaction.head_indices) == [0]
    assert len(model.entity_representations) == 3
    _perturb(model)
    model.eval()
    hr = shapes.training.mapped_triples[:3, :2]
    with torch.no_grad():
        assert torch.equal(model.score_t(hr), reference_scores(model, hr[:, 0], hr[:, 1]))


def test_old_state_dict_keys_load(shapes, image_cache):
    """A state dict of the Model form (``entity_representation.bias``) loads into the ERModel form."""
    model = MKGformer(triples_factory=shapes.training, random_seed=0, **tiny_model_kwargs(image_cache))
    state = model.state_dict()
    bias = torch.arange(float(model.num_entities))
    state["entity_representation.bias"] = bias
    del state["entity_representations.2.bias"]
    model.load_state_dict(state)
    assert torch.equal(model.entity_representations[2].bias.detach(), bias)


# ---------------------------------------------------------------------- PyKEEN's resolvers, composition
def test_parts_resolve_in_a_fresh_interpreter():
    """After PyKEEN builds its model registry (``pipeline``'s import), the plugin's parts resolve by name."""
    code = (
        "from pykeen.pipeline import pipeline\n"
        "from pykeen.nn.modules import interaction_resolver\n"
        "from pykeen.nn import representation_resolver\n"
        "from pykeen_mkgformer.kgc.interaction import MKGformerInteraction\n"
        "from pykeen_mkgformer.kgc.multimodal import MultimodalEntityRepresentation\n"
        "assert interaction_resolver.lookup('MKGformer') is MKGformerInteraction\n"
        "assert representation_resolver.lookup('MultimodalEntity') is MultimodalEntityRepresentation\n"
        "for name in ('EntityTextTokens', 'RelationTextTokens', 'EntityTokenEmbedding', 'EntityBias', 'EntityImage'):\n"
        "    representation_resolver.lookup(name)\n"
        "print('ok')\n"
    )
    assert run_python(code, cwd=REPO_ROOT).stdout.strip().endswith("ok")


def test_rotate_over_the_multimodal_representation(shapes, image_cache):
    """ERModel(interaction="RotatE", entity_representations=<multimodal>) and the CombinedRepresentation form train."""
    from pykeen.nn.representation import CombinedRepresentation, Embedding
    from pykeen.training import SLCWATrainingLoop

    from pykeen_mkgformer.kgc.multimodal import MultimodalEntityRepresentation

    factory = shapes.training
    multimodal = MultimodalEntityRepresentation(
        triples_factory=factory, model_kwargs=tiny_model_kwargs(image_cache, random_seed=0), shape=8, dtype=torch.cfloat
    )
    combined = CombinedRepresentation(
        max_id=factory.num_entities,
        base=[Embedding(max_id=factory.num_entities, shape=8, dtype=torch.cfloat), multimodal],
        combination="ComplexSeparated",
        combination_kwargs=dict(combination="ConcatProjection", combination_kwargs=dict(input_dims=[8, 8], output_dim=8)),
    )
    for entities in (multimodal, combined):
        model = ERModel(
            triples_factory=factory,
            interaction="RotatE",
            entity_representations=entities,
            relation_representations_kwargs=dict(shape=8, dtype=torch.cfloat),
            random_seed=0,
        )
        encoder_state = {k: v.clone() for k, v in multimodal.model.state_dict().items()}
        losses = SLCWATrainingLoop(model=model, triples_factory=factory).train(
            triples_factory=factory, num_epochs=3, batch_size=64, use_tqdm=False
        )
        assert losses[-1] < losses[0]
        # the hybrid encoder is frozen and never reset by the host model
        assert all(torch.equal(v, multimodal.model.state_dict()[k]) for k, v in encoder_state.items())
        assert model.score_t(factory.mapped_triples[:2, :2]).shape == (2, factory.num_entities)


def test_multimodal_rotate_trains_by_name_through_pipeline(shapes, image_cache):
    from pykeen.pipeline import pipeline

    from pykeen_mkgformer.kgc.registry import register_with_pykeen

    register_with_pykeen()  # the plugin's registration calls it where PyKEEN builds its model registry
    result = pipeline(
        model="MultimodalRotatE",
        model_kwargs=dict(
            embedding_dim=8,
            structure=True,
            multimodal_kwargs=dict(model_kwargs=tiny_model_kwargs(image_cache, random_seed=0)),
        ),
        training=shapes.training,
        testing=shapes.testing,
        training_kwargs=dict(num_epochs=2, batch_size=128, use_tqdm=False),
        evaluation_kwargs=dict(use_tqdm=False),
        random_seed=0,
    )
    assert type(result.model).__name__ == "MultimodalRotatE"
    assert 0.0 < result.metric_results.get_metric("mrr") <= 1.0


class _CosineHead(MKGformerInteraction):
    """A second scoring head in one class: cosine similarity, scaled, no bias."""

    def score_candidates(self, queries, entity_embeddings, entity_bias):
        queries = torch.nn.functional.normalize(queries, dim=-1)
        entity_embeddings = torch.nn.functional.normalize(entity_embeddings, dim=-1)
        return 10.0 * super().score_candidates(queries, entity_embeddings, torch.zeros_like(entity_bias))


def test_a_scoring_head_is_one_class(shapes, image_cache):
    model = MKGformer(triples_factory=shapes.training, random_seed=0, scoring_head=_CosineHead, **tiny_model_kwargs(image_cache))
    assert type(model.interaction) is _CosineHead
    _perturb(model)
    model.eval()
    hr = shapes.training.mapped_triples[:4, :2]
    with torch.no_grad():
        vectors = model.encode_queries(hr[:, 0], hr[:, 1])
        embeddings, _ = model.candidate_vectors()
        by_hand = 10.0 * torch.nn.functional.normalize(vectors, dim=-1) @ torch.nn.functional.normalize(embeddings, dim=-1).t()
        assert torch.allclose(model.score_t(hr), by_hand, atol=1e-5)
        assert float(model.score_t(hr).abs().max()) <= 10.0 + 1e-4
        # score_hrt goes through the same head
        hrt = shapes.training.mapped_triples[:4]
        assert torch.allclose(model.score_hrt(hrt)[:, 0], by_hand.gather(1, hrt[:, 2:3])[:, 0], atol=1e-5)
    with pytest.raises(TypeError, match="scoring_head"):
        MKGformer(triples_factory=shapes.training, scoring_head="TransE", **tiny_model_kwargs(image_cache))


def test_a_model_pickled_in_the_model_form_loads_with_the_same_scores(shapes, image_cache):
    """0.1 pickled ``entity_representation`` (token rows + bias) and ``images`` on a plain ``Model``: they upgrade."""
    import pickle

    from pykeen_mkgformer.kgc.representation import EntityTokenRepresentation

    model = MKGformer(triples_factory=shapes.training, random_seed=0, **tiny_model_kwargs(image_cache))
    _perturb(model)
    model.eval()
    hr = shapes.training.mapped_triples[:5, :2]
    with torch.no_grad():
        expected = model.score_t(hr)
    # the 0.1 layout, as it was pickled: its attribute and module names, no ERModel parts
    representations = model._modules.pop("entity_representations")
    for name in ("relation_representations", "weight_regularizers"):
        model._modules.pop(name)
    old = EntityTokenRepresentation(representations[1].word_embeddings, offset=representations[1].offset, num_entities=model.num_entities)
    old.bias = representations[2].bias
    model._modules["entity_representation"] = old
    model.__dict__["images"] = representations[3].images
    for name in ("layout", "use_images"):
        model.interaction.__dict__.pop(name)
    restored = pickle.loads(pickle.dumps(model))
    assert isinstance(restored, ERModel) and restored.images is not None and len(restored.entity_representations) == 4
    with torch.no_grad():
        assert torch.equal(restored.score_t(hr), expected)
