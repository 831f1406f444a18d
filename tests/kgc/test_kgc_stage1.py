"""Stage 1 wherever training happens, its own random numbers, entity subsets, and the frozen parameters (tiny encoders)."""

from __future__ import annotations

import pytest
import torch
from kgc_support import tiny_model_kwargs
from pykeen.training import LCWATrainingLoop
from pykeen.triples.instances import LCWAInstances

from pykeen_mkgformer.data import ShapesKG
from pykeen_mkgformer.kgc import MKGformer


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> ShapesKG:
    return ShapesKG(cache_root=tmp_path_factory.mktemp("shapes"), num_entities=24, create_inverse_triples=True)


def make_model(shapes, image_cache, seed: int = 0, **overrides) -> MKGformer:
    settings = dict(entity_modeling_epochs=1, entity_modeling_batch_size=8, dropout=0.0)
    settings.update(overrides)
    return MKGformer(triples_factory=shapes.training, random_seed=seed, **tiny_model_kwargs(image_cache, **settings))


def entity_rows(model: MKGformer) -> torch.Tensor:
    return model.entity_representation(None)[0].detach().clone()


HR = torch.tensor([[0, 0], [3, 2]])


def test_first_training_mode_score_call_runs_stage1(shapes, image_cache):
    """Lightning 2.x and plain loops never call ``model.train()``: the first score in training mode starts stage 1."""
    model = make_model(shapes, image_cache)
    model.eval()
    before = entity_rows(model)
    model.score_t(HR)  # evaluation: no stage 1
    assert not bool(model.entity_modeling_done)
    assert torch.equal(entity_rows(model), before)
    torch.nn.Module.train(model, True)  # what a framework that sets the flag itself does
    assert not bool(model.entity_modeling_done)
    model.score_t(HR)
    assert bool(model.entity_modeling_done)
    after = entity_rows(model)
    assert not torch.equal(after, before)
    model.score_h(HR)  # not twice
    model.score_hrt(torch.tensor([[0, 0, 1]]))
    assert torch.equal(entity_rows(model), after)


def test_plain_torch_loop_and_load_state_dict_keep_track_of_stage1(shapes, image_cache):
    model = make_model(shapes, image_cache)
    optimizer = torch.optim.Adam(model.get_grad_params(), lr=1e-3)
    loss = model.score_t(HR).logsumexp(dim=-1).mean()  # a fresh model is in training mode
    loss.backward()
    optimizer.step()
    assert bool(model.entity_modeling_done)
    done_state = model.state_dict()

    fresh = make_model(shapes, image_cache, seed=1)
    fresh.load_state_dict(done_state)  # a checkpoint after stage 1: nothing left to do
    rows = entity_rows(fresh)
    fresh.train()
    fresh.score_t(HR)
    assert torch.equal(entity_rows(fresh), rows)

    not_done = make_model(shapes, image_cache, seed=2).state_dict()
    fresh.load_state_dict(not_done)  # a checkpoint before stage 1: it is due again
    rows = entity_rows(fresh)
    fresh.train()
    assert bool(fresh.entity_modeling_done)
    assert not torch.equal(entity_rows(fresh), rows)


def test_stage1_has_its_own_random_numbers(shapes, image_cache):
    """Deterministic under the model's seed whatever the global seed, and the global random state is left alone."""
    results = []
    for global_seed in (1, 2):
        model = make_model(shapes, image_cache, seed=3, entity_modeling_epochs=2, dropout=0.1)
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        losses = model.run_entity_modeling()
        assert torch.equal(torch.get_rng_state(), state)
        results.append((losses, entity_rows(model)))
    assert results[0][0] == results[1][0]
    assert torch.equal(results[0][1], results[1][1])
    # another seed, another entity order and dropout: another result
    other = make_model(shapes, image_cache, seed=3, entity_modeling_epochs=2, dropout=0.1)
    other.entity_modeling.seed = 4
    assert other.run_entity_modeling() != results[0][0]


def test_stage1_on_a_subset_of_entities(shapes, image_cache):
    """One epoch, one batch: the loss is the cross-entropy of the subset's own queries over all entities, computed by hand."""
    model = make_model(shapes, image_cache, entity_modeling_batch_size=64)
    subset = torch.tensor([5, 0, 7])
    with torch.no_grad():
        logits = model.entity_modeling.logits(model, subset)
        expected = torch.nn.functional.cross_entropy(logits, subset)
    before = entity_rows(model)
    (loss,) = model.entity_modeling.run(model, entities=subset)
    assert loss == pytest.approx(float(expected), rel=1e-5)
    assert not torch.equal(entity_rows(model), before)
    with pytest.raises(ValueError, match=r"\[24, -1\]"):
        model.entity_modeling.run(model, entities=torch.tensor([0, 24, -1]))
    with pytest.raises(ValueError, match="repeated"):
        model.entity_modeling.run(model, entities=[1, 1])
    assert model.entity_modeling.run(model, entities=torch.tensor([], dtype=torch.long)) == []


def test_parameters_that_never_reach_the_loss_are_frozen(shapes, image_cache, tmp_path):
    model = make_model(shapes, image_cache, entity_modeling_epochs=0)
    frozen = set(model.frozen_parameters)
    assert {
        "interaction.encoder.text_model.pooler.dense.weight",
        "interaction.encoder.vision_model.post_layernorm.weight",
    } <= frozen
    # one LCWA step: every trainable parameter gets a gradient (what DDP without find_unused_parameters needs)
    batch = next(iter(torch.utils.data.DataLoader(LCWAInstances.from_triples_factory(shapes.training), batch_size=8)))
    loss = LCWATrainingLoop._process_batch_static(
        model=model, score_method=model.score_t, loss=model.loss, num_targets=model.num_entities, mode=None,
        batch=batch, start=None, stop=None, label_smoothing=0.0, slice_size=None,
    )
    loss.backward()
    for name, p in model.named_parameters():
        if name in frozen:
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.requires_grad and p.grad is not None, f"{name} is trainable but got no gradient"
    # frozen parameters are still saved and loaded
    assert frozen <= set(model.state_dict())
    other = make_model(shapes, image_cache, seed=9, entity_modeling_epochs=0)
    other.load_state_dict(model.state_dict())
    assert torch.equal(
        other.interaction.encoder.text_model.pooler.dense.weight, model.interaction.encoder.text_model.pooler.dense.weight
    )
    # text-only: the whole vision tower never reaches a score
    text_only = make_model(shapes, image_cache, entity_modeling_epochs=0, max_images=0)
    vision = [name for name, _ in text_only.named_parameters() if ".vision_model." in name]
    assert vision and set(vision) <= set(text_only.frozen_parameters)


@pytest.mark.parametrize("module", ["SLCWALitModule", "LCWALitModule"])
def test_lightning_fit_runs_stage1(shapes, image_cache, module):
    """PyKEEN's Lightning modules (one process here; tests/kgc/test_ddp.py runs two): fit runs stage 1 once."""
    pytorch_lightning = pytest.importorskip("pytorch_lightning")
    from pykeen.contrib import lightning

    lit = getattr(lightning, module)(
        dataset=shapes,
        model="mkgformer",
        model_kwargs=tiny_model_kwargs(
            image_cache, random_seed=0, entity_modeling_epochs=1, entity_modeling_batch_size=16, loss="bcewithlogits"
        ),
        batch_size=16,
        optimizer="adam",
    )
    model = lit.model
    assert not bool(model.entity_modeling_done)
    before = entity_rows(model)
    trainer = pytorch_lightning.Trainer(
        accelerator="cpu", devices=1, max_steps=2, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(lit)
    assert bool(model.entity_modeling_done)
    assert not torch.equal(entity_rows(model), before)
