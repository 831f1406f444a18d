"""The hybrid transformer: a text tower and a vision tower, fused in their last M layers.

The towers are Hugging Face models exactly as ``from_pretrained`` loads them (``BertModel``,
``CLIPVisionModel``, ``ViTModel``); layers ``1 .. L-M`` run as transformers' own modules, and the
last M layers of each tower are replaced by their fused versions (:mod:`.fusion`), which keep every
pretrained weight under its original name.

Images: ``pixel_values`` is ``(batch, n_images, 3, H, W)`` with a boolean ``image_mask``
``(batch, n_images)``, or a list of such pairs, one per resolution (e.g. 1 image at 224 px, 3 at
128 px, 3 at 64 px). Every image is embedded on its own (class token and position embeddings kept,
interpolated for sizes other than the checkpoint's), then all images of an item are concatenated
on the token axis, so the vision layers attend across the images of one item. Missing images are
masked out, never zero-filled into the attention; an item with no image behaves as text-only.
With ``vision_embedding="patches"`` (the official link prediction) an image gives its patch
embeddings only; with ``"class_and_groups"`` (the official RE / NER) one bare class token comes first
and every pixel group's patches get learned positions of their own (``group_position_embeddings``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence, Union

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import AutoModel, CLIPVisionModel, PretrainedConfig, PreTrainedModel, ViTModel
from transformers.utils import ModelOutput

from .config import HybridConfig, resolve_backbone_config
from .fusion import CAFTextLayer, PGIVisionLayer, pgi_layer_from

__all__ = ["HybridTransformer", "HybridOutput", "PixelInput", "MaskInput"]

CONFIG_NAME = "hybrid_config.json"
WEIGHTS_NAME = "model.safetensors"

#: one tensor ``(batch, n_images, 3, H, W)`` or one per resolution
PixelInput = Union[torch.Tensor, Sequence[torch.Tensor]]
#: one boolean tensor ``(batch, n_images)`` or one per resolution
MaskInput = Union[torch.Tensor, Sequence[torch.Tensor]]


@dataclass
class HybridOutput(ModelOutput):
    """The outputs of :class:`HybridTransformer`."""

    #: text states of the last layer, ``(batch, n_tokens, text_width)``
    text_last_hidden_state: torch.Tensor | None = None
    #: the text tower's pooled output (BERT pooler on ``[CLS]``), if the tower has a pooler
    pooler_output: torch.Tensor | None = None
    #: visual states of the last layer, ``(batch, n_visual_tokens, vision_width)``; None without images
    vision_last_hidden_state: torch.Tensor | None = None
    #: the vision tower's pooled output (its class token of the first image)
    vision_pooler_output: torch.Tensor | None = None
    #: boolean ``(batch, n_visual_tokens)``: which visual tokens belong to a real image
    vision_mask: torch.Tensor | None = None
    #: per text layer, ``(batch, heads, n_tokens, n_tokens)``, when asked for
    text_attentions: tuple[torch.Tensor, ...] | None = None
    #: per vision layer, ``(batch, heads, n_visual, n_keys)``; in fused layers the keys are
    #: ``[text prefix ; visual]``
    vision_attentions: tuple[torch.Tensor, ...] | None = None
    #: per fused layer with CAF and images, the token-to-patch weights :math:`S` ``(batch, n_tokens, n_visual)``
    #: (rows sum to 1 over an item's real visual tokens; all zero for an item without images)
    caf_attentions: tuple[torch.Tensor, ...] | None = None


class HybridTransformer(nn.Module):
    """Text transformer (T-Encoder) and vision transformer (V-Encoder) with M fused layers.

    >>> from pykeen_mkgformer.encoder import HybridConfig, HybridTransformer
    >>> encoder = HybridTransformer(HybridConfig(text=text_config, vision=vision_config, fusion_layers=2))  # doctest: +SKIP
    >>> encoder = HybridTransformer.from_pretrained("bert-base-uncased", "openai/clip-vit-base-patch32")  # doctest: +SKIP
    """

    def __init__(
        self,
        config: HybridConfig,
        *,
        text_model: PreTrainedModel | None = None,
        vision_model: PreTrainedModel | None = None,
    ):
        """Build from configs (random weights), or around already loaded towers.

        :param config: the hybrid configuration
        :param text_model: a loaded text tower (e.g. ``BertModel.from_pretrained``); else built from the config
        :param vision_model: a loaded ``CLIPVisionModel`` / ``ViTModel``; else built from the config
        :raises ValueError: if M exceeds a tower's depth, or a tower is of an unsupported type
        """
        super().__init__()
        text_config = (
            resolve_backbone_config(text_model.config, role="text") if text_model is not None else config.text_config()
        )
        vision_config = (
            resolve_backbone_config(vision_model.config, role="vision")
            if vision_model is not None
            else config.vision_config()
        )
        depth = min(text_config.num_hidden_layers, vision_config.num_hidden_layers)
        if config.fusion_layers > depth:
            raise ValueError(
                f"fusion_layers={config.fusion_layers} is larger than a tower's depth: the text tower has "
                f"{text_config.num_hidden_layers} layers and the vision tower {vision_config.num_hidden_layers}; "
                f"expected 0 <= fusion_layers <= {depth}."
            )
        # the config keeps the resolved backbone configs, so the model can be rebuilt without the hub
        self.config = dataclasses.replace(config, text=text_config, vision=vision_config)
        self.text_model = text_model if text_model is not None else AutoModel.from_config(text_config)
        self.vision_model = vision_model if vision_model is not None else _vision_model_from_config(vision_config)
        for model in (self.text_model, self.vision_model):
            model.set_attn_implementation("sdpa")
        self.gradient_checkpointing = False
        #: ``vision_embedding="class_and_groups"``: one learned position per visual token of each pixel
        #: group (new parameters, initialised as ``nn.Embedding`` is, as in the official code)
        self.group_position_embeddings = (
            nn.ModuleList(nn.Embedding(n, vision_config.hidden_size) for n in self.config.group_positions)
            if self.config.vision_embedding == "class_and_groups"
            else None
        )
        if self.group_position_embeddings is not None:
            reference = next(self.vision_model.parameters())
            self.group_position_embeddings.to(device=reference.device, dtype=reference.dtype)
        self._fuse_last_layers()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        text: str | Path,
        vision: str | Path | None = None,
        *,
        fusion_layers: int | None = None,
        use_pgi: bool = True,
        use_caf: bool = True,
        fusion_dropout: float | None = None,
        fusion_variant: str = "paper",
        dtype: torch.dtype = torch.float32,
        **switches,
    ) -> "HybridTransformer":
        """Load pretrained towers (Hugging Face names or local folders) and fuse their last layers.

        With ``vision=None``, ``text`` is a folder written by :meth:`save_pretrained`.

        :param text: BERT-family checkpoint, e.g. ``bert-base-uncased``
        :param vision: CLIP or ViT checkpoint, e.g. ``openai/clip-vit-base-patch32``, ``google/vit-base-patch16-224``
        :param fusion_layers: M; None: the variant's (paper 3, official 4)
        :param fusion_variant: ``"paper"`` or ``"official"``, see :class:`~.config.HybridConfig`
        :param switches: individual fusion switches of :class:`~.config.HybridConfig` (e.g. ``caf_query``)
        """
        if vision is None:
            return cls.load(text)
        config = HybridConfig(
            text=str(text),
            vision=str(vision),
            fusion_layers=fusion_layers,
            use_pgi=use_pgi,
            use_caf=use_caf,
            fusion_dropout=fusion_dropout,
            fusion_variant=fusion_variant,
            **switches,
        )
        vision_config = config.vision_config()  # validates the type before any weights are read
        text_config = config.text_config()
        if config.fusion_layers > min(text_config.num_hidden_layers, vision_config.num_hidden_layers):
            return cls(HybridConfig(text_config, vision_config, config.fusion_layers))  # raises the clear error
        text_model = AutoModel.from_pretrained(str(text), dtype=dtype)
        vision_class = CLIPVisionModel if vision_config.model_type == "clip_vision_model" else ViTModel
        vision_model = vision_class.from_pretrained(str(vision), dtype=dtype)
        return cls(config, text_model=text_model, vision_model=vision_model)

    def save_pretrained(self, folder: str | Path, **kwargs: Any) -> Path:
        """Write the encoder as a Hugging Face model: ``config.json`` and safetensors weights.

        ``AutoModel.from_pretrained(folder)`` (after importing :mod:`pykeen_mkgformer.encoder`) gives it back
        as a :class:`~pykeen_mkgformer.encoder.HybridEncoderModel`, :meth:`load` as this class.

        :param kwargs: passed to :meth:`transformers.PreTrainedModel.save_pretrained`
        """
        from .modeling_hybrid import HybridEncoderModel

        folder = Path(folder)
        HybridEncoderModel.from_hybrid(self).save_pretrained(folder, **kwargs)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "HybridTransformer":
        """Inverse of :meth:`save_pretrained`; also reads the folders older versions wrote (``hybrid_config.json``)."""
        folder = Path(folder)
        if (folder / "config.json").is_file():
            from .modeling_hybrid import HybridEncoderModel

            return HybridEncoderModel.from_pretrained(folder).hybrid.train()
        if not (folder / CONFIG_NAME).is_file():
            raise FileNotFoundError(
                f"{folder} holds no config.json; give a folder written by HybridTransformer.save_pretrained, "
                "or both a text and a vision checkpoint."
            )
        warnings.warn(
            f"{folder} was written by an older pykeen-mkgformer ({CONFIG_NAME}); it still loads, but save it again "
            "with save_pretrained to get the Hugging Face format (config.json, AutoModel.from_pretrained).",
            DeprecationWarning,
            stacklevel=2,
        )
        from safetensors.torch import load_file

        config = HybridConfig.from_dict(json.loads((folder / CONFIG_NAME).read_text()))
        model = cls(config)
        model.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
        return model

    def _fuse_last_layers(self) -> None:
        m = self.config.fusion_layers
        text_config, vision_config = self.text_config, self.vision_config
        text_layers, vision_layers = self.text_layers, self.vision_layers
        for offset in range(m):
            t = len(text_layers) - m + offset
            v = len(vision_layers) - m + offset
            text_layers[t] = CAFTextLayer.from_layer(
                text_layers[t],
                text_config,
                vision_hidden_size=vision_config.hidden_size,
                use_caf=self.config.use_caf,
                fusion_dropout=self.config.fusion_dropout,
                caf_bias=self.config.caf_bias,
                caf_query=self.config.caf_query,
            )
            vision_layers[v] = pgi_layer_from(
                vision_layers[v], vision_config, text_hidden_size=text_config.hidden_size, use_pgi=self.config.use_pgi
            )

    # ------------------------------------------------------------------ accessors
    @property
    def text_config(self) -> PretrainedConfig:
        """The text tower's Hugging Face config."""
        return self.text_model.config

    @property
    def vision_config(self) -> PretrainedConfig:
        """The vision tower's Hugging Face config."""
        return self.vision_model.config

    @property
    def text_layers(self) -> nn.ModuleList:
        """All layers of the text tower; the last M are :class:`CAFTextLayer`."""
        return self.text_model.encoder.layer

    @property
    def vision_layers(self) -> nn.ModuleList:
        """All layers of the vision tower; the last M are PGI layers."""
        if isinstance(self.vision_model, CLIPVisionModel):
            return self.vision_model.encoder.layers
        return self.vision_model.layers

    def get_input_embeddings(self) -> nn.Embedding:
        """The text tower's word embeddings."""
        return self.text_model.get_input_embeddings()

    def resize_token_embeddings(self, new_num_tokens: int) -> nn.Embedding:
        """Grow (or shrink) the text vocabulary, e.g. for new entity and relation tokens."""
        return self.text_model.resize_token_embeddings(new_num_tokens)

    def gradient_checkpointing_enable(self) -> None:
        """Recompute activations in the backward pass (towers' own layers and the fused layers)."""
        kwargs = {"use_reentrant": False}
        for model in (self.text_model, self.vision_model):
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x names it so
                model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        self.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        """Undo :meth:`gradient_checkpointing_enable`."""
        for model in (self.text_model, self.vision_model):
            if hasattr(model, "activation_checkpointing_disable"):
                model.activation_checkpointing_disable()
            else:
                model.gradient_checkpointing_disable()
        self.gradient_checkpointing = False

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        pixel_values: PixelInput | None = None,
        image_mask: MaskInput | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> HybridOutput:
        """Encode text and images together.

        :param input_ids: token ids ``(batch, n_tokens)``
        :param attention_mask: 1 for real tokens, 0 for padding, ``(batch, n_tokens)``
        :param token_type_ids: segment ids, optional
        :param pixel_values: ``(batch, n_images, 3, H, W)`` or a list of those (one per resolution)
        :param image_mask: boolean ``(batch, n_images)`` (or a list), True for real images
        :param inputs_embeds: instead of ``input_ids``, ``(batch, n_tokens, text_width)``
        :param output_attentions: also return every layer's attention probabilities
        :raises ValueError: on wrong shapes, images without a mask, or token ids outside the vocabulary
        """
        text_mask = self._check_text(input_ids, attention_mask, inputs_embeds)
        batch_size = (input_ids if input_ids is not None else inputs_embeds).shape[0]
        text = self.text_model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, inputs_embeds=inputs_embeds)
        vision, vision_mask = self._embed_images(pixel_values, image_mask, batch_size)
        # an item with no image at all still runs its (padding) tokens through the vision tower,
        # attending among themselves; it is masked wherever it meets text (PGI prefix, CAF)
        vision_key_mask = None
        if vision_mask is not None and not bool(vision_mask.all()):
            vision_key_mask = vision_mask | ~vision_mask.any(dim=1, keepdim=True)

        m = self.config.fusion_layers
        text_layers, vision_layers = self.text_layers, self.vision_layers
        caf_attentions: list[torch.Tensor] = []
        # PGI prefix: "same_layer" takes text layer l's keys/values inside the fused step;
        # "previous_layer" those text layer l-1 computed, so the first fused vision layer gets the
        # last unfused text layer's (none when every layer is fused)
        previous_layer = self.config.prefix_source == "previous_layer"
        prefix_mask = text_mask if self.config.mask_text_padding else None
        prefix_key = prefix_value = None
        n_unfused = len(text_layers) - m
        with self._recording_attentions(output_attentions) as (text_attentions, vision_attentions):
            hf_text_mask = _hf_layer_mask(text_mask, text, eager=output_attentions)
            for index, layer in enumerate(text_layers[:n_unfused]):
                if previous_layer and m and index == n_unfused - 1:
                    prefix_key, prefix_value = layer.attention.self.key(text), layer.attention.self.value(text)
                text = _first(layer(text, hf_text_mask))
            if vision is not None:
                hf_vision_mask = _hf_layer_mask(vision_key_mask, vision, eager=output_attentions)
                for layer in vision_layers[: len(vision_layers) - m]:
                    vision = _first(layer(vision, hf_vision_mask))
            for text_layer, vision_layer in zip(text_layers[len(text_layers) - m :], vision_layers[len(vision_layers) - m :]):
                step_inputs = (
                    text, vision, text_mask, vision_key_mask, vision_mask, prefix_key, prefix_value, prefix_mask
                )
                if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                    step = checkpoint(
                        self._fused_step,
                        text_layer,
                        vision_layer,
                        *step_inputs,
                        output_attentions,
                        previous_layer,
                        use_reentrant=False,
                    )
                else:
                    step = self._fused_step(text_layer, vision_layer, *step_inputs, output_attentions, previous_layer)
                text, vision, text_weights, vision_weights, caf_weights, prefix_key, prefix_value = step
                if output_attentions:
                    text_attentions.append(text_weights)
                    if vision_weights is not None:
                        vision_attentions.append(vision_weights)
                    if caf_weights is not None:
                        caf_attentions.append(caf_weights)

        pooler = getattr(self.text_model, "pooler", None)
        vision_last, vision_pooled = self._finish_vision(vision)
        return HybridOutput(
            text_last_hidden_state=text,
            pooler_output=pooler(text) if pooler is not None else None,
            vision_last_hidden_state=vision_last,
            vision_pooler_output=vision_pooled,
            vision_mask=vision_mask,
            text_attentions=tuple(text_attentions) if output_attentions else None,
            vision_attentions=tuple(vision_attentions) if output_attentions and vision is not None else None,
            caf_attentions=tuple(caf_attentions) if output_attentions and caf_attentions else None,
        )

    @staticmethod
    def _fused_step(
        text_layer: CAFTextLayer,
        vision_layer: PGIVisionLayer,
        text: torch.Tensor,
        vision: torch.Tensor | None,
        text_mask: torch.Tensor | None,
        vision_key_mask: torch.Tensor | None,
        vision_mask: torch.Tensor | None,
        prefix_key: torch.Tensor | None,
        prefix_value: torch.Tensor | None,
        prefix_mask: torch.Tensor | None,
        need_weights: bool,
        previous_layer: bool,
    ):
        """One fused layer pair: text attention -> vision layer with the text prefix (PGI) -> text FFN with CAF.

        :param prefix_key: with ``previous_layer``, the keys the previous text layer computed (else unused)
        :param prefix_value: likewise its values
        :param prefix_mask: False at text padding to mask in the prefix; None masks nothing
        :param previous_layer: the prefix is the previous text layer's (official) rather than this one's (paper)
        :return: text and visual states, (when ``need_weights``) the text, PGI and CAF attention weights,
            then this text layer's keys and values (the next layer's prefix with ``previous_layer``)
        """
        attended = text_layer.attend(text, text_mask, need_weights)
        vision_weights = None
        if vision is not None:
            if not previous_layer:
                prefix_key, prefix_value = attended.key, attended.value
            vision, vision_weights = vision_layer.forward_with_prefix(
                vision, vision_key_mask, prefix_key, prefix_value, prefix_mask, need_weights
            )
        text, caf_weights = text_layer.feed_forward(
            attended.hidden_states, vision, vision_mask, need_weights, attended.context
        )
        return text, vision, attended.weights, vision_weights, caf_weights, attended.key, attended.value

    # ------------------------------------------------------------------ inputs
    def _check_text(
        self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, inputs_embeds: torch.Tensor | None
    ) -> torch.Tensor | None:
        """Validate the text inputs; return the boolean token mask (None when nothing is padded)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Give exactly one of input_ids and inputs_embeds.")
        if input_ids is not None:
            if input_ids.dim() != 2:
                raise ValueError(f"input_ids must be (batch, n_tokens), got shape {tuple(input_ids.shape)}.")
            vocab_size = self.get_input_embeddings().num_embeddings
            if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab_size):
                bad = input_ids[(input_ids < 0) | (input_ids >= vocab_size)].unique().tolist()
                raise ValueError(
                    f"Token ids {bad[:10]} are outside the vocabulary of {vocab_size} tokens (expected 0..{vocab_size - 1}); "
                    "call resize_token_embeddings after adding tokens to the tokenizer."
                )
            shape = tuple(input_ids.shape)
        else:
            if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.text_config.hidden_size:
                raise ValueError(
                    f"inputs_embeds must be (batch, n_tokens, {self.text_config.hidden_size}), "
                    f"got shape {tuple(inputs_embeds.shape)}."
                )
            shape = tuple(inputs_embeds.shape[:2])
        if attention_mask is None:
            return None
        if tuple(attention_mask.shape) != shape:
            raise ValueError(f"attention_mask must have the token shape {shape}, got {tuple(attention_mask.shape)}.")
        mask = attention_mask.bool()
        if bool(mask.all()):
            return None
        if not bool(mask.any(dim=1).all()):
            raise ValueError("Every item needs at least one unmasked token in attention_mask.")
        return mask

    def _embed_images(
        self, pixel_values: PixelInput | None, image_mask: MaskInput | None, batch_size: int
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Embed every image on its own and concatenate the images of an item on the token axis."""
        if pixel_values is None:
            if image_mask is not None:
                raise ValueError("image_mask was given without pixel_values.")
            return None, None
        if image_mask is None:
            raise ValueError(
                "pixel_values were given without image_mask; pass a boolean (batch, n_images) mask "
                "that marks which images are real."
            )
        groups = [pixel_values] if isinstance(pixel_values, torch.Tensor) else list(pixel_values)
        masks = [image_mask] if isinstance(image_mask, torch.Tensor) else list(image_mask)
        if len(groups) != len(masks):
            raise ValueError(f"Got {len(groups)} pixel_values groups but {len(masks)} image masks.")
        config = self.vision_config
        patch = config.patch_size
        image_size = config.image_size if isinstance(config.image_size, int) else config.image_size[0]
        tokens, token_masks = [], []
        for index, (pixels, mask) in enumerate(zip(groups, masks)):
            if pixels.dim() != 5 or pixels.shape[0] != batch_size or pixels.shape[2] != config.num_channels:
                raise ValueError(
                    f"pixel_values[{index}] must be (batch={batch_size}, n_images, {config.num_channels}, H, W), "
                    f"got shape {tuple(pixels.shape)}."
                )
            batch, n_images, channels, height, width = pixels.shape
            if height % patch or width % patch:
                raise ValueError(
                    f"pixel_values[{index}] has images of {height}x{width} px; expected sides that are multiples "
                    f"of the patch size {patch}."
                )
            if tuple(mask.shape) != (batch, n_images):
                raise ValueError(
                    f"image_mask[{index}] must be (batch, n_images) = {(batch, n_images)}, got {tuple(mask.shape)}."
                )
            if n_images == 0:
                continue
            flat = pixels.reshape(batch * n_images, channels, height, width)
            if self.config.vision_embedding == "tower":
                embedded = self._embed_pixels(flat, (height, width) != (image_size, image_size))
            else:
                embedded = self._embed_patches(flat)
            n_tokens = embedded.shape[1]
            embedded = embedded.reshape(batch, n_images * n_tokens, -1)
            if self.group_position_embeddings is not None:
                embedded = self._add_group_positions(embedded, index, len(groups))
            tokens.append(embedded)
            token_masks.append(mask.to(torch.bool).repeat_interleave(n_tokens, dim=1))
        if self.group_position_embeddings is not None:
            class_token = self._class_token(batch_size)
            tokens.insert(0, class_token)
            token_masks.insert(0, torch.ones(batch_size, 1, dtype=torch.bool, device=class_token.device))
        if not tokens:
            return None, None
        vision = torch.cat(tokens, dim=1)
        if self.config.vision_embedding != "tower" and isinstance(self.vision_model, CLIPVisionModel):
            vision = self.vision_model.pre_layrnorm(vision)
        return vision, torch.cat(token_masks, dim=1)

    def _embed_patches(self, pixels: torch.Tensor) -> torch.Tensor:
        """Patch embeddings only (no class token, no position embeddings), ``(n, n_patches, width)``."""
        model = self.vision_model
        if isinstance(model, CLIPVisionModel):
            projection = model.embeddings.patch_embedding
        else:
            projection = model.embeddings.patch_embeddings.projection
        return projection(pixels.to(projection.weight.dtype)).flatten(2).transpose(1, 2)

    def _add_group_positions(self, embedded: torch.Tensor, index: int, n_groups: int) -> torch.Tensor:
        """Add group ``index``'s learned positions to its ``(batch, n_tokens, width)`` patch embeddings."""
        sizes = self.config.group_positions
        if n_groups != len(sizes):
            raise ValueError(
                f"vision_embedding='class_and_groups' was configured for {len(sizes)} pixel groups "
                f"(group_positions={sizes}), got {n_groups}."
            )
        if embedded.shape[1] != sizes[index]:
            raise ValueError(
                f"pixel group {index} gives {embedded.shape[1]} visual tokens per item, but group_positions[{index}] "
                f"= {sizes[index]}; give as many images of that size as the configuration expects."
            )
        return embedded + self.group_position_embeddings[index].weight

    def _class_token(self, batch_size: int) -> torch.Tensor:
        """The vision tower's class embedding, without position, ``(batch, 1, width)``."""
        embeddings = self.vision_model.embeddings
        token = embeddings.class_embedding if isinstance(self.vision_model, CLIPVisionModel) else embeddings.cls_token[0, 0]
        return token.expand(batch_size, 1, -1)

    def _embed_pixels(self, pixels: torch.Tensor, interpolate: bool) -> torch.Tensor:
        """Patch + class + position embeddings (and CLIP's pre-norm) of a flat batch of images."""
        model = self.vision_model
        if isinstance(model, CLIPVisionModel):
            return model.pre_layrnorm(model.embeddings(pixels, interpolate_pos_encoding=interpolate))
        pixels = pixels.to(model.embeddings.patch_embeddings.projection.weight.dtype)
        return model.embeddings(pixels, interpolate_pos_encoding=interpolate)

    def _finish_vision(self, vision: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The vision tower's own final steps: CLIP post-norm on the class token, ViT's final norm and pooler."""
        if vision is None:
            return None, None
        model = self.vision_model
        if isinstance(model, CLIPVisionModel):
            return vision, model.post_layernorm(vision[:, 0])
        vision = model.layernorm(vision)
        return vision, model.pooler(vision) if model.pooler is not None else None

    @contextlib.contextmanager
    def _recording_attentions(self, enabled: bool) -> Iterator[tuple[list, list]]:
        """Collect the attention probabilities of the towers' own (unfused) layers, in layer order."""
        text_attentions: list[torch.Tensor] = []
        vision_attentions: list[torch.Tensor] = []
        if not enabled:
            yield text_attentions, vision_attentions
            return
        m = self.config.fusion_layers
        handles = []
        for layers, sink, name in (
            (self.text_layers, text_attentions, "attention.self"),
            (self.vision_layers, vision_attentions, "self_attn" if isinstance(self.vision_model, CLIPVisionModel) else "attention"),
        ):
            for layer in layers[: len(layers) - m]:
                module = layer.get_submodule(name)
                handles.append(module.register_forward_hook(lambda _m, _i, out, sink=sink: sink.append(out[1])))
        towers = (self.text_model, self.vision_model)
        implementations = [model.config._attn_implementation for model in towers]
        for model in towers:
            model.set_attn_implementation("eager")
        try:
            yield text_attentions, vision_attentions
        finally:
            for handle in handles:
                handle.remove()
            for model, implementation in zip(towers, implementations):  # back to what it was
                model.set_attn_implementation(implementation)


def _vision_model_from_config(config: PretrainedConfig) -> PreTrainedModel:
    if config.model_type == "clip_vision_model":
        return CLIPVisionModel(config)
    return ViTModel(config)


def _hf_layer_mask(key_mask: torch.Tensor | None, hidden: torch.Tensor, eager: bool) -> torch.Tensor | None:
    """A key mask as transformers' layers take it: ``(batch, 1, 1, n_keys)``, boolean for SDPA, additive for eager."""
    if key_mask is None:
        return None
    if not eager:
        return key_mask[:, None, None, :]
    return torch.zeros(key_mask.shape, dtype=hidden.dtype, device=hidden.device).masked_fill(
        ~key_mask, torch.finfo(hidden.dtype).min
    )[:, None, None, :]


def _first(output):
    """Layers of older transformers return tuples; newer return the tensor."""
    return output[0] if isinstance(output, tuple) else output
