"""The multimodal baselines: each model's score equals a hand computation; missing marker; auxiliary losses; I/O."""

from __future__ import annotations

import math

import pytest
import torch
from pykeen.triples import TriplesFactory

from pykeen_mkgformer.baselines.features import EntityFeatures
from pykeen_mkgformer.baselines.models import BASELINES, IKRL, MoSE, RSME, TBKGC, QEB, AdaMF, TransAE, VBRotatE, VBTransE

NUM_ENTITIES, DIM = 5, 4


@pytest.fixture(scope="module")
def factory() -> TriplesFactory:
    triples = [["e0", "r0", "e1"], ["e1", "r1", "e2"], ["e2", "r0", "e3"], ["e3", "r1", "e4"], ["e4", "r0", "e0"]]
    import numpy as np

    return TriplesFactory.from_labeled_triples(np.asarray(triples, dtype=str))


@pytest.fixture(scope="module")
def features() -> EntityFeatures:
    generator = torch.Generator().manual_seed(0)
    return EntityFeatures(
        visual=torch.randn(NUM_ENTITIES, 3, generator=generator) * 5 + 2,
        visual_count=torch.tensor([2, 0, 1, 1, 3]),  # entity 1 has no image
        textual=torch.randn(NUM_ENTITIES, 2, generator=generator),
    )


BATCH = torch.tensor([[0, 0, 1], [1, 1, 2], [3, 1, 0], [4, 0, 2]])


def _standardized(x: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
    present = x[~missing]
    z = (x - present.mean(0)) / (present.std(0) * x.shape[1] ** 0.5)
    z[missing] = 0.0
    return z


def _view(rep, blocks: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """By hand: standardise each block, put the block's missing vector in missing rows, concatenate, project."""
    parts = []
    for k, (x, missing) in enumerate(blocks):
        z = _standardized(x, missing)
        z[missing] = rep.inputs.missing_vectors[k].detach()
        parts.append(z)
    x = torch.cat(parts, dim=-1)
    out = x @ rep.projection.weight.detach().T + rep.projection.bias.detach()
    if rep.normalizer is not None:  # the unit-norm models (IKRL, TBKGC, ...): projected features on the sphere
        out = out / out.norm(dim=-1, keepdim=True)
    return out


def _blocks(features, *names):
    out = []
    for name in names:
        if name == "visual":
            out.append((features.visual, features.visual_count == 0))
        else:
            out.append((features.textual, torch.zeros(NUM_ENTITIES, dtype=torch.bool)))
    return out


def _emb(rep) -> torch.Tensor:
    return rep._embeddings.weight.detach()


def _l1(x):
    return x.abs().sum(-1)


def _complex(h, r, t):
    n = h.shape[-1] // 2
    hc, rc, tc = (torch.complex(x[..., :n], x[..., n:]) for x in (h, r, t))
    return (hc * rc * tc.conj()).real.sum(-1)


def _rotate(h, phase, t):
    n = h.shape[-1] // 2
    hc, tc = torch.complex(h[..., :n], h[..., n:]), torch.complex(t[..., :n], t[..., n:])
    return -(hc * torch.polar(torch.ones_like(phase), phase) - tc).abs().sum(-1)


def _model(cls, factory, features, **kwargs):
    torch.manual_seed(0)
    return cls(triples_factory=factory, embedding_dim=DIM, features=features, random_seed=0, **kwargs).eval()


def _hrt(batch):
    return batch[:, 0], batch[:, 1], batch[:, 2]


def test_ikrl(factory, features):
    model = _model(IKRL, factory, features)
    s, v = _emb(model.entity_representations[0]), _view(model.entity_representations[1], _blocks(features, "visual"))
    r = _emb(model.relation_representations[0])
    h, rel, t = _hrt(BATCH)
    expected = -(
        _l1(s[h] + r[rel] - s[t]) + _l1(v[h] + r[rel] - v[t]) + _l1(s[h] + r[rel] - v[t]) + _l1(v[h] + r[rel] - s[t])
    )
    torch.testing.assert_close(model.score_hrt(BATCH).squeeze(-1), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [TBKGC, QEB, VBTransE])
def test_translation_on_fused_view(cls, factory, features):
    model = _model(cls, factory, features)
    s = _emb(model.entity_representations[0])
    m = _view(model.entity_representations[1], _blocks(features, "visual", "textual"))
    h, rel, t = _hrt(BATCH)
    r = _emb(model.relation_representations[0])
    if cls is TBKGC:
        expected = -sum(
            _l1(a[h] + r[rel] - b[t]) for a, b in ((s, s), (m, m), (s, m), (m, s))
        ) - _l1(s[h] + m[h] + r[rel] - s[t] - m[t])
    elif cls is QEB:
        rm = _emb(model.relation_representations[1])
        expected = -(
            _l1(s[h] + r[rel] - s[t]) + _l1(m[h] + rm[rel] - m[t]) + _l1(s[h] + rm[rel] - m[t]) + _l1(m[h] + r[rel] - s[t])
        )
    else:
        expected = -_l1(torch.cat([s[h], m[h]], -1) + r[rel] - torch.cat([s[t], m[t]], -1))
    torch.testing.assert_close(model.score_hrt(BATCH).squeeze(-1), expected, rtol=1e-5, atol=1e-5)


def test_vbrotate(factory, features):
    model = _model(VBRotatE, factory, features)
    s = _emb(model.entity_representations[0])
    m = _view(model.entity_representations[1], _blocks(features, "visual", "textual"))
    phase = _emb(model.relation_representations[0])
    h, rel, t = _hrt(BATCH)
    # [s; m] read as DIM complex numbers: real parts s, imaginary parts m
    expected = _rotate(torch.cat([s[h], m[h]], -1), phase[rel], torch.cat([s[t], m[t]], -1))
    torch.testing.assert_close(model.score_hrt(BATCH).squeeze(-1), expected, rtol=1e-4, atol=1e-4)


def test_rsme(factory, features):
    model = _model(RSME, factory, features, beta_structure=0.6, beta_visual=0.3)
    with torch.no_grad():
        model.interaction.gate.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    s, v = _emb(model.entity_representations[0]), _view(model.entity_representations[1], _blocks(features, "visual"))
    r = _emb(model.relation_representations[0])
    g = torch.sigmoid(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    h, rel, t = _hrt(BATCH)
    cosine = (v[h] * v[t]).sum(-1) / (v[h].norm(dim=-1) * v[t].norm(dim=-1))
    expected = 0.6 * _complex(s[h], r[rel], s[t]) + 0.3 * _complex(g * v[h], r[rel], g * v[t]) + 0.1 * cosine
    torch.testing.assert_close(model.score_hrt(BATCH).squeeze(-1), expected, rtol=1e-4, atol=1e-4)


def test_transae_score_and_reconstruction_loss(factory, features):
    model = _model(TransAE, factory, features, reconstruction_weight=0.5)
    ae = model.entity_representations[0]
    parts = []
    for k, (x, missing) in enumerate(_blocks(features, "visual", "textual")):
        z = _standardized(x, missing)
        z[missing] = ae.inputs.missing_vectors[k].detach()
        parts.append(z)
    x = torch.cat(parts, -1)
    code = torch.sigmoid(x @ ae.encoder.weight.detach().T + ae.encoder.bias.detach())
    entity = code + ae.structure.weight.detach()
    r = _emb(model.relation_representations[0])
    h, rel, t = _hrt(BATCH)
    torch.testing.assert_close(model.score_hrt(BATCH).squeeze(-1), -_l1(entity[h] + r[rel] - entity[t]), rtol=1e-5, atol=1e-5)
    # in training mode the reconstruction error reaches PyKEEN's loss through collect_regularization_term
    model.train()
    model.collect_regularization_term()  # reset
    indices = torch.tensor([0, 1, 2])
    ae(indices)
    recon = code[indices] @ ae.decoder.weight.detach().T + ae.decoder.bias.detach()
    expected = 0.5 * (recon - x[indices]).square().mean()
    torch.testing.assert_close(model.collect_regularization_term().reshape(()), expected, rtol=1e-5, atol=1e-6)
    assert float(model.collect_regularization_term()) == 0.0  # popped


def test_mose_experts_and_ensemble(factory, features):
    model = _model(MoSE, factory, features)
    reps = model.entity_representations
    s, s_v, s_x = _emb(reps[0]), _emb(reps[1]), _emb(reps[3])
    v = _view(reps[2], _blocks(features, "visual"))
    x = _view(reps[4], _blocks(features, "textual"))
    rs, rv, rx = (_emb(model.relation_representations[i]) for i in range(3))
    h, rel, t = _hrt(BATCH)
    experts = torch.stack(
        [_complex(s[h], rs[rel], s[t]), _complex(s_v[h] + v[h], rv[rel], s_v[t] + v[t]), _complex(s_x[h] + x[h], rx[rel], s_x[t] + x[t])],
        -1,
    )
    torch.testing.assert_close(model.score_hrt(BATCH).squeeze(-1), experts.sum(-1), rtol=1e-4, atol=1e-4)
    weights = model.fit_ensemble(factory.mapped_triples, step=0.5)
    assert torch.allclose(weights.sum(-1), torch.ones(factory.num_relations))
    torch.testing.assert_close(
        model.score_hrt(BATCH).squeeze(-1), (experts * weights[rel]).sum(-1), rtol=1e-4, atol=1e-4
    )


def test_adaptive_fusion(factory, features):
    model = _model(AdaMF, factory, features)
    reps = model.entity_representations
    s = _emb(reps[0])
    v = _view(reps[1], _blocks(features, "visual"))
    x = _view(reps[2], _blocks(features, "textual"))
    phase, query = _emb(model.relation_representations[0]), _emb(model.relation_representations[1])
    h, rel, t = _hrt(BATCH)

    def fuse(e):
        views = torch.stack([s[e], v[e], x[e]], dim=-2)  # (b, 3, d)
        alpha = ((torch.tanh(views) * query[rel].unsqueeze(1)).sum(-1) / math.sqrt(DIM)).softmax(-1)
        return (alpha.unsqueeze(-1) * views).sum(1)

    expected = _rotate(fuse(h), phase[rel], fuse(t))
    torch.testing.assert_close(model.score_hrt(BATCH).squeeze(-1), expected, rtol=1e-4, atol=1e-4)


def test_missing_marker_is_learnable_and_only_for_missing_entities(factory, features):
    model = _model(IKRL, factory, features)
    rep = model.entity_representations[1]
    before = rep(torch.arange(NUM_ENTITIES)).detach()
    with torch.no_grad():
        rep.inputs.missing_vectors[0].add_(1.0)
    after = rep(torch.arange(NUM_ENTITIES)).detach()
    changed = ~torch.isclose(before, after).all(-1)
    assert changed.tolist() == [False, True, False, False, False]  # only entity 1 (no image)
    assert rep.inputs.missing_vectors[0].requires_grad
    assert not rep.inputs.features.requires_grad  # frozen by default
    tuned = _model(IKRL, factory, features, fine_tune_features=True)
    assert tuned.entity_representations[1].inputs.features.requires_grad


def test_without_features_every_entity_is_missing(factory, caplog):
    with caplog.at_level("WARNING"):
        model = _model(TBKGC, factory, None)
    assert "no visual features given" in caplog.text
    m = model.entity_representations[1](torch.arange(NUM_ENTITIES))
    assert torch.allclose(m, m[:1].expand_as(m))  # one shared vector; the structure carries the model
    with pytest.raises(ValueError, match="rows"):
        _model(IKRL, factory, EntityFeatures(visual=torch.zeros(3, 2), visual_count=torch.ones(3, dtype=torch.long)))


def test_score_t_agrees_with_score_hrt_for_every_model(factory, features):
    for cls in BASELINES:
        model = _model(cls, factory, features)
        all_tails = model.score_t(BATCH[:, :2])
        picked = all_tails[torch.arange(len(BATCH)), BATCH[:, 2]]
        torch.testing.assert_close(picked, model.score_hrt(BATCH).squeeze(-1), rtol=1e-4, atol=1e-4, msg=cls.__name__)
        all_heads = model.score_h(BATCH[:, 1:])
        torch.testing.assert_close(all_heads[torch.arange(len(BATCH)), BATCH[:, 0]], picked, rtol=1e-4, atol=1e-4)
