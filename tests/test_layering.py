"""The house's plan, checked from its imports: no circle anywhere in ``dynmask_core`` and ``dynmask_app``, and no
import from a lower layer to a higher one (imports inside functions count: they are arrows all the same).

The layers, lowest first, are :data:`CORE_LAYERS` then :data:`APP_LAYERS`; a module belongs to the layer of the
longest prefix that names it. The core never imports the app nor Streamlit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import ROOT

PACKAGES = ("dynmask_core", "dynmask_app")

#: The core, lowest first: plain helpers; masks; inputs; the numbers; the engine and models; what uses them;
#: the pictures; the recipe; the command line.
CORE_LAYERS: tuple[tuple[str, ...], ...] = (
    ("dynmask_core.messages", "dynmask_core._arrays", "dynmask_core.capture"),
    ("dynmask_core.masks", "dynmask_core.sparse_attention"),
    ("dynmask_core.modalities",),
    ("dynmask_core.analysis",),
    ("dynmask_core.attention", "dynmask_core.engine", "dynmask_core.models"),
    ("dynmask_core.samples", "dynmask_core.lessons", "dynmask_core.attribution", "dynmask_core.export",
     "dynmask_core.mask_code"),
    ("dynmask_core.viz",),
    ("dynmask_core.recipe",),
    ("dynmask_core.cli", "dynmask_core.__main__", "dynmask_core"),
)
#: The app, lowest first: the shell's shared parts; the server; the sidebar's editor; the views; the page.
APP_LAYERS: tuple[tuple[str, ...], ...] = (
    ("dynmask_app.messages", "dynmask_app.i18n", "dynmask_app.page_registry", "dynmask_app.state",
     "dynmask_app.missing_page", "dynmask_app.session", "dynmask_app.kinds", "dynmask_app"),
    ("dynmask_app.server",),
    ("dynmask_app.editor",),
    ("dynmask_app.views",),
    ("dynmask_app.page",),
)
LAYERS = CORE_LAYERS + APP_LAYERS


def modules() -> dict[str, Path]:
    """Every module of the two packages: dotted name -> file (a package is its ``__init__``)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of the two packages (and ``streamlit``) that ``name`` imports, anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known and target.split(".")[0] in PACKAGES:
                target = target.rpartition(".")[0]  # an attribute of a module: the module itself
            if target in known or target.split(".")[0] == "streamlit":
                out.add(target if target in known else "streamlit")
    out.discard(name)
    return out


def layer_of(name: str) -> int:
    """The layer of a module: the one whose longest prefix names it."""
    best, rank = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank < 0:
        raise AssertionError(f"{name} is in no layer: add it to CORE_LAYERS or APP_LAYERS")
    return rank


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one module (each holds a circle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer(graph) -> None:
    for name in graph:
        layer_of(name)


def test_no_circle_in_the_imports(graph) -> None:
    assert cycles(graph) == []


def test_no_import_goes_up_a_layer(graph) -> None:
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                    if b in graph and layer_of(b) > layer_of(a))
    assert upward == []


def test_the_core_never_imports_the_app_or_streamlit(graph) -> None:
    leaks = sorted(f"{a} -> {b}" for a, targets in graph.items() if a.startswith("dynmask_core")
                   for b in targets if b == "streamlit" or b.startswith("dynmask_app"))
    assert leaks == []


def test_the_checks_see_a_circle_and_an_upward_import() -> None:
    """The checks themselves: a made-up circle and a made-up upward arrow are found."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("dynmask_core.analysis.outputs") < layer_of("dynmask_core.viz.outputs")
    assert layer_of("dynmask_app.server.runner") < layer_of("dynmask_app.editor.inputs")
    assert layer_of("dynmask_app.views.playground") < layer_of("dynmask_app.page")
