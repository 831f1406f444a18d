r"""The only new layers of MKGformer: PGI attention and the CAF feed-forward.

Both are built from, and initialised by, the pretrained layer they replace: they subclass the
Hugging Face layer classes, so every pretrained weight keeps its name, and only the fusion paths add
parameters (``fusion.*`` on the text side, ``prefix_key`` / ``prefix_value`` on the vision side
when the two towers have different widths).

For the :math:`l`-th fused layer pair, with text states :math:`X_t`, visual states :math:`X_v`:

- the text layer computes its own self-attention; its keys :math:`X_t W_k^t` and values
  :math:`X_t W_v^t` are kept,
- **PGI**, in the vision self-attention:
  :math:`\mathrm{Attn}(Q = X_v W_q,\; K = [X_t W_k^t ; X_v W_k],\; V = [X_t W_v^t ; X_v W_v])`,
  text padding masked,
- **CAF**, in the text feed-forward, with :math:`H_t` the text attention output and :math:`H_v` the
  vision layer's output: :math:`S = \mathrm{softmax}(H_t H_v^\top)` over patches,
  :math:`A = S H_v`, :math:`\mathrm{FFN}(H_t) = W_2\, \mathrm{act}(W_1 H_t + W_f A + b) + b_2`.

That is the ``"paper"`` variant. The ``"official"`` variant (see :class:`~.config.HybridConfig`)
takes the prefix from text layer :math:`l-1` instead (chosen in :mod:`.hybrid`), compares and
aggregates with the self-attention context :math:`C_t` instead of :math:`H_t`
(:math:`A = \mathrm{softmax}(C_t H_v^\top) H_v`), gives :math:`W_f` a bias, drops no aggregated
states and leaves text padding unmasked in the prefix.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from transformers.models.bert.modeling_bert import BertLayer
from transformers.models.clip.modeling_clip import CLIPEncoderLayer
from transformers.models.vit.modeling_vit import ViTLayer

__all__ = [
    "attention",
    "CorrelationAwareFusion",
    "CAFTextLayer",
    "TextAttentionOutput",
    "PGIVisionLayer",
    "PGICLIPLayer",
    "PGIViTLayer",
]


def attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor | None,
    *,
    dropout: float = 0.0,
    need_weights: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Multi-head scaled dot-product attention, :math:`\mathrm{softmax}(QK^\top/\sqrt{d} + m) V`.

    :param query: shape ``(batch, heads, n_queries, head_dim)``
    :param key: shape ``(batch, heads, n_keys, head_dim)``
    :param value: shape ``(batch, heads, n_keys, head_dim)``
    :param key_mask: boolean ``(batch, n_keys)``, True where a key may be attended to; None for all
    :param dropout: attention dropout probability (pass 0 in eval mode)
    :param need_weights: also return the attention probabilities (slower path)
    :return: the context ``(batch, n_queries, heads * head_dim)`` and the weights or None
    """
    batch, heads, n_queries, head_dim = query.shape
    mask = None if key_mask is None else key_mask[:, None, None, :]
    if need_weights:
        scores = torch.matmul(query, key.transpose(-1, -2)) * head_dim**-0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1, dtype=_softmax_dtype(scores.dtype)).to(query.dtype)
        context = torch.matmul(F.dropout(weights, p=dropout), value)
    else:
        weights = None
        context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout)
    return context.transpose(1, 2).reshape(batch, n_queries, heads * head_dim), weights


def _softmax_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half precisions are normalised in float32; float32 and float64 in their own precision."""
    return torch.promote_types(dtype, torch.float32)


def _split_heads(states: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(batch, length, heads * d)`` -> ``(batch, heads, length, d)``."""
    batch, length, width = states.shape
    return states.view(batch, length, num_heads, width // num_heads).transpose(1, 2)


class CorrelationAwareFusion(nn.Module):
    r"""CAF: aggregate the patch states for each token, :math:`W_f\, \mathrm{softmax}(H_t H_v^\top) H_v`.

    When the vision width differs from the text width, :math:`H_v` first goes through a learned
    projection to the text width (``visual_projection``). Tokens of items without any image get 0.
    """

    def __init__(
        self,
        text_hidden_size: int,
        vision_hidden_size: int,
        intermediate_size: int,
        dropout: float = 0.0,
        bias: bool = False,
    ):
        super().__init__()
        self.visual_projection: nn.Module = (
            nn.Identity()
            if text_hidden_size == vision_hidden_size
            else nn.Linear(vision_hidden_size, text_hidden_size)
        )
        #: :math:`W_f`; the bias :math:`b` of the equation is the pretrained :math:`W_1`'s bias (the
        #: official code gives :math:`W_f` a bias of its own too: ``bias=True``)
        self.dense = nn.Linear(text_hidden_size, intermediate_size, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def aggregate(
        self, text_states: torch.Tensor, visual_states: torch.Tensor, visual_mask: torch.Tensor | None
    ) -> torch.Tensor:
        r""":math:`A = \mathrm{softmax}(H_t H_v^\top) H_v`, shape ``(batch, n_tokens, text_width)``."""
        return self.aggregate_with_weights(text_states, visual_states, visual_mask)[0]

    def aggregate_with_weights(
        self, text_states: torch.Tensor, visual_states: torch.Tensor, visual_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`A` and the token-to-patch weights :math:`S = \mathrm{softmax}(H_t H_v^\top)`, ``(batch, n_tokens, n_visual)``.

        Rows of an item without any image are all zero in both.
        """
        visual_states = self.visual_projection(visual_states)
        scores = torch.matmul(text_states, visual_states.transpose(-1, -2))
        if visual_mask is not None:
            scores = scores.masked_fill(~visual_mask[:, None, :], torch.finfo(scores.dtype).min)
        probabilities = scores.softmax(dim=-1, dtype=_softmax_dtype(scores.dtype)).to(visual_states.dtype)
        if visual_mask is not None:
            # an item without any image contributes nothing (instead of a uniform mix of padding);
            # ``where``, not a product, so that no non-finite value of such a row can survive
            has_image = visual_mask.any(dim=-1)[:, None, None]
            probabilities = torch.where(has_image, probabilities, torch.zeros((), dtype=probabilities.dtype))
        return torch.matmul(probabilities, visual_states), probabilities

    def forward(
        self,
        text_states: torch.Tensor,
        visual_states: torch.Tensor,
        visual_mask: torch.Tensor | None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        r""":math:`W_f A`, the term CAF adds before the FFN activation, and :math:`S` when asked for."""
        aggregated, weights = self.aggregate_with_weights(text_states, visual_states, visual_mask)
        fused = self.dense(self.dropout(aggregated))
        if self.dense.bias is not None and visual_mask is not None:
            # an item without any image gets no CAF term at all, its bias included
            fused = torch.where(visual_mask.any(dim=-1)[:, None, None], fused, torch.zeros((), dtype=fused.dtype))
        return fused, weights if need_weights else None


class TextAttentionOutput(NamedTuple):
    """What the fused text layer's attention half returns."""

    #: :math:`H_t`, after the attention output projection, residual and layer norm
    hidden_states: torch.Tensor
    #: the layer's own keys :math:`X_t W_k^t`, shape ``(batch, length, text_width)``
    key: torch.Tensor
    #: the layer's own values :math:`X_t W_v^t`
    value: torch.Tensor
    #: attention probabilities, when asked for
    weights: torch.Tensor | None
    #: :math:`C_t`, the self-attention context before the output projection, residual and norm
    context: torch.Tensor


class CAFTextLayer(BertLayer):
    """A BERT-family layer whose feed-forward takes the visual states (CAF).

    It runs in two halves so that the paired vision layer can sit between them:
    :meth:`attend` (self-attention, also giving the keys/values that PGI uses as prefix), then
    :meth:`feed_forward` (the FFN with the CAF term).
    """

    def __init__(
        self,
        config,
        *,
        vision_hidden_size: int,
        use_caf: bool = True,
        fusion_dropout: float = 0.0,
        caf_bias: bool = False,
        caf_query: str = "layer_input",
    ):
        super().__init__(config)
        self.num_heads = config.num_attention_heads
        if caf_query not in ("layer_input", "attention_context"):
            raise ValueError(f"caf_query must be 'layer_input' or 'attention_context', got {caf_query!r}.")
        #: what CAF compares with the patches: :math:`H_t` (``"layer_input"``) or :math:`C_t` (``"attention_context"``)
        self.caf_query = caf_query
        self.fusion = (
            CorrelationAwareFusion(
                config.hidden_size, vision_hidden_size, config.intermediate_size, fusion_dropout, bias=caf_bias
            )
            if use_caf
            else None
        )

    @classmethod
    def from_layer(cls, layer: nn.Module, config, **kwargs) -> "CAFTextLayer":
        """Build from a pretrained layer of the text tower, taking over all its weights."""
        fused = cls(config, **kwargs)
        _load_pretrained(fused, layer)
        return fused

    def attend(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, need_weights: bool = False
    ) -> TextAttentionOutput:
        """Self-attention of the text layer; keeps its keys and values for the PGI prefix."""
        self_attention = self.attention.self
        query = self_attention.query(hidden_states)
        key = self_attention.key(hidden_states)
        value = self_attention.value(hidden_states)
        context, weights = attention(
            _split_heads(query, self.num_heads),
            _split_heads(key, self.num_heads),
            _split_heads(value, self.num_heads),
            attention_mask,
            dropout=self_attention.dropout.p if self.training else 0.0,
            need_weights=need_weights,
        )
        return TextAttentionOutput(self.attention.output(context, hidden_states), key, value, weights, context)

    def feed_forward(
        self,
        attention_output: torch.Tensor,
        visual_states: torch.Tensor | None = None,
        visual_mask: torch.Tensor | None = None,
        need_weights: bool = False,
        context: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        r""":math:`W_2\, \mathrm{act}(W_1 H_t + W_f A + b) + b_2`, then BERT's dropout, residual and norm.

        :param context: :math:`C_t` from :meth:`attend`, needed when ``caf_query="attention_context"``
        :return: the layer's output and, when asked for and CAF ran, its token-to-patch weights :math:`S`
        """
        intermediate = self.intermediate.dense(attention_output)
        weights = None
        if self.fusion is not None and visual_states is not None:
            if self.caf_query == "attention_context":
                if context is None:
                    raise ValueError("caf_query='attention_context' needs the attention context from attend().")
                query = context
            else:
                query = attention_output
            fused, weights = self.fusion(query, visual_states, visual_mask, need_weights)
            intermediate = intermediate + fused
        intermediate = self.intermediate.intermediate_act_fn(intermediate)
        return self.output(intermediate, attention_output), weights


class PGIVisionLayer(nn.Module):
    """Mixin: a pre-norm vision layer whose self-attention takes a text prefix (PGI).

    Subclasses name the pretrained modules: the two layer norms, the q/k/v/out projections and the MLP.
    """

    def _init_prefix(self, config, text_hidden_size: int, use_pgi: bool) -> None:
        self.num_heads = config.num_attention_heads
        self.use_pgi = use_pgi
        needs_projection = use_pgi and text_hidden_size != config.hidden_size
        self.prefix_key = nn.Linear(text_hidden_size, config.hidden_size) if needs_projection else None
        self.prefix_value = nn.Linear(text_hidden_size, config.hidden_size) if needs_projection else None

    # the parts each architecture names differently
    def _norm_before(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _norm_after(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _projections(self) -> tuple[nn.Linear, nn.Linear, nn.Linear, nn.Linear]:
        raise NotImplementedError

    def _attention_dropout(self) -> float:
        raise NotImplementedError

    def _residual_dropout(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_with_prefix(
        self,
        hidden_states: torch.Tensor,
        key_mask: torch.Tensor | None,
        prefix_key: torch.Tensor | None = None,
        prefix_value: torch.Tensor | None = None,
        prefix_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        r"""One pre-norm layer with :math:`K = [X_t W_k^t ; X_v W_k]`, :math:`V = [X_t W_v^t ; X_v W_v]`.

        :param hidden_states: visual states ``(batch, n_visual, vision_width)``
        :param key_mask: boolean ``(batch, n_visual)``: which visual tokens may be attended to
        :param prefix_key: the text layer's keys ``(batch, n_text, text_width)``; None: no prefix
        :param prefix_value: the text layer's values
        :param prefix_mask: boolean ``(batch, n_text)``, False at text padding
        :return: the new visual states and, when asked, the attention weights (prefix first)
        """
        q_proj, k_proj, v_proj, out_proj = self._projections()
        residual = hidden_states
        normed = self._norm_before(hidden_states)
        query, key, value = q_proj(normed), k_proj(normed), v_proj(normed)
        if self.use_pgi and prefix_key is not None:
            if self.prefix_key is not None:
                prefix_key, prefix_value = self.prefix_key(prefix_key), self.prefix_value(prefix_value)
            key = torch.cat([prefix_key.to(key.dtype), key], dim=1)
            value = torch.cat([prefix_value.to(value.dtype), value], dim=1)
            if key_mask is not None or prefix_mask is not None:
                batch, n_text, n_visual = prefix_key.shape[0], prefix_key.shape[1], normed.shape[1]
                ones = torch.ones(batch, 1, dtype=torch.bool, device=normed.device)
                key_mask = torch.cat(
                    [
                        prefix_mask if prefix_mask is not None else ones.expand(batch, n_text),
                        key_mask if key_mask is not None else ones.expand(batch, n_visual),
                    ],
                    dim=1,
                )
        context, weights = attention(
            _split_heads(query, self.num_heads),
            _split_heads(key, self.num_heads),
            _split_heads(value, self.num_heads),
            key_mask,
            dropout=self._attention_dropout() if self.training else 0.0,
            need_weights=need_weights,
        )
        hidden_states = residual + self._residual_dropout(out_proj(context))
        residual = hidden_states
        hidden_states = residual + self._residual_dropout(self.mlp(self._norm_after(hidden_states)))
        return hidden_states, weights


class PGICLIPLayer(PGIVisionLayer, CLIPEncoderLayer):
    """CLIP's vision encoder layer with PGI."""

    def __init__(self, config, *, text_hidden_size: int, use_pgi: bool = True):
        CLIPEncoderLayer.__init__(self, config)
        self._init_prefix(config, text_hidden_size, use_pgi)
        self._dropout = config.attention_dropout

    def _norm_before(self, x):
        return self.layer_norm1(x)

    def _norm_after(self, x):
        return self.layer_norm2(x)

    def _projections(self):
        a = self.self_attn
        return a.q_proj, a.k_proj, a.v_proj, a.out_proj

    def _attention_dropout(self):
        return self._dropout


class PGIViTLayer(PGIVisionLayer, ViTLayer):
    """ViT's encoder layer with PGI."""

    def __init__(self, config, *, text_hidden_size: int, use_pgi: bool = True):
        ViTLayer.__init__(self, config)
        self._init_prefix(config, text_hidden_size, use_pgi)

    def _norm_before(self, x):
        return self.layernorm_before(x)

    def _norm_after(self, x):
        return self.layernorm_after(x)

    def _projections(self):
        a = self.attention
        return a.q_proj, a.k_proj, a.v_proj, a.o_proj

    def _attention_dropout(self):
        return self.attention.attention_dropout

    def _residual_dropout(self, x):
        return self.dropout(x)


def _load_pretrained(fused: nn.Module, layer: nn.Module) -> None:
    """Copy a pretrained layer's weights into its fused replacement; only fusion weights stay new."""
    reference = next(layer.parameters())
    fused.to(device=reference.device, dtype=reference.dtype)
    result = fused.load_state_dict(layer.state_dict(), strict=False)
    if result.unexpected_keys:
        raise ValueError(
            f"Cannot fuse {type(layer).__name__}: weights {result.unexpected_keys} have no place in "
            f"{type(fused).__name__}."
        )
    new = ("fusion.", "prefix_key.", "prefix_value.")
    missing = [k for k in result.missing_keys if not k.startswith(new)]
    if missing:
        raise ValueError(f"Cannot fuse {type(layer).__name__}: it lacks the weights {missing}.")


def pgi_layer_from(layer: nn.Module, config, **kwargs) -> PGIVisionLayer:
    """The PGI replacement of a pretrained vision layer (CLIP or ViT)."""
    cls = PGICLIPLayer if config.model_type == "clip_vision_model" else PGIViTLayer
    fused = cls(config, **kwargs)
    _load_pretrained(fused, layer)
    return fused
