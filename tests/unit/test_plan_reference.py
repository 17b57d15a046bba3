"""docs/plan-reference.md documents every field of the plan model and every accepted key."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest

from orchestrator.plan import (
    Amount,
    Command,
    Limits,
    Plan,
    Rollback,
    Targets,
    Verify,
    Wave,
    _gates,
    _load,
    _rollback,
)
from orchestrator.plan import _sections as plan_sections

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "plan-reference.md"
# Which section of the reference documents each dataclass of the model.
SECTIONS: dict[type, str] = {
    Plan: "Top level",
    Targets: "targets",
    Command: "command",
    Wave: "waves",
    Verify: "verify",
    Rollback: "rollback",
    Limits: "limits",
    Amount: "Amounts",
}


def _sections() -> dict[str, str]:
    """The reference's `## ` sections: heading → body (subsections included)."""
    parts = re.split(r"^## (.+)$", REFERENCE.read_text(), flags=re.MULTILINE)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def _nested(cls: type) -> list[type]:
    """The model's dataclasses named in `cls`'s field annotations (`tuple[Wave, ...]`,
    `Amount | None`); annotations are strings under `from __future__ import annotations`."""
    module = sys.modules[cls.__module__]
    found: list[type] = []
    for f in dataclasses.fields(cls):
        for name in re.findall(r"[A-Za-z_]\w*", str(f.type)):
            candidate = getattr(module, name, None)
            if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
                found.append(candidate)
    return found


def _model() -> list[type]:
    """Every dataclass reachable from Plan, Plan first."""
    seen: list[type] = []
    todo: list[type] = [Plan]
    while todo:
        cls = todo.pop(0)
        if cls not in seen:
            seen.append(cls)
            todo.extend(_nested(cls))
    return seen


def _documented(body: str, key: str) -> bool:
    return re.search(rf"^\| `{re.escape(key)}` \|", body, flags=re.MULTILINE) is not None


def test_the_walk_finds_the_whole_model() -> None:
    """Walking from Plan reaches every dataclass, and each has a section to be checked in."""
    model = _model()
    assert set(model) == set(SECTIONS), "a new dataclass needs a section in SECTIONS"


@pytest.mark.parametrize(
    ("cls", "name"),
    [(cls, f.name) for cls in _model() for f in dataclasses.fields(cls)],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_every_model_field_is_documented(cls: type, name: str) -> None:
    """Each dataclass field has a table row in its section of the reference."""
    sections = _sections()
    heading = SECTIONS[cls]
    assert heading in sections, f"no '## {heading}' section"
    assert _documented(sections[heading], name), f"'## {heading}' has no row for `{name}`"


@pytest.mark.parametrize(
    ("heading", "key"),
    [("Top level", k) for k in _load.TOP_KEYS]
    + [("command", k) for k in _load.COMMAND_KEYS]
    + [("targets", k) for k in plan_sections.TARGET_KEYS]
    + [("waves", k) for k in plan_sections.WAVE_KEYS]
    + [("verify", k) for k in _gates.VERIFY_KEYS]
    + [("rollback", k) for k in _rollback.ROLLBACK_KEYS]
    + [("limits", k) for k in plan_sections.LIMIT_KEYS],
)
def test_every_accepted_key_is_documented(heading: str, key: str) -> None:
    """Each key the loader accepts (some have no model field) has a row in its section."""
    assert _documented(_sections()[heading], key)


def test_reference_has_the_gate_chapter() -> None:
    """The rules of waves and gates are written down, with the anchors' worked numbers."""
    body = _sections()["Waves and gates"]
    for needle in (
        "(T+1)-th counted error",
        "| 3 | `[10%, 50%, 100%]` | 1, 2, 0",
        "| 7 | `[1, 25%, 100%]` | 1, 2, 4",
        "count_undelivered: false",
        "inconclusive",
        "--approve-all",
        "orchestrator approve RUN WAVE",
        "`a b c a b a b c a b`",
        "fails **everywhere**",
    ):
        assert needle in body, needle


def test_later_keys_are_named_in_the_reference() -> None:
    """Keys refused as not supported yet are listed, so nobody thinks they are typos."""
    text = REFERENCE.read_text()
    for key in [*_load.TOP_LATER, *plan_sections.WAVE_LATER]:
        assert f"`{key}`" in text
