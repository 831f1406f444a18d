r"""Training callbacks for the official MKGformer recipe, registered in PyKEEN's ``callback_resolver``
(by :mod:`pykeen_mkgformer.registration`).

Usable from an experiment file (callbacks run in the order given; put the schedule first)::

    "training_loop": "BatchCountingLCWA",
    "training_kwargs": {
      "callbacks": ["linearwarmup", "decoupledweightdecay"],
      "callbacks_kwargs": [{"num_epochs": 12, "warmup_ratio": 0.1},
                           {"weight_decay": 0.01}]
    }

- :class:`LinearWarmupTrainingCallback`: the learning rate of optimizer step :math:`s` is
  :math:`\eta\, s / W` while :math:`s < W` and :math:`\eta \max(0, (T - s) / (T - W))` after,
  with :math:`T` = batches per epoch × epochs and :math:`W = \rho T` (``warm_up_radio`` :math:`\rho`),
  as transformers' ``get_linear_schedule_with_warmup`` stepped after every batch.
- :class:`DecoupledWeightDecayTrainingCallback`: AdamW's decay :math:`\theta \leftarrow \theta (1 - \eta \lambda)`,
  before each step, for every parameter whose name contains none of ``exclude`` (the official
  ``["bias", "LayerNorm.weight"]``). With an Adam optimizer without weight decay, this is exactly
  AdamW with the two parameter groups of the official code: AdamW applies the same factor before an
  update that does not depend on :math:`\theta`. (Unlike parameter groups, it keeps PyKEEN's
  optimizer, its re-creation at the start of training and its checkpoints untouched.)

The schedule reads the step from the training loop (epochs done × batches per epoch + batches of
this epoch), so a run resumed from a PyKEEN checkpoint continues it; the batches per epoch are the
length of the data loader PyKEEN builds for the run, which the training loops of :mod:`.loops` keep
(``training_loop="BatchCountingLCWA"``; with another loop the schedule refuses to start).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from pykeen.training.callbacks import TrainingCallback

from ..resolvers import register_if_made

__all__ = ["LinearWarmupTrainingCallback", "DecoupledWeightDecayTrainingCallback", "linear_warmup_factor"]


def linear_warmup_factor(step: int, total: int, warmup: float) -> float:
    """The schedule's factor at optimizer step ``step`` (0-based) of ``total``, ``warmup`` steps rising."""
    if step < warmup:
        return step / max(1.0, warmup)
    return max(0.0, (total - step) / max(1.0, total - warmup))


class _StepCounter(TrainingCallback):
    """Counts optimizer steps from the training loop's epoch, so that resumed runs continue the count."""

    def __init__(self):
        super().__init__()
        self._epoch: int | None = None
        self._in_epoch = 0

    def register_training_loop(self, training_loop) -> None:  # noqa: D102
        super().register_training_loop(training_loop)
        if not hasattr(training_loop, "batches_per_epoch"):
            raise TypeError(
                f"{type(self).__name__} steps per batch and needs the batches per epoch before the first step: "
                f"train with training_loop='BatchCountingLCWA' or 'BatchCountingSLCWA' "
                f"(pykeen_mkgformer.kgc.loops), not {type(training_loop).__name__}."
            )

    @property
    def per_epoch(self) -> int:
        """Training batches per epoch (the training loop's ``batches_per_epoch``)."""
        count = self.training_loop.batches_per_epoch
        if count is None:
            raise RuntimeError("the training data loader has not been built yet")
        return count

    def step(self) -> int:
        """The 0-based index of the optimizer step about to be taken."""
        epochs_done = self.training_loop._epoch
        if epochs_done != self._epoch:
            self._epoch, self._in_epoch = epochs_done, 0
        return epochs_done * self.per_epoch + self._in_epoch

    def post_batch(self, epoch: int, batch, **kwargs: Any) -> None:  # noqa: D102
        self._in_epoch += 1


class LinearWarmupTrainingCallback(_StepCounter):
    """Linear warm-up then linear decay of the learning rate, per optimizer step (see the module docstring)."""

    def __init__(self, num_epochs: int, warmup_ratio: float = 0.1):
        """:param num_epochs: the training loop's ``num_epochs``
        :param warmup_ratio: the share of all steps that warm up (the official ``--warm_up_radio``, 0.1)
        """
        super().__init__()
        if num_epochs < 1 or not 0.0 <= warmup_ratio < 1.0:
            raise ValueError(f"need num_epochs >= 1 and 0 <= warmup_ratio < 1, got {num_epochs!r}, {warmup_ratio!r}.")
        self.num_epochs = num_epochs
        self.warmup_ratio = warmup_ratio

    def pre_step(self, **kwargs: Any) -> None:  # noqa: D102
        total = self.per_epoch * self.num_epochs
        factor = linear_warmup_factor(self.step(), total, total * self.warmup_ratio)
        for group in self.optimizer.param_groups:
            # the peak rate is kept in the group (and so in PyKEEN's checkpoints), as torch's schedulers do
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor


class DecoupledWeightDecayTrainingCallback(TrainingCallback):
    """AdamW's decoupled weight decay, except for parameters named like ``exclude`` (see the module docstring)."""

    def __init__(self, weight_decay: float = 0.01, exclude: Sequence[str] = ("bias", "LayerNorm.weight")):
        """:param weight_decay: :math:`\\lambda` (the official ``--weight_decay``, 0.01)
        :param exclude: parameters whose name contains one of these get no decay
        """
        super().__init__()
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, got {weight_decay!r}.")
        self.weight_decay = weight_decay
        self.exclude = tuple(exclude)

    def decayed_names(self) -> list[str]:
        """The names of the parameters that decay."""
        return [
            name
            for name, parameter in self.model.named_parameters()
            if parameter.requires_grad and not any(part in name for part in self.exclude)
        ]

    def pre_step(self, **kwargs: Any) -> None:  # noqa: D102
        if not self.weight_decay:
            return
        optimizer = self.optimizer
        if any(group.get("weight_decay", 0.0) for group in optimizer.param_groups):
            raise ValueError(
                "DecoupledWeightDecayTrainingCallback decays by itself: give the optimizer weight_decay=0 (e.g. Adam)."
            )
        rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
        with torch.no_grad():
            for name, parameter in self.model.named_parameters():
                if parameter.grad is None or id(parameter) not in rates or any(part in name for part in self.exclude):
                    continue
                parameter.mul_(1.0 - rates[id(parameter)] * self.weight_decay)


# imported first, this module was half-imported when the plugin's registration ran
register_if_made(
    "pykeen.training.callbacks", "callback_resolver", LinearWarmupTrainingCallback, DecoupledWeightDecayTrainingCallback
)
