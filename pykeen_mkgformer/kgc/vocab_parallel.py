r"""MKGformer with its entity rows sharded over the processes (``MKGformer(head_parallel="vocab")``).

MKGformer's candidates are tokens: the row :math:`\mathbf{e}_t` that scores entity :math:`t` is row
``offset + t`` of the text tower's input embedding matrix, the same row the encoder reads when
:math:`t` is the *known* entity of a query. :func:`shard_entity_rows` splits that matrix after the
model is built (and stage 1 has run), on every rank of a process group of :math:`W` ranks:

- **the entity rows and biases**: rank :math:`r` keeps rows :math:`[s_r, s_{r+1})`
  (:func:`~.parallel.shard_range`) in a :class:`~.parallel.ShardedEntityRows` that is **not a
  submodule** of the model: DDP (which wraps the model, or Lightning's module around it) neither
  broadcasts it nor all-reduces its gradient, and an optimizer built over ``model.parameters()``
  plus :func:`entity_shard_parameters` keeps Adam's state for this rank's rows only;
- **the rest of the vocabulary** (word pieces, relation tokens) stays a replicated
  :class:`torch.nn.Embedding` inside the text tower, trained data-parallel by DDP as before;
- **the input side** (:class:`VocabParallelWordEmbedding`, the text tower's new input embedding):
  the entity tokens of this rank's queries are gathered from all ranks, every rank looks up those it
  owns (zeros elsewhere), and one all-reduce of ``(tokens of the global batch, d)`` gives each rank
  its exact rows (:class:`_ShardedRowLookup`). The backward sums the rows' gradients of all ranks
  (the same all-reduce) and each owner adds them to its rows, divided by ``grad_scale`` (the query
  gradients are scaled by it for DDP's average, :func:`~.parallel.all_gather_queries`);
- **the output side**: the ``[MASK]`` state is scored against the local rows only, and
  :class:`~.parallel.VocabParallelEntityHead` combines the loss (BCE, PyKEEN's cross-entropy with
  label smoothing, the official smoothed cross-entropy) and the filtered ranks from
  ``(batch,)``-sized all-reduces.

So no process holds the ``N x d`` entity matrix, its gradient or its Adam state, and no step
all-reduces it. What is not sharded: the encoder and the rest of the vocabulary (replicated, DDP),
stage 1 (it runs on the full rows before sharding; :mod:`.sampled` makes it linear in N), the
PyKEEN scoring methods (``score_t`` & co. need all N columns on one process: use
:func:`vocab_parallel_ranks`, or :func:`unshard_entity_rows` to get the ordinary model back, e.g.
before saving).

All ranks must call these functions together, in the same order (they run collectives); the head's
collectives run on their own process group (the Lightning module makes one), so that they never
interleave with DDP's gradient buckets on the default one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .parallel import (
    FilterIndex,
    ShardedEntityRows,
    VocabParallelEntityHead,
    _all_gather_rows,
    _all_reduce,
    _world,
)

if TYPE_CHECKING:
    from .model import MKGformer

__all__ = [
    "VocabParallelWordEmbedding",
    "VocabParallelState",
    "shard_entity_rows",
    "unshard_entity_rows",
    "entity_shard_parameters",
    "vocab_parallel_loss",
    "vocab_parallel_ranks",
    "head_loss_name",
]


class _ShardedRowLookup(torch.autograd.Function):
    """Rows of global entity ids from a row-sharded matrix: gather the ids, look up owned rows, all-reduce."""

    @staticmethod
    def forward(ctx, entities, weight, start, group, grad_scale):
        all_entities, sizes = _all_gather_rows(entities, group)
        local = all_entities - start
        owned = (local >= 0) & (local < weight.shape[0])
        rows = weight.new_zeros(all_entities.shape[0], weight.shape[1])
        rows[owned] = weight[local[owned]]
        rows = _all_reduce(rows, group=group)
        rank = _world(group)[0]
        begin = sum(sizes[:rank])
        ctx.save_for_backward(local[owned], owned)
        ctx.begin, ctx.end, ctx.total = begin, begin + sizes[rank], all_entities.shape[0]
        ctx.group, ctx.grad_scale, ctx.weight_shape = group, grad_scale, weight.shape
        return rows[begin : ctx.end].clone()

    @staticmethod
    def backward(ctx, grad):
        local, owned = ctx.saved_tensors
        full = grad.new_zeros(ctx.total, grad.shape[1])
        full[ctx.begin : ctx.end] = grad
        full = _all_reduce(full, group=ctx.group)
        weight_grad = grad.new_zeros(ctx.weight_shape).index_add_(0, local, full[owned])
        return None, weight_grad / ctx.grad_scale, None, None, None


class VocabParallelWordEmbedding(nn.Module):
    """The text tower's input embedding with the entity rows held by :class:`~.parallel.ShardedEntityRows`.

    Token ids keep their meaning (``[0, offset)`` word pieces, ``[offset, offset + N)`` entities, then
    relation tokens); the replicated ``base`` holds the non-entity rows, without a gap.
    """

    def __init__(
        self, *, base: nn.Embedding, rows: ShardedEntityRows, offset: int, group: Any = None, grad_scale: float = 1.0
    ):
        super().__init__()
        self.base = base
        # a plain attribute, not a submodule: the shard stays out of DDP and of the model's state dict
        self._rows = [rows]
        self.offset, self.num_entities = offset, rows.num_entities
        self.num_embeddings = base.num_embeddings + rows.num_entities
        self.embedding_dim = base.embedding_dim
        self.padding_idx = base.padding_idx
        self.group, self.grad_scale = group, grad_scale

    @property
    def rows(self) -> ShardedEntityRows:
        """This rank's entity rows."""
        return self._rows[0]

    def forward(self, input_ids: torch.LongTensor) -> torch.FloatTensor:
        """``(*, d)`` embeddings; entity tokens come from their owners (all ranks must call this together)."""
        stop = self.offset + self.num_entities
        is_entity = (input_ids >= self.offset) & (input_ids < stop)
        base_ids = torch.where(input_ids >= stop, input_ids - self.num_entities, input_ids).masked_fill(is_entity, 0)
        out = self.base(base_ids)
        entity_rows = _ShardedRowLookup.apply(
            input_ids[is_entity] - self.offset, self.rows.weight, self.rows.start, self.group, self.grad_scale
        )
        return out.masked_scatter(is_entity.unsqueeze(-1), entity_rows.to(out.dtype))


@dataclass
class VocabParallelState:
    """What :func:`shard_entity_rows` put in place on one rank."""

    head: VocabParallelEntityHead
    rows: ShardedEntityRows
    embedding: VocabParallelWordEmbedding
    #: the full-vocabulary embedding's padding index (restored by :func:`unshard_entity_rows`)
    padding_idx: int | None


def _state(model: MKGformer) -> VocabParallelState:
    state = model.__dict__.get("_vocab_parallel")
    if state is None:
        raise RuntimeError("The entity rows are not sharded: call model.shard_entity_rows() on every rank first.")
    return state


def shard_entity_rows(
    model: MKGformer, *, group: Any = None, grad_scale: float | None = None, device: torch.device | str | None = None
) -> VocabParallelState:
    """Keep only this rank's entity rows (see the module docstring); every rank of ``group`` must call it.

    Stage 1 runs first when it is still due (on the full rows, split over the ranks as usual).

    :param group: the process group to shard over (default: the world; without :mod:`torch.distributed`, one shard)
    :param grad_scale: the factor of the query gradients, :func:`~.parallel.all_gather_queries` (default: the
        world size, for an encoder under DDP; 1.0 when nothing averages the encoder's gradients)
    :param device: where the model and the shard live (default: where the model is)
    """
    if model.__dict__.get("_vocab_parallel") is not None:
        return model.__dict__["_vocab_parallel"]
    if device is not None:
        model.to(device)
    if model.entity_modeling.epochs and model._entity_modeling_pending:
        model.run_entity_modeling()
    from .model import BIAS, TOKEN_EMBEDDING

    encoder = model.interaction.encoder
    embedding = encoder.get_input_embeddings()
    offset, n = model.queries.entity_token_offset, model.num_entities
    weight = embedding.weight.detach()
    head = VocabParallelEntityHead(num_entities=n, group=group, grad_scale=grad_scale)
    rows = ShardedEntityRows(num_entities=n, embedding_dim=weight.shape[1], group=group, init=weight[offset : offset + n])
    bias = model.entity_representations[BIAS].bias
    with torch.no_grad():
        rows.bias.copy_(bias.detach()[rows.start : rows.stop])
    rows.to(weight.device)
    base = nn.Embedding(weight.shape[0] - n, weight.shape[1], device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        base.weight.copy_(torch.cat([weight[:offset], weight[offset + n :]]))
    padding = embedding.padding_idx
    if padding is not None and offset <= padding < offset + n:
        raise ValueError(f"the padding token {padding} is an entity token; cannot shard.")
    base.padding_idx = None if padding is None else (padding if padding < offset else padding - n)
    scale = float(head.world_size) if grad_scale is None else float(grad_scale)
    sharded = VocabParallelWordEmbedding(base=base, rows=rows, offset=offset, group=group, grad_scale=scale)
    encoder.text_model.set_input_embeddings(sharded)
    # the candidate view and the full bias would hold (or keep alive) all N rows: point them at the shard / freeze
    model.entity_representations[TOKEN_EMBEDDING]._word_embeddings = [sharded]
    bias.requires_grad_(False)
    state = VocabParallelState(head=head, rows=rows, embedding=sharded, padding_idx=padding)
    model.__dict__["_vocab_parallel"] = state
    return state


def unshard_entity_rows(model: MKGformer) -> None:
    """Gather every rank's rows back into the ordinary (unsharded) model; every rank must call it."""
    from .model import BIAS, TOKEN_EMBEDDING

    state = _state(model)
    group = state.head.group
    weight = _all_gather_rows(state.rows.weight.detach(), group)[0]
    bias = _all_gather_rows(state.rows.bias.detach(), group)[0]
    base = state.embedding.base.weight.detach()
    offset = state.embedding.offset
    full = nn.Embedding(base.shape[0] + weight.shape[0], base.shape[1], padding_idx=state.padding_idx,
                        device=base.device, dtype=base.dtype)
    with torch.no_grad():
        full.weight.copy_(torch.cat([base[:offset], weight, base[offset:]]))
    model.interaction.encoder.text_model.set_input_embeddings(full)
    model.entity_representations[TOKEN_EMBEDDING]._word_embeddings = [full]
    model_bias = model.entity_representations[BIAS].bias
    with torch.no_grad():
        model_bias.copy_(bias)
    model_bias.requires_grad_(True)
    del model.__dict__["_vocab_parallel"]


def entity_shard_parameters(model: MKGformer) -> list[nn.Parameter]:
    """This rank's entity rows and biases: give them to the optimizer next to ``model.parameters()``."""
    return list(_state(model).rows.parameters())


def head_loss_name(loss: Any, label_smoothing: float | None) -> tuple[str, float]:
    """The :class:`~.parallel.VocabParallelEntityHead` loss name and smoothing of a PyKEEN loss object."""
    from pykeen.losses import BCEWithLogitsLoss, CrossEntropyLoss

    from .losses import SmoothedSoftmaxCrossEntropyLoss

    if getattr(loss, "reduction", "mean") != "mean":
        raise ValueError(f"the sharded head computes mean losses; {type(loss).__name__} has reduction={loss.reduction!r}.")
    if isinstance(loss, SmoothedSoftmaxCrossEntropyLoss):
        if label_smoothing:
            raise ValueError("SmoothedSoftmaxCrossEntropyLoss smooths by itself (its 'smoothing'); leave label_smoothing unset.")
        return "official", loss.smoothing
    if isinstance(loss, BCEWithLogitsLoss):
        return "bce", float(label_smoothing or 0.0)
    if isinstance(loss, CrossEntropyLoss):
        return "softmax", float(label_smoothing or 0.0)
    raise ValueError(
        f"head_parallel='vocab' supports BCEWithLogitsLoss, CrossEntropyLoss and SmoothedSoftmaxCrossEntropyLoss, "
        f"not {type(loss).__name__}."
    )


def _queries(model: MKGformer, hr_batch: torch.LongTensor) -> torch.FloatTensor:
    directed = model._directed_relations(hr_batch[:, 1], head_side=False)
    return model.encode_queries(hr_batch[:, 0], directed)


def vocab_parallel_loss(
    model: MKGformer, hr_batch: torch.LongTensor, positives: torch.LongTensor, *, label_smoothing: float | None = None
) -> torch.FloatTensor:
    """PyKEEN's LCWA loss (the model's ``loss``) of the *global* batch, the same scalar on every rank.

    :param hr_batch: ``(B_r, 2)`` this rank's (head, relation) pairs (PyKEEN ids)
    :param positives: ``(m, 2)`` (row of ``hr_batch``, true tail) pairs, or ``(B_r,)`` one tail per row
    :param label_smoothing: PyKEEN's ``label_smoothing`` (BCE and cross-entropy)
    """
    state = _state(model)
    name, eps = head_loss_name(model.loss, label_smoothing)
    return state.head.loss(
        _queries(model, hr_batch), state.rows.weight, state.rows.bias, positives, loss=name, label_smoothing=eps
    )


@torch.no_grad()
def vocab_parallel_ranks(
    model: MKGformer, hr_batch: torch.LongTensor, tails: torch.LongTensor, filter_index: FilterIndex | None = None
):
    """Filtered tail ranks (PyKEEN's :class:`~pykeen.evaluation.ranks.Ranks`) of the gathered batch of all ranks.

    Head ranks are the tail ranks of the inverse queries (PyKEEN's inverse relation ids, as ``score_h``).
    """
    state = _state(model)
    keys = None if filter_index is None else filter_index.key(hr_batch[:, 0], hr_batch[:, 1])
    return state.head.ranks(_queries(model, hr_batch), state.rows.weight, state.rows.bias, tails, keys, filter_index)
