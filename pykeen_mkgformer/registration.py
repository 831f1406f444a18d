"""Everything the plugin registers with PyKEEN, listed in one place, registered through ``Resolver.register``.

PyKEEN has no entry-point group for models. It does load this plugin's ``pykeen.datasets`` entry
points (:mod:`pykeen_mkgformer.plugin`) on its first ``import pykeen.datasets``, which every PyKEEN
entry point (``pipeline``, ``pykeen.models``, the ``pykeen`` command) triggers; that module calls
:func:`register_with_pykeen`. So ``pipeline(model="MKGformer")``, ``model_resolver.lookup("MKGformer")``
and ``pykeen experiments run`` work in a fresh interpreter that never imported this package, and
importing the package itself (e.g. :mod:`pykeen_mkgformer.re`) registers nothing.

To add a plugin class: append it to :data:`PYKEEN_MODELS` (models) or :data:`PYKEEN_COMPONENTS`
(any other PyKEEN resolver, named in :data:`RESOLVERS`); to register a group of components from
their own package, add a function to :data:`REGISTRATION_HOOKS`. Classes are named by
``"module:Class"``, so this module imports nothing of the package until registration runs; it is
glue above every layer (only :mod:`pykeen_mkgformer.plugin` imports it).
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from typing import Any

from . import _pykeen_shim
from .resolvers import register_once

__all__ = [
    "PYKEEN_MODELS",
    "PYKEEN_COMPONENTS",
    "RESOLVERS",
    "REGISTRATION_HOOKS",
    "register_with_pykeen",
    "ensure_registered",
    "resolve",
]

logger = logging.getLogger(__name__)

#: models registered with ``pykeen.models.model_resolver``
PYKEEN_MODELS: list[str] = [
    "pykeen_mkgformer.kgc.model:MKGformer",
    "pykeen_mkgformer.kgc.multimodal:MultimodalRotatE",
    # the multimodal baselines over frozen features (pykeen_mkgformer.baselines.models.BASELINES)
    *(
        f"pykeen_mkgformer.baselines.models:{name}"
        for name in ("IKRL", "TBKGC", "TransAE", "RSME", "VBTransE", "VBRotatE", "QEB", "MoSE", "AdaMF")
    ),
]

#: PyKEEN's other resolvers: module, name and base class ("module:qualname") of each
RESOLVERS: dict[str, tuple[str, str, str]] = {
    "loss": ("pykeen.losses", "loss_resolver", "pykeen.losses:Loss"),
    "callback": ("pykeen.training.callbacks", "callback_resolver", "pykeen.training.callbacks:TrainingCallback"),
    "interaction": ("pykeen.nn.modules", "interaction_resolver", "pykeen.nn.modules:Interaction"),
    "representation": ("pykeen.nn", "representation_resolver", "pykeen.nn.representation:Representation"),
    "training_loop": ("pykeen.training", "training_loop_resolver", "pykeen.training.training_loop:TrainingLoop"),
    "stopper": ("pykeen.stoppers", "stopper_resolver", "pykeen.stoppers.stopper:Stopper"),
}

#: other components: (resolver key in :data:`RESOLVERS`, "module:Class")
PYKEEN_COMPONENTS: list[tuple[str, str]] = [
    ("loss", "pykeen_mkgformer.kgc.losses:SmoothedSoftmaxCrossEntropyLoss"),
    ("callback", "pykeen_mkgformer.kgc.training:LinearWarmupTrainingCallback"),
    ("callback", "pykeen_mkgformer.kgc.training:DecoupledWeightDecayTrainingCallback"),
    # LCWA / sLCWA loops that count their batches (the warm-up schedule reads batches_per_epoch)
    ("training_loop", "pykeen_mkgformer.kgc.loops:BatchCountingLCWATrainingLoop"),
    ("training_loop", "pykeen_mkgformer.kgc.loops:BatchCountingSLCWATrainingLoop"),
    ("stopper", "pykeen_mkgformer.kgc.stopping:SelectingEarlyStopper"),
    # MKGformer's parts, reusable by any PyKEEN model (kgc.registry lists the representations)
    ("interaction", "pykeen_mkgformer.kgc.interaction:MKGformerInteraction"),
    ("representation", "pykeen_mkgformer.kgc.representation:EntityTextTokens"),
    ("representation", "pykeen_mkgformer.kgc.representation:RelationTextTokens"),
    ("representation", "pykeen_mkgformer.kgc.representation:EntityTokenEmbedding"),
    ("representation", "pykeen_mkgformer.kgc.representation:EntityBias"),
    ("representation", "pykeen_mkgformer.kgc.representation:EntityImageRepresentation"),
    ("representation", "pykeen_mkgformer.kgc.multimodal:MultimodalEntityRepresentation"),
    # AdaMF-MAT's modality-adversarial training: training_loop="ModalityAdversarial"
    ("training_loop", "pykeen_mkgformer.baselines.adversarial:ModalityAdversarialTrainingLoop"),
]

#: modules registered with ``pykeen.contrib.lightning.lit_module_resolver`` once that module has run (it imports
#: Lightning, so only whoever uses Lightning imports it): ``lit_pipeline(training_loop="vocabparallellcwa")``
PYKEEN_LIT_MODULES: list[str] = [
    "pykeen_mkgformer.kgc.lightning:VocabParallelLCWALitModule",
]

#: functions ("module:function") called once PyKEEN's model resolver exists (and so ``pykeen.nn``'s
#: resolvers), each registering a group of components through the resolvers' ``register`` (e.g. the
#: link-prediction interaction and representations)
REGISTRATION_HOOKS: list[str] = [
]


def resolve(path: str) -> Any:
    """The object that ``"package.module:name"`` names."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _half_imported(path: str) -> bool:
    """Whether the class's module is being imported right now (it registers itself at its end)."""
    module, _, name = path.partition(":")
    return module in sys.modules and not hasattr(sys.modules[module], name)


def _register_components(kind: str, resolver: Any) -> None:
    for key, path in PYKEEN_COMPONENTS:
        if key == kind and not _half_imported(path):  # a half-imported module registers at its end
            register_once(resolver, resolve(path))


def _register_all(model_resolver: Any) -> None:
    """Runs once PyKEEN's model resolver exists (``pykeen.models`` and ``pykeen.nn`` are imported by then)."""
    for path in PYKEEN_MODELS:
        if not _half_imported(path):
            register_once(model_resolver, resolve(path))
    for hook in REGISTRATION_HOOKS:
        resolve(hook)()
    for kind in dict.fromkeys(kind for kind, _ in PYKEEN_COMPONENTS):
        # now if that resolver exists, else when PyKEEN makes it; never before the model resolver exists:
        # importing the plugin's modules while pykeen.models is half-imported would be circular
        module, name, base = RESOLVERS[kind]
        _pykeen_shim.when_resolver_made(module, name, base, functools.partial(_register_components, kind))


def register_with_pykeen() -> None:
    """Register every plugin class with PyKEEN: now if its resolvers exist, else as soon as they do.

    Idempotent. Before the model resolver exists (PyKEEN is importing ``pykeen.models``), the registration
    waits for it through :mod:`pykeen_mkgformer._pykeen_shim`; ``pykeen train mkgformer`` gets its
    options from :mod:`pykeen_mkgformer.pykeen_cli` the same way.
    """
    _pykeen_shim.when_model_resolver_exists(_register_all)
    _pykeen_shim.add_model_cli_options(plugin_model_options)
    _when_lightning_resolver_exists(_register_lit_modules)


#: PyKEEN's Lightning integration, and its resolver of Lightning modules
LIGHTNING_MODULE, LIGHTNING_RESOLVER = "pykeen.contrib.lightning", "lit_module_resolver"


def _when_lightning_resolver_exists(callback: Any) -> None:
    """``callback(lit_module_resolver)`` now, when that module's import makes it, or after the module runs."""
    module = sys.modules.get(LIGHTNING_MODULE)
    if module is not None and not hasattr(module, LIGHTNING_RESOLVER):
        # half-way through its import (its `import pykeen.datasets` loaded this plugin): when it makes the resolver
        _pykeen_shim.when_resolver_made(LIGHTNING_MODULE, LIGHTNING_RESOLVER, "pykeen.contrib.lightning:LitModule", callback)
    else:
        _pykeen_shim.when_module_executed(
            LIGHTNING_MODULE, lambda module: callback(getattr(module, LIGHTNING_RESOLVER)), ready=LIGHTNING_RESOLVER
        )


def _register_lit_modules(resolver: Any) -> None:
    for path in PYKEEN_LIT_MODULES:
        if not _half_imported(path):
            register_once(resolver, resolve(path))


def plugin_model_options() -> dict[str, Any]:
    """Click options (or no-ops) for the parameters of every plugin model, keyed by parameter name.

    PyKEEN's ``pykeen train MODEL`` takes an option from ``CLI_OPTIONS`` by parameter name; the first
    model that names a parameter gives its option (MKGformer first), and PyKEEN's own entries are kept.
    """
    from .pykeen_cli import mkgformer_options

    options: dict[str, Any] = {}
    for path in PYKEEN_MODELS:
        for name, option in mkgformer_options(resolve(path)).items():
            options.setdefault(name, option)
    return options


def _register_baselines(resolver: Any) -> None:
    """The multimodal baselines (IKRL, TBKGC, ...; :mod:`pykeen_mkgformer.baselines.models`), same rules as MKGformer."""
    module = sys.modules.get("pykeen_mkgformer.baselines.models")
    if module is not None and not hasattr(module, "BASELINES"):
        return  # that module is being imported; it calls ensure_registered() at its end
    from .baselines.models import BASELINES

    register_once(resolver, *BASELINES)


def ensure_registered() -> None:
    """Deprecated name of :func:`register_with_pykeen` (kept for modules that still call it)."""
    register_with_pykeen()
