"""Registering the plugin's classes with PyKEEN's class-resolver resolvers, through their public ``register``.

:mod:`pykeen_mkgformer.registration` registers every class from one list once PyKEEN's resolvers exist.
A plugin module that is itself what imported a PyKEEN resolver is only half-imported when that
registration runs, so the registration skips its classes and the module registers them at its end with
:func:`register_if_made`. Both go through :func:`register_once`, since class-resolver refuses a second
registration of a name. Imports nothing of the package: usable from every layer.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["register_once", "register_if_made"]


def register_once(resolver: Any, *classes: type) -> None:
    """Register each class with ``resolver`` unless the resolver already knows its normalized name."""
    for cls in classes:
        if resolver.normalize_cls(cls) not in resolver.lookup_dict:
            resolver.register(cls)


def register_if_made(module: str, resolver_name: str, *classes: type) -> None:
    """:func:`register_once` with ``module.resolver_name`` if that module has made it already, else nothing.

    Nothing, when the resolver does not exist yet: PyKEEN is still importing ``module``, and the plugin's
    registration registers the classes when it makes the resolver.
    """
    resolver = getattr(sys.modules.get(module), resolver_name, None)
    if resolver is not None:
        register_once(resolver, *classes)
