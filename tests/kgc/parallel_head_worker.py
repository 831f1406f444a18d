"""Two gloo processes train one step of the toy problem with the vocabulary-parallel head; run by ``tests/kgc/test_parallel_head.py``.

Each rank wraps the toy encoder in DDP (the entity shard excluded from it), computes every case of
``parallel_head_support.CASES`` (loss, gradients, one Adam step), the filtered ranks, and the plain
cross-entropy through DTensor's ``loss_parallel``, and saves them to ``OUT/rank<r>.pt``.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import parallel_head_support as toy  # noqa: E402

from pykeen_mkgformer.kgc.parallel import FilterIndex, ShardedEntityRows, VocabParallelEntityHead  # noqa: E402


class Toy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = toy.ToyEncoder()
        weight, bias = toy.entity_rows()
        self.rows = ShardedEntityRows(num_entities=toy.NUM_ENTITIES, embedding_dim=toy.DIM, init=weight)
        with torch.no_grad():
            self.rows.bias.copy_(bias[self.rows.start : self.rows.stop])

    def forward(self, hr: torch.Tensor) -> torch.Tensor:
        return self.encoder(hr)


def run(rank: int, world: int, port: int, out: Path) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    batch = toy.global_batch()
    mine = toy.local_slice(rank)
    hr = batch["hr"][mine]
    tails = batch["tails"][mine]
    pairs = batch["pairs"][(batch["pairs"][:, 0] >= mine.start) & (batch["pairs"][:, 0] < mine.stop)].clone()
    pairs[:, 0] -= mine.start
    results: dict = dict(rank=rank, world=world)
    for name, smoothing, class_targets in toy.CASES:
        model = Toy()
        torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            model, model.rows.ddp_ignore("rows")
        )
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        head = VocabParallelEntityHead(num_entities=toy.NUM_ENTITIES)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=toy.LR)
        queries = ddp(hr)
        loss = head.loss(
            queries, model.rows.weight, model.rows.bias, tails if class_targets else pairs,
            loss=name, label_smoothing=smoothing,
        )
        loss.backward()
        grads = {key: p.grad.clone() for key, p in model.named_parameters() if p.grad is not None}
        optimizer.step()
        results[(name, smoothing, class_targets)] = dict(
            loss=loss.detach(), grads=grads, after={key: p.detach().clone() for key, p in model.named_parameters()}
        )
    # filtered ranks on the sharded head (tail side)
    model = Toy()
    head = VocabParallelEntityHead(num_entities=toy.NUM_ENTITIES)
    index = FilterIndex(batch["known"], num_relations=toy.NUM_RELATIONS)
    ranks = head.ranks(
        model.encoder(hr), model.rows.weight, model.rows.bias, tails, keys=index.key(hr[:, 0], hr[:, 1]), filter_index=index
    )
    results["ranks"] = dict(optimistic=ranks.optimistic, pessimistic=ranks.pessimistic, realistic=ranks.realistic,
                            options=ranks.number_of_options)
    results["shard"] = (model.rows.start, model.rows.stop)
    results["loss_parallel"] = _loss_parallel(model, head, batch)
    torch.save(results, out / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def _loss_parallel(model: Toy, head: VocabParallelEntityHead, batch: dict) -> dict:
    """Plain cross-entropy of the whole batch (replicated on both ranks) through DTensor's loss_parallel and through the head."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Shard
    from torch.distributed.tensor.parallel import loss_parallel

    mesh = init_device_mesh("cpu", (torch.distributed.get_world_size(),))
    queries = model.encoder(batch["hr"]).detach()
    weight = model.rows.weight.detach().clone().requires_grad_(True)
    logits = queries @ weight.t() + model.rows.bias.detach()
    # uneven shards (6 + 5 columns): the global shape must be given
    n = toy.NUM_ENTITIES
    distributed = DTensor.from_local(logits, mesh, [Shard(1)], shape=(logits.shape[0], n), stride=(n, 1))
    with loss_parallel():
        reference = torch.nn.functional.cross_entropy(distributed, batch["tails"])
        reference.backward()
    reference_grad = weight.grad.clone()
    weight.grad = None
    ours = head.loss_from_scores(queries @ weight.t() + model.rows.bias.detach(), batch["tails"], loss="softmax")
    ours.backward()
    return dict(reference=reference.full_tensor().detach(), reference_grad=reference_grad, ours=ours.detach(), ours_grad=weight.grad)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--world", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(run, args=(args.world, port, args.out), nprocs=args.world, join=True)


if __name__ == "__main__":
    main()
