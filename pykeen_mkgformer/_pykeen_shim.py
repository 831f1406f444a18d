"""The two things PyKEEN 1.11 offers no supported hook for, in one place (used only by :mod:`.registration`).

1. **A model registered before anyone can look it up.** PyKEEN has no entry-point group for models; it
   loads this plugin's ``pykeen.datasets`` entry points (:mod:`pykeen_mkgformer.plugin`) while
   ``pykeen/datasets/__init__.py`` runs, which can happen half-way through ``pykeen/models/__init__.py``
   (before ``model_resolver`` exists, and importing ``pykeen.models`` then would be circular). The
   only code that runs between the creation of ``model_resolver`` and the first lookup is the call
   that creates it, ``ClassResolver.from_subclasses(base=Model, ...)``, the last statement of
   ``pykeen/models/__init__.py``. :func:`when_resolver_made` wraps that classmethod until the
   resolvers waited for are made (models; also the training callbacks' and losses' resolvers, which
   can be half-imported at that moment), then puts the original back.
2. **Options of ``pykeen train mkgformer``.** PyKEEN builds that command from the constructor's
   annotations, and takes a ready-made option from ``pykeen.models.cli.options.CLI_OPTIONS`` for a
   parameter of that name; its builder turns unions and ``Literal`` into broken options
   (``--text-encoder UNION``) and has no flag form for booleans. :func:`add_model_cli_options` adds
   the plugin's options to that dict (names already there are kept) right after that module is
   executed, through a post-import hook on :data:`sys.meta_path` (Python's import-hook API): a
   finder that returns the module's spec with a loader wrapping the original one.

``tests/architecture/test_registration_shim.py`` checks the premises of both on the installed versions and fails
naming them when a release changes them; the supported versions are :data:`SUPPORTED`.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "SUPPORTED",
    "when_resolver_made",
    "when_model_resolver_exists",
    "when_module_executed",
    "add_model_cli_options",
]

logger = logging.getLogger(__name__)

#: the versions whose internals the two hooks rely on (the shim test pins the premises on these)
SUPPORTED = {"pykeen": ">=1.11.1,<1.12", "class-resolver": ">=0.5,<0.9"}

#: the module that holds PyKEEN's ready-made model options
CLI_OPTIONS_MODULE = "pykeen.models.cli.options"

#: callbacks waiting for a resolver, by its base class ("module:qualname")
_pending: dict[str, list[Callable[[Any], None]]] = {}
#: resolvers whose waiting callbacks are running (before PyKEEN has bound them to their module's name)
_being_made: dict[str, Any] = {}


def _key(base: Any) -> str:
    return f"{getattr(base, '__module__', '')}:{getattr(base, '__qualname__', '')}"


def when_resolver_made(module: str, name: str, base: str, callback: Callable[[Any], None]) -> None:
    """Call ``callback(resolver)`` now if ``module.name`` exists, else right after PyKEEN creates it.

    :param module: the module that holds the resolver, e.g. ``"pykeen.models"``
    :param name: its name there, e.g. ``"model_resolver"``
    :param base: the resolver's base class as ``"module:qualname"``, e.g. ``"pykeen.models.base:Model"``
        (PyKEEN makes it with ``ClassResolver.from_subclasses(base, ...)``)
    """
    resolver = getattr(sys.modules.get(module), name, None)
    if resolver is None:
        resolver = _being_made.get(base)
    if resolver is not None:
        callback(resolver)
        return
    waiting = bool(_pending)
    _pending.setdefault(base, []).append(callback)
    if waiting:  # the wrapper is in place
        return
    from class_resolver import ClassResolver

    original = ClassResolver.__dict__["from_subclasses"]

    def from_subclasses(cls, *args: Any, **kwargs: Any):
        resolver = original.__func__(cls, *args, **kwargs)
        key = _key(kwargs.get("base", args[0] if args else None))
        if key in _pending:
            callbacks = _pending.pop(key)
            if not _pending:
                ClassResolver.from_subclasses = original  # the one assignment: undone when nothing waits
            _being_made[key] = resolver
            try:
                for pending in callbacks:
                    try:
                        pending(resolver)
                    except Exception:  # never break PyKEEN's own import
                        logger.exception("could not register pykeen-mkgformer's classes with PyKEEN's %s resolver", key)
            finally:
                del _being_made[key]
        return resolver

    from_subclasses.__doc__ = original.__func__.__doc__
    ClassResolver.from_subclasses = classmethod(from_subclasses)


def when_model_resolver_exists(callback: Callable[[Any], None]) -> None:
    """Call ``callback(model_resolver)`` now if PyKEEN's model resolver exists, else right after it is created."""
    when_resolver_made("pykeen.models", "model_resolver", "pykeen.models.base:Model", callback)


class _RunAfter(importlib.abc.Loader):
    """A loader that executes a module with its own loader, then calls ``callback(module)``."""

    def __init__(self, loader: importlib.abc.Loader, callback: Callable[[Any], None]) -> None:
        self.loader = loader
        self.callback = callback

    def create_module(self, spec: importlib.machinery.ModuleSpec):  # noqa: D102
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:  # noqa: D102
        self.loader.exec_module(module)
        self.callback(module)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds one module once, with its regular spec but a :class:`_RunAfter` loader."""

    def __init__(self, name: str, callback: Callable[[Any], None]) -> None:
        self.name = name
        self.callback = callback

    def find_spec(self, fullname: str, path: Any, target: Any = None):  # noqa: D102
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        wrapped = importlib.util.spec_from_loader(
            fullname, _RunAfter(spec.loader, self.callback), origin=spec.origin, is_package=spec.submodule_search_locations is not None
        )
        if wrapped is None:
            return spec
        wrapped.has_location = spec.has_location
        wrapped.cached = spec.cached
        if spec.submodule_search_locations is not None:
            wrapped.submodule_search_locations = spec.submodule_search_locations
        return wrapped


def when_module_executed(name: str, callback: Callable[[Any], None], *, ready: str) -> None:
    """Call ``callback(module)`` now if module ``name`` has its attribute ``ready``, else right after it is executed."""
    module = sys.modules.get(name)
    if module is not None:
        if hasattr(module, ready):
            callback(module)
        else:
            logger.debug("%s is being imported: its extension waits for the next registration call", name)
        return
    if any(isinstance(finder, _PostImportFinder) and finder.name == name for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _PostImportFinder(name, callback))


def add_model_cli_options(options: Callable[[], Mapping[str, Callable[[Any], Any]]]) -> None:
    """Add ``options()`` (parameter name -> click decorator) to PyKEEN's ``CLI_OPTIONS`` once that module exists."""

    def add(module: Any) -> None:
        try:
            registry = module.CLI_OPTIONS
            for name, option in options().items():
                registry.setdefault(name, option)
        except Exception:  # never break PyKEEN's own CLI
            logger.exception("could not add pykeen-mkgformer's options to PyKEEN's command line")

    when_module_executed(CLI_OPTIONS_MODULE, add, ready="CLI_OPTIONS")
