"""The package's layers, read from the source: who may import whom.

Every import counts, those under `if TYPE_CHECKING:` too: a type-only import is still a
dependency a reader has to hold in mind, and a circle of two is one module split in two.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import orchestrator

ROOT = Path(orchestrator.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["orchestrator", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """The orchestrator modules `name` imports (a package's `from pkg import mod` is the module)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name) for name in MODULES}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def test_no_two_modules_import_each_other():
    circles = sorted(
        (a, b)
        for a, deps in GRAPH.items()
        for b in deps
        if a < b and a in GRAPH[b] and not _is_package(a) and not _is_package(b)
    )
    assert circles == []


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        # The API's facts are a contract of their own: they depend on nothing of ours.
        ("orchestrator.api", ("orchestrator.",)),
        # The plan checker and the simulator read the facts, never the client: a bug
        # shared by client and simulator would be invisible to every test.
        ("orchestrator.plan", ("orchestrator.ecs", "orchestrator.rollout", "orchestrator.cli")),
        ("orchestrator.sim", ("orchestrator.ecs", "orchestrator.rollout", "orchestrator.plan")),
        ("orchestrator.ecs", ("orchestrator.rollout", "orchestrator.plan", "orchestrator.cli")),
        ("orchestrator.rollout", ("orchestrator.cli", "orchestrator.report")),
    ],
)
def test_a_layer_imports_nothing_above_it(layer: str, forbidden: tuple[str, ...]):
    wrong = {
        name: sorted(dep for dep in deps if dep.startswith(forbidden) and not dep.startswith(layer))
        for name, deps in GRAPH.items()
        if name == layer or name.startswith(layer + ".")
    }
    assert {name: deps for name, deps in wrong.items() if deps} == {}


def test_the_graph_is_read():
    """The reader finds imports at all (a broken reader would pass every test above)."""
    assert "orchestrator.api" in GRAPH["orchestrator.ecs._client"]
    assert "orchestrator.sim._actions" in GRAPH["orchestrator.sim._simulation"]
