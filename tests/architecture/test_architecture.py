"""The package's shape: layers without a circle, and no writes into other libraries' classes or modules.

Layers (each imports only from those below it, never from a sibling package or upwards):

    data -> encoder -> kgc | tasks (-> re, ner) | baselines -> explain -> demo, CLIs, registration

Checked twice: statically (every ``import`` in every module, function-level ones included) and in
fresh interpreters (what importing each package pulls in at run time).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from kgc_support import REPO_ROOT, run_python

PACKAGE = "pykeen_mkgformer"
ROOT = REPO_ROOT / PACKAGE

#: the layer of each top-level module or sub-package: imports may only go to a lower number (or stay inside)
LAYER = {
    # process-wide runtime settings (threads, terminal): import nothing of the package, usable by every layer
    "threads": -1,
    "terminal": -1,
    "resolvers": -1,
    "data": 0,
    "encoder": 1,
    "kgc": 2,
    "tasks": 2,
    "re": 2.5,
    "ner": 2.5,
    "baselines": 2.5,
    "explain": 3,
    "demo": 3.5,
    "_pykeen_shim": 3.5,
    "cli": 4,
    "pykeen_cli": 4,
    "registration": 4.5,
    "plugin": 5,
}

#: known edges that break the layers, each with who removes it; the lead deletes an entry once it is gone
#: (the test fails on an entry that no longer occurs, so the list only shrinks)
ALLOWED_EDGES: set[tuple[str, str]] = set()

#: known imports of another package's private names (same owners as above)
ALLOWED_PRIVATE: set[tuple[str, str, str]] = set()

#: the one shim (see pykeen_mkgformer/_pykeen_shim.py and tests/architecture/test_registration_shim.py), and Python's
#: documented hook for formatting warnings
ALLOWED_WRITES = {
    ("pykeen_mkgformer._pykeen_shim", "ClassResolver.from_subclasses"),
    # not a patch: Python documents warnings.showwarning as the function to replace to format warnings
    ("pykeen_mkgformer.terminal", "warnings.showwarning"),
}


def modules() -> dict[str, Path]:
    result = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        result[name] = path
    return result


def group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports(module: str, path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import statement of the package's own modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.startswith(PACKAGE)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith(PACKAGE):
                found.append((target, [alias.name for alias in node.names]))
    return found


def resolve_target(target: str, names: list[str], known: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """``from pkg import sub`` imports the module ``pkg.sub``: split such names off."""
    edges = [(target, [n for n in names if f"{target}.{n}" not in known])]
    edges += [(f"{target}.{n}", []) for n in names if f"{target}.{n}" in known]
    return edges


def edges() -> list[tuple[str, str, list[str]]]:
    known = modules()
    result = []
    for module, path in known.items():
        for target, names in imports(module, path):
            for resolved, taken in resolve_target(target, names, known):
                result.append((module, resolved, taken))
    return result


def breaks_layers(source: str, target: str) -> bool:
    a, b = group(source), group(target)
    if a == b or b == "":
        return False
    if a == "":
        return True  # the package's __init__ imports nothing
    return LAYER[b] >= LAYER[a]


def test_every_module_has_a_layer():
    assert {group(m) for m in modules()} - {""} <= set(LAYER), "give the new package a layer in LAYER"


def test_imports_respect_the_layers():
    bad = {(s, t) for s, t, _ in edges() if breaks_layers(s, t)}
    assert bad - ALLOWED_EDGES == set(), sorted(bad - ALLOWED_EDGES)
    assert ALLOWED_EDGES - bad == set(), f"remove from ALLOWED_EDGES (no longer imported): {ALLOWED_EDGES - bad}"


def test_no_circle_between_packages():
    graph: dict[str, set[str]] = {}
    for source, target, _ in edges():
        if (source, target) not in ALLOWED_EDGES and group(source) != group(target) and group(source) and group(target):
            graph.setdefault(group(source), set()).add(group(target))
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            assert state.get(nxt) != 1, f"import circle: {' -> '.join(trail + [node, nxt])}"
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for node in list(graph):
        if node not in state:
            visit(node, [])


def test_no_private_names_across_packages():
    bad = {
        (s, t, name)
        for s, t, names in edges()
        for name in names
        if name.startswith("_") and group(s) != group(t)
    }
    assert bad - ALLOWED_PRIVATE == set(), sorted(bad - ALLOWED_PRIVATE)
    assert ALLOWED_PRIVATE - bad == set(), f"remove from ALLOWED_PRIVATE (no longer imported): {ALLOWED_PRIVATE - bad}"


def _external_names(tree: ast.Module) -> set[str]:
    """Names bound by importing something that is not this package."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith(PACKAGE)}
        elif isinstance(node, ast.ImportFrom) and not node.level and not (node.module or "").startswith(PACKAGE):
            names |= {a.asname or a.name for a in node.names}
    return names


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _own_private_attributes() -> set[str]:
    """Private attributes the package's classes set on themselves (``self._x = ...``)."""
    names = set()
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _root(node) == "self":
                names.add(node.attr)
    return names


def foreign_writes() -> set[tuple[str, str]]:
    """``X.attr = ...`` / ``setattr(X, ...)`` where ``X`` was imported from another library, or ``obj._private = ...``
    on anything but ``self`` / ``cls`` with a private name that no class of the package sets on itself."""
    found = set()
    own = _own_private_attributes()
    for module, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        external = _external_names(tree)
        targets: list[ast.AST] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                targets += node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets.append(node.target)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
                if node.args and _root(node.args[0]) in external:
                    found.add((module, f"{node.func.id}({ast.unparse(node.args[0])})"))
        for target in targets:
            if not isinstance(target, ast.Attribute):
                continue
            root = _root(target)
            private = target.attr.startswith("_") and not target.attr.startswith("__") and target.attr not in own
            if root in external or (private and root not in ("self", "cls")):
                found.add((module, ast.unparse(target)))
    return found


def test_no_writes_into_other_libraries():
    writes = foreign_writes()
    assert writes - ALLOWED_WRITES == set(), sorted(writes - ALLOWED_WRITES)
    assert ALLOWED_WRITES - writes == set(), f"remove from ALLOWED_WRITES (gone): {ALLOWED_WRITES - writes}"


def test_the_scan_finds_a_patch(tmp_path):
    """The scanner itself: a module that patches class-resolver is caught."""
    tree = ast.parse("from class_resolver import ClassResolver\nClassResolver.from_subclasses = None\nx._y = 1\n")
    external = _external_names(tree)
    assigned = [t for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets]
    assert [_root(t) in external or t.attr.startswith("_") for t in assigned] == [True, True]


#: what importing each package must not pull in, at run time in a fresh interpreter
MUST_NOT_IMPORT = {
    "pykeen_mkgformer": ["pykeen", "torch", "transformers"],
    "pykeen_mkgformer.data": [f"{PACKAGE}.{g}" for g in ("encoder", "kgc", "tasks", "re", "ner", "explain", "demo")]
    + ["pykeen.models"],
    "pykeen_mkgformer.encoder": [f"{PACKAGE}.{g}" for g in ("kgc", "tasks", "re", "ner", "explain", "demo")]
    + ["pykeen.models", "pykeen.datasets"],
    "pykeen_mkgformer.kgc": [f"{PACKAGE}.{g}" for g in ("tasks", "re", "ner", "explain", "demo")],
    "pykeen_mkgformer.tasks": [f"{PACKAGE}.{g}" for g in ("kgc", "explain", "demo")] + ["pykeen.models"],
    "pykeen_mkgformer.re": [f"{PACKAGE}.{g}" for g in ("kgc", "explain", "demo")] + ["pykeen.models"],
    "pykeen_mkgformer.ner": [f"{PACKAGE}.{g}" for g in ("kgc", "explain", "demo")] + ["pykeen.models"],
    "pykeen_mkgformer.explain": [f"{PACKAGE}.demo"],
}


@pytest.mark.parametrize("package", sorted(MUST_NOT_IMPORT))
def test_fresh_import_pulls_in_nothing_above(tmp_path, package):
    forbidden = MUST_NOT_IMPORT[package]
    process = run_python(
        f"import sys, {package}\n"
        f"print([name for name in {forbidden!r} if name in sys.modules])\n",
        cwd=tmp_path,
    )
    assert process.stdout.strip().splitlines()[-1] == "[]", f"importing {package} pulled in {process.stdout}"
