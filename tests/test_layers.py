"""The package's layers (docs/architecture.rst), checked on its imports.

Every module of numba_loopopt is read with :mod:`ast` (nothing is imported)
and each of its imports of another numba_loopopt module -- at module level
or inside a function -- is an edge of the import graph.  Then:

* the graph has no cycle;
* a module imports only from its own layer or a lower one (``LAYERS``), and
  a pass of ``transforms/`` imports no other pass (shared code lives in
  ``analysis/``, or in a helper module of ``transforms/`` that is no pass).

``ALLOWED`` lists the violations that remain until the modules named there
switch; it must shrink to empty.  A new violation fails, and so does an
entry that no longer matches any import (delete it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import numba_loopopt

PACKAGE = "numba_loopopt"
ROOT = Path(numba_loopopt.__file__).resolve().parent

#: The layers, bottom up.  A module belongs to the layer of the longest
#: entry it equals or lies under ("" is the package's ``__init__``).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # Leaf modules: they import nothing of the package above this layer.
    ("leaf", ("_version", "_compat", "options", "remarks", "irbuild", "runtime",
              "elide", "global_arrays", "vecmath", "scalar_calls")),
    ("analysis", ("analysis",)),
    ("pass base", ("passbase",)),
    ("transforms", ("transforms",)),
    ("pipeline", ("pipeline",)),
    ("API", ("decorator", "dispatcher", "testing")),
    # The package's face (it imports what it exports and switches the
    # PyTensor integration on), the integrations and the command line.
    ("integrations and command line", ("", "pytensor", "cli", "__main__")),
]

#: Violations that remain until the importing module switches, as
#: (importer, imported): the importer is a module or a package (then it
#: covers every module in it).  Each entry says what replaces the import.
#: This must shrink to empty.
ALLOWED: dict[tuple[str, str], str] = {}


# -- Reading the package ---------------------------------------------------------


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the package: name -> (path, whether it is a package)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if "__pycache__" in parts:
            continue
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join([PACKAGE, *parts])] = (path, is_package)
    return found


MODULES = _modules()


def _resolve(importer: str, is_package: bool, node: ast.AST) -> set[str]:
    """The package modules an import statement of ``importer`` reaches."""
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        targets.update(n for n in names if n in MODULES)
        return targets
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base_parts = importer.split(".")
        if not is_package:
            base_parts = base_parts[:-1]
        base_parts = base_parts[:len(base_parts) - (node.level - 1)]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base not in MODULES:
        return targets
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        targets.add(sub if sub in MODULES else base)
    return targets


def import_graph() -> dict[str, set[str]]:
    """importer -> the package modules it imports (any import statement,
    at module level or in a function; implicit imports of parent packages
    are not edges)."""
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _resolve(name, is_package, node)
        edges.discard(name)
        graph[name] = edges
    return graph


GRAPH = import_graph()


def layer_of(module: str) -> int | None:
    rel = module[len(PACKAGE) + 1:] if module != PACKAGE else ""
    best, best_len = None, -1
    for rank, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            if (rel == entry or (entry and rel.startswith(entry + "."))) \
                    and len(entry) > best_len:
                best, best_len = rank, len(entry)
    return best


def _defines_a_pass(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                if name == "LoopOptPass":
                    return True
    return False


def pass_units() -> set[str]:
    """The children of ``transforms`` (modules or packages) holding a pass."""
    units = set()
    prefix = f"{PACKAGE}.transforms."
    for name, (path, _) in MODULES.items():
        if name.startswith(prefix) and _defines_a_pass(path):
            units.add(prefix + name[len(prefix):].split(".")[0])
    return units


def _unit(module: str, units: set[str]) -> str | None:
    return next((u for u in units if module == u or module.startswith(u + ".")), None)


def violations() -> dict[tuple[str, str], str]:
    """Every import breaking the layering: (importer, imported) -> why."""
    units = pass_units()
    found = {}
    for importer, targets in GRAPH.items():
        for target in targets:
            low, high = layer_of(importer), layer_of(target)
            if low is None or high is None:
                continue  # test_every_module_has_a_layer says so
            if high > low:
                found[importer, target] = (f"the {LAYERS[low][0]} layer imports from the "
                                           f"{LAYERS[high][0]} layer above it")
            mine, theirs = _unit(importer, units), _unit(target, units)
            if mine and theirs and mine != theirs:
                found[importer, target] = f"the pass {mine} imports the pass {theirs}"
    return found


def _allowed_entry(importer: str, target: str) -> tuple[str, str] | None:
    for entry in ALLOWED:
        who, what = entry
        if target == what and (importer == who or importer.startswith(who + ".")):
            return entry
    return None


# -- The checks ------------------------------------------------------------------


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in MODULES if layer_of(m) is None)
    assert not unplaced, (f"modules in no layer: {unplaced}; add them to LAYERS here "
                          "and to docs/architecture.rst")


def test_the_graph_sees_every_kind_of_import():
    # Module level, relative, and from a package (``from .. import irbuild``).
    assert f"{PACKAGE}.passbase" in GRAPH[f"{PACKAGE}.pipeline"]
    assert f"{PACKAGE}.irbuild" in GRAPH[f"{PACKAGE}.transforms.while_to_range"]
    assert f"{PACKAGE}.transforms.modulo_versioning" in GRAPH[
        f"{PACKAGE}.transforms.while_to_range"]
    # Inside a function: the pipeline imports the passes where it adds them.
    assert f"{PACKAGE}.transforms.fuse_loops" in GRAPH[f"{PACKAGE}.pipeline"]
    # Absolute, and of a name of the package itself.
    assert f"{PACKAGE}.cli" in GRAPH[f"{PACKAGE}.__main__"]
    assert PACKAGE not in GRAPH[f"{PACKAGE}.cli.bench"]  # its version: from .._version


def test_the_passes_are_found():
    units = pass_units()
    assert {f"{PACKAGE}.transforms.{name}" for name in
            ("inline", "while_to_range", "fuse_loops", "fuse_reduce")} <= units
    assert f"{PACKAGE}.transforms.modulo_versioning" not in units


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    graph = {m: {t for t in targets if _allowed_entry(m, t) is None}
             for m, targets in GRAPH.items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_each_module_imports_only_its_own_layer_or_below():
    new = {edge: why for edge, why in violations().items() if _allowed_entry(*edge) is None}
    assert not new, "imports breaking the layers (docs/architecture.rst):\n" + "\n".join(
        f"  {importer} imports {target}: {why}" for (importer, target), why in sorted(new.items()))


def test_the_allow_list_only_shrinks():
    used = {_allowed_entry(*edge) for edge in violations()}
    stale = sorted(set(ALLOWED) - used)
    assert not stale, ("fixed, so delete these entries of ALLOWED in tests/test_layers.py: "
                       + "; ".join(f"{a} -> {b}" for a, b in stale))


@pytest.mark.parametrize("module", [f"{PACKAGE}.transforms", f"{PACKAGE}.analysis"])
def test_the_compiler_core_never_imports_the_command_line(module):
    for importer, targets in GRAPH.items():
        if importer == module or importer.startswith(module + "."):
            assert not [t for t in targets if layer_of(t) == len(LAYERS) - 1], importer


# -- docs/architecture.rst lists every module ------------------------------------

ARCHITECTURE = ROOT.parent / "docs" / "architecture.rst"


def _documented_tree() -> set[str]:
    """The paths in the package tree of docs/architecture.rst: ``options.py``,
    ``analysis/``, ``analysis/loops.py``."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("The package\n-----------", 1)[1].split(".. code-block:: text", 1)[1]
    lines = block.split("\n\n", 2)[1].splitlines()  # after the directive's blank line
    assert lines[0].strip() == f"{PACKAGE}/", lines[0]
    paths, parents = set(), []
    base = len(lines[0]) - len(lines[0].lstrip())
    for line in lines[1:]:
        token = line.split()[0] if line.strip() else ""
        depth = (len(line) - len(line.lstrip()) - base) // 2 - 1
        if not token.endswith((".py", "/")):
            continue  # a description's second line
        parents = parents[:depth]
        path = "".join(parents) + token
        paths.add(path)
        if token.endswith("/"):
            parents.append(token)
    return paths


def _package_tree() -> set[str]:
    """The same paths from the package, three levels deep (a subpackage's
    ``__init__.py`` is its ``name/`` line; a package inside ``transforms/``
    may be shown as its ``name.py``)."""
    paths = {"__init__.py"}
    for name, (_, is_package) in MODULES.items():
        parts = name.split(".")[1:]
        if parts and len(parts) <= 3:
            paths.add("/".join(parts) + ("/" if is_package else ".py"))
    return paths


def test_the_architecture_page_lists_every_module():
    documented, actual = _documented_tree(), _package_tree()
    # A pass that became a package may still be documented as its module.
    actual = {p[:-1] + ".py" if p.startswith("transforms/") and p.endswith("/")
              and p[:-1] + ".py" in documented else p for p in actual}
    assert sorted(actual - documented) == [], "modules missing from docs/architecture.rst"
    assert sorted(documented - actual) == [], "docs/architecture.rst lists modules that are gone"
