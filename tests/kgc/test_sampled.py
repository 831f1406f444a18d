"""Sampled softmax (stage 1 and 2 linear in N): the log-Q correction, sparse row updates, SparseDenseAdam (tiny, CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from kgc_support import tiny_model_kwargs
from torch.nn import functional

from pykeen_mkgformer.data import ShapesKG
from pykeen_mkgformer.kgc import MKGformer
from pykeen_mkgformer.kgc.losses import smoothed_softmax_cross_entropy
from pykeen_mkgformer.kgc.sampled import (
    CandidateSampler,
    Candidates,
    SampledSoftmaxTrainingLoop,
    SparseDenseAdam,
    candidate_scores,
    sampled_softmax_loss,
)


def test_all_entities_as_candidates_is_the_full_softmax_and_the_gradient_is_sparse():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(9, 4, generator=generator, dtype=torch.float64, requires_grad=True)  # 2 text rows + 7 entities
    bias = torch.randn(7, generator=generator, dtype=torch.float64, requires_grad=True)
    queries = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    targets = torch.tensor([0, 6, 3])
    for smoothing in (0.0, 0.1):
        candidates = Candidates(ids=torch.arange(7), log_q=torch.full((7,), 0.3), targets=targets)
        sampled = sampled_softmax_loss(candidate_scores(queries, candidates.ids, weight, bias, offset=2), candidates, smoothing=smoothing)
        sampled.backward()
        sparse_grad = weight.grad.coalesce()
        assert weight.grad.is_sparse and torch.equal(sparse_grad.indices()[0], torch.arange(2, 9))
        weight.grad = bias.grad = None
        full_scores = queries @ weight[2:].t() + bias
        full = smoothed_softmax_cross_entropy(full_scores, targets, smoothing).mean() if smoothing else functional.cross_entropy(full_scores, targets)
        full.backward()
        assert abs(float(sampled.detach() - full.detach())) < 1e-12
        assert torch.allclose(sparse_grad.to_dense(), weight.grad, atol=1e-12, rtol=0)
        weight.grad = bias.grad = None


def test_candidates_hold_the_answers_and_their_expected_counts():
    frequencies = torch.tensor([5.0, 1.0, 1.0, 1.0, 0.0, 2.0])
    sampler = CandidateSampler(num_entities=6, num_negatives=3, frequencies=frequencies, seed=1)
    answers = torch.tensor([0, 5, 0])
    candidates = sampler(answers)
    assert torch.equal(candidates.ids, candidates.ids.unique())
    assert torch.equal(candidates.ids[candidates.targets], answers)
    # log P(c in C) = log(1 - (1 - p_c)^|B| (1 - 1/N)^K), with p = frequencies / 10
    p = frequencies[candidates.ids].double() / 10
    expected = torch.log(1 - (1 - p) ** 3 * (1 - 1 / 6) ** 3).float()
    assert torch.allclose(candidates.log_q, expected)
    # uniform candidates only: another query's (unsampled) answer is masked for each query
    uniform = CandidateSampler(num_entities=1000, num_negatives=2, in_batch=False, seed=3)(torch.tensor([10, 20]))
    row0 = dict(zip(uniform.ids.tolist(), uniform.mask[0].tolist()))
    assert row0[10] is False and row0[20] is True
    with pytest.raises(ValueError, match="no negative"):
        CandidateSampler(num_entities=5, num_negatives=0, in_batch=False)


@pytest.mark.parametrize("correct", [True, False])
def test_log_q_correction_recovers_the_answer_distribution(correct):
    """In-batch negatives over-sample popular answers; with the correction the learned softmax matches the data."""
    num = 12
    probabilities = torch.softmax(torch.linspace(3.0, -3.0, num), 0)
    logits = torch.zeros(num, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.03)
    sampler = CandidateSampler(num_entities=num, num_negatives=2, frequencies=probabilities * 1000, seed=0)
    generator = torch.Generator().manual_seed(0)
    for step in range(600):
        answers = torch.multinomial(probabilities, 16, replacement=True, generator=generator)
        candidates = sampler(answers)
        scores = logits[candidates.ids].unsqueeze(0).expand(16, -1)
        loss = sampled_softmax_loss(scores, candidates, log_q_correction=correct)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    learned = torch.softmax(logits.detach(), 0)
    divergence = float((probabilities * (probabilities / learned).log()).sum())
    if correct:
        assert divergence < 0.015, divergence
    else:
        assert divergence > 0.04, divergence  # the bias the correction removes


def test_sparse_dense_adam_is_adam_on_dense_and_sparse_adam_on_sparse_gradients():
    torch.manual_seed(0)
    table = torch.nn.Parameter(torch.randn(6, 3))
    linear = torch.nn.Parameter(torch.randn(3))
    reference_table, reference_linear = (torch.nn.Parameter(t.detach().clone()) for t in (table, linear))
    ours = SparseDenseAdam([table, linear], lr=0.1)
    dense, sparse = torch.optim.Adam([reference_linear], lr=0.1), torch.optim.SparseAdam([reference_table], lr=0.1)
    for ids in (torch.tensor([1, 4]), torch.tensor([4, 5])):
        for t, l, optimizers in ((table, linear, [ours]), (reference_table, reference_linear, [dense, sparse])):
            (functional.embedding(ids, t, sparse=True) @ l).pow(2).sum().backward()
            for optimizer in optimizers:
                optimizer.step()
                optimizer.zero_grad()
    assert torch.equal(table, reference_table) and torch.equal(linear, reference_linear)
    assert torch.equal(table[[0, 2, 3]], reference_table[[0, 2, 3]])
    state = ours.state_dict()
    assert set(state["inner"]) == {"dense", "sparse"} and state["param_groups"][0]["lr"] == 0.1


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> ShapesKG:
    return ShapesKG(cache_root=tmp_path_factory.mktemp("shapes"), num_entities=24, create_inverse_triples=True)


def test_sampled_stage1_moves_only_candidate_entity_rows_and_learns(shapes, tmp_path):
    model = MKGformer(
        triples_factory=shapes.training, random_seed=0,
        **tiny_model_kwargs(tmp_path, entity_modeling_epochs=0, dropout=0.0),
    )
    model.entity_modeling.objective = "sampled"
    model.entity_modeling.num_negatives = 4
    model.entity_modeling.epochs = 6
    model.entity_modeling.batch_size = 8
    model.entity_modeling.lr = 0.02
    weight = model.interaction.encoder.get_input_embeddings().weight
    before = weight.detach().clone()
    losses = model.run_entity_modeling()
    offset = model.queries.entity_token_offset
    assert losses[-1] < losses[0]
    assert torch.equal(weight[:offset], before[:offset]), "text rows must not move"
    assert not torch.equal(weight[offset : offset + 24], before[offset : offset + 24])
    assert torch.equal(weight[offset + 24 :], before[offset + 24 :]), "relation rows are never candidates"
    with pytest.raises(ValueError, match="objective"):
        type(model.entity_modeling)(objective="approximate")


def test_sampled_stage2_training_loop_learns_with_sparse_rows(shapes, tmp_path):
    from pykeen_mkgformer.kgc.parallel import filtered_ranks

    model = MKGformer(
        triples_factory=shapes.training, random_seed=0,
        **tiny_model_kwargs(tmp_path, entity_modeling_epochs=0, dropout=0.0),
    )
    triples = shapes.training.mapped_triples

    def mrr() -> float:
        model.eval()
        ranks = filtered_ranks(model.score_t, triples[:, :2], triples[:, 2], batch_size=64)
        return float((1.0 / ranks).mean())

    before = mrr()
    loop = SampledSoftmaxTrainingLoop(
        model=model, triples_factory=shapes.training, optimizer=SparseDenseAdam, optimizer_kwargs=dict(lr=1e-2),
        num_negatives=4, sparse=True,
    )
    losses = loop.train(triples_factory=shapes.training, num_epochs=5, batch_size=32, use_tqdm=False)
    assert model.interaction.encoder.get_input_embeddings().sparse
    assert losses[-1] < losses[0]
    after = mrr()
    assert after > before + 0.05, (before, after)


def test_sampled_stage1_on_two_processes_equals_one_process(tmp_path):
    """Same candidates on every rank, a |C| x d all-reduce of the sparse row gradient: the same SparseAdam steps."""
    import sys

    from kgc_support import REPO_ROOT, run_command

    results = {}
    for world in (1, 2):  # one process first: it renders ShapesKG and fills the pixel cache
        out = tmp_path / f"world{world}"
        run_command(
            [sys.executable, str(Path(__file__).with_name("sampled_stage1_worker.py")), f"--out={out}", f"--world={world}",
             f"--data={tmp_path / 'shapes'}", f"--pixels={tmp_path / 'pixels'}"],
            cwd=REPO_ROOT, timeout=240,
        )
        results[world] = [torch.load(out / f"rank{rank}.pt") for rank in range(world)]
    (single,), (rank0, rank1) = results[1], results[2]
    assert torch.equal(rank0["weight"], rank1["weight"])
    assert rank0["losses"] == pytest.approx(single["losses"], abs=1e-6)
    assert torch.allclose(rank0["weight"], single["weight"], atol=1e-6, rtol=0)
