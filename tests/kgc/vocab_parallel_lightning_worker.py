"""PyKEEN's Lightning integration with ``MKGformer(head_parallel="vocab")``: 2 CPU processes, DDP on gloo, 3 steps.

Run by ``tests/kgc/test_vocab_parallel.py`` (Lightning's ``ddp`` strategy starts rank 1 by running this
script again). Each rank writes ``OUT/rank<r>.pt``: its losses, its shard, whether its rows moved, the
rows in its optimizer's state, and the whole model gathered back after ``fit``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytorch_lightning
import torch
from pykeen.contrib.lightning import lit_module_resolver
from pykeen.datasets import EagerDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vocab_parallel_support as support  # noqa: E402

STEPS = 3


class RecordLosses(pytorch_lightning.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pytorch_lightning.seed_everything(5, verbose=False)
    training = support.factory()
    # found by name: the plugin registers its module in PyKEEN's lit_module_resolver
    module = lit_module_resolver.make(
        "vocabparallellcwa",
        dataset=EagerDataset(training=training, testing=training, validation=None),
        model="mkgformer",
        model_kwargs=support.model_kwargs(),
        batch_size=4,
        learning_rate=1e-2,
        label_smoothing=0.1,
        optimizer="adam",
    )
    model = module.model
    offset = model.queries.entity_token_offset
    initial = model.interaction.encoder.get_input_embeddings().weight.detach()[offset : offset + support.NUM_ENTITIES].clone()
    losses = RecordLosses()
    trainer = pytorch_lightning.Trainer(
        callbacks=[losses], accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, limit_train_batches=STEPS,
        limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(module)
    rows = model.__dict__["_vocab_parallel"].rows
    start, stop = rows.start, rows.stop
    adam = trainer.optimizers[0].state[rows.weight]["exp_avg"]
    record = dict(
        world_size=trainer.world_size, shard=(start, stop), losses=losses.losses, steps=STEPS,
        rows_changed=not torch.equal(rows.weight.detach(), initial[start:stop]), adam_rows=adam.shape[0],
    )
    model.unshard_entity_rows()
    record["state"] = {key: value.detach().clone() for key, value in model.state_dict().items()}
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(record, args.out / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main()
