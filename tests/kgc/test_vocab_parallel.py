"""``MKGformer(head_parallel="vocab")`` over 2 gloo processes equals the unsharded MKGformer (float64).

``vocab_parallel_worker.py`` shards the entity token rows of a tiny text-only MKGformer (11 entities:
6 + 5 rows) over 2 ranks, wraps the model in DDP, and trains one Adam step on a global LCWA batch of
7 queries (4 + 3); here the same step runs on one process with the full model, PyKEEN's dense
``score_t`` and PyKEEN's own loss classes. ``vocab_parallel_lightning_worker.py`` runs PyKEEN's
Lightning integration with the option on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from kgc_support import run_command

import vocab_parallel_support as support

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
TOLERANCE = 1e-9
EMBEDDING = "interaction.encoder.text_model.embeddings.word_embeddings.weight"
BIAS = "entity_representations.2.bias"


def _run(command: list[str], timeout: float = 300) -> None:
    run_command(command, cwd=REPO_ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def ranks_results(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("vocab_parallel")
    _run([sys.executable, str(HERE / "vocab_parallel_worker.py"), f"--out={out}"])
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(2)]


def _reference(name: str, smoothing: float) -> dict:
    """One process, the unsharded model, PyKEEN's dense scores and loss class, one Adam step."""
    model = support.build(name, smoothing)
    batch = support.global_batch()
    scores = model.score_t(batch["pairs"])
    if name == "official":
        loss = model.loss.process_lcwa_scores(scores, batch["labels"])
    else:
        loss = model.loss.process_lcwa_scores(scores, batch["labels"], label_smoothing=smoothing,
                                              num_entities=support.NUM_ENTITIES)
    loss.backward()
    grads = {key: p.grad.clone() for key, p in model.named_parameters() if p.grad is not None}
    torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=support.LR).step()
    after = {key: value.detach().clone() for key, value in model.state_dict().items()}
    return dict(loss=loss.detach(), grads=grads, after=after, offset=model.queries.entity_token_offset)


def _max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).abs().max()) if a.numel() else 0.0


@pytest.mark.parametrize("case", support.CASES, ids=lambda c: f"{c[0]}-eps{c[1]}")
def test_loss_gradients_and_adam_step_equal_the_unsharded_mkgformer(ranks_results, case):
    reference = _reference(*case)
    n, offset = support.NUM_ENTITIES, reference["offset"]
    full = reference["grads"][EMBEDDING]
    for result in ranks_results:
        got = result[case]
        start, stop = got["shard"]
        assert got["loss"].dtype == torch.float64
        assert abs(float(got["loss"]) - float(reference["loss"])) <= TOLERANCE
        expected = dict(reference["grads"])
        expected[EMBEDDING.replace(".weight", ".base.weight")] = torch.cat([full[:offset], full[offset + n :]])
        expected["rows.weight"] = full[offset + start : offset + stop]
        expected["rows.bias"] = reference["grads"][BIAS][start:stop]
        del expected[EMBEDDING], expected[BIAS]
        assert set(got["grads"]) == set(expected)
        # the sharded parts and the MLM transform get real gradients (attention's key bias gets ~0 by softmax invariance)
        for key in ("rows.weight", "rows.bias", EMBEDDING.replace(".weight", ".base.weight"),
                    "interaction.mlm_transform.dense.weight"):
            assert float(expected[key].abs().max()) > 1e-4, f"{key}: the reference gradient is ~0, the test would be empty"
        for key, value in expected.items():
            difference = _max_difference(got["grads"][key], value)
            assert difference <= TOLERANCE, f"rank {result['rank']} {case} {key}: gradient differs by {difference:.3g}"
        # after the step, gathered back: every weight of the model equals the unsharded step
        assert set(got["after"]) == set(reference["after"])
        for key, value in reference["after"].items():
            difference = _max_difference(got["after"][key].double(), value.double())
            assert difference <= TOLERANCE, f"rank {result['rank']} {case} {key}: Adam step differs by {difference:.3g}"


def test_each_rank_holds_its_rows_outside_ddp(ranks_results):
    case = support.CASES[0]
    assert [r[case]["shard"] for r in ranks_results] == [(0, 6), (6, 11)]
    for result in ranks_results:
        got = result[case]
        start, stop = got["shard"]
        assert got["grads"]["rows.weight"].shape[0] == stop - start
        # DDP sees the replicated vocabulary and the encoder, never the entity rows nor the frozen full bias
        assert EMBEDDING.replace(".weight", ".base.weight") in {k.removeprefix("module.model.") for k in got["ddp_parameters"]}
        assert not any("rows" in key or key.endswith(BIAS) for key in got["ddp_parameters"])


def test_filtered_ranks_equal_pykeens_evaluator_on_the_unsharded_model(ranks_results):
    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.evaluation.evaluator import _evaluate_batch

    batch = support.global_batch()
    model = support.build()
    evaluator = RankBasedEvaluator(filtered=True)
    with torch.no_grad():
        for side in ("tail", "head"):
            _evaluate_batch(batch["hrt"], model, side, evaluator, None, batch["original_known"], None, None, mode=None)
    for result in ranks_results:
        for side in ("tail", "head"):
            got = result["ranks", side]
            for kind in ("optimistic", "pessimistic", "realistic"):
                expected = torch.as_tensor(evaluator.ranks[side, kind][0]).double()
                assert torch.equal(got[kind].double(), expected), (side, kind, got[kind], expected)
            assert torch.equal(got["options"], torch.as_tensor(evaluator.num_candidates[side][0]))
    # the filter matters: some query has other known answers, so it has fewer options than entities
    options = torch.cat([ranks_results[0]["ranks", side]["options"] for side in ("tail", "head")])
    assert int(options.min()) < support.NUM_ENTITIES


def test_one_process_shard_and_unshard_round_trip_and_refusals(tmp_path):
    from pykeen_mkgformer.kgc import MKGformer

    model = support.build()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    batch = support.global_batch()
    with torch.no_grad():
        scores = model.score_t(batch["pairs"])
    model.shard_entity_rows()
    assert model.entity_rows_sharded
    with pytest.raises(RuntimeError, match="shard of the entity rows"):
        model.score_t(batch["pairs"])
    with pytest.raises(RuntimeError, match="unshard_entity_rows"):
        model.save(tmp_path / "sharded")
    model.unshard_entity_rows()
    assert not model.entity_rows_sharded
    after = model.state_dict()
    assert set(after) == set(before) and all(torch.equal(after[k], before[k]) for k in before)
    with torch.no_grad():
        assert torch.equal(model.score_t(batch["pairs"]), scores)
    with pytest.raises(ValueError, match="head_parallel must be None or 'vocab'"):
        MKGformer(triples_factory=support.factory(), **support.model_kwargs(head_parallel="tensor"))
    plain = MKGformer(triples_factory=support.factory(), **support.model_kwargs(head_parallel=None))
    with pytest.raises(ValueError, match="head_parallel='vocab'"):
        plain.shard_entity_rows()


def test_lightning_ddp_run_with_the_option_completes(tmp_path):
    _run([sys.executable, str(HERE / "vocab_parallel_lightning_worker.py"), f"--out={tmp_path}"])
    results = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) for rank in range(2)]
    assert [r["world_size"] for r in results] == [2, 2]
    assert [r["shard"] for r in results] == [(0, 6), (6, 11)]
    for result in results:
        assert len(result["losses"]) == result["steps"] and all(torch.isfinite(torch.tensor(result["losses"])))
        # the loss is that of the global batch: the same number on both ranks
        assert result["losses"] == results[0]["losses"]
        # this rank's rows were trained by its own optimizer, and its state holds this rank's rows only
        assert result["rows_changed"] and result["adam_rows"] == result["shard"][1] - result["shard"][0]
    # gathered back after fit, both ranks hold the same whole model
    for key, value in results[0]["state"].items():
        assert torch.equal(value, results[1]["state"][key]), key


def test_lightning_module_is_registered_and_needs_the_option():
    from pykeen.contrib.lightning import lit_module_resolver
    from pykeen.datasets import EagerDataset

    from pykeen_mkgformer.kgc.lightning import VocabParallelLCWALitModule

    assert lit_module_resolver.lookup("vocabparallellcwa") is VocabParallelLCWALitModule
    training = support.factory()
    with pytest.raises(ValueError, match="head_parallel='vocab'"):
        VocabParallelLCWALitModule(dataset=EagerDataset(training=training, testing=training, validation=None),
                                   model="mkgformer", model_kwargs=support.model_kwargs(head_parallel=None))
    # its batches carry the true tails as (row, tail) pairs: the same labels as PyKEEN's dense LCWA rows
    from pykeen.triples import LCWAInstances

    from pykeen_mkgformer.kgc.lightning import LCWAPositives

    instances = LCWAInstances.from_triples_factory(training)
    dataset = LCWAPositives(instances)
    batch = dataset.collate([3, 0, 5])
    dense = torch.zeros(3, training.num_entities)
    dense[batch["positives"][:, 0], batch["positives"][:, 1]] = 1.0
    assert torch.equal(batch["pairs"], torch.as_tensor(instances.pairs[[3, 0, 5]]))
    assert torch.equal(dense, torch.stack([torch.as_tensor(instances[i]["target"]) for i in (3, 0, 5)]).float())
