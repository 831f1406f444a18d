"""MKGformer as a PyKEEN model."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from typing import TYPE_CHECKING

import torch
from class_resolver import HintOrType
from pykeen.losses import BCEWithLogitsLoss, Loss
from pykeen.models.base import Model  # the submodule: this module may load while pykeen.models initialises
from pykeen.triples import KGInfo
from pykeen.typing import FloatTensor, InductiveMode, LongTensor
from torch import nn

from ..terminal import warn_at_caller
from .entity_modeling import EntityModeling
from .representation import EntityImages, EntityTokenRepresentation, initialize_token_rows_from_text

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

    from .interaction import MKGformerInteraction

# Heavy modules (transformers' models, the encoder) are imported where they are used: this module is
# imported when PyKEEN builds its model resolver (see pykeen_mkgformer.registration), which must stay cheap.

__all__ = ["MKGformer"]

logger = logging.getLogger(__name__)

#: the attributes a triples factory needs (those of :class:`pykeen_mkgformer.data.MultimodalTriplesFactory`)
MULTIMODAL_ATTRIBUTES = ("entity_names", "entity_descriptions", "entity_images", "relation_texts")


class MKGformer(Model):
    r"""MKGformer: a hybrid text + vision transformer that predicts the missing entity as a masked token.

    Every entity and every (directed) relation is a new token of the text tower. A query
    :math:`(h, r, ?)` is the text ``[CLS] <h> [SEP] <r text> <r> [SEP] [MASK] <h text> [SEP]``,
    read together with :math:`h`'s images by the hybrid encoder (PGI and CAF fusion in the last
    ``fusion_layers`` layers); the ``[MASK]`` state is scored against every entity token
    (:class:`~pykeen_mkgformer.kgc.interaction.MKGformerInteraction`):

    .. math::

        f(h, r, t) = \mathrm{MLM}(\mathbf{m}_{h,r})^{\top}\mathbf{e}_t + b_t

    Head prediction :math:`(?, r, t)` is the mirrored query :math:`(t, r^{-1}, ?)` with :math:`t`'s
    text and images: the inputs of a query only ever hold the *known* entity, never a candidate.
    Each real relation has two tokens, forward and inverse. With ``create_inverse_triples=True``
    (recommended, and required for LCWA to train head prediction) PyKEEN's relation ids already
    name them (``2r``, ``2r + 1``); without, ``score_h`` uses the inverse token itself.

    Stage 1 (image-text incorporated entity modeling, :mod:`.entity_modeling`) runs automatically
    wherever training starts: on the first ``model.train()`` (PyKEEN's training loops) or, when
    nothing calls it (Lightning 2.x, a plain ``torch`` loop on a fresh model), on the first score
    call in training mode; :meth:`run_entity_modeling` runs it explicitly. It is recorded in the
    persistent buffer ``entity_modeling_done``, so that resuming from a checkpoint skips it; under
    :mod:`torch.distributed` it is split across the ranks.

    Parameters that no score depends on (e.g. the text tower's pooler, CLIP's ``post_layernorm``)
    are found once, by an autograd probe at construction, and frozen (``requires_grad=False``,
    listed in :attr:`frozen_parameters`): they stay in the state dict, so checkpoints load as
    before, and DDP needs no ``find_unused_parameters``.

    Why a :class:`pykeen.models.Model` and not an ``ERModel``: ERModel computes representations of
    *all* entities for the free slot and combines them with the interaction by broadcasting. Here
    the known slot is a token sequence plus images that must run through a transformer once per
    query, and the free slot is only token embeddings; implementing ``score_hrt``/``score_t``/``score_h``
    directly keeps both cheap and exact, and every PyKEEN training loop, evaluator, stopper,
    checkpoint and predictor works with it unchanged.
    ---
    citation:
        author: Chen
        year: 2022
        link: https://arxiv.org/abs/2205.02357
        github: zjunlp/MKGformer
    """

    #: the paper trains with (label-smoothed) binary cross-entropy over all entities
    loss_default: ClassVar[type[Loss]] = BCEWithLogitsLoss
    loss_default_kwargs: ClassVar[Mapping[str, Any]] = {}
    #: for :func:`pykeen.hpo.hpo_pipeline`
    hpo_default: ClassVar[Mapping[str, Any]] = dict(
        dropout=dict(type=float, low=0.0, high=0.3, q=0.1),
    )

    #: whether stage 1 has run (a persistent buffer: saved in checkpoints and state dicts)
    entity_modeling_done: torch.Tensor
    _running_entity_modeling: bool = False
    #: host-side mirror of ``not entity_modeling_done`` (no device sync per score call); None: read the buffer
    _entity_modeling_pending: bool | None = None
    #: names of the parameters that never reach a score, frozen at construction
    frozen_parameters: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        triples_factory: KGInfo,
        text_encoder: str | Path | Mapping[str, Any] | PretrainedConfig = "bert-base-uncased",
        text_encoder_kwargs: Mapping[str, Any] | None = None,
        vision_encoder: str | Path | Mapping[str, Any] | PretrainedConfig = "openai/clip-vit-base-patch32",
        vision_encoder_kwargs: Mapping[str, Any] | None = None,
        tokenizer: str | Path | PreTrainedTokenizerBase | None = None,
        tokenizer_vocab_size: int = 2000,
        fusion_layers: int = 3,
        use_pgi: bool = True,
        use_caf: bool = True,
        fusion_variant: str = "paper",
        fusion_kwargs: Mapping[str, Any] | None = None,
        recipe: Any = None,
        dropout: float | None = None,
        max_images: int | None = None,
        image_layout: Any = None,
        image_cache_dir: str | Path | None = None,
        max_seq_length: int = 64,
        description: Literal["name", "description"] = "description",
        entity_modeling_epochs: int = 15,
        entity_modeling_batch_size: int = 64,
        entity_modeling_lr: float = 5e-4,
        gradient_checkpointing: bool = False,
        progress: bool = True,
        loss: HintOrType[Loss] = None,
        loss_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Build the model; pretrained weights are read from disk or the Hugging Face cache.

        :param triples_factory: a :class:`pykeen_mkgformer.data.MultimodalTriplesFactory` (training split)
        :param text_encoder: BERT-family checkpoint (Hugging Face name or local folder), a preset name from
            :mod:`~pykeen_mkgformer.kgc.presets` (``"tiny"``), or a config dict with ``model_type``
            (e.g. ``{"model_type": "bert", "hidden_size": 32, ...}``) for random weights
        :param text_encoder_kwargs: config overrides for the text tower (e.g. ``hidden_dropout_prob``)
        :param vision_encoder: CLIP or ViT checkpoint, a preset name (``"tiny"``), or a config dict (random weights)
        :param vision_encoder_kwargs: config overrides for the vision tower
        :param tokenizer: a tokenizer name/folder/object; by default the pretrained text encoder's own, or, for a
            config-dict text encoder, a WordPiece tokenizer trained on the graph's texts (deterministic)
        :param tokenizer_vocab_size: the vocabulary size of that trained tokenizer
        :param fusion_layers: M, the number of last layers fused (the paper: 3; the official code: 4)
        :param use_pgi: prefix-guided interaction (text prefix in vision attention)
        :param use_caf: correlation-aware fusion (visual states in the text FFN)
        :param fusion_variant: ``"paper"`` (the equations as written) or ``"official"`` (exactly what the
            official code computes); see :class:`~pykeen_mkgformer.encoder.HybridConfig`
        :param fusion_kwargs: individual fusion switches of :class:`~pykeen_mkgformer.encoder.HybridConfig`
            that override the variant's (e.g. ``{"mask_text_padding": True}``)
        :param recipe: ``"plugin"`` (default), ``"official"`` or a dict of
            :class:`~pykeen_mkgformer.kgc.recipe.KGCRecipe` fields: query strings, token and MLM-transform
            initialisation, stage-1 loss / rows / AdamW / warm-up as the official code or as this plugin
        :param dropout: if given, the dropout of both towers (hidden and attention) and of the fusion
        :param max_images: images per entity, all at the vision tower's image size (0: text only); ignored
            when ``image_layout`` is given
        :param image_layout: an :class:`~pykeen_mkgformer.data.images.ImageLayout` or ``[[count, side], ...]``;
            default: the official 1x224 + 3x128 + 3x64 px for a 224 px vision tower, else one image at its size
        :param image_cache_dir: where preprocessed pixels are cached (default: PyKEEN's data home)
        :param max_seq_length: the longest query in tokens
        :param description: ``"description"`` (the entity's description, its name when it has none) or ``"name"``
        :param entity_modeling_epochs: stage-1 epochs (0 skips stage 1)
        :param entity_modeling_batch_size: stage-1 batch size
        :param entity_modeling_lr: stage-1 learning rate (Adam on the new token embeddings only)
        :param gradient_checkpointing: recompute activations in the backward pass (saves memory)
        :param progress: progress bars for image preprocessing and stage 1
        :param loss: the loss (default: BCE with logits, as the paper)
        :param loss_kwargs: its keyword arguments
        :param kwargs: passed to :class:`pykeen.models.Model` (e.g. ``random_seed``, ``predict_with_sigmoid``)
        :raises TypeError: if the triples factory has no entity texts and images
        :raises ValueError: for an unknown ``description`` mode or inconsistent sizes
        """
        from .inputs import QueryAssembler, build_tokenizer
        from .presets import resolve_encoder

        from . import training as _training  # noqa: F401  (registers the recipe's training callbacks)
        from .recipe import resolve_recipe

        text_encoder = resolve_encoder(text_encoder, "text")
        vision_encoder = resolve_encoder(vision_encoder, "vision")
        _check_multimodal(triples_factory)
        self.recipe = resolve_recipe(recipe)
        super().__init__(triples_factory=triples_factory, loss=loss, loss_kwargs=loss_kwargs, **kwargs)
        if description not in ("name", "description"):
            raise ValueError(f"description must be 'name' or 'description', got {description!r}.")
        if not self.use_inverse_triples:
            logger.warning(
                "MKGformer without inverse triples: head prediction is trained only by training loops that call "
                "score_h (sLCWA, SymmetricLCWA); with LCWA use create_inverse_triples=True."
            )
        entity_texts = _entity_texts(triples_factory, description)
        relation_texts = _directed_relation_texts(triples_factory)
        self.spec = dict(
            text_encoder=_plain(text_encoder),
            text_encoder_kwargs=dict(text_encoder_kwargs or {}),
            vision_encoder=_plain(vision_encoder),
            vision_encoder_kwargs=dict(vision_encoder_kwargs or {}),
            fusion_layers=fusion_layers,
            use_pgi=use_pgi,
            use_caf=use_caf,
            fusion_variant=fusion_variant,
            fusion_kwargs=dict(fusion_kwargs or {}),
            dropout=dropout,
        )
        tokenizer = build_tokenizer(
            text_encoder,
            tokenizer,
            [*entity_texts, *relation_texts, "is"],
            vocab_size=tokenizer_vocab_size,
        )
        self.queries = QueryAssembler(
            tokenizer,
            entity_texts=entity_texts,
            relation_texts=relation_texts,
            max_seq_length=max_seq_length,
            query_format=self.recipe.query_format,
        )
        #: the tokenizer of the text tower (kept for :meth:`add_entities`)
        self.tokenizer = tokenizer
        #: which entity text the queries read (``"description"`` or ``"name"``)
        self.description_mode = description
        #: the entity and relation labels, texts and images by id, without triples: pass it as
        #: ``triples_factory=`` of :func:`pykeen.predict.predict_target`; :meth:`add_entities` extends it
        self.label_factory = triples_factory.clone_and_exchange_triples(
            mapped_triples=torch.empty((0, 3), dtype=torch.long)
        )
        self.interaction = self._build_interaction()
        max_positions = getattr(self.interaction.encoder.text_config, "max_position_embeddings", None)
        if max_positions is not None and max_seq_length > max_positions:
            raise ValueError(
                f"max_seq_length={max_seq_length} exceeds the text encoder's {max_positions} position embeddings."
            )
        self.entity_representation = EntityTokenRepresentation(
            self.interaction.encoder.get_input_embeddings(),
            offset=self.queries.entity_token_offset,
            num_entities=self.num_entities,
        )
        self.images = _build_images(
            triples_factory.entity_images,
            vision=self.interaction.encoder.vision_config,
            vision_source=vision_encoder,
            max_images=max_images,
            image_layout=image_layout,
            cache_dir=image_cache_dir,
            progress=progress,
        )
        if gradient_checkpointing:
            self.interaction.encoder.gradient_checkpointing_enable()
        self.entity_modeling = EntityModeling(
            epochs=entity_modeling_epochs,
            batch_size=entity_modeling_batch_size,
            lr=entity_modeling_lr,
            progress=progress,
            rows=self.recipe.entity_modeling_rows,
            smoothing=self.recipe.entity_modeling_smoothing,
            weight_decay=self.recipe.entity_modeling_weight_decay,
            warmup_ratio=self.recipe.entity_modeling_warmup_ratio,
        )
        self.register_buffer("entity_modeling_done", torch.zeros((), dtype=torch.bool))
        self._entity_modeling_pending = True
        # a loaded state dict (PyKEEN checkpoints, Lightning) says whether stage 1 already ran
        self.register_load_state_dict_post_hook(_refresh_entity_modeling_pending)
        self.frozen_parameters = self._freeze_unused_parameters()
        self._initial_versions = self._parameter_versions()

    # ------------------------------------------------------------------ construction
    def _build_interaction(self) -> MKGformerInteraction:
        """The encoder (pretrained or random), resized for the new tokens, with token rows initialised from text."""
        from transformers.models.bert.modeling_bert import BertPredictionHeadTransform

        from ..encoder import HybridConfig, HybridTransformer
        from .interaction import MKGformerInteraction

        spec = self.spec
        text_model, text_config = _load_tower(spec["text_encoder"], spec["text_encoder_kwargs"], spec["dropout"], "text")
        vision_model, vision_config = _load_tower(
            spec["vision_encoder"], spec["vision_encoder_kwargs"], spec["dropout"], "vision"
        )
        if text_model is None:
            # a random text tower gets exactly the tokenizer's vocabulary
            text_config.vocab_size = self.queries.base_vocab_size
        elif text_model.get_input_embeddings().num_embeddings < self.queries.base_vocab_size:
            raise ValueError(
                f"The tokenizer has {self.queries.base_vocab_size} tokens but the text encoder only "
                f"{text_model.get_input_embeddings().num_embeddings} embeddings."
            )
        config = HybridConfig(
            text=text_config,
            vision=vision_config,
            fusion_layers=spec["fusion_layers"],
            use_pgi=spec["use_pgi"],
            use_caf=spec["use_caf"],
            fusion_dropout=spec["dropout"],  # None: the variant's (paper 0.1, official 0)
            fusion_variant=spec["fusion_variant"],
            **spec["fusion_kwargs"],
        )
        encoder = HybridTransformer(config, text_model=text_model, vision_model=vision_model)
        # new rows get the tower's ordinary random init; the entity/relation rows are then set from their texts
        encoder.text_model.resize_token_embeddings(self.queries.vocab_size, mean_resizing=False)
        word_embeddings = encoder.get_input_embeddings()
        queries = self.queries
        text_mean = self.recipe.token_init == "text_mean"  # else: the resize's N(0, initializer_range) rows
        if text_mean:
            initialize_token_rows_from_text(
                word_embeddings,
                rows=torch.arange(queries.num_entities) + queries.entity_token_offset,
                text_ids=queries.entity_text_ids.cpu(),
                text_lengths=queries.entity_text_lengths.cpu(),
            )
            initialize_token_rows_from_text(
                word_embeddings,
                rows=torch.arange(queries.num_directed_relations) + queries.relation_token_offset,
                text_ids=queries.relation_text_ids.cpu(),
                text_lengths=queries.relation_text_lengths.cpu(),
            )
        transform = BertPredictionHeadTransform(encoder.text_config)
        if text_model is not None and self.recipe.mlm_transform == "pretrained":
            state = _pretrained_mlm_transform(spec["text_encoder"])
            if state is not None:
                transform.load_state_dict(state)
                logger.info("loaded the MLM transform of %s", spec["text_encoder"])
        return MKGformerInteraction(encoder, transform)

    def _freeze_unused_parameters(self) -> tuple[str, ...]:
        """Freeze the parameters that no score depends on; return their names.

        One probe query (entity 0, relation 0, with its images) is scored against one candidate in
        eval mode (no dropout, so no random numbers are drawn), and :func:`torch.autograd.grad` with
        ``allow_unused=True`` says which parameters are not in its graph. The graph's shape does not
        depend on the query, so this holds for every training step. The word embeddings and the
        entity biases are used by every score (they *are* the candidates) and are left out of the
        probe, so that it never materialises their (vocabulary x dim) gradient.
        """
        always = {id(self.entity_representation.bias), id(self.entity_representation.word_embeddings.weight)}
        named = [(name, p) for name, p in self.named_parameters() if p.requires_grad and id(p) not in always]
        if not named:
            return ()
        device = self.entity_representation.bias.device
        was_training = self.interaction.training
        self.interaction.train(False)
        try:
            with torch.enable_grad():
                index = torch.zeros(1, dtype=torch.long, device=device)
                scores = self._score_candidates(index, index, index)
                grads = torch.autograd.grad(scores.sum(), [p for _, p in named], allow_unused=True)
        finally:
            self.interaction.train(was_training)
        frozen = []
        for (name, p), grad in zip(named, grads):
            if grad is None:
                p.requires_grad_(False)
                frozen.append(name)
        if frozen:
            logger.info("frozen (never reach a score): %s", ", ".join(frozen))
        return tuple(frozen)

    def _parameter_versions(self) -> tuple[tuple[int, int], ...]:
        """In-place modification counters of all parameters: unchanged means 'as initialised'."""
        return tuple((id(p), p._version) for p in self.parameters())

    # docstr-coverage: inherited
    def _reset_parameters_(self) -> None:  # noqa: D102
        # PyKEEN resets at the start of every (non-continued) training. Weights that are still as built
        # (pretrained + text-initialised tokens, stage 1 included) are kept; otherwise rebuild them.
        # None: the weights are a new starting point (add_entities), kept until they change again.
        if self._initial_versions is None or self._parameter_versions() == self._initial_versions:
            self._initial_versions = self._parameter_versions()
            return
        fresh = self._build_interaction()
        self.interaction.load_state_dict(fresh.state_dict())
        self.entity_representation.reset_parameters()
        self.entity_modeling_done.fill_(False)
        self._entity_modeling_pending = True
        self._initial_versions = self._parameter_versions()

    # ------------------------------------------------------------------ stage 1 hook
    def train(self, mode: bool = True) -> MKGformer:
        """Set the training mode; the first switch to training runs stage 1 (entity modeling) once.

        PyKEEN's training loop calls ``model.train()`` at the start of every epoch, after
        resetting or restoring (checkpoint) the weights, so stage 1 runs right before the first
        stage-2 epoch and is skipped when a checkpoint says it already ran.
        """
        super().train(mode)
        self._maybe_run_entity_modeling()
        return self

    def _maybe_run_entity_modeling(self) -> None:
        """Run stage 1 if the model is training and stage 1 is still due (a host-side check: no device sync)."""
        if not self.training or self._running_entity_modeling or self.entity_modeling.epochs == 0:
            return
        if self._entity_modeling_pending is None:  # e.g. unpickled from an older version
            self._entity_modeling_pending = not bool(self.entity_modeling_done)
        if self._entity_modeling_pending:
            self.run_entity_modeling()

    def run_entity_modeling(self) -> list[float]:
        """Run stage 1 now (see :class:`~pykeen_mkgformer.kgc.entity_modeling.EntityModeling`); returns the epoch losses.

        Under :mod:`torch.distributed` every rank must call it (the automatic triggers do): the
        entities are split across the ranks and the gradients all-reduced.
        """
        self._running_entity_modeling = True
        try:
            losses = self.entity_modeling.run(self)
        finally:
            self._running_entity_modeling = False
        self.entity_modeling_done.fill_(True)
        self._entity_modeling_pending = False
        # stage 1 is part of the initialisation: a reset right after it keeps its result
        self._initial_versions = self._parameter_versions()
        return losses

    # ------------------------------------------------------------------ new entities
    def add_entities(
        self,
        labels: Sequence[str],
        descriptions: Sequence[str] | Mapping[str, str],
        images: Sequence[Sequence[str | Path]] | Mapping[str, Sequence[str | Path]] | None = None,
        *,
        entity_modeling_epochs: int = 0,
        **kwargs: Any,
    ) -> dict[str, int]:
        """Add entities after training, from their text and images; returns label -> id.

        See :func:`pykeen_mkgformer.kgc.new_entities.add_entities` (stage 1 on the new rows only with
        ``entity_modeling_epochs``; ``names``, ``tokenizer``, ...).
        """
        from .new_entities import add_entities

        return add_entities(
            self, labels, descriptions, images, entity_modeling_epochs=entity_modeling_epochs, **kwargs
        )

    # ------------------------------------------------------------------ scoring
    def _directed_relations(self, relations: LongTensor, *, head_side: bool) -> LongTensor:
        """Directed relation ids (``2r`` forward, ``2r + 1`` inverse) of the queries.

        With inverse triples PyKEEN's ids already are directed ids; a head-side query uses the inverse
        (``d xor 1``). Without, relation ``r`` is ``2r`` and its head-side query uses ``2r + 1``.
        """
        if self.use_inverse_triples:
            return relations ^ 1 if head_side else relations
        return 2 * relations + int(head_side)

    def encode_queries(self, known_entities: LongTensor, directed_relations: LongTensor) -> FloatTensor:
        """Query vectors ``(batch, dim)`` for ``(known entity, directed relation, ?)``, with the known entity's images only."""
        query = self.queries.link_prediction(known_entities, directed_relations)
        pixel_values = image_mask = None
        if self.images is not None:
            pixel_values, image_mask = self.images.lookup(known_entities, device=query.input_ids.device)
        return self.interaction.encode(query, pixel_values, image_mask)

    def _score_candidates(
        self, known: LongTensor, directed: LongTensor, candidates: LongTensor | None
    ) -> FloatTensor:
        """Scores ``(batch, num_candidates)``: one encoder pass per query, one matmul over the candidates."""
        queries = self.encode_queries(known, directed)
        embeddings, bias = self.entity_representation(candidates)
        return self.interaction.score(queries, embeddings, bias)

    def _check_mode(self, mode: InductiveMode | None) -> None:
        if mode is not None:
            raise NotImplementedError("MKGformer is transductive; inductive modes are not supported.")

    # docstr-coverage: inherited
    def score_hrt(self, hrt_batch: LongTensor, *, mode: InductiveMode | None = None) -> FloatTensor:  # noqa: D102
        self._check_mode(mode)
        self._maybe_run_entity_modeling()
        directed = self._directed_relations(hrt_batch[:, 1], head_side=False)
        queries = self.encode_queries(hrt_batch[:, 0], directed)
        embeddings, bias = self.entity_representation(hrt_batch[:, 2])
        return ((queries * embeddings).sum(dim=-1) + bias).unsqueeze(-1)

    # docstr-coverage: inherited
    def score_t(
        self,
        hr_batch: LongTensor,
        *,
        slice_size: int | None = None,
        mode: InductiveMode | None = None,
        tails: LongTensor | None = None,
    ) -> FloatTensor:  # noqa: D102
        # slicing is not needed: candidates cost one matmul; the transformer runs once per query
        self._check_mode(mode)
        self._maybe_run_entity_modeling()
        directed = self._directed_relations(hr_batch[:, 1], head_side=False)
        return self._score_candidates(hr_batch[:, 0], directed, tails)

    # docstr-coverage: inherited
    def score_h(
        self,
        rt_batch: LongTensor,
        *,
        slice_size: int | None = None,
        mode: InductiveMode | None = None,
        heads: LongTensor | None = None,
    ) -> FloatTensor:  # noqa: D102
        self._check_mode(mode)
        self._maybe_run_entity_modeling()
        directed = self._directed_relations(rt_batch[:, 0], head_side=True)
        return self._score_candidates(rt_batch[:, 1], directed, heads)

    # docstr-coverage: inherited
    def score_r(
        self,
        ht_batch: LongTensor,
        *,
        slice_size: int | None = None,
        mode: InductiveMode | None = None,
        relations: LongTensor | None = None,
    ) -> FloatTensor:  # noqa: D102
        # one query per (pair, relation): relation prediction is not what MKGformer is built for
        self._check_mode(mode)
        if relations is None:
            relations = torch.arange(self.num_relations, device=ht_batch.device)
        if relations.dim() == 1:
            relations = relations.unsqueeze(0).expand(ht_batch.shape[0], -1)
        num = relations.shape[1]
        hrt = torch.stack(
            [ht_batch[:, 0:1].expand(-1, num), relations, ht_batch[:, 1:2].expand(-1, num)], dim=-1
        ).reshape(-1, 3)
        return self.score_hrt(hrt).view(ht_batch.shape[0], num)

    # docstr-coverage: inherited
    def _get_entity_len(self, *, mode: InductiveMode | None) -> int:  # noqa: D102
        self._check_mode(mode)
        return self.num_entities

    # docstr-coverage: inherited
    def collect_regularization_term(self) -> FloatTensor:  # noqa: D102
        return torch.zeros((), device=self.entity_representation.bias.device)


# ---------------------------------------------------------------------- helpers
def _refresh_entity_modeling_pending(module: MKGformer, incompatible_keys: Any) -> None:
    """After ``load_state_dict``: stage 1 is due again exactly when the loaded ``entity_modeling_done`` is False."""
    module._entity_modeling_pending = not bool(module.entity_modeling_done)


def _check_multimodal(triples_factory: Any) -> None:
    missing = [name for name in MULTIMODAL_ATTRIBUTES if not hasattr(triples_factory, name)]
    if missing:
        raise TypeError(
            f"MKGformer needs a MultimodalTriplesFactory (entity names, descriptions and images, relation texts), "
            f"but got a {type(triples_factory).__name__} without {', '.join(missing)}. Build one with "
            "pykeen_mkgformer.data.MultimodalTriplesFactory.from_labeled_triples(triples, entity_names=..., "
            "entity_descriptions=..., entity_images=..., relation_texts=...), or use a multimodal dataset such "
            "as WN18IMG, FB15k237IMG, WN18IMGMini or ShapesKG."
        )


def _entity_texts(triples_factory: Any, description: str) -> list[str]:
    names = list(triples_factory.entity_names)
    if description == "name":
        return names
    return [text if text and text.strip() else name for name, text in zip(names, triples_factory.entity_descriptions)]


def _directed_relation_texts(triples_factory: Any) -> list[str]:
    """Texts of the directed relations: ``2r`` is relation ``r``'s text, ``2r + 1`` is 'inverse of' it."""
    texts = list(triples_factory.relation_texts)
    real = triples_factory.real_num_relations if hasattr(triples_factory, "real_num_relations") else len(texts)
    if len(texts) != real:
        raise ValueError(f"relation_texts has {len(texts)} entries, but the factory has {real} real relations.")
    directed = []
    for text in texts:
        directed.extend([text, f"inverse of {text}"])
    return directed


def _plain(spec: Any) -> Any:
    """Specs kept on the model: paths as strings, configs as dicts (picklable, JSON-friendly)."""
    from transformers import PretrainedConfig

    if isinstance(spec, Path):
        return str(spec)
    if isinstance(spec, PretrainedConfig):
        return spec.to_dict()
    if isinstance(spec, Mapping):
        return dict(spec)
    return spec


def _load_tower(
    spec: Any, overrides: Mapping[str, Any], dropout: float | None, role: str
) -> tuple[nn.Module | None, PretrainedConfig]:
    """A pretrained tower (for a name/folder) or only a config (for a dict: random weights, built by the encoder)."""
    from transformers import AutoModel, CLIPVisionModel, ViTModel

    from ..encoder.config import resolve_backbone_config

    overrides = dict(overrides)
    if dropout is not None:
        overrides.update(_dropout_overrides(dropout, role))
    if isinstance(spec, str):
        config = resolve_backbone_config(spec, role=role)
        for key, value in overrides.items():
            setattr(config, key, value)
        # the checkpoint's own config unless something is overridden
        config_kwargs = dict(config=config) if overrides else {}
        if role == "text":
            model = AutoModel.from_pretrained(spec, **config_kwargs)
        else:
            model_class = CLIPVisionModel if config.model_type == "clip_vision_model" else ViTModel
            model = model_class.from_pretrained(spec, **config_kwargs)
        return model, config
    config = resolve_backbone_config({**spec, **overrides} if isinstance(spec, Mapping) else spec, role=role)
    return None, config


def _dropout_overrides(dropout: float, role: str) -> dict[str, float]:
    if role == "text":
        return dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, attention_dropout=dropout, dropout=dropout)


def _pretrained_mlm_transform(source: str) -> dict[str, torch.Tensor] | None:
    """BERT's ``cls.predictions.transform`` weights from a checkpoint, when it has them (else None)."""
    from transformers.utils import cached_file

    prefix = "cls.predictions.transform."
    for file_name in ("model.safetensors", "pytorch_model.bin"):
        try:
            path = cached_file(source, file_name, _raise_exceptions_for_missing_entries=False)
        except (OSError, ValueError):
            path = None
        if not path:
            continue
        if file_name.endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(path, framework="pt") as handle:
                state = {key[len(prefix) :]: handle.get_tensor(key) for key in handle.keys() if key.startswith(prefix)}
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
            state = {key[len(prefix) :]: value for key, value in raw.items() if key.startswith(prefix)}
        # old checkpoints name LayerNorm parameters gamma/beta
        state = {key.replace(".gamma", ".weight").replace(".beta", ".bias"): value for key, value in state.items()}
        return state or None
    return None


def _build_images(
    image_paths: Sequence[Sequence[str]],
    *,
    vision: PretrainedConfig,
    vision_source: Any,
    max_images: int | None,
    image_layout: Any,
    cache_dir: str | Path | None,
    progress: bool,
) -> EntityImages | None:
    """The entities' pixel cache for the chosen layout, or None when no image is used."""
    from ..data.images import ImageLayout, image_processor_for

    image_size = vision.image_size if isinstance(vision.image_size, int) else vision.image_size[0]
    if image_layout is not None:
        layout = image_layout if isinstance(image_layout, ImageLayout) else ImageLayout(
            groups=tuple((int(count), int(side)) for count, side in image_layout)
        )
    elif max_images == 0:
        return None
    elif max_images is None and image_size == 224:
        layout = ImageLayout.official()
    else:
        layout = ImageLayout.single(image_size, count=max_images or 1)
    if layout.max_images == 0 or not any(image_paths):
        if not any(image_paths):
            warn_at_caller("No entity has an image: MKGformer runs text-only.")
        return None
    patch = vision.patch_size
    bad = [side for _, side in layout.groups if side % patch]
    if bad:
        raise ValueError(f"Image sides {bad} of the layout {layout.groups} are not multiples of the patch size {patch}.")
    source = vision_source if isinstance(vision_source, (str, Path)) else vision
    return EntityImages(
        image_paths, processor=image_processor_for(source), layout=layout, cache_dir=cache_dir, progress=progress
    )


# the official recipe's loss, registered with PyKEEN's loss resolver for experiment files (the training
# callbacks register when a model is built: importing pykeen.training here would be circular)
from . import losses as _losses  # noqa: E402,F401

# when this module is what imported pykeen.models, the resolver hook could not register the class yet
from ..registration import ensure_registered  # noqa: E402

ensure_registered()
