r"""Stage 1 of MKGformer: image-text incorporated entity modeling.

Before link prediction, each entity token learns what its description and images say: the input
``[CLS] [MASK] is <e text> [SEP]`` with entity :math:`e`'s images is scored against all entity
tokens exactly like a link prediction query, and the cross-entropy

.. math::

    \mathcal{L} = -\log \frac{\exp f_e}{\sum_{e'} \exp f_{e'}}, \qquad
    f_{e'} = \mathrm{MLM}(\mathbf{m}_e)^{\top}\mathbf{e}_{e'} + b_{e'}

is minimised with Adam over the **new token embeddings only** (entity and relation rows of the
word embedding matrix): every other parameter is frozen, and the gradient of the original
vocabulary's rows is masked to zero, so they do not move (Adam without weight decay leaves a
parameter with zero gradient untouched).

The official recipe (:meth:`~pykeen_mkgformer.kgc.recipe.KGCRecipe.official`) differs: its loss is
the label-smoothed cross-entropy of :class:`~pykeen_mkgformer.kgc.losses.SmoothedSoftmaxCrossEntropyLoss`
(:math:`\varepsilon = 0.1`), **all** rows of the word embedding matrix train, with AdamW (weight
decay 0.01) and a linear warm-up over the first 10% of the steps, then a linear decay.

The shuffling uses PyTorch's global generator, so stage 1 is deterministic under PyKEEN's
``random_seed``; it runs once, from :meth:`pykeen_mkgformer.kgc.MKGformer.train`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.nn import functional
from tqdm.auto import tqdm

from .losses import smoothed_softmax_cross_entropy

if TYPE_CHECKING:
    from .model import MKGformer

__all__ = ["EntityModeling"]

logger = logging.getLogger(__name__)


@dataclass
class EntityModeling:
    """Settings of stage 1 and the loop that runs it."""

    #: passes over all entities (0: skip stage 1)
    epochs: int = 15
    #: entities per step
    batch_size: int = 64
    #: Adam's learning rate
    lr: float = 5e-4
    #: show a progress bar
    progress: bool = True
    #: ``"new"``: only the entity / relation token rows train; ``"all"``: every row (official)
    rows: str = "new"
    #: label smoothing of the official loss (0: plain cross-entropy)
    smoothing: float = 0.0
    #: AdamW's decoupled weight decay on the trained rows
    weight_decay: float = 0.0
    #: linear warm-up over this share of all steps, then linear decay; None: constant rate
    warmup_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.rows not in ("new", "all"):
            raise ValueError(f"rows must be 'new' or 'all', got {self.rows!r}.")
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(
                f"entity modeling needs epochs >= 0, batch_size >= 1 and lr > 0; got epochs={self.epochs}, "
                f"batch_size={self.batch_size}, lr={self.lr}."
            )

    def run(self, model: MKGformer, entities: torch.LongTensor | None = None) -> list[float]:
        """Train the new token embeddings of ``model`` on entity modeling; return the mean loss per epoch.

        :param model: the model
        :param entities: only these entities' queries are trained, and only their token rows move
            (e.g. entities added after training); default: every entity, and all entity and relation rows
        """
        if self.epochs == 0:
            return []
        word_embeddings = model.interaction.encoder.get_input_embeddings()
        weight = word_embeddings.weight
        new_rows = torch.zeros(weight.shape[0], 1, dtype=weight.dtype, device=weight.device)
        subset = None if entities is None else torch.as_tensor(entities, dtype=torch.long).view(-1).cpu()
        if subset is None:
            new_rows[model.queries.entity_token_offset :] = 1.0
        else:
            new_rows[subset.to(weight.device) + model.queries.entity_token_offset] = 1.0
        trainable = {id(weight)}
        previous = {name: p.requires_grad for name, p in model.named_parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in trainable)
        handle = weight.register_hook(lambda grad: grad * new_rows) if self.rows == "new" else None
        # with only the new rows training, their decay is applied by hand (AdamW would decay every row)
        decay_by_hand = self.rows == "new" and self.weight_decay > 0
        if self.weight_decay or self.warmup_ratio is not None:
            optimizer = torch.optim.AdamW(
                [weight], lr=self.lr, eps=1e-8, weight_decay=0.0 if decay_by_hand else self.weight_decay
            )
        else:
            optimizer = torch.optim.Adam([weight], lr=self.lr, weight_decay=0.0)
        scheduler = None
        if self.warmup_ratio is not None:
            from .training import linear_warmup_factor

            total = self.epochs * math.ceil(model.num_entities / self.batch_size)
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: linear_warmup_factor(step, total, total * self.warmup_ratio)
            )
        was_training = model.training
        model.train()
        losses: list[float] = []
        device = weight.device
        num_entities = model.num_entities if subset is None else subset.shape[0]
        try:
            epochs = tqdm(
                range(self.epochs), desc="Entity modeling (stage 1)", unit="epoch", disable=not self.progress
            )
            for _ in epochs:
                order = torch.randperm(num_entities)
                order = (order if subset is None else subset[order]).to(device)
                total, count = 0.0, 0
                for start in range(0, num_entities, self.batch_size):
                    entities = order[start : start + self.batch_size]
                    optimizer.zero_grad(set_to_none=True)
                    logits = self.logits(model, entities)
                    if self.smoothing:
                        loss = smoothed_softmax_cross_entropy(logits, entities, self.smoothing).mean()
                    else:
                        loss = functional.cross_entropy(logits, entities)
                    loss.backward()
                    if decay_by_hand:
                        with torch.no_grad():
                            weight.mul_(1.0 - optimizer.param_groups[0]["lr"] * self.weight_decay * new_rows)
                    optimizer.step()
                    if scheduler is not None:
                        scheduler.step()
                    total += float(loss.detach()) * entities.shape[0]
                    count += entities.shape[0]
                losses.append(total / max(count, 1))
                epochs.set_postfix(loss=losses[-1])
        finally:
            if handle is not None:
                handle.remove()
            for name, p in model.named_parameters():
                p.requires_grad_(previous[name])
            model.train(was_training)
        logger.info("entity modeling: loss per epoch %s", losses)
        return losses

    @staticmethod
    def logits(model: MKGformer, entities: torch.LongTensor) -> torch.FloatTensor:
        """Scores ``(batch, num_entities)`` of ``[CLS] [MASK] is <e text> [SEP]`` with each entity's own images."""
        query = model.queries.entity_modeling(entities)
        pixel_values = image_mask = None
        if model.images is not None:
            pixel_values, image_mask = model.images.lookup(entities, device=query.input_ids.device)
        vectors = model.interaction.encode(query, pixel_values, image_mask)
        embeddings, bias = model.entity_representation(None)
        return vectors @ embeddings.t() + bias.unsqueeze(0)
