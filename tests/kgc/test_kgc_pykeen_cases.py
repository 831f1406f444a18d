"""PyKEEN's own InteractionTestCase / RepresentationTestCase (vendored, tests/kgc/pykeen_cases.py) on MKGformer's parts.

Where a vendored check cannot apply as written, the subclass overrides it and says why.
"""

from __future__ import annotations

import unittest
from collections.abc import MutableMapping
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
import pykeen_cases
from torch import nn

from pykeen_mkgformer.data import MultimodalTriplesFactory
from pykeen_mkgformer.encoder import HybridConfig, HybridTransformer
from pykeen_mkgformer.encoder.config import resolve_backbone_config
from pykeen_mkgformer.kgc import presets
from pykeen_mkgformer.kgc.inputs import TOKEN_PAD, QueryAssembler, QueryLayout, train_wordpiece_tokenizer
from pykeen_mkgformer.kgc.interaction import MKGformerInteraction
from pykeen_mkgformer.kgc.multimodal import MultimodalEntityRepresentation
from pykeen_mkgformer.kgc.representation import (
    EntityBias,
    EntityImageRepresentation,
    EntityImages,
    EntityTextTokens,
    EntityTokenEmbedding,
    ImageBatch,
    RelationTextTokens,
)

VOCAB = 40
TEXT_WIDTH = 4  # text tokens per entity / relation in the generated token tables
LAYOUT = QueryLayout(cls_id=1, sep_id=2, mask_id=3, pad_id=0, max_seq_length=24)


def _tiny_encoder() -> HybridTransformer:
    torch.manual_seed(0)
    text = resolve_backbone_config({**presets.tiny_text_encoder(hidden_size=8), "vocab_size": VOCAB}, role="text")
    vision = resolve_backbone_config(presets.tiny_vision_encoder(hidden_size=8, image_size=16, patch_size=8), role="vision")
    return HybridTransformer(HybridConfig(text=text, vision=vision, fusion_layers=1))


class MKGformerInteractionTests(pykeen_cases.InteractionTestCase):
    """MKGformer's interaction under PyKEEN's interaction tests (head: token ids + images, tail: embedding + bias)."""

    cls = MKGformerInteraction
    dim = 8  # the text tower's hidden size: the candidate embedding's dimension

    def _pre_instantiation_hook(self, kwargs: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        kwargs = super()._pre_instantiation_hook(kwargs)
        kwargs.update(encoder=_tiny_encoder(), layout=LAYOUT, use_images=True)
        return kwargs

    def _get_hrt(self, *shapes: tuple[int, ...]):
        # The vendored version draws float tensors for every symbolic shape. MKGformer's head and relation
        # slots take token ids and an image batch, so valid inputs are drawn here instead (the tail slot is
        # what the vendored version would draw: a float vector "d" and a scalar "").
        generator = torch.Generator().manual_seed(int(np.prod([max(1, int(np.prod(s))) for s in shapes])))
        head_shape, relation_shape, tail_shape = shapes

        def table(prefix: tuple[int, ...]) -> torch.LongTensor:
            ids = torch.randint(5, VOCAB, (*prefix, 1 + TEXT_WIDTH), generator=generator)
            lengths = torch.randint(0, TEXT_WIDTH + 1, prefix, generator=generator)
            inside = torch.arange(TEXT_WIDTH) < lengths.unsqueeze(-1)
            ids[..., 1:] = torch.where(inside, ids[..., 1:], TOKEN_PAD)
            return ids

        tokens = table(head_shape)
        pixels = torch.rand((*head_shape, 1, 3, 16, 16), generator=generator)
        images = ImageBatch([pixels], [torch.ones((*head_shape, 1), dtype=torch.bool)], head_shape)
        relation = table(relation_shape)
        relation = torch.stack([relation, relation], dim=-2)  # forward relations: own row == forward row
        embeddings = torch.rand((*tail_shape, self.dim), generator=generator, requires_grad=True)
        bias = torch.rand(tail_shape, generator=generator, requires_grad=True)
        return [tokens, images], relation, [embeddings, bias]

    def _exp_score(self, h, r, t) -> torch.FloatTensor:
        # by hand: [CLS] <e> [SEP] <r text> <r> [SEP] [MASK] <e text> [SEP], the [MASK] state through the MLM
        # transform, dotted with the candidate embedding, plus its bias
        tokens, images = h
        entity_text = [int(i) for i in tokens[1:] if i != TOKEN_PAD]
        relation_text = [int(i) for i in r[0, 1:] if i != TOKEN_PAD]
        ids = [1, int(tokens[0]), 2, *relation_text, int(r[0, 0]), 2, 3, *entity_text, 2]
        encoder = self.instance.encoder
        output = encoder(
            input_ids=torch.as_tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            pixel_values=[images.pixel_values[0].unsqueeze(0)],
            image_mask=[images.image_mask[0].unsqueeze(0)],
        )
        mask_position = 3 + len(relation_text) + 2
        vector = self.instance.mlm_transform(output.text_last_hidden_state[0, mask_position])
        embedding, bias = t
        return vector @ embedding + bias


def _factory(tmp: Any, num_entities: int = 7) -> MultimodalTriplesFactory:
    """A 7-entity multimodal graph: descriptions for all, one picture for every other entity."""
    labels = [f"e{i}" for i in range(num_entities)]
    triples = np.array([[labels[i], "next" if i % 2 else "near", labels[(i + 1) % num_entities]] for i in range(num_entities)])
    images = {}
    for i in range(0, num_entities, 2):
        path = tmp / f"e{i}.png"
        Image.fromarray(np.full((20, 20, 3), 30 * i, dtype=np.uint8)).save(path)
        images[labels[i]] = [str(path)]
    return MultimodalTriplesFactory.from_labeled_triples(
        triples,
        entity_descriptions={label: f"a thing numbered {label} with colour {i}" for i, label in enumerate(labels)},
        entity_images=images,
        relation_texts={"next": "is next to", "near": "is near"},
    )


class _AssemblerCase(pykeen_cases.RepresentationTestCase):
    """Representations of token ids."""

    queries: ClassVar[QueryAssembler]

    @classmethod
    def setUpClass(cls) -> None:
        texts = [f"entity {i} is a {'red' if i % 2 else 'blue'} square" for i in range(7)]
        relations = ["left of", "inverse of left of", "above", "inverse of above"]
        tokenizer = train_wordpiece_tokenizer([*texts, *relations, "is"], vocab_size=200)
        cls.queries = QueryAssembler(tokenizer, entity_texts=texts, relation_texts=relations, max_seq_length=24)

    def _pre_instantiation_hook(self, kwargs: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        kwargs = super()._pre_instantiation_hook(kwargs)
        kwargs["queries"] = self.queries
        return kwargs

    def _check_result(self, x: torch.Tensor, prefix_shape: tuple[int, ...]):
        # the vendored check wants the default float dtype; these representations are token ids (long)
        assert torch.is_tensor(x) and x.dtype == torch.long
        self.assertEqual(x.shape, prefix_shape + self.instance.shape)

    def test_dropout(self):
        # dropout on token ids has no meaning: asking for it is an error that names the class
        kwargs = dict(self.instance_kwargs)
        kwargs.pop("dropout", None)
        with self.assertRaisesRegex(ValueError, self.cls.__name__):
            self.cls(**kwargs, dropout=0.1)


class EntityTextTokensTests(_AssemblerCase):
    cls = EntityTextTokens

    def test_rows_are_the_token_and_the_text(self):
        rows = self.instance(torch.tensor([2]))[0]
        self.assertEqual(int(rows[0]), self.queries.entity_token_offset + 2)
        length = int(self.queries.entity_text_lengths[2])
        self.assertTrue(torch.equal(rows[1 : 1 + length], self.queries.entity_text_ids[2, :length]))
        self.assertTrue(bool((rows[1 + length :] == TOKEN_PAD).all()))


class RelationTextTokensTests(_AssemblerCase):
    cls = RelationTextTokens
    max_id: ClassVar[int] = 4  # two relations, each forward and inverse
    kwargs = dict(with_forward=True)  # the official query format's rows

    def test_inverse_rows_carry_the_forward_relation(self):
        rows = self.instance(torch.tensor([3]))[0]
        self.assertEqual(int(rows[0, 0]) - int(rows[1, 0]), 1)  # own token 2r + 1, forward token 2r
        own_only = self.cls(queries=self.queries, with_forward=False)  # the plugin's format reads row 0 only
        self.assertTrue(torch.equal(own_only(torch.tensor([3]))[0], rows[:1]))


class EntityTokenEmbeddingTests(pykeen_cases.RepresentationTestCase):
    cls = EntityTokenEmbedding

    def _pre_instantiation_hook(self, kwargs: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        kwargs = super()._pre_instantiation_hook(kwargs)
        kwargs.update(word_embeddings=nn.Embedding(12, 4), offset=3)
        return kwargs

    def test_is_a_view_on_the_word_embeddings(self):
        weight = self.instance.word_embeddings.weight
        self.assertTrue(torch.equal(self.instance(torch.tensor([0, 6])), weight[[3, 9]]))


class EntityBiasTests(pykeen_cases.RepresentationTestCase):
    cls = EntityBias

    def test_dropout(self):
        # biases start at zero, and dropout of zeros is zeros: the vendored check runs on non-zero biases
        kwargs = dict(self.instance_kwargs)
        kwargs.pop("dropout", None)
        instance = self.cls(**kwargs, dropout=0.5)
        with torch.no_grad():
            instance.bias.fill_(1.0)
        instance.train()
        a = torch.stack([instance(torch.arange(self.max_id)) for _ in range(20)])
        assert not (a[0:1] == a).all()


class EntityImageRepresentationTests(pykeen_cases.RepresentationTestCase):
    cls = EntityImageRepresentation

    @classmethod
    def setUpClass(cls) -> None:
        import tempfile
        from pathlib import Path

        from pykeen_mkgformer.data.images import ImageLayout, image_processor_for

        cls._tmp = tempfile.TemporaryDirectory()
        tmp = Path(cls._tmp.name)
        factory = _factory(tmp)
        vision = resolve_backbone_config(presets.tiny_vision_encoder(image_size=16), role="vision")
        cls.images = EntityImages(
            factory.entity_images,
            processor=image_processor_for(vision),
            layout=ImageLayout.single(16),
            cache_dir=tmp / "cache",
            progress=False,
        )

    @classmethod
    def tearDownClass(cls) -> None:
        cls._tmp.cleanup()

    def _pre_instantiation_hook(self, kwargs: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        kwargs = super()._pre_instantiation_hook(kwargs)
        kwargs["images"] = self.images
        return kwargs

    def _check_result(self, x: ImageBatch, prefix_shape: tuple[int, ...]):
        # not one tensor: one pixel tensor and one mask per resolution, each with the indices' shape as prefix
        assert isinstance(x, ImageBatch)
        self.assertEqual(tuple(x.shape), prefix_shape)
        (pixels,), (mask,) = x.pixel_values, x.image_mask
        self.assertEqual(tuple(pixels.shape), (*prefix_shape, 1, 3, 16, 16))
        self.assertEqual(tuple(mask.shape), (*prefix_shape, 1))

    def test_masks_follow_the_images(self):
        batch = self.instance(torch.arange(4))
        self.assertEqual(batch.image_mask[0][:, 0].tolist(), [True, False, True, False])
        self.assertTrue(bool((batch.pixel_values[0][1] == 0).all()))

    def test_dropout(self):
        # pixels are inputs of the encoder, not features: dropout on them is refused, naming the class
        with self.assertRaisesRegex(ValueError, self.cls.__name__):
            self.cls(images=self.images, dropout=0.1)


class MultimodalEntityRepresentationTests(pykeen_cases.RepresentationTestCase):
    cls = MultimodalEntityRepresentation

    @classmethod
    def setUpClass(cls) -> None:
        import tempfile
        from pathlib import Path

        cls._tmp = tempfile.TemporaryDirectory()
        cls.factory = _factory(Path(cls._tmp.name))

    @classmethod
    def tearDownClass(cls) -> None:
        cls._tmp.cleanup()

    def _pre_instantiation_hook(self, kwargs: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        kwargs = super()._pre_instantiation_hook(kwargs)
        model_kwargs = presets.tiny_model_kwargs(
            text_encoder=presets.tiny_text_encoder(hidden_size=8),
            vision_encoder=presets.tiny_vision_encoder(hidden_size=8, image_size=16),
            entity_modeling_epochs=0,
            progress=False,
            image_cache_dir=str(self._tmp.name),
            random_seed=0,
        )
        kwargs.update(triples_factory=self.factory, model_kwargs=model_kwargs, shape=6)
        return kwargs

    def test_vectors_are_the_stage1_query_states(self):
        from pykeen_mkgformer.kgc.multimodal import encode_entities

        model = self.instance.model
        features = encode_entities(model)
        query = model.queries.entity_modeling(torch.tensor([2]))
        pixels, mask = model.images.lookup(torch.tensor([2]))
        with torch.no_grad():
            by_hand = model.interaction.encode(query, pixels, mask)[0]
            self.assertTrue(torch.allclose(features[2], by_hand, atol=1e-6))
            standardized = (features[2] - features.mean(dim=0)) / features.std(dim=0)
            self.assertTrue(torch.allclose(self.instance.refresh()[2], standardized, atol=1e-4))
            expected = self.instance.projection(standardized.unsqueeze(0))
            self.assertTrue(torch.allclose(self.instance(torch.tensor([2])), expected, atol=1e-4))

    def test_complex_output_and_refresh(self):
        kwargs = {**self.instance_kwargs, "dtype": torch.cfloat, "shape": 3}
        instance = self.cls(**kwargs)
        x = instance(torch.tensor([[0, 1]]))
        self.assertTrue(x.is_complex())
        self.assertEqual(tuple(x.shape), (1, 2, 3))
        # the encoder changes (e.g. trained further): refresh reads the entities again
        before = instance.features.clone()
        with torch.no_grad():
            instance.model.interaction.mlm_transform.dense.bias.add_(1.0)
        self.assertFalse(torch.allclose(instance.refresh(), before))

    def test_encoder_is_kept_out_of_resets_and_state(self):
        model_state = {k: v.clone() for k, v in self.instance.model.state_dict().items()}
        self.instance.reset_parameters()
        self.assertTrue(all(torch.equal(v, self.instance.model.state_dict()[k]) for k, v in model_state.items()))
        self.assertEqual(set(self.instance.state_dict()), {"projection.weight", "projection.bias"})


if __name__ == "__main__":
    unittest.main()
