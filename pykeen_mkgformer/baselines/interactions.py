r"""The baselines' scoring functions as PyKEEN interactions (state-less unless a gate or attention is learned).

Notation: :math:`\mathbf{h}_s, \mathbf{t}_s` structural embeddings, :math:`\mathbf{h}_v` / :math:`\mathbf{h}_x`
projected visual / textual features, :math:`\mathbf{h}_m` a projection of both, :math:`\mathbf{r}` the
relation, :math:`\|\cdot\|` the L1 (default) or L2 norm. All tensors broadcast over batch dimensions
``(*batch, d)`` as PyKEEN's interactions do.
"""

from __future__ import annotations

import math

import torch
from pykeen.nn.modules import Interaction
from torch import nn

__all__ = [
    "IKRLInteraction",
    "TBKGCInteraction",
    "VBTransEInteraction",
    "VBRotatEInteraction",
    "QEBInteraction",
    "RSMEInteraction",
    "MoSEInteraction",
    "AdaptiveFusionInteraction",
    "complex_score",
    "rotate_distance",
]


def _dist(x: torch.Tensor, p: int) -> torch.Tensor:
    return torch.linalg.vector_norm(x, ord=p, dim=-1)


def complex_score(h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""ComplEx on real vectors split in halves (real; imaginary): :math:`\mathrm{Re}\langle h, r, \bar t\rangle`."""
    h_re, h_im = h.chunk(2, dim=-1)
    r_re, r_im = r.chunk(2, dim=-1)
    t_re, t_im = t.chunk(2, dim=-1)
    return (h_re * r_re * t_re + h_im * r_re * t_im + h_re * r_im * t_im - h_im * r_im * t_re).sum(-1)


def rotate_distance(h: torch.Tensor, phase: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""RotatE's :math:`\sum_k |h_k e^{i\theta_k} - t_k|` on vectors split in (real; imaginary) halves."""
    h_re, h_im = h.chunk(2, dim=-1)
    t_re, t_im = t.chunk(2, dim=-1)
    cos, sin = torch.cos(phase), torch.sin(phase)
    re = h_re * cos - h_im * sin - t_re
    im = h_re * sin + h_im * cos - t_im
    return torch.sqrt(re.square() + im.square() + 1e-12).sum(-1)


class IKRLInteraction(Interaction):
    r"""IKRL (Xie et al., IJCAI 2017, "Image-embodied Knowledge Representation Learning").

    .. math ::
        f = -\big(\|\mathbf{h}_s + \mathbf{r} - \mathbf{t}_s\| + \|\mathbf{h}_v + \mathbf{r} - \mathbf{t}_v\|
        + \|\mathbf{h}_s + \mathbf{r} - \mathbf{t}_v\| + \|\mathbf{h}_v + \mathbf{r} - \mathbf{t}_s\|\big)
    """

    entity_shape = ("d", "d")

    def __init__(self, p: int = 1) -> None:
        super().__init__()
        self.p = p

    def forward(self, h, r, t):  # noqa: D102
        (hs, hv), (ts, tv) = h, t
        return -sum(_dist(a + r - b, self.p) for a, b in ((hs, ts), (hv, tv), (hs, tv), (hv, ts)))


class TBKGCInteraction(Interaction):
    r"""TBKGC (Mousselly-Sergieh et al., *SEM 2018, "A Multimodal Translation-Based Approach for KG Representation Learning").

    .. math ::
        f = -\big(\|\mathbf{h}_s+\mathbf{r}-\mathbf{t}_s\| + \|\mathbf{h}_m+\mathbf{r}-\mathbf{t}_m\|
        + \|\mathbf{h}_s+\mathbf{r}-\mathbf{t}_m\| + \|\mathbf{h}_m+\mathbf{r}-\mathbf{t}_s\|
        + \|(\mathbf{h}_s+\mathbf{h}_m)+\mathbf{r}-(\mathbf{t}_s+\mathbf{t}_m)\|\big)

    with :math:`\mathbf{h}_m = W[\mathbf{v}_h; \mathbf{x}_h]` the projected visual and textual features.
    """

    entity_shape = ("d", "d")

    def __init__(self, p: int = 1) -> None:
        super().__init__()
        self.p = p

    def forward(self, h, r, t):  # noqa: D102
        (hs, hm), (ts, tm) = h, t
        pairs = ((hs, ts), (hm, tm), (hs, tm), (hm, ts), (hs + hm, ts + tm))
        return -sum(_dist(a + r - b, self.p) for a, b in pairs)


class VBTransEInteraction(Interaction):
    r"""VBTransE (the VBKGC line, Zhang et al. 2022): TransE on structure concatenated with fused features.

    .. math ::
        f = -\|[\mathbf{h}_s; \mathbf{h}_m] + \mathbf{r} - [\mathbf{t}_s; \mathbf{t}_m]\|, \quad \mathbf{r} \in \mathbb{R}^{2d}
    """

    entity_shape = ("d", "d")
    relation_shape = ("e",)

    def __init__(self, p: int = 1) -> None:
        super().__init__()
        self.p = p

    def forward(self, h, r, t):  # noqa: D102
        return -_dist(torch.cat(h, dim=-1) + r - torch.cat(t, dim=-1), self.p)


class VBRotatEInteraction(Interaction):
    r"""VBRotatE: RotatE on :math:`[\mathbf{h}_s; \mathbf{h}_m]` read as *d* complex numbers (real; imaginary halves).

    .. math ::
        f = -\sum_k \big|([\mathbf{h}_s; \mathbf{h}_m])_k e^{i\theta_{r,k}} - ([\mathbf{t}_s; \mathbf{t}_m])_k\big|
    """

    entity_shape = ("d", "d")

    def forward(self, h, r, t):  # noqa: D102
        return -rotate_distance(torch.cat(h, dim=-1), r, torch.cat(t, dim=-1))


class QEBInteraction(Interaction):
    r"""QEB (Wang et al., ACM MM 2023, TIVA-KG's quadruple-embedding baseline, as in ``zjukg/mmkgc``).

    The multimodal view gets its own relation translation :math:`\mathbf{r}_m`:

    .. math ::
        f = -\big(\|\mathbf{h}_s + \mathbf{r} - \mathbf{t}_s\| + \|\mathbf{h}_m + \mathbf{r}_m - \mathbf{t}_m\|
        + \|\mathbf{h}_s + \mathbf{r}_m - \mathbf{t}_m\| + \|\mathbf{h}_m + \mathbf{r} - \mathbf{t}_s\|\big)
    """

    entity_shape = ("d", "d")
    relation_shape = ("d", "d")

    def __init__(self, p: int = 1) -> None:
        super().__init__()
        self.p = p

    def forward(self, h, r, t):  # noqa: D102
        (hs, hm), (rs, rm), (ts, tm) = h, r, t
        terms = ((hs, rs, ts), (hm, rm, tm), (hs, rm, tm), (hm, rs, ts))
        return -sum(_dist(a + b - c, self.p) for a, b, c in terms)


class RSMEInteraction(Interaction):
    r"""RSME (Wang et al., ACM MM 2021, "Is Visual Context Really Helpful for KG Representation Learning?").

    A forget gate :math:`\mathbf{g} = \sigma(\mathbf{w})` filters the visual view,
    :math:`\tilde{\mathbf{h}}_v = \mathbf{g}\odot\mathbf{h}_v`, and the image similarity of head and
    tail enters the score (ComplEx :math:`\phi`):

    .. math ::
        f = \beta_1 \phi(\mathbf{h}_s, \mathbf{r}, \mathbf{t}_s) + \beta_2 \phi(\tilde{\mathbf{h}}_v, \mathbf{r}, \tilde{\mathbf{t}}_v)
        + (1 - \beta_1 - \beta_2) \cos(\mathbf{h}_v, \mathbf{t}_v)
    """

    entity_shape = ("d", "d")

    def __init__(self, dim: int, beta_structure: float = 0.7, beta_visual: float = 0.2) -> None:
        super().__init__()
        if beta_structure + beta_visual > 1:
            raise ValueError(f"beta_structure + beta_visual must be at most 1, got {beta_structure + beta_visual}")
        self.gate = nn.Parameter(torch.zeros(dim))
        self.beta_structure, self.beta_visual = beta_structure, beta_visual

    def forward(self, h, r, t):  # noqa: D102
        (hs, hv), (ts, tv) = h, t
        gate = torch.sigmoid(self.gate)
        similarity = torch.nn.functional.cosine_similarity(hv, tv, dim=-1)
        return (
            self.beta_structure * complex_score(hs, r, ts)
            + self.beta_visual * complex_score(gate * hv, r, gate * tv)
            + (1 - self.beta_structure - self.beta_visual) * similarity
        )


class MoSEInteraction(Interaction):
    r"""MoSE (Zhao et al., EMNLP 2022, "MoSE: Modality Split and Ensemble for Multimodal KGC").

    Three experts with their own entity and relation embeddings, each a ComplEx score
    :math:`\phi`: structure :math:`\mathbf{h}_s`, structure + image :math:`\mathbf{h}_s' + \mathbf{h}_v`,
    structure + text :math:`\mathbf{h}_s'' + \mathbf{h}_x`. Training sums the experts' scores;
    after training, :meth:`~.models.MoSE.fit_ensemble` sets per-relation weights on validation
    (the paper's MoSE-MI idea, a grid over the simplex instead of a meta-learner):

    .. math ::
        f = \sum_{k \in \{s, v, x\}} w_{r,k}\, \phi(\mathbf{h}^{(k)}, \mathbf{r}^{(k)}, \mathbf{t}^{(k)}),
        \quad w_{r,k} = 1 \text{ until fitted}
    """

    entity_shape = ("d", "d", "d", "d", "d")
    relation_shape = ("d", "d", "d", "k")

    def forward(self, h, r, t):  # noqa: D102
        return (self.expert_scores(h, r, t) * r[3]).sum(-1)

    @staticmethod
    def expert_scores(h, r, t) -> torch.Tensor:
        """The three experts' scores, stacked on the last axis (for fitting the ensemble)."""
        (hs, hs_v, hv, hs_x, hx), (rs, rv, rx, *_) = h, r
        (ts, ts_v, tv, ts_x, tx) = t
        return torch.stack(
            [complex_score(hs, rs, ts), complex_score(hs_v + hv, rv, ts_v + tv), complex_score(hs_x + hx, rx, ts_x + tx)],
            dim=-1,
        )


class AdaptiveFusionInteraction(Interaction):
    r"""Relation-guided adaptive modality fusion (AdaMF-MAT, Zhang et al., COLING 2024; NativE, SIGIR 2024).

    For each entity the structure, image and text views are fused with attention weights that depend
    on the relation (a learned query :math:`\mathbf{q}_r`), then scored by RotatE:

    .. math ::
        \alpha_{m} = \operatorname{softmax}_m\big(\mathbf{q}_r^\top \tanh(\mathbf{e}_m) / \sqrt{d}\big), \quad
        \mathbf{e} = \sum_{m \in \{s, v, x\}} \alpha_m \mathbf{e}_m, \quad
        f = -\sum_k |h_k e^{i\theta_{r,k}} - t_k|

    The papers' modality-adversarial training is a training loop, not part of the score:
    :class:`~pykeen_mkgformer.baselines.adversarial.ModalityAdversarialTrainingLoop`.
    """

    entity_shape = ("d", "d", "d")
    relation_shape = ("e", "d")

    def forward(self, h, r, t):  # noqa: D102
        phase, query = r
        return -rotate_distance(self.fuse(h, query), phase, self.fuse(t, query))

    @staticmethod
    def attention(views: tuple[torch.Tensor, ...], query: torch.Tensor) -> torch.Tensor:
        """The modality weights :math:`\\alpha`, shape ``(*batch, 3)``."""
        stacked = torch.stack(torch.broadcast_tensors(*views), dim=-2)  # (*batch, 3, d)
        logits = (torch.tanh(stacked) * query.unsqueeze(-2)).sum(-1) / math.sqrt(stacked.shape[-1])
        return logits.softmax(dim=-1)

    def fuse(self, views: tuple[torch.Tensor, ...], query: torch.Tensor) -> torch.Tensor:
        """:math:`\\sum_m \\alpha_m \\mathbf{e}_m`."""
        stacked = torch.stack(torch.broadcast_tensors(*views), dim=-2)
        weights = self.attention(views, query)
        stacked, weights = torch.broadcast_tensors(stacked, weights.unsqueeze(-1))
        return (stacked * weights).sum(-2)
