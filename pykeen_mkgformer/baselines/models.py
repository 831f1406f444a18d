"""The multimodal KGC baselines as PyKEEN :class:`~pykeen.models.ERModel` subclasses.

Every model takes the same feature arguments (all optional, so ``pipeline(model="IKRL", dataset=...)``
works on any dataset):

- ``features``: a folder written by ``pykeen-mkgformer features`` (or holding the papers'
  ``*-visual.pth`` / ``*-textual.pth``), or an :class:`~.features.EntityFeatures`;
- ``vision_encoder`` / ``text_encoder``: towers to compute them now (``"efficientnet-lite0"``,
  ``"minilm"``, any Hugging Face name or folder), cached in ``feature_cache``;
- none of these: every entity is "missing" for both modalities (a warning), and the structure
  embeddings carry the model.

Features are frozen and projected by a learned linear map (``fine_tune_features=True`` trains them).
The scoring functions are in :mod:`.interactions`.
"""

from __future__ import annotations

import itertools
import logging
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from pykeen.models import ERModel
from pykeen.nn.modules import TransEInteraction
from pykeen.nn.representation import Embedding

from .features import EntityFeatures, extract_features
from .interactions import (
    AdaptiveFusionInteraction,
    IKRLInteraction,
    MoSEInteraction,
    QEBInteraction,
    RSMEInteraction,
    TBKGCInteraction,
    VBRotatEInteraction,
    VBTransEInteraction,
)
from .representation import AutoencoderRepresentation, FeatureRepresentation, feature_blocks

__all__ = ["MultimodalBaseline", "IKRL", "TBKGC", "TransAE", "RSME", "VBTransE", "VBRotatE", "QEB", "MoSE", "AdaMF", "BASELINES"]

logger = logging.getLogger(__name__)

FeaturesHint = EntityFeatures | str | os.PathLike | None


def resolve_features(
    triples_factory: Any,
    features: FeaturesHint = None,
    *,
    vision_encoder: Any = None,
    text_encoder: Any = None,
    feature_cache: str | os.PathLike | None = None,
) -> EntityFeatures | None:
    """Features for the factory's entities: given, read from a folder, or computed by the towers."""
    if isinstance(features, EntityFeatures):
        return features
    if features is not None:
        return EntityFeatures.load(pathlib.Path(features), num_entities=triples_factory.num_entities)
    if vision_encoder is not None or text_encoder is not None:
        return extract_features(
            triples_factory, vision=vision_encoder, text=text_encoder, cache_dir=feature_cache, progress=False
        )
    return None


class MultimodalBaseline(ERModel):
    """Shared constructor: a structure embedding, feature representations, relation embeddings, an interaction."""

    #: PyKEEN's hyper-parameter search space
    hpo_default: ClassVar[Mapping[str, Any]] = dict(embedding_dim=dict(type=int, low=16, high=256, q=16))
    #: which feature modalities the model reads
    modalities: ClassVar[tuple[str, ...]] = ("visual", "textual")
    #: keep structure embeddings and projected features on the unit sphere (the norm constraint of
    #: TransE, IKRL and TBKGC); without it the projected 10^3-d features grow and the margin loss diverges
    unit_norm: ClassVar[bool] = False

    def __init__(
        self,
        *,
        triples_factory: Any,
        embedding_dim: int = 64,
        features: FeaturesHint = None,
        vision_encoder: Any = None,
        text_encoder: Any = None,
        feature_cache: str | None = None,
        fine_tune_features: bool = False,
        standardize_features: bool = True,
        **kwargs: Any,
    ) -> None:
        """Build the model.

        :param triples_factory: PyKEEN's training factory
        :param embedding_dim: the entity / relation dimension ``d``
        :param features: a features folder or :class:`~.features.EntityFeatures` (see the module docstring)
        :param vision_encoder: a vision tower to compute visual features now
        :param text_encoder: a text tower to compute textual features now
        :param feature_cache: the per-item cache for computed features
        :param fine_tune_features: train the feature vectors themselves (default: frozen)
        :param standardize_features: z-score each feature dimension
        :param kwargs: passed to :class:`pykeen.models.ERModel` (loss, random_seed, ...)
        """
        loaded = resolve_features(
            triples_factory, features, vision_encoder=vision_encoder, text_encoder=text_encoder, feature_cache=feature_cache
        )
        self._feature_blocks = feature_blocks(loaded, triples_factory.num_entities, self.modalities)
        self._feature_kwargs = dict(trainable=fine_tune_features, standardize=standardize_features)
        self._num_entities = triples_factory.num_entities
        self._num_relations = triples_factory.num_relations
        entities, relations, interaction = self._build(embedding_dim)
        super().__init__(
            triples_factory=triples_factory,
            interaction=interaction,
            entity_representations=entities,
            relation_representations=relations,
            skip_checks=True,
            **kwargs,
        )
        del self._feature_blocks

    # helpers for subclasses
    def _structure(self, dim: int, init_std: float | None = None) -> Embedding:
        if init_std is not None:  # the kbc code base of RSME and MoSE: N(0, 1e-3) ("init_size")
            return Embedding(max_id=self._num_entities, shape=dim, initializer=torch.nn.init.normal_,
                             initializer_kwargs=dict(std=init_std))
        constrainer = "normalize" if self.unit_norm else None
        return Embedding(max_id=self._num_entities, shape=dim, initializer="xavier_uniform_", constrainer=constrainer)

    def _relation(self, dim: int, **kwargs: Any) -> Embedding:
        kwargs.setdefault("initializer", "xavier_uniform_")
        return Embedding(max_id=self._num_relations, shape=dim, **kwargs)

    def _features(self, dim: int, modalities: Sequence[str] | None = None) -> FeatureRepresentation:
        blocks = [b for b in self._feature_blocks if modalities is None or b.name in modalities]
        normalizer = "normalize" if self.unit_norm else None
        return FeatureRepresentation(blocks=blocks, shape=dim, normalizer=normalizer, **self._feature_kwargs)

    def _build(self, dim: int) -> tuple[list, list, Any]:
        raise NotImplementedError


class IKRL(MultimodalBaseline):
    """IKRL (Xie et al., IJCAI 2017): structure and image views translated into each other (see :class:`~.interactions.IKRLInteraction`).

    The image view is the projected mean of the entity's image features (the paper's attention over
    images is replaced by the mean the features carry).
    """

    unit_norm = True

    modalities = ("visual",)

    def _build(self, dim):
        return [self._structure(dim), self._features(dim)], [self._relation(dim)], IKRLInteraction()


class TBKGC(MultimodalBaseline):
    """TBKGC (Mousselly-Sergieh et al., *SEM 2018): structure and a visual+textual view, five translation terms (:class:`~.interactions.TBKGCInteraction`)."""

    unit_norm = True

    def _build(self, dim):
        return [self._structure(dim), self._features(dim)], [self._relation(dim)], TBKGCInteraction()


class TransAE(MultimodalBaseline):
    r"""TransAE (Wang et al., IJCNN 2019, "Multimodal Data Enhanced Representation Learning for KGs").

    TransE, :math:`f = -\|\mathbf{h} + \mathbf{r} - \mathbf{t}\|_1`, on the code of a multimodal
    autoencoder (:class:`~.representation.AutoencoderRepresentation`); the reconstruction loss
    (weight ``reconstruction_weight``) is added to PyKEEN's loss as a regularization term.
    """

    def __init__(self, *, reconstruction_weight: float = 0.1, **kwargs: Any) -> None:
        """:param reconstruction_weight: the weight of the autoencoder's reconstruction loss."""
        self._reconstruction_weight = reconstruction_weight
        super().__init__(**kwargs)

    def _build(self, dim):
        entity = AutoencoderRepresentation(
            blocks=self._feature_blocks, shape=dim, reconstruction_weight=self._reconstruction_weight, **self._feature_kwargs
        )
        return [entity], [self._relation(dim)], TransEInteraction(p=1)


class RSME(MultimodalBaseline):
    """RSME (Wang et al., ACM MM 2021): ComplEx with a forget-gated image view and an image-similarity term (:class:`~.interactions.RSMEInteraction`)."""

    modalities = ("visual",)

    def __init__(self, *, beta_structure: float = 0.7, beta_visual: float = 0.2, **kwargs: Any) -> None:
        """:param beta_structure: weight of the structural ComplEx score; :param beta_visual: of the visual one."""
        self._betas = dict(beta_structure=beta_structure, beta_visual=beta_visual)
        super().__init__(**kwargs)

    def _build(self, dim):
        dim = 2 * (dim // 2)
        return (
            [self._structure(dim, init_std=1e-3), self._features(dim)],
            [self._relation(dim)],
            RSMEInteraction(dim=dim, **self._betas),
        )


class VBTransE(MultimodalBaseline):
    """VBTransE (VBKGC line, Zhang et al. 2022): TransE on ``[structure; projected visual+textual features]`` (:class:`~.interactions.VBTransEInteraction`)."""

    unit_norm = True

    def _build(self, dim):
        return [self._structure(dim), self._features(dim)], [self._relation(2 * dim)], VBTransEInteraction()


class VBRotatE(MultimodalBaseline):
    """VBRotatE: RotatE on ``[structure; projected visual+textual features]`` (:class:`~.interactions.VBRotatEInteraction`)."""

    unit_norm = True

    def _build(self, dim):
        phases = self._relation(dim, initializer=torch.nn.init.uniform_, initializer_kwargs=dict(a=-torch.pi, b=torch.pi))
        return [self._structure(dim), self._features(dim)], [phases], VBRotatEInteraction()


class QEB(MultimodalBaseline):
    """QEB (Wang et al., ACM MM 2023, TIVA-KG): a second relation translation for the multimodal view (:class:`~.interactions.QEBInteraction`)."""

    unit_norm = True

    def _build(self, dim):
        return [self._structure(dim), self._features(dim)], [self._relation(dim), self._relation(dim)], QEBInteraction()


class MoSE(MultimodalBaseline):
    """MoSE (Zhao et al., EMNLP 2022): structure, structure+image and structure+text experts and a post-training ensemble.

    See :class:`~.interactions.MoSEInteraction`. The ensemble weights are a frozen relation
    representation of shape ``(3,)`` (all ones while training); :meth:`fit_ensemble` sets them per
    relation from validation ranks.
    """

    def _build(self, dim):
        dim = 2 * (dim // 2)
        entities = [
            self._structure(dim, init_std=1e-3),
            self._structure(dim, init_std=1e-3),
            self._features(dim, ["visual"]),
            self._structure(dim, init_std=1e-3),
            self._features(dim, ["textual"]),
        ]
        weights = Embedding(max_id=self._num_relations, shape=3, initializer=torch.nn.init.ones_, trainable=False)
        relations = [self._relation(dim), self._relation(dim), self._relation(dim), weights]
        return entities, relations, MoSEInteraction()

    @property
    def ensemble_weights(self) -> torch.Tensor:
        """``(num_relations, 3)``: the experts' weights per relation."""
        return self.relation_representations[3]._embeddings.weight

    @torch.no_grad()
    def fit_ensemble(self, triples: torch.Tensor, *, step: float = 0.25, batch_size: int = 64) -> torch.Tensor:
        """Choose, per relation, the expert weights on the simplex grid (``step``) that maximise the tail MRR on ``triples``.

        Ranks here are realistic ranks among all entities, unfiltered (the choice only needs a signal);
        relations without a triple in ``triples`` keep equal weights. Returns the new weights.
        """
        self.eval()
        triples = triples.to(self.device)
        experts = []
        for start in range(0, len(triples), batch_size):
            batch = triples[start : start + batch_size]
            h, r, t = self._get_representations(h=batch[:, 0:1], r=batch[:, 1:2], t=None, mode=None)
            experts.append(MoSEInteraction.expert_scores(h, r, t).cpu())  # (b, num_entities, 3)
        scores = torch.cat(experts)
        true = scores[torch.arange(len(triples)), triples[:, 2].cpu()]  # (n, 3)
        points = [k * step for k in range(int(round(1 / step)) + 1)]
        grid = torch.tensor([w for w in itertools.product(points, repeat=3) if abs(sum(w) - 1) < 1e-6 and sum(w) > 0])
        weights = torch.full((self.num_relations, 3), 1.0 / 3)
        for relation in triples[:, 1].unique().tolist():
            rows = (triples[:, 1] == relation).cpu()
            best, best_mrr = None, -1.0
            for w in grid:
                s = (scores[rows] * w).sum(-1)
                s_true = (true[rows] * w).sum(-1, keepdim=True)
                rank = (s > s_true).sum(-1) + ((s == s_true).sum(-1) + 1) / 2
                mrr = (1.0 / rank.float()).mean().item()
                if mrr > best_mrr:
                    best, best_mrr = w, mrr
            weights[relation] = best
        self.ensemble_weights.data.copy_(weights.to(self.ensemble_weights))
        return weights


class AdaMF(MultimodalBaseline):
    """Adaptive modality fusion in the AdaMF-MAT / NativE style: relation-guided attention over structure, image and text (:class:`~.interactions.AdaptiveFusionInteraction`)."""

    unit_norm = True

    def _build(self, dim):
        dim = 2 * (dim // 2)
        phases = self._relation(dim // 2, initializer=torch.nn.init.uniform_, initializer_kwargs=dict(a=-torch.pi, b=torch.pi))
        entities = [self._structure(dim), self._features(dim, ["visual"]), self._features(dim, ["textual"])]
        return entities, [phases, self._relation(dim)], AdaptiveFusionInteraction()


#: every baseline class, for registration and the benchmark
BASELINES: tuple[type[MultimodalBaseline], ...] = (IKRL, TBKGC, TransAE, RSME, VBTransE, VBRotatE, QEB, MoSE, AdaMF)
