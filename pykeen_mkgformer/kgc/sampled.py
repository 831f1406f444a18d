r"""Sampled softmax for MKGformer's stage 1 and stage 2: O(N) candidate scores per epoch, sparse entity-row updates.

The exact objectives score every query against all :math:`N` entities; an epoch of stage 1 (:math:`N`
queries) or of stage 2 (:math:`T` training triples, :math:`T \propto N` for a fixed degree) then costs
:math:`O(N^2)` scores. Here each batch :math:`B` is scored against a shared candidate set

.. math::

    C = \mathrm{unique}\big(\{t_i : i \in B\} \cup S\big), \qquad S \sim \mathrm{Uniform}(\{0..N-1\})^K ,

the batch's own answers (in-batch negatives) plus :math:`K` uniform samples, so an epoch costs
:math:`O(N (|B| + K))` scores, and the softmax over :math:`C` is corrected by the **log-Q correction**
of sampled softmax (Jean et al., 2015; Yi et al., 2019, "sampling-bias-corrected" in-batch
negatives): each candidate's logit loses the log of its probability of being in :math:`C`,

.. math::

    \tilde x_{ic} = x_{ic} - \log Q_c, \qquad Q_c = 1 - (1 - p_c)^{|B|} (1 - 1/N)^{K},

with :math:`p_c` the frequency of :math:`c` as an answer (uniform when unknown; stage 1, where every
entity is its own answer once per epoch, is uniform). ``tests/kgc/test_sampled.py`` checks that the
correction removes the popularity bias of in-batch negatives (the learned softmax matches the
answer distribution; without it, it does not). With uniform candidates only
(``in_batch=False``) the correction is a constant and cancels. The loss is the (official,
label-smoothed) softmax cross-entropy of :mod:`.losses` over :math:`C`.

**Sparse rows.** Only the rows of :math:`C` (and, on the input side, of the query tokens) enter a
step: :func:`candidate_scores` reads them with ``F.embedding(..., sparse=True)``, so their gradient is a
sparse ``(|C|, d)`` tensor instead of a dense ``N x d`` one, and :class:`SparseDenseAdam` (PyTorch's
``SparseAdam`` for sparse gradients, ``Adam`` for the rest) updates the touched rows only. Under data
parallelism every rank builds the same :math:`C` (same seed, same global batch), so the gradient
all-reduce is ``|C| x d`` (:func:`all_reduce_sparse_rows`).

- stage 1: ``EntityModeling(objective="sampled", num_negatives=K)`` (``entity_modeling_objective``);
- stage 2: :class:`SampledSoftmaxTrainingLoop`, PyKEEN's sLCWA loop whose batches of training
  triples are scored against :math:`C` (its negative sampler is not used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from pykeen.training import SLCWATrainingLoop
from torch.nn import functional

from .losses import smoothed_softmax_cross_entropy

__all__ = [
    "CandidateSampler",
    "Candidates",
    "SampledSoftmaxTrainingLoop",
    "SparseDenseAdam",
    "all_reduce_sparse_rows",
    "candidate_scores",
    "sampled_softmax_loss",
]


@dataclass
class Candidates:
    """A shared candidate set: entity ids ``(C,)`` sorted, their log expected counts ``(C,)``, each query's answer position ``(B,)``.

    ``mask`` ``(B, C)`` (only without in-batch negatives): True where a candidate is another query's
    answer and was not sampled, so it is no candidate of this query.
    """

    ids: torch.Tensor
    log_q: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor | None = None


class CandidateSampler:
    """The batch's answers plus ``num_negatives`` uniform entities, with the log-Q correction of the module docstring.

    :param num_entities: :math:`N`
    :param num_negatives: :math:`K`, uniform samples per batch (0: in-batch only)
    :param in_batch: include the batch's answers as candidates for every query (else only each query's own)
    :param frequencies: ``(N,)`` how often each entity is an answer (e.g. ``bincount`` of training tails);
        None: uniform
    :param seed: of the private generator (the same on every rank gives every rank the same candidates)
    """

    def __init__(
        self,
        *,
        num_entities: int,
        num_negatives: int = 1024,
        in_batch: bool = True,
        frequencies: torch.Tensor | None = None,
        seed: int = 0,
    ):
        if num_negatives < 0 or num_entities < 1:
            raise ValueError(f"need num_entities >= 1 and num_negatives >= 0, got {num_entities}, {num_negatives}.")
        if not in_batch and num_negatives == 0:
            raise ValueError("in_batch=False needs num_negatives > 0: there would be no negative.")
        self.num_entities = num_entities
        self.num_negatives = num_negatives
        self.in_batch = in_batch
        self.probabilities = None
        if frequencies is not None:
            frequencies = torch.as_tensor(frequencies, dtype=torch.float64)
            if frequencies.shape != (num_entities,) or bool((frequencies < 0).any()) or float(frequencies.sum()) <= 0:
                raise ValueError(f"frequencies must be ({num_entities},) non-negative counts with a positive sum.")
            self.probabilities = (frequencies / frequencies.sum()).float()
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, answers: torch.Tensor) -> Candidates:
        """Candidates for a batch whose answers are ``answers`` ``(B,)`` (every rank passes the *global* batch)."""
        answers = answers.detach().cpu()
        sampled = torch.randint(self.num_entities, (self.num_negatives,), generator=self.generator)
        ids, inverse = torch.unique(torch.cat([answers, sampled]), return_inverse=True)
        # probability that c is in C: not drawn by any of the K uniform tries nor by any of the |B| answers
        log_absent = torch.full(ids.shape, self.num_negatives * math.log1p(-1.0 / self.num_entities), dtype=torch.float64)
        if self.in_batch:
            p = (
                torch.full(ids.shape, 1.0 / self.num_entities, dtype=torch.float64)
                if self.probabilities is None
                else self.probabilities[ids].double()
            )
            log_absent += answers.numel() * torch.log1p(-p.clamp(max=1 - 1e-12))
        inclusion = -torch.expm1(log_absent)
        if not self.in_batch:
            inclusion = torch.ones_like(inclusion)  # constant: cancels in each query's softmax
        targets = inverse[: answers.numel()]
        mask = None
        if not self.in_batch:
            # C_i = {t_i} + S: the answers of the other queries are no candidates of query i unless sampled
            sampled_columns = torch.zeros(ids.shape, dtype=torch.bool)
            sampled_columns[inverse[answers.numel() :]] = True
            mask = (~sampled_columns).unsqueeze(0).repeat(answers.numel(), 1)
            mask[torch.arange(answers.numel()), targets] = False
        return Candidates(ids=ids, log_q=torch.log(inclusion).float(), targets=targets, mask=mask)


def candidate_scores(
    queries: torch.Tensor,
    ids: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    offset: int = 0,
    sparse: bool = True,
) -> torch.Tensor:
    r"""``(B, C)`` scores :math:`\mathbf{q}_i^{\top}\mathbf{e}_c + b_c` of the candidate rows ``offset + ids`` of ``weight``.

    With ``sparse`` the gradient of ``weight`` is a sparse tensor over those rows.
    """
    device = weight.device
    rows = functional.embedding(ids.to(device) + offset, weight, sparse=sparse)
    return queries @ rows.t() + bias[ids.to(bias.device)].unsqueeze(0)


def sampled_softmax_loss(
    scores: torch.Tensor, candidates: Candidates, *, smoothing: float = 0.0, log_q_correction: bool = True
) -> torch.Tensor:
    """Mean (official label-smoothed) softmax cross-entropy of ``(B, C)`` candidate scores, log-Q corrected."""
    logits = scores
    if log_q_correction:
        logits = scores - candidates.log_q.to(scores.device, scores.dtype).unsqueeze(0)
    targets = candidates.targets.to(scores.device)
    if candidates.mask is None:
        if smoothing:
            return smoothed_softmax_cross_entropy(logits, targets, smoothing).mean()
        return functional.cross_entropy(logits, targets)
    # per-query candidate sets: the masked columns are not classes of that query
    mask = candidates.mask.to(scores.device)
    log_p = functional.log_softmax(logits.masked_fill(mask, -math.inf), dim=-1)
    rows = torch.arange(logits.shape[0], device=logits.device)
    weights = (smoothing / (~mask).sum(dim=1, keepdim=True)).to(logits.dtype).expand_as(logits).clone()
    weights[rows, targets] = 1.0 - smoothing
    return -torch.where(mask, torch.zeros_like(log_p), weights * log_p).sum(dim=1).mean()


def all_reduce_sparse_rows(parameter: torch.Tensor, rows: torch.Tensor, group=None) -> None:
    """Sum a sparse row gradient over ranks that all touched exactly ``rows`` (sorted unique): a ``|rows| x d`` all-reduce.

    A rank without a gradient (an empty shard) contributes zeros.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    rows = rows.to(parameter.device)
    if parameter.grad is None:
        values = parameter.new_zeros((rows.numel(), *parameter.shape[1:]))
    else:
        grad = parameter.grad.coalesce()
        if not torch.equal(grad.indices()[0], rows):
            raise RuntimeError("all_reduce_sparse_rows: this rank touched other rows than the shared candidate set.")
        values = grad.values().contiguous()
    torch.distributed.all_reduce(values, group=group)
    parameter.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), values, parameter.shape).coalesce()


class SparseDenseAdam(torch.optim.Optimizer):
    """Adam for dense gradients and :class:`torch.optim.SparseAdam` (lazy: touched rows only) for sparse ones.

    One optimizer object for PyKEEN's training loops (``optimizer=SparseDenseAdam``); both inner
    optimizers share its parameter groups, so learning-rate schedulers act on both.
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))
        groups = [dict(params=list(g["params"]), lr=g["lr"], betas=g["betas"], eps=g["eps"]) for g in self.param_groups]
        self._dense = torch.optim.Adam([dict(g) for g in groups], lr=lr, betas=betas, eps=eps)
        self._sparse = torch.optim.SparseAdam([dict(g) for g in groups], lr=lr, betas=betas, eps=eps)

    @torch.no_grad()
    def step(self, closure=None):
        """One step: sparse-gradient parameters through SparseAdam, the others through Adam (this object's lr, betas, eps)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for inner in (self._dense, self._sparse):
            for group, inner_group in zip(self.param_groups, inner.param_groups):
                inner_group.update(lr=group["lr"], betas=group["betas"], eps=group["eps"])
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        sparse = {p: p.grad for p in params if p.grad.is_sparse}
        dense = {p: p.grad for p in params if not p.grad.is_sparse}
        for p in sparse:
            p.grad = None
        self._dense.step()
        for p in dense:
            p.grad = None
        for p, grad in sparse.items():
            p.grad = grad
        self._sparse.step()
        for p, grad in dense.items():
            p.grad = grad
        return loss

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        state = super().state_dict()
        state["inner"] = dict(dense=self._dense.state_dict(), sparse=self._sparse.state_dict())
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # noqa: D102
        state_dict = dict(state_dict)
        inner = state_dict.pop("inner")
        super().load_state_dict(state_dict)
        self._dense.load_state_dict(inner["dense"])
        self._sparse.load_state_dict(inner["sparse"])


class SampledSoftmaxTrainingLoop(SLCWATrainingLoop):
    r"""Stage 2 of MKGformer with a sampled softmax: each batch of training triples ``(h, r, t)`` is scored against the shared candidates :math:`C`.

    Tail queries ``(h, r, ?)`` only (with ``create_inverse_triples=True`` the inverse triples train head
    prediction). Its cost per epoch is :math:`T (|B| + K)` scores instead of :math:`T N`; with
    ``sparse=True`` the text tower's word embeddings get sparse gradients (input and candidate side),
    so use an optimizer that takes them, :class:`SparseDenseAdam`. The loop's PyKEEN loss is not used.

    :param num_negatives: :math:`K`
    :param in_batch: in-batch negatives (the batch's answers are candidates of every query)
    :param smoothing: the official label smoothing of the softmax over :math:`C`
    :param sparse: sparse entity-row gradients
    :param seed: of the candidate sampler
    """

    def __init__(
        self,
        *,
        num_negatives: int = 1024,
        in_batch: bool = True,
        smoothing: float = 0.0,
        sparse: bool = False,
        seed: int = 0,
        **kwargs: Any,
    ):
        kwargs.setdefault("negative_sampler_kwargs", dict(num_negs_per_pos=1))
        triples_factory = kwargs.get("triples_factory")
        super().__init__(**kwargs)
        model = self.model
        # answer frequencies (+1: every entity can be drawn) for the log-Q correction
        tails = None if triples_factory is None else triples_factory.mapped_triples[:, 2]
        self.sampler = CandidateSampler(
            num_entities=model.num_entities,
            num_negatives=num_negatives,
            in_batch=in_batch,
            frequencies=None if tails is None else torch.bincount(tails, minlength=model.num_entities) + 1,
            seed=seed,
        )
        self.smoothing = smoothing
        self.sparse = sparse
        if sparse:
            model.interaction.encoder.get_input_embeddings().sparse = True

    # docstr-coverage: inherited
    def _process_batch(self, batch, start, stop, label_smoothing: float = 0.0, slice_size: int | None = None):  # noqa: D102
        model = self.model
        positives = batch["positives"][start:stop].to(model.device)
        model._maybe_run_entity_modeling()
        candidates = self.sampler(positives[:, 2])
        directed = model._directed_relations(positives[:, 1], head_side=False)
        queries = model.encode_queries(positives[:, 0], directed)
        representation = model.entity_representation
        scores = candidate_scores(
            queries, candidates.ids, representation.word_embeddings.weight, representation.bias,
            offset=representation.offset, sparse=self.sparse,
        )
        return sampled_softmax_loss(scores, candidates, smoothing=self.smoothing)
