"""PyKEEN's LCWA and sLCWA training loops that say how many batches an epoch has.

A schedule stepped per batch (:class:`~pykeen_mkgformer.kgc.training.LinearWarmupTrainingCallback`)
needs the number of optimizer steps before the first one. PyKEEN builds the epoch's data loader in
``TrainingLoop._train`` after the callbacks are registered and before the first batch, through
``_create_training_data_loader``, the method every training-loop subclass implements (PyKEEN's LCWA
and sLCWA loops do). :class:`BatchCountingMixin` implements it as the loop it is mixed into does
and keeps the loader's length as :attr:`~BatchCountingMixin.batches_per_epoch`; the schedule reads
that attribute. Registered in PyKEEN's ``training_loop_resolver`` (by
:mod:`pykeen_mkgformer.registration`)::

    pipeline(..., training_loop="BatchCountingLCWA",
             training_kwargs=dict(callbacks=["linearwarmup"], callbacks_kwargs=[dict(num_epochs=...)]))

Any other loop gains the attribute by mixing :class:`BatchCountingMixin` in first.
"""

from __future__ import annotations

from typing import Any

from pykeen.training.lcwa import LCWATrainingLoop
from pykeen.training.slcwa import SLCWATrainingLoop

from ..resolvers import register_if_made

__all__ = ["BatchCountingMixin", "BatchCountingLCWATrainingLoop", "BatchCountingSLCWATrainingLoop"]


class BatchCountingMixin:
    """A training loop whose :attr:`batches_per_epoch` is the length of the data loader of its current run."""

    #: batches per epoch of the current ``train`` call (None before its data loader is built)
    batches_per_epoch: int | None = None

    def _create_training_data_loader(self, *args: Any, **kwargs: Any):  # noqa: D102
        loader = super()._create_training_data_loader(*args, **kwargs)  # type: ignore[misc]
        self.batches_per_epoch = len(loader)
        return loader


class BatchCountingLCWATrainingLoop(BatchCountingMixin, LCWATrainingLoop):
    """PyKEEN's LCWA training loop with :attr:`~BatchCountingMixin.batches_per_epoch` (``"BatchCountingLCWA"``)."""


class BatchCountingSLCWATrainingLoop(BatchCountingMixin, SLCWATrainingLoop):
    """PyKEEN's sLCWA training loop with :attr:`~BatchCountingMixin.batches_per_epoch` (``"BatchCountingSLCWA"``)."""


# imported first, this module was half-imported when the plugin's registration ran
register_if_made("pykeen.training", "training_loop_resolver", BatchCountingLCWATrainingLoop, BatchCountingSLCWATrainingLoop)
