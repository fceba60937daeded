"""The library's arrows point down: each package of ``bdisc`` imports only packages of
lower layers (siblings of one layer stay independent), and no modules import each other
in a circle. Imports inside functions count; ``if TYPE_CHECKING:`` ones do not."""

from __future__ import annotations

import ast
from pathlib import Path

import bdisc

ROOT = Path(bdisc.__file__).parent
LAYERS: list[set[str]] = [
    {"errors", "fsutil", "logs", "version", "settings", "prefetch", "tracing"},
    {"audio", "model", "ports"},
    {"params"},  # what a run computes: above audio and model, below everything that runs
    {"outputs", "render"},
    {"pipeline"},
    {"interop"},  # other tools' files: BirdNET-Analyzer's embeddings, Raven, Audacity
    {"discovery", "evaluation"},
    {"training", "search"},  # from labels to a classifier; search by example, duplicates
    {"adapters", "app", "client"},  # app talks to ports, never to adapters
    {"service", "cli", "webapp", "<root>"},  # wiring, commands, the review app, the API
]
LAYER = {package: i for i, packages in enumerate(LAYERS) for package in packages}


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        if "v1" in rel.parts or "migrations" in rel.parts:
            continue  # generated gRPC stubs, Alembic's migration scripts
        name = ".".join(rel.parts).removesuffix(".__init__")
        found[name] = path
    return found


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(n) for child in node.body for n in ast.walk(child)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{a.name}" for a in node.names]
            # ``from bdisc import tracing`` imports the module, not the package's API
            named = [s for s in submodules if s in known]
            candidates = named if len(named) == len(submodules) else [node.module, *named]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found |= {c for c in candidates if c in known}
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_every_package_has_a_layer() -> None:
    assert {package(m) for m in modules()} <= set(LAYER)


def test_packages_import_only_lower_layers() -> None:
    wrong = sorted(
        f"{a} -> {b}"
        for a, targets in graph().items()
        for b in targets
        if package(a) != package(b) and LAYER[package(b)] >= LAYER[package(a)]
    )
    assert wrong == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert circles == []


def test_the_checks_see_real_imports() -> None:
    """The graph is not empty by mistake: known arrows are found."""
    edges = graph()
    assert "bdisc.app.messages" in edges["bdisc.app.orchestrator"]
    assert "bdisc.errors" in edges["bdisc.audio.reader"]
    assert "bdisc.evaluation.config" in edges["bdisc.evaluation.api"]
