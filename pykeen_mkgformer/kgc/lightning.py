r"""PyKEEN's Lightning LCWA module for ``MKGformer(head_parallel="vocab")``: DDP for the encoder, sharded entity rows.

:class:`VocabParallelLCWALitModule` is :class:`pykeen.contrib.lightning.LCWALitModule` with three
changes, for a model built with ``head_parallel="vocab"``:

- ``setup`` (after Lightning has started the process group, before it wraps the module in DDP and
  builds the optimizer) shards the entity rows over the ranks, on a process group of their own
  (:func:`~.vocab_parallel.shard_entity_rows`; stage 1 runs first if it is due);
- each step computes the loss of the global batch from the local shard
  (:func:`~.vocab_parallel.vocab_parallel_loss`): the batches carry their true tails as ``(row, tail)``
  pairs (:class:`LCWAPositives`) instead of PyKEEN's dense ``(batch, N)`` label rows;
- the optimizer gets this rank's rows next to the module's parameters, so its state is sharded too.

The shard is not a parameter of the Lightning module, so Lightning's checkpoints do not hold it:
call ``module.model.unshard_entity_rows()`` on every rank after ``fit`` to get the whole model back
(e.g. to save it with ``model.save``).

Registered in PyKEEN's ``lit_module_resolver`` (:mod:`pykeen_mkgformer.registration`), so
``lit_pipeline(training_loop="vocabparallellcwa", ...)`` finds it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pykeen.contrib.lightning import LCWALitModule
from pykeen.triples import LCWAInstances

from ..resolvers import register_if_made

__all__ = ["LCWAPositives", "VocabParallelLCWALitModule"]


class LCWAPositives(torch.utils.data.Dataset):
    """PyKEEN's LCWA instances as ``{"pairs": (b, 2), "positives": (m, 2)}`` batches: sparse labels, never ``(b, N)``."""

    def __init__(self, instances: LCWAInstances):
        self.pairs = torch.as_tensor(instances.pairs, dtype=torch.long)
        self.compressed = instances.compressed

    def __len__(self) -> int:
        return self.pairs.shape[0]

    def __getitem__(self, index: int) -> int:
        return index

    def collate(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """The batch of these instances; ``positives`` are (row in the batch, true tail) pairs."""
        rows = np.asarray(indices, dtype=np.int64)
        labels = self.compressed[rows].tocoo()
        positives = np.stack([labels.row, labels.col], axis=1).astype(np.int64)
        return {"pairs": self.pairs[torch.as_tensor(rows)], "positives": torch.as_tensor(positives)}


class VocabParallelLCWALitModule(LCWALitModule):
    """LCWA training of ``MKGformer(head_parallel="vocab")`` under Lightning's DDP (see the module docstring)."""

    def __init__(self, **kwargs: Any):
        """:param kwargs: those of :class:`pykeen.contrib.lightning.LCWALitModule`; the model must have ``head_parallel="vocab"``."""
        super().__init__(**kwargs)
        if getattr(self.model, "head_parallel", None) != "vocab":
            raise ValueError(
                f"{type(self).__name__} trains a model built with head_parallel='vocab' "
                f"(model_kwargs=dict(head_parallel='vocab', ...)); got {type(self.model).__name__} without it."
            )

    # docstr-coverage: inherited
    def setup(self, stage: str) -> None:  # noqa: D102
        super().setup(stage)
        if self.model.entity_rows_sharded:
            return
        group = None
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # the head's collectives on their own group: they never interleave with DDP's buckets
            group = torch.distributed.new_group()
        self.model.shard_entity_rows(group=group, device=self.trainer.strategy.root_device)

    # docstr-coverage: inherited
    def _step(self, batch, prefix: str):  # noqa: D102
        from .vocab_parallel import vocab_parallel_loss

        loss = vocab_parallel_loss(
            self.model, batch["pairs"], batch["positives"], label_smoothing=self.label_smoothing or None
        )
        self.log(f"{prefix}_loss", loss)
        return loss

    # docstr-coverage: inherited
    def _dataloader(self, triples_factory, shuffle: bool = False) -> torch.utils.data.DataLoader:  # noqa: D102
        dataset = LCWAPositives(LCWAInstances.from_triples_factory(triples_factory))
        return torch.utils.data.DataLoader(
            dataset, batch_size=self.batch_size, shuffle=shuffle, collate_fn=dataset.collate
        )

    # docstr-coverage: inherited
    def configure_optimizers(self):  # noqa: D102
        from pykeen.optimizers import optimizer_resolver

        from .vocab_parallel import entity_shard_parameters

        parameters = [p for p in self.parameters() if p.requires_grad] + entity_shard_parameters(self.model)
        return optimizer_resolver.make(self.optimizer, self.optimizer_kwargs, params=parameters, lr=self.learning_rate)


# imported first, this module is half-imported when the plugin's registration runs: it registers itself here
# (and while PyKEEN's module is still making its resolver, the registration's callback does)
register_if_made("pykeen.contrib.lightning", "lit_module_resolver", VocabParallelLCWALitModule)
