"""PyKEEN representations over frozen per-entity features, and the auxiliary loss of an autoencoder.

- :class:`FeatureBlock`: one modality's ``(num_entities, d_in)`` features with its "missing" mask
- :class:`FeatureRepresentation`: ``x_i = W [b_1(i); ...; b_k(i)] + c`` where a block's row is the
  (standardised) feature, or the block's **learnable missing vector** when the entity has none
- :class:`AutoencoderRepresentation`: TransAE's entity code ``z_i = sigmoid(W_e x_i) + e_i`` whose
  reconstruction error ``||W_d z_i - x_i||^2`` goes to PyKEEN's loss through :class:`ReconstructionRegularizer`
- :func:`feature_blocks`: blocks from :class:`~.features.EntityFeatures` (or "all missing" when absent)

Features are frozen by default (a buffer); ``trainable=True`` fine-tunes them (a parameter).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import torch
from pykeen.nn.representation import Representation
from pykeen.regularizers import Regularizer
from torch import nn

__all__ = [
    "FeatureBlock",
    "FeatureRepresentation",
    "AutoencoderRepresentation",
    "ReconstructionRegularizer",
    "feature_blocks",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class FeatureBlock:
    """One modality's features: ``features[i]`` is entity ``i``'s vector unless ``missing[i]``."""

    features: torch.Tensor
    missing: torch.Tensor
    name: str = "features"

    def __post_init__(self) -> None:
        self.features = torch.as_tensor(self.features, dtype=torch.float32)
        self.missing = torch.as_tensor(self.missing, dtype=torch.bool)
        if self.features.dim() != 2 or self.missing.shape != self.features.shape[:1]:
            raise ValueError(
                f"{self.name}: features must be (n, d) with an (n,) missing mask, got "
                f"{tuple(self.features.shape)} and {tuple(self.missing.shape)}"
            )

    @classmethod
    def absent(cls, num_entities: int, name: str) -> FeatureBlock:
        """A block where every entity is missing (a 1-d placeholder)."""
        return cls(torch.zeros(num_entities, 1), torch.ones(num_entities, dtype=torch.bool), name=name)

    def standardized(self) -> FeatureBlock:
        r"""Each dimension to zero mean and variance :math:`1/d_{in}` over the present rows (missing rows stay zero).

        Rows then have an expected norm of 1 whatever the width, so one optimiser step on the
        projection moves a 1,280-d block's output no more than a 64-d one's.
        """
        present = self.features[~self.missing]
        if len(present) < 2:
            return self
        mean, std = present.mean(0), present.std(0).clamp_min(1e-6) * self.features.shape[1] ** 0.5
        features = torch.where(self.missing.unsqueeze(-1), torch.zeros_like(self.features), (self.features - mean) / std)
        return FeatureBlock(features, self.missing, self.name)


def feature_blocks(features: Any, num_entities: int, modalities: Sequence[str]) -> list[FeatureBlock]:
    """One :class:`FeatureBlock` per modality (``visual`` / ``textual``) from :class:`~.features.EntityFeatures`.

    A modality without features becomes an all-missing block (a warning names it): the model then
    learns one shared vector for it, and the structure carries the ranking.
    """
    blocks = []
    for modality in modalities:
        tensor = None if features is None else getattr(features, modality, None)
        if tensor is None:
            logger.warning("no %s features given: every entity is marked missing for that modality", modality)
            blocks.append(FeatureBlock.absent(num_entities, modality))
            continue
        if len(tensor) != num_entities:
            raise ValueError(f"{modality} features have {len(tensor):,} rows; the graph has {num_entities:,} entities")
        if modality == "visual" and getattr(features, "visual_count", None) is not None:
            missing = features.visual_count == 0
        else:
            missing = torch.zeros(num_entities, dtype=torch.bool)
        blocks.append(FeatureBlock(tensor, missing, modality))
    return blocks


class _BlockInput(nn.Module):
    """``[b_1(i); ...; b_k(i)]`` with learnable missing vectors; frozen (buffers) or trainable features."""

    def __init__(self, blocks: Sequence[FeatureBlock], *, trainable: bool, standardize: bool) -> None:
        super().__init__()
        blocks = [block.standardized() if standardize else block for block in blocks]
        self.names = [block.name for block in blocks]
        features = torch.cat([block.features for block in blocks], dim=-1)
        if trainable:
            self.features = nn.Parameter(features)
        else:
            self.register_buffer("features", features)
        self.register_buffer("missing", torch.stack([block.missing for block in blocks], dim=-1))
        self.widths = [block.features.shape[1] for block in blocks]
        self.missing_vectors = nn.ParameterList([nn.Parameter(0.1 * torch.randn(width)) for width in self.widths])

    @property
    def dim(self) -> int:
        return sum(self.widths)

    def forward(self, indices: torch.Tensor | None) -> torch.Tensor:
        x = self.features if indices is None else self.features[indices]
        missing = self.missing if indices is None else self.missing[indices]
        parts = []
        for k, part in enumerate(torch.split(x, self.widths, dim=-1)):
            parts.append(torch.where(missing[..., k : k + 1], self.missing_vectors[k].expand_as(part), part))
        return torch.cat(parts, dim=-1)


class FeatureRepresentation(Representation):
    r"""A learned projection of frozen features: :math:`\mathbf{x}_i = W [\mathbf{f}^{(1)}_i; \dots] + \mathbf{b}`.

    :math:`\mathbf{f}^{(k)}_i` is block *k*'s standardised feature (:meth:`FeatureBlock.standardized`) of entity *i*, or the block's
    learnable missing vector :math:`\mathbf{m}^{(k)}` when the entity has none.
    """

    def __init__(
        self,
        *,
        blocks: Sequence[FeatureBlock],
        shape: int = 64,
        trainable: bool = False,
        standardize: bool = True,
        max_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Build the representation.

        :param blocks: the modalities' features (same number of rows)
        :param shape: the output dimension
        :param trainable: fine-tune the features themselves (default: frozen)
        :param standardize: z-score each feature dimension over the present rows
        :param max_id: must equal the number of rows when given
        :param kwargs: passed to :class:`pykeen.nn.representation.Representation`
        """
        num = len(blocks[0].features)
        if max_id is not None and max_id != num:
            raise ValueError(f"max_id={max_id} but the features have {num} rows")
        super().__init__(max_id=num, shape=shape, **kwargs)
        self.inputs = _BlockInput(blocks, trainable=trainable, standardize=standardize)
        self.projection = nn.Linear(self.inputs.dim, int(shape))

    def _plain_forward(self, indices: torch.LongTensor | None = None) -> torch.FloatTensor:  # noqa: D102
        return self.projection(self.inputs(indices))


class ReconstructionRegularizer(Regularizer):
    r"""An autoencoder's reconstruction loss as a PyKEEN regularizer: :math:`\lambda \cdot \mathrm{mean}(\Delta^2)`.

    :meth:`update` receives the differences :math:`\Delta = \hat{\mathbf{x}} - \mathbf{x}`;
    PyKEEN's training loops add the weighted term to the loss (``model.collect_regularization_term()``).
    """

    def forward(self, x: torch.FloatTensor) -> torch.FloatTensor:  # noqa: D102
        return x.square().mean()


class AutoencoderRepresentation(Representation):
    r"""TransAE's entity: the code of a one-layer multimodal autoencoder plus a structural embedding.

    .. math ::
        \mathbf{z}_i = \sigma(W_e \mathbf{x}_i + \mathbf{b}_e) + \mathbf{e}_i, \qquad
        \mathcal{L}_{rec} = \|W_d \sigma(W_e \mathbf{x}_i + \mathbf{b}_e) + \mathbf{b}_d - \mathbf{x}_i\|^2

    with :math:`\mathbf{x}_i = [\mathbf{v}_i; \mathbf{t}_i]` the (standardised) visual and textual
    features; :math:`\mathbf{e}_i` is a free embedding (so an entity without features still has its own
    vector). The reconstruction error goes to :attr:`reconstruction`, a :class:`ReconstructionRegularizer`.
    """

    def __init__(
        self,
        *,
        blocks: Sequence[FeatureBlock],
        shape: int = 64,
        reconstruction_weight: float = 1.0,
        trainable: bool = False,
        standardize: bool = True,
        max_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Build the autoencoder.

        :param blocks: the modalities' features
        :param shape: the code (and entity) dimension
        :param reconstruction_weight: :math:`\\lambda` of the reconstruction loss
        :param trainable: fine-tune the features themselves
        :param standardize: z-score each feature dimension over the present rows
        :param max_id: must equal the number of rows when given
        """
        num = len(blocks[0].features)
        if max_id is not None and max_id != num:
            raise ValueError(f"max_id={max_id} but the features have {num} rows")
        super().__init__(max_id=num, shape=shape, **kwargs)
        self.inputs = _BlockInput(blocks, trainable=trainable, standardize=standardize)
        self.encoder = nn.Linear(self.inputs.dim, int(shape))
        self.decoder = nn.Linear(int(shape), self.inputs.dim)
        self.structure = nn.Embedding(num, int(shape))
        nn.init.normal_(self.structure.weight, std=0.1)
        self.reconstruction = ReconstructionRegularizer(weight=reconstruction_weight)

    def _plain_forward(self, indices: torch.LongTensor | None = None) -> torch.FloatTensor:  # noqa: D102
        x = self.inputs(indices)
        code = torch.sigmoid(self.encoder(x))
        self.reconstruction.update(self.decoder(code) - x.detach())
        structure = self.structure.weight if indices is None else self.structure(indices)
        return code + structure
