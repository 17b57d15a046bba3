"""plans/invalid/: one broken rule per file, the expected message on its first line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator import api
from orchestrator.plan import PlanError, load_plan

ROOT = Path(__file__).resolve().parents[2]
INVALID = sorted((ROOT / "plans" / "invalid").glob("*.yaml"))
EXAMPLES = sorted((ROOT / "plans").glob("*.yaml"))
PLAN_SOURCES = sorted((ROOT / "orchestrator" / "plan").glob("*.py"))


def _header(path: Path) -> tuple[str, int | None]:
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# expect: "), f"{path.name}: first line must be '# expect: …'"
    expect = lines[0].removeprefix("# expect: ")
    line = int(lines[1].removeprefix("# line: ")) if lines[1].startswith("# line: ") else None
    return expect, line


def _problems(path: Path) -> tuple[str, ...]:
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    return tuple(str(p) for p in caught.value.problems)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_plan_has_exactly_its_one_problem(path: Path) -> None:
    """The file breaks exactly one rule, reported with the expected text (and line)."""
    expect, line = _header(path)
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    problems = caught.value.problems
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    assert expect in str(problems[0])
    assert problems[0].file == str(path)
    if line is not None:
        assert problems[0].line == line


def test_there_are_invalid_plans() -> None:
    """The glob found the directory (an empty parametrization would pass silently)."""
    assert len(INVALID) >= 80


def test_every_api_code_the_checker_emits_has_an_invalid_plan() -> None:
    """Each API code written in the checker's source is shown broken by some file."""
    source = "\n".join(p.read_text() for p in PLAN_SOURCES)
    literals = set(re.findall(r'"([A-Za-z]+(?:\.[A-Za-z]+)*)"', source))
    emitted = {code for code in literals if code in api.ERRORS}
    covered = {
        match
        for path in INVALID
        for problem in _problems(path)
        for match in re.findall(r"\(([A-Za-z]+(?:\.[A-Za-z]+)*)\)$", problem)
    }
    assert emitted, "no API code found in the checker's source"
    assert emitted <= covered, f"no invalid plan for {sorted(emitted - covered)}"


def test_api_codes_in_problems_are_real_codes() -> None:
    """A code shown in parentheses is one the API has (no typo invents a code)."""
    for path in INVALID:
        with pytest.raises(PlanError) as caught:
            load_plan(path)
        for problem in caught.value.problems:
            if problem.api:
                assert problem.code in api.ERRORS, f"{path.name}: {problem.code}"


def test_every_plan_rule_name_has_an_invalid_plan() -> None:
    """Each plan rule listed in the reference's rule index is shown broken by some file."""
    reference = (ROOT / "docs" / "plan-reference.md").read_text()
    index = reference.split("Plan rules (in brackets):", 1)[1]
    rules = set(re.findall(r"`([a-z-]+)`", index)) - {"read"}  # `read`: a file system fault
    covered = {
        match
        for path in INVALID
        for problem in _problems(path)
        for match in re.findall(r"\[([a-z-]+)\]$", problem)
    }
    assert rules <= covered, f"no invalid plan for {sorted(rules - covered)}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_plans_are_valid(path: Path) -> None:
    """The shipped example plans load without a problem."""
    plan = load_plan(path)
    assert plan.source == path
    assert len(plan.sha256) == 64
