"""Each public package's `__all__` names exactly what it exports (ruff keeps it sorted)."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = [
    "orchestrator",
    "orchestrator.api",
    "orchestrator.ecs",
    "orchestrator.journal",
    "orchestrator.plan",
    "orchestrator.report",
    "orchestrator.rollout",
    "orchestrator.sim",
    "orchestrator.testing",
]


def _defined_in(value: object, package: str) -> bool:
    """Defined in `package` or its private modules, not imported from elsewhere."""
    module = getattr(value, "__module__", None) or ""
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_complete(name: str):
    """Every public name the package defines is in __all__, and all of __all__ exists."""
    module = importlib.import_module(name)
    exported = set(module.__all__)
    for member in exported:
        assert hasattr(module, member), member
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and _defined_in(v, name) and not isinstance(v, type(importlib))
    }
    assert public <= exported, public - exported
