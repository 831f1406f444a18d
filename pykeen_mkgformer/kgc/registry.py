"""Make PyKEEN's resolvers know MKGformer's parts, through their public ``register``.

:func:`register_with_pykeen` adds

- to ``pykeen.nn.modules.interaction_resolver``: :class:`~.interaction.MKGformerInteraction` (``"MKGformer"``);
- to ``pykeen.nn.representation_resolver``: :class:`~.multimodal.MultimodalEntityRepresentation`
  (``"MultimodalEntity"``) and MKGformer's own parts (``"EntityTextTokens"``, ``"RelationTextTokens"``,
  ``"EntityTokenEmbedding"``, ``"EntityBias"``, ``"EntityImageRepresentation"``);
- to ``pykeen.models.model_resolver``: :class:`~.multimodal.MultimodalRotatE` (``"MultimodalRotatE"``).

It is idempotent. It imports ``pykeen.models``, so call it only once PyKEEN's model registry exists
(the entry-point path must not import ``pykeen.models`` while ``pykeen.datasets`` is still
initialising; see ``shared/DESIGN.md``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from ..resolvers import register_once

__all__ = ["register_with_pykeen", "REPRESENTATIONS"]

#: the representations and their modules (registered under the class name minus "Representation")
REPRESENTATIONS = {
    "EntityTextTokens": "representation",
    "RelationTextTokens": "representation",
    "EntityTokenEmbedding": "representation",
    "EntityBias": "representation",
    "EntityImageRepresentation": "representation",
    "MultimodalEntityRepresentation": "multimodal",
}


def register_with_pykeen(model_resolver: Any = None) -> None:
    """Register the interaction, the representations and ``MultimodalRotatE`` with PyKEEN's resolvers (once).

    :param model_resolver: PyKEEN's model resolver; default: ``pykeen.models.model_resolver`` if
        ``pykeen.models`` is fully imported, else the model is not registered now (call again later,
        or pass the resolver, as :mod:`pykeen_mkgformer.registration` has it while PyKEEN builds it)
    """
    from pykeen.nn import representation_resolver
    from pykeen.nn.modules import interaction_resolver

    from .interaction import MKGformerInteraction

    register_once(interaction_resolver, MKGformerInteraction)
    # a module still being imported (its import of pykeen.models led here) is skipped: it calls this
    # function again at its end
    for name, module_name in REPRESENTATIONS.items():
        cls = getattr(importlib.import_module(f"{__package__}.{module_name}"), name, None)
        if cls is not None:
            register_once(representation_resolver, cls)
    if model_resolver is None:
        models = sys.modules.get("pykeen.models")
        model_resolver = getattr(models, "model_resolver", None) if models is not None else None
    rotate = getattr(importlib.import_module(f"{__package__}.multimodal"), "MultimodalRotatE", None)
    if model_resolver is not None and rotate is not None:
        register_once(model_resolver, rotate)
