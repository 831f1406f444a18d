"""Make PyKEEN's ``model_resolver`` know :class:`~pykeen_mkgformer.kgc.MKGformer` without a circular import.

PyKEEN has no entry-point group for models, but it loads this plugin's ``pykeen.datasets`` entry
points on its first ``import pykeen.datasets`` (and importing any module of this package runs
``pykeen_mkgformer/__init__.py``, which calls :func:`ensure_registered`). At that moment
``pykeen.models`` may be

1. fully imported: MKGformer is registered at once;
2. not imported yet, or half-way through its own ``__init__`` (``import pykeen.models`` imports
   ``pykeen.datasets`` before it creates ``model_resolver``): importing ``pykeen.models`` now would
   be circular. Instead, :meth:`class_resolver.ClassResolver.from_subclasses` is wrapped, once:
   when PyKEEN creates ``model_resolver = ClassResolver.from_subclasses(base=Model, ...)`` (the
   last statement of ``pykeen/models/__init__.py``), the wrapper restores the original method and
   registers MKGformer in the new resolver.

Either way, ``pipeline(model="MKGformer")``, ``model_resolver.lookup("MKGformer")`` and
``pykeen experiments run`` work in a fresh interpreter that never imported this package; and
``pykeen train mkgformer`` gets MKGformer's options (:mod:`pykeen_mkgformer.pykeen_cli`).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["ensure_registered", "register_model"]

logger = logging.getLogger(__name__)

_HOOK_MARK = "_pykeen_mkgformer_hook"


def register_model(resolver: Any) -> None:
    """Register MKGformer with a PyKEEN model resolver (no-op when it is already there).

    When :mod:`pykeen_mkgformer.kgc.model` is itself being imported (its import of ``pykeen.models``
    got us here), nothing happens now: that module calls :func:`ensure_registered` at its end.
    """
    module = sys.modules.get("pykeen_mkgformer.kgc.model")
    if module is not None and not hasattr(module, "MKGformer"):
        return
    from .kgc.model import MKGformer

    _register_baselines(resolver)
    if resolver.normalize_cls(MKGformer) in resolver.lookup_dict:
        return
    resolver.register(MKGformer)
    # `pykeen train mkgformer`: options PyKEEN's CLI builder cannot derive from the annotations
    from .pykeen_cli import add_options_when_pykeen_cli_loads

    add_options_when_pykeen_cli_loads()


def _register_baselines(resolver: Any) -> None:
    """The multimodal baselines (IKRL, TBKGC, ...; :mod:`pykeen_mkgformer.baselines.models`), same rules as MKGformer."""
    module = sys.modules.get("pykeen_mkgformer.baselines.models")
    if module is not None and not hasattr(module, "BASELINES"):
        return  # that module is being imported; it calls ensure_registered() at its end
    from .baselines.models import BASELINES

    for cls in BASELINES:
        if resolver.normalize_cls(cls) not in resolver.lookup_dict:
            resolver.register(cls)


def ensure_registered() -> None:
    """Register MKGformer now if ``pykeen.models`` is fully imported, else as soon as its resolver exists."""
    models = sys.modules.get("pykeen.models")
    resolver = getattr(models, "model_resolver", None) if models is not None else None
    if resolver is not None:
        register_model(resolver)
    else:
        _wrap_from_subclasses()


def _is_pykeen_model_base(base: Any) -> bool:
    return getattr(base, "__module__", None) == "pykeen.models.base" and getattr(base, "__qualname__", None) == "Model"


def _wrap_from_subclasses() -> None:
    from class_resolver import ClassResolver

    current = ClassResolver.__dict__["from_subclasses"]
    if getattr(current.__func__, _HOOK_MARK, False):
        return
    original = current

    def from_subclasses(cls, *args: Any, **kwargs: Any):
        resolver = original.__func__(cls, *args, **kwargs)
        base = kwargs.get("base", args[0] if args else None)
        if _is_pykeen_model_base(base):
            ClassResolver.from_subclasses = original
            try:
                register_model(resolver)
            except Exception:  # never break PyKEEN's own import
                logger.exception("could not register MKGformer with PyKEEN's model resolver")
        return resolver

    setattr(from_subclasses, _HOOK_MARK, True)
    from_subclasses.__doc__ = original.__func__.__doc__
    ClassResolver.from_subclasses = classmethod(from_subclasses)
