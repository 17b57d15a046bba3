"""Each public package's `__all__` names exactly what it exports (ruff keeps it sorted)."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = [
    "orchestrator",
    "orchestrator.ecs",
    "orchestrator.plan",
    "orchestrator.rollout",
    "orchestrator.sim",
    "orchestrator.testing",
]


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_complete_and_sorted(name: str):
    """Every public name is in __all__, and everything in __all__ exists."""
    module = importlib.import_module(name)
    exported = module.__all__
    for member in exported:
        assert hasattr(module, member), member
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and getattr(v, "__module__", "").startswith("orchestrator")
        and not isinstance(v, type(importlib))
    }
    assert public <= set(exported), public - set(exported)
