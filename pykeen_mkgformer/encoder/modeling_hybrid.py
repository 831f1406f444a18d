"""The hybrid encoder as a Hugging Face model: ``AutoConfig`` / ``AutoModel`` / ``save_pretrained`` / ``from_pretrained``.

- :class:`HybridEncoderConfig` (``model_type = "mkgformer_hybrid"``): the two towers' configs as
  sub-configs (``text_config``, ``vision_config``) and the fusion switches of
  :class:`~pykeen_mkgformer.encoder.HybridConfig`, resolved (the variant's defaults filled in).
- :class:`HybridEncoderModel`: a :class:`transformers.PreTrainedModel` around one
  :class:`~pykeen_mkgformer.encoder.HybridTransformer` (attribute ``hybrid``), whose forward it is.

Both are registered with ``AutoConfig.register`` / ``AutoModel.register`` when this module is
imported (:mod:`pykeen_mkgformer.encoder` imports it), so::

    HybridTransformer.from_pretrained("bert-base-uncased", "openai/clip-vit-base-patch32").save_pretrained("enc")
    AutoModel.from_pretrained("enc")        # a HybridEncoderModel; .hybrid is the HybridTransformer

Weights are safetensors; the config is JSON; nothing is executed on load.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.configuration_utils import SubConfigSpec

from .config import FUSION_VARIANTS, HybridConfig
from .hybrid import HybridTransformer

__all__ = ["HybridEncoderConfig", "HybridEncoderModel", "MODEL_TYPE"]

#: the ``model_type`` of the saved config.json
MODEL_TYPE = "mkgformer_hybrid"

#: the fields of :class:`HybridConfig` besides the two backbones
SWITCHES = ("fusion_layers", "use_pgi", "use_caf", "fusion_dropout", "fusion_variant", *FUSION_VARIANTS["paper"], "group_positions")


class HybridEncoderConfig(PreTrainedConfig):
    """A :class:`~pykeen_mkgformer.encoder.HybridConfig` as a Hugging Face config (sub-configs for the towers)."""

    model_type: ClassVar[str] = MODEL_TYPE
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert"),
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="clip_vision_model"),
    }

    text_config: PreTrainedConfig | dict | None = None
    vision_config: PreTrainedConfig | dict | None = None
    fusion_layers: int | None = None
    use_pgi: bool = True
    use_caf: bool = True
    fusion_dropout: float | None = None
    fusion_variant: str = "paper"
    prefix_source: str | None = None
    caf_query: str | None = None
    caf_bias: bool | None = None
    vision_embedding: str | None = None
    group_positions: list[int] | None = None
    mask_text_padding: bool | None = None

    @classmethod
    def from_hybrid_config(cls, config: HybridConfig, **kwargs: Any) -> "HybridEncoderConfig":
        """The Hugging Face form of ``config`` (backbones resolved to their configs, switches resolved)."""
        switches = {name: getattr(config, name) for name in SWITCHES}
        if switches["group_positions"] is not None:
            switches["group_positions"] = list(switches["group_positions"])
        return cls(
            text_config=config.text_config().to_dict(), vision_config=config.vision_config().to_dict(), **switches, **kwargs
        )

    def to_hybrid_config(self) -> HybridConfig:
        """The :class:`HybridConfig` this config describes."""
        switches = {name: getattr(self, name) for name in SWITCHES}
        if switches["group_positions"] is not None:
            switches["group_positions"] = tuple(switches["group_positions"])
        return HybridConfig(text=self.text_config, vision=self.vision_config, **switches)


class HybridEncoderModel(PreTrainedModel):
    """The hybrid encoder as a :class:`transformers.PreTrainedModel`; ``forward`` is :meth:`HybridTransformer.forward`."""

    config_class = HybridEncoderConfig
    base_model_prefix = "hybrid"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: HybridEncoderConfig, *, hybrid: HybridTransformer | None = None) -> None:
        """:param config: the configuration
        :param hybrid: an existing encoder to wrap (its weights are kept); else one is built from ``config``
        """
        super().__init__(config)
        if hybrid is None:
            self.hybrid = HybridTransformer(config.to_hybrid_config())
            self.post_init()
            return
        self.hybrid = hybrid
        with torch.device("meta"):  # transformers initialises no weights on the meta device: the encoder's are kept
            self.post_init()

    @classmethod
    def from_hybrid(cls, hybrid: HybridTransformer) -> "HybridEncoderModel":
        """Wrap an existing :class:`HybridTransformer` (shares its parameters)."""
        return cls(HybridEncoderConfig.from_hybrid_config(hybrid.config), hybrid=hybrid)

    def _init_weights(self, module: Any) -> None:
        """The towers initialise their own modules; the fused layers are initialised when they are built."""

    def get_input_embeddings(self):
        """The text tower's word embeddings."""
        return self.hybrid.get_input_embeddings()

    def set_input_embeddings(self, value) -> None:
        """Replace the text tower's word embeddings."""
        self.hybrid.text_model.set_input_embeddings(value)

    def forward(self, *args: Any, **kwargs: Any):  # noqa: D102
        return self.hybrid(*args, **kwargs)


def _register() -> None:
    """``AutoConfig`` / ``AutoModel`` know the hybrid encoder (public ``register``; idempotent)."""
    AutoConfig.register(MODEL_TYPE, HybridEncoderConfig, exist_ok=True)
    AutoModel.register(HybridEncoderConfig, HybridEncoderModel, exist_ok=True)


_register()
