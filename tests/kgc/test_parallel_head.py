"""The vocabulary-parallel entity head over 2 gloo processes equals the unsharded computation (float64).

``tests/kgc/parallel_head_worker.py`` runs 2 ranks (DDP encoder, 6 + 5 entity rows, 4 + 3 queries);
here the same problem is computed on one process with the full matrix and PyKEEN's own losses,
and PyKEEN's evaluator code path (:func:`pykeen.evaluation.evaluator._evaluate_batch`) gives the
reference filtered ranks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from kgc_support import REPO_ROOT, run_command

import parallel_head_support as toy
from pykeen_mkgformer.kgc.parallel import FilterIndex, VocabParallelEntityHead, filtered_ranks, shard_range

TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def ranks_results(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("parallel_head")
    run_command([sys.executable, str(Path(__file__).with_name("parallel_head_worker.py")), f"--out={out}"], cwd=REPO_ROOT, timeout=180)
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(2)]


def _labels(batch: dict, class_targets: bool) -> torch.Tensor:
    labels = torch.zeros(len(batch["hr"]), toy.NUM_ENTITIES, dtype=torch.float64)
    if class_targets:
        labels[torch.arange(len(batch["hr"])), batch["tails"]] = 1.0
    else:
        labels[batch["pairs"][:, 0], batch["pairs"][:, 1]] = 1.0
    return labels


def _reference(name: str, smoothing: float, class_targets: bool) -> dict:
    """One process, the full entity matrix, PyKEEN's loss classes on the dense (B, N) scores."""
    from pykeen.losses import BCEWithLogitsLoss, CrossEntropyLoss

    from pykeen_mkgformer.kgc.losses import SmoothedSoftmaxCrossEntropyLoss

    batch = toy.global_batch()
    encoder = toy.ToyEncoder()
    weight, bias = (torch.nn.Parameter(t) for t in toy.entity_rows())
    parameters = {"encoder.linear.weight": encoder.linear.weight, "encoder.linear.bias": encoder.linear.bias,
                  "rows.weight": weight, "rows.bias": bias}
    optimizer = torch.optim.Adam(parameters.values(), lr=toy.LR)
    scores = encoder(batch["hr"]) @ weight.t() + bias
    labels = _labels(batch, class_targets)
    if name == "bce":
        loss = BCEWithLogitsLoss().process_lcwa_scores(scores, labels, label_smoothing=smoothing, num_entities=toy.NUM_ENTITIES)
    elif name == "softmax":
        loss = CrossEntropyLoss().process_lcwa_scores(scores, labels, label_smoothing=smoothing, num_entities=toy.NUM_ENTITIES)
    else:
        loss = SmoothedSoftmaxCrossEntropyLoss(smoothing=smoothing).process_lcwa_scores(scores, labels)
    loss.backward()
    grads = {key: p.grad.clone() for key, p in parameters.items()}
    optimizer.step()
    return dict(loss=loss.detach(), grads=grads, after={key: p.detach().clone() for key, p in parameters.items()})


def _rows(key: str, value: torch.Tensor, shard: tuple[int, int]) -> torch.Tensor:
    return value[shard[0] : shard[1]] if key.startswith("rows.") else value


@pytest.mark.parametrize("case", toy.CASES, ids=lambda c: f"{c[0]}-eps{c[1]}-{'index' if c[2] else 'multihot'}")
def test_loss_gradients_and_adam_step_equal_the_unsharded_model(ranks_results, case):
    reference = _reference(*case)
    for result in ranks_results:
        got = result[case]
        shard = result["shard"]
        assert got["loss"].dtype == torch.float64
        assert abs(float(got["loss"]) - float(reference["loss"])) <= TOLERANCE
        for key, expected in reference["grads"].items():
            expected = _rows(key, expected, shard)
            assert float(expected.abs().max()) > 1e-4, f"{key}: the reference gradient is ~0, the test would be empty"
            difference = float((got["grads"][key] - expected).abs().max())
            assert difference <= TOLERANCE, f"rank {result['rank']} {case} {key}: gradient differs by {difference:.3g}"
        for key, expected in reference["after"].items():
            difference = float((got["after"][key] - _rows(key, expected, shard)).abs().max())
            assert difference <= TOLERANCE, f"rank {result['rank']} {case} {key}: Adam step differs by {difference:.3g}"


def test_each_rank_holds_its_shard_only(ranks_results):
    assert [r["shard"] for r in ranks_results] == [(0, 6), (6, 11)]
    assert [shard_range(11, rank, 2) for rank in range(2)] == [(0, 6), (6, 11)]
    for result in ranks_results:
        start, stop = result["shard"]
        assert result[toy.CASES[0]]["grads"]["rows.weight"].shape == (stop - start, toy.DIM)


def test_filtered_ranks_equal_pykeens_evaluator_on_the_unsharded_scores(ranks_results):
    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.evaluation.evaluator import _evaluate_batch

    batch = toy.global_batch()
    encoder = toy.ToyEncoder()
    weight, bias = toy.entity_rows()

    class FullModel:
        def predict(self, hrt_batch, target, slice_size=None, mode=None):
            return encoder(hrt_batch[:, :2]) @ weight.t() + bias

    evaluator = RankBasedEvaluator(filtered=True)
    hrt = torch.cat([batch["hr"], batch["tails"].unsqueeze(1)], 1)
    with torch.no_grad():
        _evaluate_batch(hrt, FullModel(), "tail", evaluator, None, batch["known"], None, None, mode=None)
    for result in ranks_results:
        for kind, key in (("optimistic", "optimistic"), ("pessimistic", "pessimistic"), ("realistic", "realistic")):
            expected = torch.as_tensor(evaluator.ranks["tail", kind][0]).double()
            assert torch.equal(result["ranks"][key].double(), expected), (kind, result["ranks"][key], expected)
        assert torch.equal(result["ranks"]["options"], torch.as_tensor(evaluator.num_candidates["tail"][0]))
    # the ties are real: entity 9 is a copy of entity 2, and query 0's answer is 9
    realistic = ranks_results[0]["ranks"]["realistic"]
    assert realistic[0] != ranks_results[0]["ranks"]["optimistic"][0] or realistic[1] % 1 == 0.5
    # the filter removed something: raw ranks would differ
    raw = VocabParallelEntityHead(num_entities=toy.NUM_ENTITIES).ranks(encoder(batch["hr"]), weight, bias, batch["tails"])
    assert not torch.equal(raw.realistic, ranks_results[0]["ranks"]["realistic"])


def test_chunked_ranks_equal_one_batch():
    batch = toy.global_batch()
    encoder = toy.ToyEncoder()
    weight, bias = toy.entity_rows()
    index = FilterIndex(batch["known"], num_relations=toy.NUM_RELATIONS)
    score = lambda hr: encoder(hr) @ weight.t() + bias  # noqa: E731
    whole = filtered_ranks(score, batch["hr"], batch["tails"], filter_index=index, batch_size=100)
    chunked = filtered_ranks(score, batch["hr"], batch["tails"], filter_index=index, batch_size=2)
    assert torch.equal(whole, chunked)
    # the filter index returns exactly the known answers of each query
    pairs = index.positives(index.key(batch["hr"][:, 0], batch["hr"][:, 1]))
    expected = {(int(i), int(t)) for i in range(len(batch["hr"])) for h, r, t in batch["known"].tolist()
                if (h, r) == tuple(batch["hr"][i].tolist())}
    assert set(map(tuple, pairs.tolist())) == expected


def test_plain_cross_entropy_equals_dtensor_loss_parallel(ranks_results):
    for result in ranks_results:
        lp = result["loss_parallel"]
        assert abs(float(lp["ours"]) - float(lp["reference"])) <= TOLERANCE
        assert float((lp["ours_grad"] - lp["reference_grad"]).abs().max()) <= TOLERANCE


def test_bad_shard_and_loss_names_are_refused():
    head = VocabParallelEntityHead(num_entities=5)
    with pytest.raises(ValueError, match="entities 0..4"):
        head.scores(torch.zeros(2, 3), torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="'bce', 'softmax' or 'official'"):
        head.loss_from_scores(torch.zeros(2, 5), torch.tensor([0, 1]), loss="hinge")
    with pytest.raises(ValueError, match="at least one positive"):
        head.loss_from_scores(torch.zeros(2, 5), torch.tensor([[0, 1]]), loss="softmax")
