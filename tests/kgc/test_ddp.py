"""Data parallelism through PyKEEN's Lightning integration: 2 CPU processes (gloo) against 1 process.

``tests/kgc/ddp_worker.py`` fits a tiny MKGformer on ShapesKG with ``pykeen.contrib.lightning``'s LCWA
module (stage 1 is triggered by the first training step, stage 2 runs 3 Adam steps), once on one
process with global batch 16 and once with Lightning's ``ddp`` strategy on two processes with 8 per
rank, without ``find_unused_parameters``. Same seed, same global batches (see the worker's
docstring), dropout 0.

Sources of difference between the two runs, and why they stay small here:

- floating-point summation order: DDP averages two half-batch gradients, one process sums the
  whole batch (and stage 1 sums two shards' gradients); Adam divides by the running gradient
  scale, so such rounding differences grow by a few orders of magnitude in a few steps, and are
  still ~1e-6 after them;
- dropout: every rank draws its own masks, so with dropout > 0 the runs are different samples of
  the same training (switched off here);
- the data order: Lightning shuffles a one-process run with a ``RandomSampler``, a DDP run with a
  ``DistributedSampler``; both runs here use the latter (the worker sets it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from kgc_support import REPO_ROOT, run_command

GLOBAL_BATCH = 16
STEPS = 3
#: 24 entities in batches of 23: the last stage-1 step has one entity, so rank 1's shard is empty
STAGE1_BATCH = 23


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, list[dict]]:
    root = tmp_path_factory.mktemp("ddp")
    results = {}
    # one process first: it renders ShapesKG and fills the pixel cache that the two ranks then only read
    for name, devices in (("single", 1), ("ddp", 2)):
        out = root / name
        run_command(
            [
                sys.executable,
                str(Path(__file__).with_name("ddp_worker.py")),
                f"--devices={devices}",
                f"--out={out}",
                f"--data={root / 'shapes'}",
                f"--pixels={root / 'pixels'}",
                f"--global-batch-size={GLOBAL_BATCH}",
                f"--steps={STEPS}",
                "--stage1-epochs=2",
                f"--stage1-batch-size={STAGE1_BATCH}",
            ],
            cwd=REPO_ROOT,
            timeout=300,
        )
        results[name] = [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(devices)]
    return results


def test_both_ranks_end_identical(runs):
    rank0, rank1 = runs["ddp"]
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["pid"] != rank1["pid"]
    assert rank0["state"].keys() == rank1["state"].keys()
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), f"{key} differs between the ranks"
    # the ranks really saw different data
    assert not torch.equal(rank0["pairs"][0], rank1["pairs"][0])


def test_ddp_sees_the_single_process_global_batches(runs):
    (single,) = runs["single"]
    rank0, rank1 = runs["ddp"]
    assert len(single["pairs"]) == len(rank0["pairs"]) == STEPS
    for step in range(STEPS):
        union = torch.cat([rank0["pairs"][step], rank1["pairs"][step]])
        assert union.shape[0] == GLOBAL_BATCH
        assert sorted(map(tuple, union.tolist())) == sorted(map(tuple, single["pairs"][step].tolist()))
        # BCE is a mean: the global loss is the mean of the two equal-sized half-batch losses
        mean = (rank0["losses"][step] + rank1["losses"][step]) / 2
        assert mean == pytest.approx(single["losses"][step], abs=1e-5)


def test_ddp_parameters_equal_the_single_process_ones(runs):
    (single,) = runs["single"]
    ddp = runs["ddp"][0]["state"]
    for key, value in single["state"].items():
        if not value.dtype.is_floating_point:
            assert torch.equal(value, ddp[key]), key
            continue
        assert torch.allclose(value, ddp[key], atol=2e-5, rtol=1e-4), (
            f"{key}: max difference {float((value - ddp[key]).abs().max()):.3g}"
        )
    # the tolerance is far below what stage 2 moved (3 Adam steps of lr 3e-3 after stage 1)
    key = "interaction.encoder.text_model.embeddings.word_embeddings.weight"
    assert float((single["state"][key] - single["stage1_embeddings"]).abs().max()) > 5e-3


def test_stage1_runs_under_lightning_and_is_split_without_changing_its_result(runs):
    (single,) = runs["single"]
    for result in (single, *runs["ddp"]):
        assert result["entity_modeling_done"], "Lightning's fit must run stage 1"
        assert len(result["stage1_losses"]) == 2
    rank0, rank1 = runs["ddp"]
    assert torch.equal(rank0["stage1_embeddings"], rank1["stage1_embeddings"])
    assert rank0["stage1_losses"] == rank1["stage1_losses"]
    # the same embeddings and losses as one process (sharded loss sums, all-reduced gradients)
    assert torch.allclose(rank0["stage1_embeddings"], single["stage1_embeddings"], atol=1e-6, rtol=0)
    assert rank0["stage1_losses"] == pytest.approx(single["stage1_losses"], abs=1e-6)
    assert single["stage1_losses"][1] < single["stage1_losses"][0]


def test_unused_parameters_are_frozen_so_ddp_needs_no_unused_parameter_search(runs):
    # the DDP fit above ran with find_unused_parameters=False: it would have raised otherwise
    frozen = runs["ddp"][0]["frozen"]
    assert "interaction.encoder.text_model.pooler.dense.weight" in frozen
    assert "interaction.encoder.vision_model.post_layernorm.weight" in frozen
    # frozen parameters stay in the state dict (checkpoints keep loading) and do not move
    single = runs["single"][0]["state"]
    assert all(name in single for name in frozen)
