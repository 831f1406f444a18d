r"""The label-smoothed softmax cross-entropy of the official MKGformer code, as a PyKEEN loss.

With :math:`C` classes, smoothing :math:`\varepsilon` and the true class :math:`y`, the official
stage-1 loss (``--bce 0``, ``LabelSmoothSoftmaxCEV1``) puts weight :math:`1 - \varepsilon` on
:math:`y` and :math:`\varepsilon / C` on **every other** class:

.. math::

    \mathcal{L} = -(1 - \varepsilon) \log p_y - \frac{\varepsilon}{C} \sum_{c \ne y} \log p_c ,
    \qquad p = \mathrm{softmax}(x).

PyKEEN's :class:`~pykeen.losses.CrossEntropyLoss` with ``label_smoothing`` (torch's
``cross_entropy(label_smoothing=ε)``) gives :math:`y` the weight :math:`1 - \varepsilon + \varepsilon / C`
instead, so the two differ by :math:`\frac{\varepsilon}{C} \log p_y` (a test pins this): hence a
loss of its own. With several true classes (PyKEEN's LCWA labels), the :math:`1 - \varepsilon` is
shared equally among them.
"""

from __future__ import annotations

import torch
from pykeen.losses import SetwiseLoss, loss_resolver
from torch.nn import functional

from ..resolvers import register_once

__all__ = ["SmoothedSoftmaxCrossEntropyLoss", "smoothed_softmax_cross_entropy"]


def smoothed_softmax_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    r"""The per-row loss above; ``targets`` holds class indices ``(batch,)`` or a multi-hot ``(batch, C)``.

    Computed in at least float32, as the official code does.
    """
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    log_probabilities = functional.log_softmax(logits, dim=-1)
    if targets.dim() == logits.dim() - 1:
        positives = functional.one_hot(targets, logits.shape[-1]).to(logits.dtype)
    else:
        positives = (targets > 0).to(logits.dtype)
    count = positives.sum(dim=-1, keepdim=True).clamp(min=1.0)
    weights = torch.where(
        positives > 0, (1.0 - smoothing) / count, torch.full_like(positives, smoothing / logits.shape[-1])
    )
    return -(weights * log_probabilities).sum(dim=-1)


class SmoothedSoftmaxCrossEntropyLoss(SetwiseLoss):
    r"""Softmax cross-entropy with the official MKGformer's label smoothing (see the module docstring).

    ---
    name: Smoothed softmax cross entropy
    """

    def __init__(self, smoothing: float = 0.1, reduction: str = "mean"):
        """:param smoothing: :math:`\\varepsilon`, the official ``--label_smoothing`` (default 0.1)"""
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}.")
        super().__init__(reduction=reduction)
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The reduced loss of ``logits`` ``(batch, C)`` against class indices or multi-hot ``targets``."""
        return self._reduction_method(smoothed_softmax_cross_entropy(logits, targets, self.smoothing))

    # docstr-coverage: inherited
    def process_lcwa_scores(
        self,
        predictions: torch.Tensor,
        labels: torch.Tensor,
        label_smoothing: float | None = None,
        num_entities: int | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:  # noqa: D102
        if label_smoothing:
            raise ValueError(
                "SmoothedSoftmaxCrossEntropyLoss smooths by itself (its 'smoothing'); leave the training "
                "loop's label_smoothing unset."
            )
        self._raise_on_weights(weights)
        return self(predictions, labels)

    # docstr-coverage: inherited
    def process_slcwa_scores(self, *args, **kwargs) -> torch.Tensor:  # noqa: D102
        raise NotImplementedError("SmoothedSoftmaxCrossEntropyLoss scores all entities: use it with LCWA.")


register_once(loss_resolver, SmoothedSoftmaxCrossEntropyLoss)
