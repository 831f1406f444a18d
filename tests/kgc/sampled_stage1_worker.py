"""Sampled stage 1 of a tiny MKGformer on ShapesKG, on 1 process or on 2 gloo processes; run by ``tests/kgc/test_sampled.py``.

Each rank saves the word embeddings after stage 1 and the epoch losses to ``OUT/rank<r>.pt``.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared kgc_support
from kgc_support import tiny_model_kwargs  # noqa: E402


def run(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    from pykeen_mkgformer.data import ShapesKG
    from pykeen_mkgformer.kgc import MKGformer

    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    shapes = ShapesKG(cache_root=args.data, num_entities=24, create_inverse_triples=True)
    model = MKGformer(
        triples_factory=shapes.training, random_seed=3,
        **tiny_model_kwargs(args.pixels, dropout=0.0, entity_modeling_epochs=2, entity_modeling_batch_size=7,
                            entity_modeling_lr=0.02, entity_modeling_objective="sampled", entity_modeling_negatives=5),
    )
    losses = model.run_entity_modeling()
    torch.save(dict(weight=model.interaction.encoder.get_input_embeddings().weight.detach().clone(), losses=losses),
               args.out / f"rank{rank}.pt")
    if world > 1:
        torch.distributed.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--pixels", type=Path, required=True)
    parser.add_argument("--world", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.world == 1:
        run(0, 1, 0, args)
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(run, args=(args.world, port, args), nprocs=args.world, join=True)


if __name__ == "__main__":
    main()
