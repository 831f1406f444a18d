r"""A vocabulary-parallel entity head: each process holds :math:`N / W` entity rows.

MKGformer scores a query state :math:`\mathbf{q}_i` against every entity,
:math:`x_{ic} = \mathbf{q}_i^{\top}\mathbf{e}_c + b_c`. With :math:`W` processes, rank :math:`r`
holds the rows :math:`c \in [s_r, s_{r+1})` of :math:`\mathbf{E}` and :math:`\mathbf{b}`
(:func:`shard_range`, contiguous and balanced) and only ever materialises its columns of the
score matrix. The encoder stays data-parallel (DDP): each rank encodes its own queries.

One step, for the global batch :math:`B = \bigcup_r B_r`:

1. **all-gather the query states** (``(|B|, d)``, :class:`_AllGatherQueries`): every rank scores
   every query against its shard, ``(|B|, N / W)``. Its backward sums the query gradients of all
   shards (one all-reduce of ``(|B|, d)``) and keeps the rank's own rows, times ``grad_scale``
   (the world size by default, so that DDP's gradient *average* over the encoder replicas is the
   gradient of the global loss);
2. **combine the loss** from ``(|B|,)``-sized statistics. Every supported loss is

   - softmax cross-entropy with target weights :math:`w_{ic} = a_i [c \in P_i] + \beta_i`
     (:math:`P_i` the positives of query :math:`i`, :math:`k_i = |P_i|`):

     .. math::

         \ell_i = -\sum_c w_{ic} \log p_{ic}
         = (a_i k_i + \beta_i N)\,\mathrm{lse}_i - a_i \sum_{c \in P_i} x_{ic} - \beta_i \sum_c x_{ic},
         \qquad \frac{\partial \ell_i}{\partial x_{ic}} = (a_i k_i + \beta_i N)\, p_{ic} - w_{ic},

     with :math:`\mathrm{lse}_i = m_i + \log \sum_c e^{x_{ic} - m_i}`: one all-reduce (max) of
     :math:`m`, one all-reduce (sum) of the three per-query sums. PyKEEN's
     :class:`~pykeen.losses.CrossEntropyLoss` with label smoothing :math:`\varepsilon` is
     :math:`a_i = (1 - \varepsilon) / k_i`, :math:`\beta_i = \varepsilon / N`; the official
     MKGformer loss (:class:`~pykeen_mkgformer.kgc.losses.SmoothedSoftmaxCrossEntropyLoss`) is
     :math:`a_i = (1 - \varepsilon) / k_i - \varepsilon / N`, :math:`\beta_i = \varepsilon / N`;
   - binary cross-entropy with (PyKEEN-)smoothed labels :math:`y^+ = 1 - \varepsilon`,
     :math:`y^- = \varepsilon / (N - 1)`, averaged over all :math:`|B| N` scores:

     .. math::

         \mathcal{L} = \frac{1}{|B| N} \Big(\sum_{i,c} \mathrm{softplus}(x_{ic}) - y^- \sum_{i,c} x_{ic}
         - (y^+ - y^-) \sum_{i} \sum_{c \in P_i} x_{ic}\Big),

     one all-reduce of a scalar;

   the loss is the same number on every rank; its backward is local (the formulas above);
3. **the entity rows' gradient stays on its rank**: no ``N x d`` all-reduce, and the optimizer
   state of the rows is sharded with them (each rank's optimizer holds its shard only).

**Filtered evaluation** (:func:`sharded_filtered_ranks`): the true score is summed from its owner
(exact: the others add zero), each rank counts the unfiltered candidates of its shard with a larger
or an equal score, and one all-reduce of ``(|B|, 2)`` counts gives PyKEEN's optimistic, pessimistic
and realistic ranks (:class:`pykeen.evaluation.ranks.Ranks`), identical to its evaluator on the
unsharded scores. The filter is a sorted index of the known triples (:class:`FilterIndex`), looked up
per batch of queries: no dense ``(queries, N)`` mask and no ``(batch, all triples)`` comparison.

Why not DTensor's :func:`torch.distributed.tensor.parallel.loss_parallel`: it computes
:func:`torch.nn.functional.cross_entropy` of a class-sharded DTensor with *class-index* targets, the
tensor-parallel pattern (the same batch on every rank). MKGformer needs multi-hot LCWA labels, the
official label smoothing and BCE, and a data-parallel encoder whose query states must be gathered and
whose gradients must go back to the rank that encoded them; the explicit collectives above cost the
same two ``(|B|,)`` all-reduces that ``loss_parallel`` does. ``tests/kgc/test_parallel_head.py`` checks
that both give the same plain cross-entropy.

Without an initialised process group (or with ``group`` of size 1) everything runs locally, so the
same code is the unsharded reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.distributed import ReduceOp

__all__ = [
    "FilterIndex",
    "ShardedEntityRows",
    "VocabParallelEntityHead",
    "all_gather_queries",
    "filtered_ranks",
    "shard_range",
    "sharded_filtered_ranks",
]

# ---------------------------------------------------------------------- process group helpers
def _world(group=None) -> tuple[int, int]:
    """``(rank, world size)`` in ``group``, ``(0, 1)`` without :mod:`torch.distributed`."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(group), torch.distributed.get_world_size(group)
    return 0, 1


def shard_range(num_entities: int, rank: int, world_size: int) -> tuple[int, int]:
    """The rows ``[start, stop)`` of rank ``rank``: contiguous, sizes differ by at most one (as :func:`torch.tensor_split`)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1}.")
    base, extra = divmod(num_entities, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def _all_reduce(tensor: torch.Tensor, op=ReduceOp.SUM, group=None) -> torch.Tensor:
    if _world(group)[1] > 1:
        torch.distributed.all_reduce(tensor, op=op, group=group)
    return tensor


def _all_gather_rows(tensor: torch.Tensor, group=None) -> tuple[torch.Tensor, list[int]]:
    """Concatenate every rank's ``tensor`` along dim 0 (sizes may differ); also returns the sizes."""
    rank, world = _world(group)
    if world == 1:
        return tensor, [tensor.shape[0]]
    size = torch.tensor([tensor.shape[0]], dtype=torch.long, device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    torch.distributed.all_gather(sizes, size, group=group)
    sizes = [int(s) for s in sizes]
    longest = max(sizes)
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world)]
    torch.distributed.all_gather(parts, padded.contiguous(), group=group)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)]), sizes


class _AllGatherQueries(torch.autograd.Function):
    """Forward: the queries of all ranks; backward: the sum over ranks of their gradient, own rows, scaled."""

    @staticmethod
    def forward(ctx, queries: torch.Tensor, group, grad_scale: float) -> torch.Tensor:
        gathered, sizes = _all_gather_rows(queries, group)
        rank, _ = _world(group)
        ctx.group, ctx.grad_scale = group, grad_scale
        ctx.start = sum(sizes[:rank])
        ctx.stop = ctx.start + sizes[rank]
        return gathered

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = _all_reduce(grad.contiguous().clone(), group=ctx.group)
        return grad[ctx.start : ctx.stop] * ctx.grad_scale, None, None


def all_gather_queries(queries: torch.Tensor, *, group=None, grad_scale: float | None = None) -> torch.Tensor:
    """All ranks' query states ``(|B|, d)`` in rank order, differentiable (see the module docstring, step 1).

    :param grad_scale: factor of the gradient that reaches this rank's queries; default the world
        size, for an encoder under DDP (which averages gradients); 1.0 for the plain gradient of the loss
    """
    if grad_scale is None:
        grad_scale = float(_world(group)[1])
    return _AllGatherQueries.apply(queries, group, grad_scale)


# ---------------------------------------------------------------------- the two losses
@dataclass
class _Positives:
    """The positives of the gathered batch inside one shard: rows, local columns, and per-row counts over all shards."""

    rows: torch.Tensor
    columns: torch.Tensor
    counts: torch.Tensor


def _positives(targets: torch.Tensor, batch_size: int, start: int, stop: int) -> _Positives:
    """From class indices ``(|B|,)`` or ``(m, 2)`` (row, entity) pairs of the gathered batch."""
    if targets.dim() == 1:
        rows = torch.arange(batch_size, device=targets.device)
        entities = targets
    else:
        pairs = torch.unique(targets, dim=0)
        rows, entities = pairs[:, 0], pairs[:, 1]
    counts = torch.bincount(rows, minlength=batch_size)
    inside = (entities >= start) & (entities < stop)
    return _Positives(rows=rows[inside], columns=entities[inside] - start, counts=counts)


class _ShardedSoftmaxCrossEntropy(torch.autograd.Function):
    """Mean over queries of :math:`-\\sum_c w_{ic} \\log p_{ic}`, :math:`w = a [c \\in P] + \\beta`, over a class-sharded score matrix."""

    @staticmethod
    def forward(ctx, logits, rows, columns, a, beta, weight_sum, group):
        batch = logits.shape[0]
        if logits.shape[1]:
            local_max = logits.detach().max(dim=1).values
        else:
            local_max = logits.new_full((batch,), -math.inf)
        maximum = _all_reduce(local_max.clone(), ReduceOp.MAX, group)
        exp = torch.exp(logits - maximum.unsqueeze(1))
        stats = torch.stack(
            [
                exp.sum(dim=1),
                logits.sum(dim=1),
                torch.zeros_like(maximum).index_add_(0, rows, logits[rows, columns]),
            ]
        )
        stats = _all_reduce(stats, group=group)
        sum_exp, sum_all, sum_positive = stats
        lse = maximum + torch.log(sum_exp)
        losses = weight_sum * lse - a * sum_positive - beta * sum_all
        probabilities = exp.div_(sum_exp.unsqueeze(1))
        ctx.save_for_backward(probabilities, rows, columns, a, beta, weight_sum)
        return losses.mean()

    @staticmethod
    def backward(ctx, grad_output):
        probabilities, rows, columns, a, beta, weight_sum = ctx.saved_tensors
        grad = probabilities * weight_sum.unsqueeze(1) - beta.unsqueeze(1)
        grad.index_put_((rows, columns), -a[rows], accumulate=True)
        grad.mul_(grad_output / probabilities.shape[0])
        return grad, None, None, None, None, None, None


class _ShardedBinaryCrossEntropy(torch.autograd.Function):
    """Mean over all :math:`|B| N` scores of BCE with labels :math:`y^-` and :math:`y^+` on the positives."""

    @staticmethod
    def forward(ctx, logits, rows, columns, y_positive, y_negative, num_entities, group):
        total = (
            nn.functional.softplus(logits).sum()
            - y_negative * logits.sum()
            - (y_positive - y_negative) * logits[rows, columns].sum()
        )
        total = _all_reduce(total.detach().clone(), group=group)
        ctx.save_for_backward(torch.sigmoid(logits), rows, columns)
        ctx.labels = (y_positive, y_negative)
        ctx.count = logits.shape[0] * num_entities
        return total / ctx.count

    @staticmethod
    def backward(ctx, grad_output):
        probabilities, rows, columns = ctx.saved_tensors
        y_positive, y_negative = ctx.labels
        grad = probabilities - y_negative
        grad.index_put_(
            (rows, columns), torch.full_like(rows, -(y_positive - y_negative), dtype=grad.dtype), accumulate=True
        )
        grad.mul_(grad_output / ctx.count)
        return grad, None, None, None, None, None, None


# ---------------------------------------------------------------------- the head
LossName = Literal["bce", "softmax", "official"]


class VocabParallelEntityHead:
    r"""Scores, losses and filtered ranks of query states against a row shard of the entity matrix.

    Stateless about parameters: every call takes the query states of *this rank's* queries and this
    rank's ``weight`` ``(N_r, d)`` and ``bias`` ``(N_r,)`` rows (:class:`ShardedEntityRows` holds them,
    or a model's own parameters), so a model's scoring head can delegate to it. All ranks of ``group``
    must call the same methods in the same order (they run collectives).

    :param num_entities: :math:`N`, all entities of all shards
    :param group: the process group over which the rows are sharded (default: the world; none: local)
    :param grad_scale: see :func:`all_gather_queries` (default: the world size, for a DDP encoder)
    """

    def __init__(self, *, num_entities: int, group=None, grad_scale: float | None = None):
        self.num_entities = num_entities
        self.group = group
        self.rank, self.world_size = _world(group)
        self.start, self.stop = shard_range(num_entities, self.rank, self.world_size)
        self.grad_scale = grad_scale

    @property
    def shard_size(self) -> int:
        """:math:`N_r`, the rows of this rank."""
        return self.stop - self.start

    def gather(self, queries: torch.Tensor) -> torch.Tensor:
        """The query states of all ranks (differentiable)."""
        return all_gather_queries(queries, group=self.group, grad_scale=self.grad_scale)

    def gather_pairs(self, pairs: torch.Tensor, local_batch_size: int) -> torch.Tensor:
        """``(m, 2)`` (local row, entity) pairs of every rank as (gathered row, entity) pairs."""
        sizes = _all_gather_rows(torch.tensor([local_batch_size], device=pairs.device), self.group)[0]
        offsets = torch.cumsum(sizes, 0) - sizes
        shifted = pairs.clone()
        shifted[:, 0] += offsets[self.rank]
        return _all_gather_rows(shifted, self.group)[0]

    def scores(self, gathered_queries: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``(|B|, N_r)``: :math:`x_{ic} = \\mathbf{q}_i^{\\top}\\mathbf{e}_c + b_c` for this rank's entities."""
        self._check_shard(weight, bias)
        return gathered_queries @ weight.t() + bias.unsqueeze(0)

    def loss(
        self,
        queries: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        targets: torch.Tensor,
        *,
        loss: LossName = "bce",
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        r"""The loss of the global batch (the same scalar on every rank), differentiable in all three tensors.

        :param queries: ``(B_r, d)`` this rank's query states
        :param weight: ``(N_r, d)`` this rank's entity rows
        :param bias: ``(N_r,)`` their biases
        :param targets: this rank's true entities, class indices ``(B_r,)`` or ``(m, 2)`` pairs
            (row in ``queries``, entity id) for multi-hot labels (PyKEEN's LCWA)
        :param loss: ``"bce"`` (PyKEEN's :class:`~pykeen.losses.BCEWithLogitsLoss`), ``"softmax"``
            (PyKEEN's :class:`~pykeen.losses.CrossEntropyLoss`), ``"official"``
            (:class:`~pykeen_mkgformer.kgc.losses.SmoothedSoftmaxCrossEntropyLoss`)
        :param label_smoothing: :math:`\varepsilon` (PyKEEN's ``label_smoothing``; the official loss's ``smoothing``)
        """
        gathered = self.gather(queries)
        if targets.dim() == 1:
            all_targets = _all_gather_rows(targets, self.group)[0]
        else:
            all_targets = self.gather_pairs(targets, queries.shape[0])
        logits = self.scores(gathered, weight, bias)
        return self.loss_from_scores(logits, all_targets, loss=loss, label_smoothing=label_smoothing)

    def loss_from_scores(
        self, logits: torch.Tensor, targets: torch.Tensor, *, loss: LossName = "bce", label_smoothing: float = 0.0
    ) -> torch.Tensor:
        """The loss of a class-sharded score matrix ``(|B|, N_r)`` against targets of the gathered batch."""
        n = self.num_entities
        positives = _positives(targets, logits.shape[0], self.start, self.stop)
        eps = float(label_smoothing)
        if loss == "bce":
            y_negative = eps / (n - 1) if eps else 0.0
            return _ShardedBinaryCrossEntropy.apply(
                logits, positives.rows, positives.columns, 1.0 - eps, y_negative, n, self.group
            )
        if loss not in ("softmax", "official"):
            raise ValueError(f"loss must be 'bce', 'softmax' or 'official', got {loss!r}.")
        counts = positives.counts.to(logits.dtype)
        if bool((counts == 0).any()):
            raise ValueError("every query needs at least one positive entity for a softmax loss.")
        beta = torch.full_like(counts, eps / n)
        a = (1.0 - eps) / counts
        if loss == "official":
            a = a - beta
        weight_sum = a * counts + beta * n
        return _ShardedSoftmaxCrossEntropy.apply(
            logits, positives.rows, positives.columns, a, beta, weight_sum, self.group
        )

    @torch.no_grad()
    def ranks(
        self,
        queries: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        true_entities: torch.Tensor,
        keys: torch.Tensor | None = None,
        filter_index: FilterIndex | None = None,
    ):
        """Filtered ranks (PyKEEN's :class:`~pykeen.evaluation.ranks.Ranks`) of the *gathered* batch, the same on every rank.

        :param queries: ``(B_r, d)`` this rank's query states
        :param true_entities: ``(B_r,)`` the true answers
        :param keys: ``(B_r,)`` the queries' filter keys (:meth:`FilterIndex.key`); with ``filter_index``
        :param filter_index: the known triples to filter (None: raw ranks)
        """
        gathered = _all_gather_rows(queries, self.group)[0]
        truth = _all_gather_rows(true_entities, self.group)[0]
        filtered = None
        if filter_index is not None:
            filtered = filter_index.positives(_all_gather_rows(keys, self.group)[0])
        return sharded_filtered_ranks(
            self.scores(gathered, weight, bias), truth, filtered, start=self.start, group=self.group
        )

    def _check_shard(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        if weight.shape[0] != self.shard_size or bias.shape != (self.shard_size,):
            raise ValueError(
                f"rank {self.rank} holds entities {self.start}..{self.stop - 1} ({self.shard_size} rows), but got "
                f"weight {tuple(weight.shape)} and bias {tuple(bias.shape)}."
            )


class ShardedEntityRows(nn.Module):
    """This rank's rows of the entity embedding matrix and biases, ``(N_r, d)`` and ``(N_r,)``.

    The parameters differ between ranks: exclude them from DDP (:meth:`ddp_ignore`), so that DDP neither
    broadcasts rank 0's shard at start nor averages the shards' gradients.
    """

    def __init__(self, *, num_entities: int, embedding_dim: int, group=None, init: torch.Tensor | None = None):
        """:param init: the full ``(N, d)`` matrix to take this rank's rows from (default: normal(0, 0.02))"""
        super().__init__()
        rank, world = _world(group)
        self.start, self.stop = shard_range(num_entities, rank, world)
        self.num_entities = num_entities
        if init is None:
            generator = torch.Generator().manual_seed(1234 + rank)
            weight = torch.randn(self.stop - self.start, embedding_dim, generator=generator) * 0.02
        else:
            weight = init[self.start : self.stop].detach().clone()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(self.stop - self.start, dtype=weight.dtype))

    def ddp_ignore(self, prefix: str) -> list[str]:
        """Names of these parameters under ``prefix`` for DDP's ``_set_params_and_buffers_to_ignore_for_model``."""
        return [f"{prefix}.weight", f"{prefix}.bias"]


# ---------------------------------------------------------------------- filtered ranks
class FilterIndex:
    """The known answers of each query ``(known entity, relation)``, sorted by key: a CSR lookup without a dense mask.

    ``key = entity * num_relations + relation``; built from mapped triples for one side (``"tail"``:
    answers are tails of ``(h, r)``; ``"head"``: heads of ``(r, t)``). Memory: two int64 per triple.
    """

    def __init__(self, mapped_triples: torch.Tensor, *, num_relations: int, side: Literal["tail", "head"] = "tail"):
        triples = torch.as_tensor(mapped_triples, dtype=torch.long)
        known, answer = (triples[:, 0], triples[:, 2]) if side == "tail" else (triples[:, 2], triples[:, 0])
        self.num_relations = num_relations
        keys = known * num_relations + triples[:, 1]
        order = torch.argsort(keys, stable=True)
        self.keys = keys[order]
        self.answers = answer[order]

    def to(self, device: torch.device | str) -> FilterIndex:
        """Move the index (e.g. to the GPU that scores); returns itself."""
        self.keys, self.answers = self.keys.to(device), self.answers.to(device)
        return self

    def key(self, known: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        """The keys of queries ``(known entity, relation)``."""
        return known * self.num_relations + relations

    def positives(self, keys: torch.Tensor) -> torch.Tensor:
        """``(m, 2)`` pairs (query row, known answer) of the queries with these keys."""
        keys = keys.to(self.keys.device)
        left = torch.searchsorted(self.keys, keys, right=False)
        right = torch.searchsorted(self.keys, keys, right=True)
        counts = right - left
        rows = torch.repeat_interleave(torch.arange(keys.numel(), device=keys.device), counts)
        # position of each answer: left[row] + 0..count-1
        starts = torch.repeat_interleave(left, counts)
        within = torch.arange(rows.numel(), device=keys.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts
        )
        return torch.stack([rows, self.answers[starts + within]], dim=1)


@torch.no_grad()
def sharded_filtered_ranks(
    scores: torch.Tensor,
    true_entities: torch.Tensor,
    filtered: torch.Tensor | None,
    *,
    start: int = 0,
    group=None,
):
    """PyKEEN's filtered ranks from a class-sharded score matrix ``(|B|, N_r)`` of columns ``start ..``.

    :param true_entities: ``(|B|,)`` global entity ids
    :param filtered: ``(m, 2)`` (row, entity) pairs to exclude (the true answer itself is always kept); None: raw
    """
    from pykeen.evaluation.ranks import Ranks

    batch, width = scores.shape
    rows = torch.arange(batch, device=scores.device)
    local_true = true_entities - start
    owned = (local_true >= 0) & (local_true < width)
    true_scores = torch.zeros(batch, dtype=scores.dtype, device=scores.device)
    true_scores[owned] = scores[rows[owned], local_true[owned]]
    true_scores = _all_reduce(true_scores, group=group)
    excluded = torch.zeros(batch, width, dtype=torch.bool, device=scores.device)
    if filtered is not None and filtered.numel():
        column = filtered[:, 1] - start
        inside = (column >= 0) & (column < width)
        excluded[filtered[inside, 0], column[inside]] = True
    excluded[rows[owned], local_true[owned]] = True
    threshold = true_scores.unsqueeze(1)
    counts = torch.stack(
        [((scores > threshold) & ~excluded).sum(dim=1), ((scores >= threshold) & ~excluded).sum(dim=1),
         (torch.isfinite(scores) & ~excluded).sum(dim=1)],
        dim=1,
    )
    counts = _all_reduce(counts, group=group)
    optimistic = counts[:, 0] + 1
    pessimistic = counts[:, 1] + 1
    return Ranks(
        optimistic=optimistic,
        pessimistic=pessimistic,
        realistic=(optimistic + pessimistic).float() * 0.5,
        number_of_options=counts[:, 2] + 1,
    )


@torch.no_grad()
def filtered_ranks(
    score_fn,
    queries: torch.Tensor,
    true_entities: torch.Tensor,
    *,
    filter_index: FilterIndex | None = None,
    batch_size: int = 256,
    progress: bool = False,
):
    """Filtered ranks of many queries, a batch at a time: memory ``(batch_size, N)`` scores, never ``(queries, N)``.

    :param score_fn: ``(batch, 2)`` rows of ``queries`` -> ``(batch, N)`` scores (e.g. ``model.score_t``)
    :param queries: ``(q, 2)`` ``(known entity, relation)``
    :param true_entities: ``(q,)``
    :return: the realistic ranks ``(q,)`` (float)
    """
    from tqdm.auto import tqdm

    out = []
    for begin in tqdm(range(0, queries.shape[0], batch_size), disable=not progress, desc="Ranking", unit="batch"):
        chunk = queries[begin : begin + batch_size]
        filtered = None
        if filter_index is not None:
            filtered = filter_index.positives(filter_index.key(chunk[:, 0], chunk[:, 1]))
        ranks = sharded_filtered_ranks(score_fn(chunk), true_entities[begin : begin + batch_size], filtered)
        out.append(ranks.realistic)
    return torch.cat(out) if out else torch.empty(0)
