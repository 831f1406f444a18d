"""A Lightning fit of a tiny MKGformer on ShapesKG through ``pykeen.contrib.lightning``, on 1 or N CPU processes.

Run by ``tests/kgc/test_ddp.py`` in a subprocess (Lightning's ``ddp`` strategy starts the other ranks by
running this script again). Each rank saves, to ``OUT/rank<r>.pt``: the model's state dict after
``fit``, its word embeddings right after stage 1, the stage-1 losses, and the flags.

Both runs shuffle with the same sampler, ``DistributedSampler(num_replicas=W, rank=r, seed=5)``
(Lightning's automatic one is switched off: it would be a ``RandomSampler`` for one process).
It permutes the instances once (the same permutation for every ``W``) and gives rank ``r`` the
positions ``r, r + W, r + 2W, ...``; so step ``k`` of the W ranks together covers positions
``k*B .. (k+1)*B - 1`` of the permutation, exactly the single-process batch ``k`` of size ``B``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytorch_lightning
import torch
from pykeen.contrib.lightning import LCWALitModule

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared kgc_support
from kgc_support import tiny_model_kwargs  # noqa: E402


class SeededLCWALitModule(LCWALitModule):
    """PyKEEN's LCWA Lightning module, shuffled by a ``DistributedSampler`` for any number of processes."""

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        dataset = self._dataloader(triples_factory=self.dataset.training).dataset
        sampler = torch.utils.data.DistributedSampler(
            dataset, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=True, seed=5
        )
        return torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, sampler=sampler)


class RecordBatches(pytorch_lightning.Callback):
    """Keep each step's (head, relation) pairs and loss on this rank."""

    def __init__(self) -> None:
        self.pairs: list[torch.Tensor] = []
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.pairs.append(batch["pairs"].detach().clone())
        self.losses.append(float(outputs["loss"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="ShapesKG cache root")
    parser.add_argument("--pixels", type=Path, required=True, help="pixel cache folder")
    parser.add_argument("--global-batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--stage1-epochs", type=int, default=2)
    parser.add_argument("--stage1-batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.global_batch_size % args.devices:
        raise SystemExit(f"--global-batch-size {args.global_batch_size} is not divisible by --devices {args.devices}")

    pytorch_lightning.seed_everything(5, verbose=False)
    module = SeededLCWALitModule(
        dataset="shapeskg",
        dataset_kwargs=dict(cache_root=str(args.data), num_entities=24, create_inverse_triples=True),
        model="mkgformer",
        model_kwargs=tiny_model_kwargs(
            args.pixels,
            random_seed=5,
            # dropout draws different masks on each rank: off, so that 1 and 2 processes compute the same function
            dropout=0.0,
            entity_modeling_epochs=args.stage1_epochs,
            entity_modeling_batch_size=args.stage1_batch_size,
            entity_modeling_lr=0.01,
        ),
        batch_size=args.global_batch_size // args.devices,
        learning_rate=3e-3,
        optimizer="adam",
    )
    model = module.model
    record: dict = {}
    run_stage1 = model.entity_modeling.run

    def run_and_record(*run_args, **run_kwargs):
        losses = run_stage1(*run_args, **run_kwargs)
        record["stage1_embeddings"] = model.interaction.encoder.get_input_embeddings().weight.detach().clone()
        record["stage1_losses"] = losses
        return losses

    model.entity_modeling.run = run_and_record
    batches = RecordBatches()
    trainer = pytorch_lightning.Trainer(
        callbacks=[batches],
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        use_distributed_sampler=False,
        max_epochs=1,
        limit_train_batches=args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(
        dict(
            state={key: value.detach().clone() for key, value in model.state_dict().items()},
            world_size=trainer.world_size,
            entity_modeling_done=bool(model.entity_modeling_done),
            frozen=list(model.frozen_parameters),
            pid=os.getpid(),
            pairs=batches.pairs,
            losses=batches.losses,
            **record,
        ),
        args.out / f"rank{trainer.global_rank}.pt",
    )


if __name__ == "__main__":
    main()
