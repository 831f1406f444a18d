"""Registration with PyKEEN: the one list, public ``register`` calls, and the premises of the one shim.

The shim (:mod:`pykeen_mkgformer._pykeen_shim`) relies on two facts of PyKEEN 1.11 / class-resolver
0.8 that no API promises. The premise tests below fail, naming the installed versions, on the first
release where one of them stops holding; then replace the shim (or drop it if PyKEEN gained a hook).
"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import entry_points, version

import pytest
from kgc_support import run_python

import pykeen_mkgformer
from pykeen_mkgformer import registration

VERSIONS = f"pykeen {version('pykeen')}, class-resolver {version('class-resolver')}"


def test_premise_model_resolver_is_made_by_from_subclasses():
    import pykeen.models
    from class_resolver import ClassResolver

    source = inspect.getsource(pykeen.models)
    message = f"{VERSIONS}: pykeen_mkgformer._pykeen_shim.when_model_resolver_exists no longer applies"
    assert re.search(r"model_resolver[^=\n]*=\s*ClassResolver\.from_subclasses\(\s*base=Model", source), message
    assert isinstance(ClassResolver.__dict__.get("from_subclasses"), classmethod), message
    # nothing runs after it in pykeen/models/__init__.py but the module's end
    tail = source[source.index("ClassResolver.from_subclasses(") :]
    assert tail.count("\n)") == 1 and not tail.split("\n)", 1)[1].strip(), message
    # no models entry-point group yet (if PyKEEN adds one, use it instead of the shim)
    assert "register_entrypoint" not in source, f"{VERSIONS}: PyKEEN loads model entry points now: drop the shim"


@pytest.mark.parametrize("kind", sorted(registration.RESOLVERS))
def test_premise_other_resolvers_are_made_by_from_subclasses(kind):
    import importlib

    module, name, base = registration.RESOLVERS[kind]
    resolver = getattr(importlib.import_module(module), name)
    source = inspect.getsource(importlib.import_module(module))
    message = f"{VERSIONS}: {module}.{name} is no longer made by ClassResolver.from_subclasses({base})"
    assert f"{resolver.base.__module__}:{resolver.base.__qualname__}" == base, message
    assert re.search(rf"{name}[^=\n]*=\s*ClassResolver\.from_subclasses\(", source), message


def test_premise_cli_options_are_read_by_the_builder():
    from pykeen.models.cli import builders, options

    message = f"{VERSIONS}: pykeen_mkgformer._pykeen_shim.add_model_cli_options no longer applies"
    assert isinstance(options.CLI_OPTIONS, dict), message
    assert "CLI_OPTIONS[name]" in inspect.getsource(builders.build_cli_from_cls), message


def test_shim_restores_class_resolver():
    from class_resolver import ClassResolver

    # this interpreter has imported pykeen.models: the wrapper was undone at its first use
    assert ClassResolver.__dict__["from_subclasses"].__func__.__module__ == "class_resolver.api"


def test_entry_points_name_the_plugin_module():
    names = {entry.name: entry.value for entry in entry_points(group="pykeen.datasets")}
    assert {"wn18img", "fb15k237img", "wn18imgmini", "shapeskg"} <= set(names)
    assert all(names[key].startswith("pykeen_mkgformer.plugin:") for key in ("wn18img", "shapeskg")), names


def test_every_listed_class_is_registered():
    import importlib

    from pykeen.models import model_resolver

    for path in registration.PYKEEN_MODELS:
        assert model_resolver.lookup(path.split(":")[1]) is registration.resolve(path)
    for kind, path in registration.PYKEEN_COMPONENTS:
        module, name, _ = registration.RESOLVERS[kind]
        resolver = getattr(importlib.import_module(module), name)
        assert resolver.lookup(path.split(":")[1]) is registration.resolve(path)
    from pykeen.training.callbacks import callback_resolver

    assert callback_resolver.lookup("linearwarmup").__name__ == "LinearWarmupTrainingCallback"


def test_importing_the_package_registers_nothing(tmp_path):
    """The package's ``__init__`` has no side effect: RE / NER users do not pay for PyKEEN's registry."""
    assert not hasattr(pykeen_mkgformer, "registration") or "ensure_registered" not in vars(pykeen_mkgformer)
    process = run_python(
        "import sys, pykeen_mkgformer.re, pykeen_mkgformer.ner\n"
        "from class_resolver import ClassResolver\n"
        "print('pykeen.models' in sys.modules, 'pykeen_mkgformer.kgc' in sys.modules)\n",
        cwd=tmp_path,
    )
    assert process.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    "first",
    [
        "import pykeen.models",  # the entry points load half-way through pykeen/models/__init__.py
        "from pykeen.pipeline import pipeline",  # pykeen.datasets first, pykeen.models later
        "import pykeen.datasets",  # pykeen.models only when asked for
        "import pykeen.nn",  # the entry points load half-way through pykeen/nn/representation.py
        "import pykeen.training",
        "import pykeen.cli",  # `pykeen ...`
        "from pykeen_mkgformer.kgc.model import MKGformer",  # the plugin's module imports pykeen.models itself
        "import pykeen_mkgformer.kgc.training",  # ... and so do the callbacks' (through pykeen.training)
        "import pykeen_mkgformer.kgc.loops",  # ... and the training loops' (pykeen.training.lcwa)
    ],
)
def test_registered_whatever_is_imported_first(tmp_path, first):
    process = run_python(
        f"{first}\n"
        "from class_resolver import ClassResolver\n"
        "from pykeen.models import model_resolver\n"
        "from pykeen.training.callbacks import callback_resolver\n"
        "from pykeen.losses import loss_resolver\n"
        "from pykeen.training import training_loop_resolver\n"
        "from pykeen.datasets import dataset_resolver\n"
        "assert dataset_resolver.lookup('shapeskg').__module__ == 'pykeen_mkgformer.data.datasets'\n"
        "print(model_resolver.lookup('mkgformer').__module__, callback_resolver.lookup('decoupledweightdecay').__name__,\n"
        "      loss_resolver.lookup('smoothedsoftmaxcrossentropy').__name__,\n"
        "      training_loop_resolver.lookup('batchcountinglcwa').__name__,\n"
        "      ClassResolver.__dict__['from_subclasses'].__func__.__module__)\n",
        cwd=tmp_path,
    )
    assert process.stdout.split() == [
        "pykeen_mkgformer.kgc.model", "DecoupledWeightDecayTrainingCallback", "SmoothedSoftmaxCrossEntropyLoss",
        "BatchCountingLCWATrainingLoop", "class_resolver.api",
    ]
