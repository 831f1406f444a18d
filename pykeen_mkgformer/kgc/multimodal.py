r"""MKGformer's multimodal entity encoding as a PyKEEN representation, for any other interaction.

:class:`MultimodalEntityRepresentation` reads each entity the way stage 1 does (:mod:`.entity_modeling`):
its text in ``[CLS] [MASK] is <e text> [SEP]`` (the official sentence with the official recipe) with
its images on the vision side, through the hybrid encoder (PGI and CAF in the fused layers). The
``[MASK]`` state after BERT's MLM transform is the entity's vector
:math:`\mathbf{v}_e = \mathrm{MLM}(\mathrm{Hybrid}(\text{text}_e, \text{images}_e)_{[MASK]}) \in \mathbb{R}^H`,
standardised over the entities (:math:`\hat{\mathbf{v}}_e = (\mathbf{v}_e - \boldsymbol{\mu}) / \boldsymbol{\sigma}`,
per dimension: an untrained encoder gives every entity nearly the same state, and what tells them apart
is the small part that varies), and the representation is a trainable linear map of it,

.. math::

    \mathbf{x}_e = \mathbf{W}\hat{\mathbf{v}}_e + \mathbf{b} \in \mathbb{R}^{D}
    \quad(\text{or } \mathbb{C}^{D/2} \text{ read as pairs, for complex interactions such as RotatE}).

The encoder is frozen: the vectors :math:`\mathbf{v}_e` are computed once for all entities (a cache,
like PyKEEN's precomputed text features), on first use, and again on :meth:`~MultimodalEntityRepresentation.refresh`
(e.g. after the MKGformer it shares was trained further). The encoder is held outside the module tree,
so PyKEEN's ``reset_parameters_`` of a host model never re-initialises pretrained weights.

:class:`MultimodalRotatE` is RotatE over it (optionally combined with a free embedding through
PyKEEN's :class:`~pykeen.nn.representation.CombinedRepresentation`), registered by name for
:func:`pykeen.pipeline.pipeline`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from docdata import parse_docdata
import torch
from class_resolver import OptionalKwargs
from pykeen.models.nbase import ERModel
from pykeen.nn.representation import Representation
from torch import nn
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from .model import MKGformer

__all__ = ["MultimodalEntityRepresentation", "MultimodalRotatE", "encode_entities"]

logger = logging.getLogger(__name__)


@torch.no_grad()
def encode_entities(
    model: MKGformer, entities: torch.LongTensor | None = None, *, batch_size: int = 256, progress: bool = False
) -> torch.FloatTensor:
    r"""The stage-1 vectors :math:`\mathbf{v}_e` ``(n, H)`` of some entities (all for None), in eval mode."""
    entities = torch.arange(model.num_entities) if entities is None else entities.view(-1).cpu()
    device = model.entity_representations[2].bias.device
    was_training = model.interaction.training
    model.interaction.train(False)
    try:
        chunks = []
        for start in tqdm(range(0, entities.numel(), batch_size), desc="Encoding entities", disable=not progress):
            batch = entities[start : start + batch_size].to(device)
            query = model.queries.entity_modeling(batch)
            pixel_values = image_mask = None
            if model.images is not None:
                pixel_values, image_mask = model.images.lookup(batch, device=device)
            chunks.append(model.interaction.encode(query, pixel_values, image_mask).float())
    finally:
        model.interaction.train(was_training)
    if not chunks:
        return torch.empty(0, model.interaction.encoder.text_config.hidden_size, device=device)
    return torch.cat(chunks)


class MultimodalEntityRepresentation(Representation):
    """One vector per entity from MKGformer's hybrid encoder over its description and images (see the module docstring)."""

    def __init__(
        self,
        *,
        triples_factory: Any = None,
        model: MKGformer | None = None,
        model_kwargs: OptionalKwargs = None,
        max_id: int | None = None,
        shape: int | tuple[int, ...] | None = None,
        dtype: torch.dtype | None = None,
        projection: bool | None = None,
        standardize: bool = True,
        batch_size: int = 256,
        progress: bool = False,
        **kwargs: Any,
    ):
        """Build the representation from an MKGformer (given, or built from a multimodal triples factory).

        :param triples_factory: a :class:`~pykeen_mkgformer.data.MultimodalTriplesFactory`; an MKGformer is built
            on it with ``model_kwargs`` (e.g. the tiny preset, pretrained towers); its stage 1 runs first when
            ``model_kwargs`` asks for stage-1 epochs
        :param model: an (e.g. trained) :class:`~pykeen_mkgformer.kgc.MKGformer` whose encoder to read with
        :param model_kwargs: keyword arguments of :class:`~pykeen_mkgformer.kgc.MKGformer` (with ``triples_factory``)
        :param max_id: the number of entities (checked against the model's)
        :param shape: the output shape (default: the encoder's hidden size, no projection)
        :param dtype: ``torch.cfloat`` for complex interactions (RotatE, ComplEx): pairs of reals read as
            complex numbers, ``shape`` complex entries; default: real
        :param projection: whether a trainable linear map follows the frozen vectors (default: when ``shape``
            or ``dtype`` differ from the encoder's output)
        :param standardize: standardise each dimension of the vectors over the entities (zero mean, unit variance)
        :param batch_size: entities per encoder pass when the cache is (re)built
        :param progress: a progress bar while encoding
        :param kwargs: passed to :class:`~pykeen.nn.representation.Representation` (normalizer, dropout, ...)
        :raises ValueError: without a model or a triples factory, or for a ``max_id`` that is not the model's
        """
        if model is None:
            if triples_factory is None:
                raise ValueError("MultimodalEntityRepresentation needs a multimodal triples_factory or an MKGformer model.")
            from .model import MKGformer

            model = MKGformer(triples_factory=triples_factory, **dict(model_kwargs or {}))
            if model.entity_modeling.epochs:
                model.run_entity_modeling()
        model.eval()
        hidden = model.interaction.encoder.text_config.hidden_size
        if max_id is None:
            max_id = model.num_entities
        elif max_id != model.num_entities:
            raise ValueError(f"max_id={max_id}, but the MKGformer has {model.num_entities} entities.")
        complex_output = dtype is not None and dtype.is_complex
        if shape is None:
            shape = (hidden // 2,) if complex_output else (hidden,)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        width = int(torch.Size(shape).numel()) * (2 if complex_output else 1)
        if projection is None:
            projection = width != hidden
        if not projection and width != hidden:
            raise ValueError(f"Without a projection the shape must hold the encoder's {hidden} values, got {shape}.")
        kwargs.setdefault("unique", False)
        super().__init__(max_id=max_id, shape=shape, **kwargs)
        # a plain attribute: the (frozen) encoder stays out of the module tree, state dict and resets
        self._model = [model]
        self.complex_output = complex_output
        self.standardize = standardize
        self.batch_size = batch_size
        self.progress = progress
        self.projection = nn.Linear(hidden, width) if projection else None
        self.register_buffer("features", torch.empty(0, hidden), persistent=False)

    @property
    def model(self) -> MKGformer:
        """The MKGformer whose encoder reads the entities."""
        return self._model[0]

    def refresh(self) -> torch.FloatTensor:
        r"""Recompute the vectors :math:`\mathbf{v}_e` of all entities with the current encoder weights."""
        device = self.features.device
        model = self.model
        if next(model.parameters()).device != device:
            model.to(device)
        features = encode_entities(model, batch_size=self.batch_size, progress=self.progress).to(device)
        if self.standardize and features.shape[0] > 1:
            features = (features - features.mean(dim=0)) / features.std(dim=0).clamp(min=1e-6)
        self.features = features
        return self.features

    def _plain_forward(self, indices: torch.LongTensor | None = None) -> torch.FloatTensor:  # noqa: D102
        features = self.features if self.features.shape[0] == self.max_id else self.refresh()
        x = features if indices is None else features[indices.to(features.device)]
        if self.projection is not None:
            x = self.projection(x)
        if self.complex_output:
            x = torch.view_as_complex(x.view(*x.shape[:-1], -1, 2))
        return x.view(*x.shape[:-1], *self.shape)

    def reset_parameters(self) -> None:
        """Re-initialise the projection (the encoder is not touched)."""
        if self.projection is not None:
            self.projection.reset_parameters()


def _multimodal_kwargs(triples_factory: Any, shape: int, dtype: torch.dtype, kwargs: Mapping[str, Any] | None) -> dict:
    kwargs = dict(kwargs or {})
    if "model" not in kwargs:
        kwargs.setdefault("triples_factory", triples_factory)
        if "model_kwargs" not in kwargs:
            from .presets import tiny_model_kwargs

            kwargs["model_kwargs"] = tiny_model_kwargs(entity_modeling_epochs=0, progress=False)
    return dict(kwargs, shape=shape, dtype=dtype)


@parse_docdata
class MultimodalRotatE(ERModel):
    r"""RotatE over MKGformer's multimodal entity vectors (optionally combined with a free embedding).

    .. math::

        f(h, r, t) = -\|\mathbf{x}_h \odot \mathbf{r} - \mathbf{x}_t\|

    with :math:`\mathbf{x}_e \in \mathbb{C}^d` from :class:`MultimodalEntityRepresentation` (a trainable
    projection of the frozen hybrid-encoder vector of :math:`e`'s text and images), or, with
    ``structure=True``, PyKEEN's :class:`~pykeen.nn.representation.CombinedRepresentation` of a free
    complex embedding and that vector (real and imaginary parts each concatenated and projected,
    :class:`~pykeen.nn.combination.ComplexSeparatedCombination`), and unit-modulus relation
    rotations :math:`\mathbf{r}` as in :class:`pykeen.models.RotatE`. A new entity with text and
    images gets a vector without training (``structure=False``).
    ---
    citation:
        author: Sun
        year: 2019
        link: https://arxiv.org/abs/1902.10197
    """

    hpo_default = dict(embedding_dim=dict(type=int, low=32, high=256, q=32))

    def __init__(
        self,
        *,
        triples_factory: Any,
        embedding_dim: int = 128,
        structure: bool = False,
        multimodal_kwargs: OptionalKwargs = None,
        **kwargs: Any,
    ) -> None:
        """Build the model.

        :param triples_factory: a :class:`~pykeen_mkgformer.data.MultimodalTriplesFactory`
        :param embedding_dim: the complex dimension :math:`d`
        :param structure: also a free (structural) entity embedding, combined with the multimodal vector
        :param multimodal_kwargs: keyword arguments of :class:`MultimodalEntityRepresentation` (``model=`` a trained
            MKGformer, or ``model_kwargs=`` to build one; default: the tiny preset's random towers, no stage 1)
        :param kwargs: passed to :class:`~pykeen.models.ERModel` (``loss``, ``random_seed``, ...)
        """
        from pykeen.nn.init import init_phases, xavier_uniform_
        from pykeen.nn.representation import CombinedRepresentation, Embedding
        from pykeen.utils import complex_normalize

        multimodal = MultimodalEntityRepresentation(
            **_multimodal_kwargs(triples_factory, embedding_dim, torch.cfloat, multimodal_kwargs)
        )
        entity: Representation = multimodal
        if structure:
            free = Embedding(
                max_id=triples_factory.num_entities, shape=embedding_dim, dtype=torch.cfloat, initializer=xavier_uniform_
            )
            entity = CombinedRepresentation(
                max_id=triples_factory.num_entities,
                base=[free, multimodal],
                combination="ComplexSeparated",
                combination_kwargs=dict(
                    combination="ConcatProjection",
                    combination_kwargs=dict(input_dims=[embedding_dim, embedding_dim], output_dim=embedding_dim),
                ),
            )
        super().__init__(
            triples_factory=triples_factory,
            interaction="RotatE",
            entity_representations=entity,
            relation_representations_kwargs=dict(
                shape=embedding_dim, dtype=torch.cfloat, initializer=init_phases, constrainer=complex_normalize
            ),
            **kwargs,
        )
