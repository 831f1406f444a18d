"""Two gloo ranks train one step of ``MKGformer(head_parallel="vocab")`` under DDP and rank a batch.

Run by ``tests/kgc/test_vocab_parallel.py``. Each rank writes ``OUT/rank<r>.pt``: per loss case the
loss, the gradients (encoder, replicated vocabulary, its entity rows and biases), the whole model
after one Adam step (gathered back with ``unshard_entity_rows``), and the filtered tail ranks.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vocab_parallel_support as support  # noqa: E402

from pykeen_mkgformer.kgc.parallel import FilterIndex  # noqa: E402
from pykeen_mkgformer.kgc.vocab_parallel import (  # noqa: E402
    entity_shard_parameters,
    vocab_parallel_loss,
    vocab_parallel_ranks,
)


class LossStep(torch.nn.Module):
    """What DDP wraps: the model, and a forward that is the sharded LCWA loss."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, pairs, positives, smoothing):
        return vocab_parallel_loss(self.model, pairs, positives, label_smoothing=smoothing)


def run(rank: int, world: int, port: int, out: Path) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    group = torch.distributed.new_group()
    batch = support.global_batch()
    mine = support.local(batch, rank)
    results: dict = dict(rank=rank)
    for name, smoothing in support.CASES:
        model = support.build(name, smoothing)
        state = model.shard_entity_rows(group=group)
        ddp = torch.nn.parallel.DistributedDataParallel(LossStep(model))
        parameters = [p for p in model.parameters() if p.requires_grad] + entity_shard_parameters(model)
        optimizer = torch.optim.Adam(parameters, lr=support.LR)
        loss = ddp(mine["pairs"], mine["positives"], None if name == "official" else smoothing)
        loss.backward()
        grads = {key: p.grad.clone() for key, p in model.named_parameters() if p.grad is not None}
        grads["rows.weight"], grads["rows.bias"] = state.rows.weight.grad.clone(), state.rows.bias.grad.clone()
        optimizer.step()
        shard = (state.rows.start, state.rows.stop)
        ddp_names = {name for name, p in ddp.named_parameters() if p.requires_grad}
        model.unshard_entity_rows()
        results[(name, smoothing)] = dict(
            loss=loss.detach(), grads=grads, shard=shard, ddp_parameters=ddp_names,
            after={key: value.detach().clone() for key, value in model.state_dict().items()},
        )
    # filtered ranks of a fresh sharded model: tail queries, and head queries as their inverse tail queries
    model = support.build()
    model.shard_entity_rows(group=group)
    index = FilterIndex(batch["known"], num_relations=model.num_relations)
    for side in ("tail", "head"):
        ranks = vocab_parallel_ranks(model, mine[f"{side}_queries"], mine[f"{side}_answers"], index)
        results["ranks", side] = dict(optimistic=ranks.optimistic, pessimistic=ranks.pessimistic,
                                      realistic=ranks.realistic, options=ranks.number_of_options)
    torch.save(results, out / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(run, args=(2, port, args.out), nprocs=2, join=True)


if __name__ == "__main__":
    main()
