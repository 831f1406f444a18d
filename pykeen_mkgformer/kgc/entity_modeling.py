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
decay 0.01) and a linear warm-up over the first 10% of the steps, then a linear decay; it validates
every epoch (``validate_every``), stops when the MRR has not improved for 5 validations and hands the
rows of the best validation Hits@10 to stage 2 (``checkpoint_metric``).


Stage 1 runs once, wherever training starts (see :meth:`pykeen_mkgformer.kgc.MKGformer.run_entity_modeling`).
It is deterministic and leaves PyTorch's global random state as it found it: the entity order comes
from a private :class:`torch.Generator` seeded with :attr:`EntityModeling.seed` (by default the
model's ``random_seed``), and dropout runs inside :func:`torch.random.fork_rng`.

**Data parallel.** When :mod:`torch.distributed` is initialised (Lightning's DDP/FSDP strategies,
``torchrun``), every rank draws the same permutation ``order`` of the entities, and at each step the
global batch :math:`B = \text{order}[s : s + b]` is split as ``B[rank::world]``. Each rank computes
the *sum* of its shard's losses divided by the global batch size :math:`|B|`, and the gradients (of
the new token rows only) are summed over ranks with one all-reduce:

.. math::

    \sum_{k=0}^{W-1} \nabla \frac{1}{|B|} \sum_{e \in B_k} \ell_e
    = \nabla \frac{1}{|B|} \sum_{e \in B} \ell_e ,

the single-process gradient of the same global batch. All ranks then take the same Adam step from
the same state, so they stay identical, and the result equals single-process stage 1 up to
floating-point summation order and dropout masks (each rank draws its own; with dropout 0 the two
agree to rounding, see ``tests/kgc/test_ddp.py``). A rank whose shard is empty (the last, short batch)
contributes a zero gradient.
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
    #: entities per step (the global batch: under data parallelism it is split across ranks)
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
    #: seed of the entity order and of dropout; None: the model's ``random_seed`` (0 if it has none)
    seed: int | None = None
    #: ``"full"``: each entity against all N (an epoch is O(N^2) scores); ``"sampled"``: against the batch
    #: plus ``num_negatives`` uniform entities with sparse row updates (O(N), :mod:`.sampled`)
    objective: str = "full"
    #: uniform candidates per step of the sampled objective
    num_negatives: int = 1024
    #: validate every this many epochs (0: never): early stopping on the MRR (``patience`` validations
    #: without improvement), and the rows of the best ``checkpoint_metric`` are kept
    validate_every: int = 0
    patience: int = 5
    #: ``"mrr"`` (the stopping metric's best rows) or ``"hits_at_10"`` (the official selection)
    checkpoint_metric: str = "mrr"

    def __post_init__(self) -> None:
        if self.rows not in ("new", "all"):
            raise ValueError(f"rows must be 'new' or 'all', got {self.rows!r}.")
        if self.checkpoint_metric not in _Selection.METRICS:
            raise ValueError(f"checkpoint_metric must be one of {_Selection.METRICS}, got {self.checkpoint_metric!r}.")
        if self.objective not in ("full", "sampled"):
            raise ValueError(f"objective must be 'full' or 'sampled', got {self.objective!r}.")
        if self.objective == "sampled" and (self.rows != "new" or self.weight_decay):
            raise ValueError("the sampled stage-1 objective trains the new rows only, without weight decay (rows='new').")
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(
                f"entity modeling needs epochs >= 0, batch_size >= 1 and lr > 0; got epochs={self.epochs}, "
                f"batch_size={self.batch_size}, lr={self.lr}."
            )

    def run(self, model: MKGformer, *, entities: torch.LongTensor | None = None) -> list[float]:
        """Train the new token embeddings of ``model`` on entity modeling; return the mean loss per epoch.

        :param model: the model
        :param entities: the ids of the entities to model (each epoch is one pass over them, scored
            against *all* entities), and with ``rows="new"`` the only token rows that move (e.g.
            entities added after training); None: every entity, and every entity and relation row
        :raises ValueError: for entity ids outside ``0 .. num_entities - 1`` or repeated ids

        Under :mod:`torch.distributed` every rank must call this with the same arguments (see the
        module docstring); the ranks end with identical parameters.
        """
        if self.epochs == 0:
            return []
        num_entities = model.num_entities
        if entities is None:
            entities = torch.arange(num_entities)
        else:
            entities = torch.as_tensor(entities, dtype=torch.long).detach().cpu().reshape(-1)
            bad = entities[(entities < 0) | (entities >= num_entities)]
            if bad.numel():
                raise ValueError(
                    f"entity modeling got entity ids {bad[:10].tolist()} outside 0..{num_entities - 1}."
                )
            if entities.unique().numel() != entities.numel():
                raise ValueError("entity modeling got repeated entity ids.")
        if entities.numel() == 0:
            return []
        rank, world = _distributed()
        seed = self._seed(model)
        if self.objective == "sampled":
            return self._run_sampled(model, entities, rank, world, seed)
        word_embeddings = model.interaction.encoder.get_input_embeddings()
        weight = word_embeddings.weight
        offset = model.queries.entity_token_offset
        new_rows = torch.zeros(weight.shape[0], 1, dtype=weight.dtype, device=weight.device)
        subset = entities.numel() < num_entities
        if subset:
            new_rows[entities.to(weight.device) + offset] = 1.0
        else:
            new_rows[offset:] = 1.0
        previous = {name: p.requires_grad for name, p in model.named_parameters()}
        for p in model.parameters():
            p.requires_grad_(p is weight)
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

            total_steps = self.epochs * math.ceil(entities.numel() / self.batch_size)
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: linear_warmup_factor(step, total_steps, total_steps * self.warmup_ratio)
            )
        was_training = model.training
        # nn.Module.train, not MKGformer.train: that one would start stage 1 again
        torch.nn.Module.train(model, True)
        losses: list[float] = []
        device = weight.device
        generator = torch.Generator().manual_seed(seed)
        selection = _Selection(self.patience, self.checkpoint_metric)
        fork_devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
        first_reduced_row = offset if self.rows == "new" else 0
        try:
            with torch.random.fork_rng(devices=fork_devices), torch.enable_grad():
                # each rank its own dropout stream; the entity order comes from `generator`, the same everywhere
                torch.manual_seed(seed + rank)
                epochs = tqdm(
                    range(self.epochs),
                    desc="Entity modeling (stage 1)",
                    unit="epoch",
                    disable=not self.progress or rank != 0,
                )
                for _ in epochs:
                    order = entities[torch.randperm(entities.numel(), generator=generator)]
                    total = torch.zeros((), dtype=torch.float64, device=device)
                    for start in range(0, order.numel(), self.batch_size):
                        batch = order[start : start + self.batch_size]
                        shard = batch[rank::world].to(device)
                        optimizer.zero_grad(set_to_none=True)
                        if shard.numel():
                            logits = self.logits(model, shard)
                            if self.smoothing:
                                loss_sum = smoothed_softmax_cross_entropy(logits, shard, self.smoothing).sum()
                            else:
                                loss_sum = functional.cross_entropy(logits, shard, reduction="sum")
                            (loss_sum / batch.numel()).backward()
                            total += loss_sum.detach().double()
                        if world > 1:
                            if weight.grad is None:
                                weight.grad = torch.zeros_like(weight)
                            torch.distributed.all_reduce(weight.grad[first_reduced_row:])
                        if decay_by_hand:
                            with torch.no_grad():
                                weight.mul_(1.0 - optimizer.param_groups[0]["lr"] * self.weight_decay * new_rows)
                        optimizer.step()
                        if scheduler is not None:
                            scheduler.step()
                    if world > 1:
                        torch.distributed.all_reduce(total)
                    losses.append(float(total) / order.numel())
                    epochs.set_postfix(loss=losses[-1])
                    if self.validate_every and len(losses) % self.validate_every == 0 and selection.check(
                        model, entities, weight, self.batch_size
                    ):
                        break
                selection.restore(weight)
        finally:
            if handle is not None:
                handle.remove()
            optimizer.zero_grad(set_to_none=True)
            for name, p in model.named_parameters():
                p.requires_grad_(previous[name])
            torch.nn.Module.train(model, was_training)
        logger.info("entity modeling: loss per epoch %s", losses)
        return losses

    def _run_sampled(self, model: MKGformer, entities: torch.Tensor, rank: int, world: int, seed: int) -> list[float]:
        """Stage 1 with the sampled softmax of :mod:`.sampled`: SparseAdam on the candidate rows only.

        The stage-1 query holds no entity or relation token, so the new rows get gradient from the
        candidate side only: the encoder runs with the word embeddings frozen, and the candidate rows are
        read sparsely. Every rank draws the same candidates (same seed, same global batch), so the
        all-reduce is ``|C| x d``.
        """
        from .sampled import CandidateSampler, all_reduce_sparse_rows, candidate_scores, sampled_softmax_loss

        weight = model.interaction.encoder.get_input_embeddings().weight
        representation = model.entity_representation
        sampler = CandidateSampler(num_entities=model.num_entities, num_negatives=self.num_negatives, seed=seed)
        optimizer = torch.optim.SparseAdam([weight], lr=self.lr)
        scheduler = None
        if self.warmup_ratio is not None:
            from .training import linear_warmup_factor

            total_steps = self.epochs * math.ceil(entities.numel() / self.batch_size)
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: linear_warmup_factor(step, total_steps, total_steps * self.warmup_ratio)
            )
        previous = {name: p.requires_grad for name, p in model.named_parameters()}
        for p in model.parameters():
            p.requires_grad_(False)
        was_training = model.training
        torch.nn.Module.train(model, True)
        device = weight.device
        generator = torch.Generator().manual_seed(seed)
        fork_devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
        losses: list[float] = []
        try:
            with torch.random.fork_rng(devices=fork_devices), torch.enable_grad():
                torch.manual_seed(seed + rank)
                epochs = tqdm(range(self.epochs), desc="Entity modeling (stage 1, sampled)", unit="epoch",
                              disable=not self.progress or rank != 0)
                for _ in epochs:
                    order = entities[torch.randperm(entities.numel(), generator=generator)]
                    total = torch.zeros((), dtype=torch.float64, device=device)
                    for start in range(0, order.numel(), self.batch_size):
                        batch = order[start : start + self.batch_size]
                        candidates = sampler(batch)
                        mine = torch.arange(batch.numel())[rank::world]
                        weight.grad = None
                        if mine.numel():
                            query = model.queries.entity_modeling(batch[mine].to(device))
                            pixel_values = image_mask = None
                            if model.images is not None:
                                pixel_values, image_mask = model.images.lookup(batch[mine], device=device)
                            vectors = model.interaction.encode(query, pixel_values, image_mask)
                            weight.requires_grad_(True)
                            scores = candidate_scores(vectors, candidates.ids, weight, representation.bias,
                                                      offset=representation.offset)
                            shard = type(candidates)(candidates.ids, candidates.log_q, candidates.targets[mine])
                            loss_sum = sampled_softmax_loss(scores, shard, smoothing=self.smoothing) * mine.numel()
                            (loss_sum / batch.numel()).backward()
                            weight.requires_grad_(False)
                            total += loss_sum.detach().double()
                        if world > 1:
                            all_reduce_sparse_rows(weight, candidates.ids.to(device) + representation.offset)
                        optimizer.step()
                        if scheduler is not None:
                            scheduler.step()
                    if world > 1:
                        torch.distributed.all_reduce(total)
                    losses.append(float(total) / order.numel())
                    epochs.set_postfix(loss=losses[-1])
        finally:
            weight.grad = None
            for name, p in model.named_parameters():
                p.requires_grad_(previous[name])
            torch.nn.Module.train(model, was_training)
        logger.info("entity modeling (sampled): loss per epoch %s", losses)
        return losses

    def _seed(self, model: MKGformer) -> int:
        """The seed: this one's, else the model's ``random_seed``, else 0; rank 0's under data parallelism."""
        seed = self.seed if self.seed is not None else getattr(model, "_random_seed", None)
        seed = int(seed) if isinstance(seed, int) else 0
        rank, world = _distributed()
        if world > 1:
            # a seed that differs between ranks would give different entity orders: take rank 0's
            value = torch.tensor([seed], dtype=torch.long, device=_collective_device())
            torch.distributed.broadcast(value, src=0)
            seed = int(value.item())
        return seed

    @staticmethod
    def logits(model: MKGformer, entities: torch.LongTensor) -> torch.FloatTensor:
        """Scores ``(batch, num_entities)`` of ``[CLS] [MASK] is <e text> [SEP]`` with each entity's own images."""
        query = model.queries.entity_modeling(entities)
        pixel_values = image_mask = None
        if model.images is not None:
            pixel_values, image_mask = model.images.lookup(entities, device=query.input_ids.device)
        vectors = model.interaction.encode(query, pixel_values, image_mask)
        embeddings, bias = model.candidate_vectors(None)
        return model.interaction.score_candidates(vectors, embeddings, bias)


class _Selection:
    """Stage-1 validation: each entity's query ranks it among all entities (rank = 1 + the number of
    strictly higher scores); early stopping on the MRR, and the rows of the best ``checkpoint_metric``
    kept (the first of equals, as Lightning's ``ModelCheckpoint`` keeps on ties)."""

    METRICS = ("mrr", "hits_at_10")

    def __init__(self, patience: int, checkpoint_metric: str = "mrr"):
        if checkpoint_metric not in self.METRICS:
            raise ValueError(f"checkpoint_metric must be one of {self.METRICS}, got {checkpoint_metric!r}.")
        self.patience = patience
        self.checkpoint_metric = checkpoint_metric
        self.best_mrr = float("-inf")
        self.best_checkpoint = float("-inf")
        self.best_rows: torch.Tensor | None = None
        self.waited = 0
        self.history: list[dict[str, float]] = []

    def check(self, model: MKGformer, entities: torch.LongTensor, weight: torch.Tensor, batch_size: int) -> bool:
        """Validate; True when training should stop."""
        was_training = model.training
        torch.nn.Module.train(model, False)
        ranks = []
        with torch.no_grad():
            for start in range(0, entities.numel(), batch_size):
                batch = entities[start : start + batch_size].to(weight.device)
                logits = EntityModeling.logits(model, batch)
                own = logits.gather(1, batch.unsqueeze(1))
                ranks.append(1 + (logits > own).sum(dim=1).double().cpu())
        torch.nn.Module.train(model, was_training)
        ranks_ = torch.cat(ranks)
        mrr, hits = float((1.0 / ranks_).mean()), float((ranks_ <= 10).double().mean())
        self.history.append({"mrr": mrr, "hits_at_10": hits})
        value = self.history[-1][self.checkpoint_metric]
        if value > self.best_checkpoint:
            self.best_checkpoint, self.best_rows = value, weight.detach().clone()
        if mrr > self.best_mrr:
            self.best_mrr, self.waited = mrr, 0
            return False
        self.waited += 1
        return self.waited >= self.patience

    def restore(self, weight: torch.Tensor) -> None:
        """Put the rows of the best validation ``checkpoint_metric`` back (nothing when there was no validation)."""
        if self.best_rows is not None:
            with torch.no_grad():
                weight.copy_(self.best_rows)
            logger.info("entity modeling: validations %s; kept the rows of the best %s", self.history, self.checkpoint_metric)


def _distributed() -> tuple[int, int]:
    """``(rank, world size)`` of the default process group, ``(0, 1)`` without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _collective_device() -> torch.device:
    """Where small tensors for collectives live: the current GPU for NCCL, else the CPU."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
