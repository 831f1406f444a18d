"""MKGformer as a PyKEEN model."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from docdata import parse_docdata
import torch
from class_resolver import HintOrType
from pykeen.losses import BCEWithLogitsLoss, Loss
from pykeen.models.nbase import ERModel  # the submodule: this module may load while pykeen.models initialises
from pykeen.nn.modules import parallel_unsqueeze
from pykeen.triples import KGInfo
from pykeen.typing import FloatTensor, InductiveMode, LongTensor
from torch import nn

from ..terminal import warn_at_caller
from .entity_modeling import EntityModeling
from .representation import (
    EntityBias,
    EntityImageRepresentation,
    EntityImages,
    EntityTextTokens,
    EntityTokenEmbedding,
    RelationTextTokens,
)

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

    from .interaction import MKGformerInteraction

# Heavy modules (transformers' models, the encoder) are imported where they are used: this module is
# imported when PyKEEN builds its model resolver (see pykeen_mkgformer.registration), which must stay cheap.

__all__ = ["MKGformer"]

logger = logging.getLogger(__name__)

#: positions of MKGformer's entity representations (see :class:`~.interaction.MKGformerInteraction`)
TEXT_TOKENS, TOKEN_EMBEDDING, BIAS, IMAGES = 0, 1, 2, 3

#: the attributes a triples factory needs (those of :class:`pykeen_mkgformer.data.MultimodalTriplesFactory`)
MULTIMODAL_ATTRIBUTES = ("entity_names", "entity_descriptions", "entity_images", "relation_texts")


@parse_docdata
class MKGformer(ERModel):
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

    An :class:`~pykeen.models.ERModel`: :class:`~.interaction.MKGformerInteraction` over the entity
    representations ``[EntityTextTokens, EntityTokenEmbedding, EntityBias, EntityImageRepresentation]``
    (the head slot takes the token ids and the images, the tail slot the token embedding and the bias)
    and the relation representation ``RelationTextTokens``. ``score_t`` encodes each query once and
    scores all candidates with one product; ``score_h`` is the mirrored ``score_t`` (above), never a
    transformer pass per candidate head. The scoring head is the interaction's
    :meth:`~.interaction.MKGformerInteraction.score_candidates`.
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

    def __new__(cls, *args: Any, **kwargs: Any) -> MKGformer:
        # the constructor's arguments, for the safe saved format (pykeen_mkgformer.kgc.saved_model)
        instance = super().__new__(cls)
        instance.__dict__["init_kwargs"] = {key: value for key, value in kwargs.items() if key != "triples_factory"}
        return instance

    def save(self, folder: str | Path, **kwargs: Any) -> Path:
        """Write the model as data (safetensors + JSON): :func:`pykeen_mkgformer.kgc.saved_model.save_model`."""
        from .saved_model import save_model

        self._check_unsharded()
        return save_model(self, folder, **kwargs)

    @classmethod
    def from_directory(cls, folder: str | Path, **kwargs: Any) -> MKGformer:
        """Open a saved model: :func:`pykeen_mkgformer.kgc.saved_model.load_model` (no pickle is read)."""
        from .saved_model import load_model

        return load_model(folder, **kwargs)

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
        entity_modeling_objective: str = "full",
        entity_modeling_negatives: int = 1024,
        gradient_checkpointing: bool = False,
        scoring_head: str | type[MKGformerInteraction] | None = None,
        head_parallel: Literal["vocab"] | None = None,
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
        :param entity_modeling_objective: ``"full"`` (every entity against all N) or ``"sampled"`` (against the
            batch plus ``entity_modeling_negatives`` uniform entities, log-Q corrected, SparseAdam: an epoch
            linear in N; see :mod:`~pykeen_mkgformer.kgc.sampled`)
        :param entity_modeling_negatives: uniform candidates per step of the sampled stage 1
        :param gradient_checkpointing: recompute activations in the backward pass (saves memory)
        :param scoring_head: the interaction that scores a query against the candidates: a subclass of
            :class:`~pykeen_mkgformer.kgc.interaction.MKGformerInteraction` or its name in PyKEEN's
            ``interaction_resolver``; default: the 1-N MLM head
        :param head_parallel: ``"vocab"``: on several processes, each holds only its share of the entity rows
            (token embeddings and biases) and of their optimizer state, set up by :meth:`shard_entity_rows`
            (which :class:`~pykeen_mkgformer.kgc.lightning.VocabParallelLCWALitModule` calls); see
            :mod:`~pykeen_mkgformer.kgc.vocab_parallel`. None: every process holds all rows
        :param progress: progress bars for image preprocessing and stage 1
        :param loss: the loss (default: BCE with logits, as the paper)
        :param loss_kwargs: its keyword arguments
        :param kwargs: passed to :class:`pykeen.models.Model` (e.g. ``random_seed``, ``predict_with_sigmoid``)
        :raises TypeError: if the triples factory has no entity texts and images
        :raises ValueError: for an unknown ``description`` mode or inconsistent sizes
        """
        from pykeen.utils import NoRandomSeedNecessary, set_random_seed

        from . import training as _training  # noqa: F401  (registers the recipe's training callbacks)
        from .builder import build_images, build_interaction, encoder_spec, vision_config
        from .inputs import QueryAssembler, build_tokenizer, directed_relation_texts, entity_texts
        from .presets import resolve_encoder
        from .recipe import resolve_recipe

        if head_parallel not in (None, "vocab"):
            raise ValueError(f"head_parallel must be None or 'vocab', got {head_parallel!r}.")
        text_encoder = resolve_encoder(text_encoder, "text")
        vision_encoder = resolve_encoder(vision_encoder, "vision")
        _check_multimodal(triples_factory)
        if description not in ("name", "description"):
            raise ValueError(f"description must be 'name' or 'description', got {description!r}.")
        recipe = resolve_recipe(recipe)
        # the parts are built before PyKEEN's Model.__init__ (ERModel takes them built): seed first, as it would
        random_seed = kwargs.pop("random_seed", None)
        if isinstance(random_seed, int):
            set_random_seed(random_seed)
        spec = encoder_spec(
            text_encoder=text_encoder,
            text_encoder_kwargs=text_encoder_kwargs,
            vision_encoder=vision_encoder,
            vision_encoder_kwargs=vision_encoder_kwargs,
            fusion_layers=fusion_layers,
            use_pgi=use_pgi,
            use_caf=use_caf,
            fusion_variant=fusion_variant,
            fusion_kwargs=fusion_kwargs,
            dropout=dropout,
        )
        from .recipe import choose_images, clean_text

        texts = [clean_text(text, recipe.text_cleaning) for text in entity_texts(triples_factory, description)]
        relation_texts = directed_relation_texts(triples_factory)
        tokenizer = build_tokenizer(text_encoder, tokenizer, [*texts, *relation_texts, "is"], vocab_size=tokenizer_vocab_size)
        queries = QueryAssembler(
            tokenizer,
            entity_texts=texts,
            relation_texts=relation_texts,
            max_seq_length=max_seq_length,
            query_format=recipe.query_format,
        )
        images = build_images(
            [choose_images(paths, recipe.image_choice) for paths in triples_factory.entity_images],
            vision=vision_config(spec),
            vision_source=vision_encoder,
            max_images=max_images,
            image_layout=image_layout,
            cache_dir=image_cache_dir,
            progress=progress,
        )
        if images is not None:
            images.missing_images = recipe.missing_images
        head = _resolve_scoring_head(scoring_head)
        interaction = build_interaction(spec, queries, recipe, use_images=images is not None, interaction_class=head)
        max_positions = getattr(interaction.encoder.text_config, "max_position_embeddings", None)
        if max_positions is not None and max_seq_length > max_positions:
            raise ValueError(
                f"max_seq_length={max_seq_length} exceeds the text encoder's {max_positions} position embeddings."
            )
        num_entities = triples_factory.num_entities
        entity_representations = [
            EntityTextTokens(queries=queries, max_id=num_entities),
            EntityTokenEmbedding(
                word_embeddings=interaction.encoder.get_input_embeddings(),
                offset=queries.entity_token_offset,
                max_id=num_entities,
            ),
            EntityBias(max_id=num_entities),
        ]
        if images is not None:
            entity_representations.append(EntityImageRepresentation(images=images, max_id=num_entities))
        super().__init__(
            triples_factory=triples_factory,
            interaction=interaction,
            entity_representations=entity_representations,
            # directed relations: 2r forward, 2r + 1 inverse (PyKEEN's ids with inverse triples)
            relation_representations=RelationTextTokens(queries=queries),
            skip_checks=True,
            loss=loss,
            loss_kwargs=loss_kwargs,
            random_seed=NoRandomSeedNecessary,
            **kwargs,
        )
        self._random_seed = random_seed if isinstance(random_seed, int) else None
        self.recipe = recipe
        self.spec = spec
        #: the interaction class (scoring head), rebuilt with it on reset
        self.scoring_head = head
        #: ``"vocab"``: the entity rows are to be sharded over the processes (:meth:`shard_entity_rows`)
        self.head_parallel = head_parallel
        if not self.use_inverse_triples:
            logger.warning(
                "MKGformer without inverse triples: head prediction is trained only by training loops that call "
                "score_h (sLCWA, SymmetricLCWA); with LCWA use create_inverse_triples=True."
            )
        #: the query texts as token ids (shared with the token representations)
        self.queries = queries
        #: the tokenizer of the text tower (kept and saved with the model: :meth:`add_entities`, explain)
        self.tokenizer = tokenizer
        #: which entity text the queries read (``"description"`` or ``"name"``)
        self.description_mode = description
        #: the entity and relation labels, texts and images by id, without triples: pass it as
        #: ``triples_factory=`` of :func:`pykeen.predict.predict_target`; :meth:`add_entities` extends it
        self.label_factory = triples_factory.clone_and_exchange_triples(
            mapped_triples=torch.empty((0, 3), dtype=torch.long)
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
            objective=entity_modeling_objective,
            num_negatives=entity_modeling_negatives,
            validate_every=self.recipe.entity_modeling_validate_every,
            patience=self.recipe.entity_modeling_patience,
            checkpoint_metric=self.recipe.entity_modeling_checkpoint_metric,
        )
        self.register_buffer("entity_modeling_done", torch.zeros((), dtype=torch.bool))
        self._entity_modeling_pending = True
        # a loaded state dict (PyKEEN checkpoints, Lightning) says whether stage 1 already ran
        self.register_load_state_dict_post_hook(_refresh_entity_modeling_pending)
        # state dicts of the Model-based version (before 0.2) name the bias entity_representation.bias
        self.register_load_state_dict_pre_hook(_rename_old_keys)
        self.frozen_parameters = self._freeze_unused_parameters()
        self._initial_fingerprint = self._parameter_fingerprint()

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "entity_representations" not in self._modules:  # pickled by 0.1, when MKGformer was a plain Model
            _upgrade_model_form(self)

    # ------------------------------------------------------------------ parts
    @property
    def images(self) -> EntityImages | None:
        """The entities' pixel cache (None for a text-only model)."""
        if len(self.entity_representations) > IMAGES:
            return self.entity_representations[IMAGES].images
        return None

    @images.setter
    def images(self, images: EntityImages) -> None:
        """Replace the pixel cache (e.g. with the checkpoint's own image processor) of a model that has images."""
        if len(self.entity_representations) <= IMAGES:
            raise ValueError("This MKGformer is text-only: it has no image representation whose pixel cache could be replaced.")
        self.entity_representations[IMAGES].images = images

    @property
    def entity_representation(self) -> CandidateRepresentations:
        """The candidate side, ``(embeddings, bias)`` when called (kept for code written against version 0.1)."""
        return CandidateRepresentations(self.entity_representations[TOKEN_EMBEDDING], self.entity_representations[BIAS])

    def candidate_vectors(self, indices: LongTensor | None = None) -> tuple[FloatTensor, FloatTensor]:
        """Token embeddings ``(*, dim)`` and biases ``(*)`` of some candidate entities (all for None)."""
        return self.entity_representations[TOKEN_EMBEDDING](indices), self.entity_representations[BIAS](indices)

    def _entities_added(self, count: int) -> None:
        """Grow the entity representations after ``count`` entities were appended (:mod:`.new_entities`)."""
        tokens = self.entity_representations[TEXT_TOKENS]
        tokens.max_id += count
        tokens.shape = (1 + self.queries.entity_text_ids.shape[1],)
        self.entity_representations[TOKEN_EMBEDDING].max_id += count
        self.entity_representations[BIAS].extend(count)
        if self.images is not None:
            self.entity_representations[IMAGES].max_id += count

    # ------------------------------------------------------------------ construction
    def _build_interaction(self) -> MKGformerInteraction:
        """The encoder and MLM head as built at construction (pretrained or random weights, text-initialised tokens)."""
        from .builder import build_interaction

        return build_interaction(
            self.spec,
            self.queries,
            self.recipe,
            use_images=self.images is not None,
            interaction_class=getattr(self, "scoring_head", None),
        )

    def _freeze_unused_parameters(self) -> tuple[str, ...]:
        """Freeze the parameters that no score depends on; return their names.

        One probe query (entity 0, relation 0, with its images) is scored against one candidate in
        eval mode (no dropout, so no random numbers are drawn), and :func:`torch.autograd.grad` with
        ``allow_unused=True`` says which parameters are not in its graph. The graph's shape does not
        depend on the query, so this holds for every training step. The word embeddings and the
        entity biases are used by every score (they *are* the candidates) and are left out of the
        probe, so that it never materialises their (vocabulary x dim) gradient.
        """
        bias = self.entity_representations[BIAS].bias
        always = {id(bias), id(self.entity_representations[TOKEN_EMBEDDING].word_embeddings.weight)}
        named = [(name, p) for name, p in self.named_parameters() if p.requires_grad and id(p) not in always]
        if not named:
            return ()
        was_training = self.interaction.training
        self.interaction.train(False)
        try:
            with torch.enable_grad():
                index = torch.zeros(1, dtype=torch.long, device=bias.device)
                scores = self._score_queries(index, index, index)
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

    @torch.no_grad()
    def _parameter_fingerprint(self) -> tuple[tuple[int, float, float], ...]:
        r"""Which parameter objects the model has and a checksum of each, :math:`(\sum_i x_i, \sum_i x_i^2)` in float64.

        Equal fingerprints mean 'still as built': training changes some sum, replacing a parameter
        (:func:`~.new_entities.add_entities`) changes its identity. One pass over the weights, one sync.
        """
        parameters = list(self.parameters())
        if not parameters:
            return ()
        sums = torch.stack(
            [torch.stack([p.detach().double().sum(), p.detach().double().square().sum()]).cpu() for p in parameters]
        ).tolist()
        return tuple((id(p), a, b) for p, (a, b) in zip(parameters, sums))

    # docstr-coverage: inherited
    def _reset_parameters_(self) -> None:  # noqa: D102
        # PyKEEN resets at the start of every (non-continued) training, and ERModel once at the end of its
        # __init__. Weights that are still as built (pretrained + text-initialised tokens, stage 1 included)
        # are kept; otherwise rebuild them. None: the weights are a new starting point (add_entities), kept
        # until they change again.
        if not hasattr(self, "entity_modeling"):  # ERModel.__init__: the parts are as just built
            return
        current = self._parameter_fingerprint()
        initial = getattr(self, "_initial_fingerprint", None)
        if initial is None or current == initial:
            self._initial_fingerprint = current
            return
        fresh = self._build_interaction()
        self.interaction.load_state_dict(fresh.state_dict())
        self.entity_representations[BIAS].reset_parameters()
        self.entity_modeling_done.fill_(False)
        self._entity_modeling_pending = True
        self._initial_fingerprint = self._parameter_fingerprint()

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
        self._initial_fingerprint = self._parameter_fingerprint()
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

    # ------------------------------------------------------------------ vocabulary-parallel entity head
    def shard_entity_rows(self, **kwargs: Any) -> Any:
        """Keep only this process's entity rows: :func:`~.vocab_parallel.shard_entity_rows` (all ranks call it)."""
        if self.head_parallel != "vocab":
            raise ValueError("shard_entity_rows needs a model built with head_parallel='vocab'.")
        from .vocab_parallel import shard_entity_rows

        return shard_entity_rows(self, **kwargs)

    def unshard_entity_rows(self) -> None:
        """Gather the entity rows of all processes back into this model: :func:`~.vocab_parallel.unshard_entity_rows`."""
        from .vocab_parallel import unshard_entity_rows

        unshard_entity_rows(self)

    @property
    def entity_rows_sharded(self) -> bool:
        """Whether this process holds only its shard of the entity rows."""
        return self.__dict__.get("_vocab_parallel") is not None

    def _check_unsharded(self) -> None:
        if self.entity_rows_sharded:
            raise RuntimeError(
                "This MKGformer holds only its shard of the entity rows: score with "
                "pykeen_mkgformer.kgc.vocab_parallel.vocab_parallel_loss / vocab_parallel_ranks, or call "
                "unshard_entity_rows() on every rank first."
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
        h, r, _ = self._get_representations(h=known_entities, r=directed_relations, t=None, tail=False)
        return self.interaction.encode_hr(h, r)

    def _score_queries(self, known: LongTensor, directed: LongTensor, candidates: LongTensor | None) -> FloatTensor:
        """Scores ``(batch, num_candidates)``: one encoder pass per query, one matmul over the candidates."""
        self._check_unsharded()
        h, r, t = self._get_representations(h=known.unsqueeze(1), r=directed.unsqueeze(1), t=candidates)
        if candidates is None or candidates.dim() == 1:
            t = parallel_unsqueeze(t, dim=0)
        return self.interaction(h=h, r=r, t=t)

    # docstr-coverage: inherited
    def _get_representations(  # noqa: D102
        self,
        h: LongTensor | None,
        r: LongTensor | None,
        t: LongTensor | None,
        *,
        mode: InductiveMode | None = None,
        tail: bool = True,
    ) -> tuple[Any, Any, Any]:
        self._check_mode(mode)
        representations = self.entity_representations
        hr = [representations[i](indices=h) for i in self.interaction.head_indices]
        tr = [representations[i](indices=t) for i in self.interaction.tail_indices] if tail else [None]
        rr = self.relation_representations[0](indices=r)
        return (hr[0] if len(hr) == 1 else hr), rr, (tr[0] if len(tr) == 1 else tr)

    def _check_mode(self, mode: InductiveMode | None) -> None:
        if mode is not None:
            raise NotImplementedError("MKGformer is transductive; inductive modes are not supported.")

    # docstr-coverage: inherited
    def forward(  # noqa: D102
        self,
        h_indices: LongTensor,
        r_indices: LongTensor,
        t_indices: LongTensor,
        slice_size: int | None = None,
        slice_dim: int = 0,
        *,
        mode: InductiveMode | None = None,
    ) -> FloatTensor:
        # PyKEEN's broadcast scoring, f(h, r, t) for (h, r, ?) queries: PyKEEN's relation ids -> directed ids
        self._maybe_run_entity_modeling()
        self._check_unsharded()
        directed = self._directed_relations(r_indices, head_side=False)
        return super().forward(h_indices, directed, t_indices, slice_size=slice_size, slice_dim=slice_dim, mode=mode)

    # docstr-coverage: inherited
    def score_hrt(self, hrt_batch: LongTensor, *, mode: InductiveMode | None = None) -> FloatTensor:  # noqa: D102
        self._check_mode(mode)
        self._maybe_run_entity_modeling()
        self._check_unsharded()
        directed = self._directed_relations(hrt_batch[:, 1], head_side=False)
        h, r, t = self._get_representations(h=hrt_batch[:, 0], r=directed, t=hrt_batch[:, 2])
        return self.interaction.score_hrt(h=h, r=r, t=t)

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
        return self._score_queries(hr_batch[:, 0], directed, tails)

    # docstr-coverage: inherited
    def score_h(
        self,
        rt_batch: LongTensor,
        *,
        slice_size: int | None = None,
        mode: InductiveMode | None = None,
        heads: LongTensor | None = None,
    ) -> FloatTensor:  # noqa: D102
        # (?, r, t) is the mirrored query (t, r^-1, ?): the inputs only ever hold the known entity
        self._check_mode(mode)
        self._maybe_run_entity_modeling()
        directed = self._directed_relations(rt_batch[:, 0], head_side=True)
        return self._score_queries(rt_batch[:, 1], directed, heads)

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
        return torch.zeros((), device=self.entity_representations[BIAS].bias.device)


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


def _resolve_scoring_head(head: str | type | None) -> type[MKGformerInteraction]:
    """The interaction class for ``scoring_head`` (a class or a name in PyKEEN's ``interaction_resolver``)."""
    from .interaction import MKGformerInteraction

    if head is None:
        return MKGformerInteraction
    if isinstance(head, str):
        from pykeen.nn.modules import interaction_resolver

        head = interaction_resolver.lookup(head)
    if not (isinstance(head, type) and issubclass(head, MKGformerInteraction)):
        raise TypeError(f"scoring_head must be MKGformerInteraction or a subclass of it, got {head!r}.")
    return head


def _upgrade_model_form(model: MKGformer) -> None:
    """Give an MKGformer unpickled from 0.1 (``entity_representation``, ``images``) the ERModel layout, same weights."""
    old = model._modules.pop("entity_representation")
    images = model.__dict__.pop("images", None)
    queries = model.queries
    count = old.num_entities
    interaction = model.interaction
    interaction.layout = queries.layout
    interaction.use_images = images is not None
    if images is None:
        interaction.entity_shape, interaction._head_indices = ("w", "d", ""), (0,)
    bias = EntityBias(max_id=count)
    bias.bias = old.bias
    representations = [
        EntityTextTokens(queries=queries, max_id=count),
        EntityTokenEmbedding(word_embeddings=old.word_embeddings, offset=old.offset, max_id=count),
        bias,
    ]
    if images is not None:
        representations.append(EntityImageRepresentation(images=images, max_id=count))
    model.entity_representations = nn.ModuleList(representations)
    model.relation_representations = nn.ModuleList([RelationTextTokens(queries=queries)])
    model.weight_regularizers = nn.ModuleList()
    model.register_load_state_dict_pre_hook(_rename_old_keys)
    # the weights as loaded are the starting point of the next training (its reset keeps them)
    model.__dict__.pop("_initial_versions", None)
    model._initial_fingerprint = None


def _rename_old_keys(module: MKGformer, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Load state dicts of the ``Model``-based MKGformer (0.1): its entity bias was ``entity_representation.bias``."""
    old = f"{prefix}entity_representation.bias"
    if old in state_dict:
        state_dict[f"{prefix}entity_representations.{BIAS}.bias"] = state_dict.pop(old)


class CandidateRepresentations:
    """``(token embeddings, biases)`` of candidate entities, as the 0.1 ``entity_representation`` returned them."""

    def __init__(self, embedding: EntityTokenEmbedding, bias: EntityBias):
        self.embedding, self.bias_representation = embedding, bias

    def __call__(self, indices: LongTensor | None = None) -> tuple[FloatTensor, FloatTensor]:
        return self.embedding(indices), self.bias_representation(indices)

    @property
    def bias(self) -> nn.Parameter:
        """The biases' parameter."""
        return self.bias_representation.bias

    @property
    def word_embeddings(self) -> nn.Embedding:
        """The text tower's word embeddings."""
        return self.embedding.word_embeddings

    @property
    def offset(self) -> int:
        """The token id of entity 0."""
        return self.embedding.offset

    @property
    def num_entities(self) -> int:
        """The number of candidate entities."""
        return self.embedding.max_id


def _entity_texts(triples_factory: Any, description: str) -> list[str]:
    """Deprecated alias of :func:`pykeen_mkgformer.kgc.inputs.entity_texts`."""
    from .inputs import entity_texts

    return entity_texts(triples_factory, description)


def _directed_relation_texts(triples_factory: Any) -> list[str]:
    """Deprecated alias of :func:`pykeen_mkgformer.kgc.inputs.directed_relation_texts`."""
    from .inputs import directed_relation_texts

    return directed_relation_texts(triples_factory)


# the official recipe's loss, registered with PyKEEN's loss resolver for experiment files (the training
# callbacks register when a model is built: importing pykeen.training here would be circular)
from . import losses as _losses  # noqa: E402,F401
