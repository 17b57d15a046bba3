"""`check_credentials_in_use`: every string a plan sends, checked for the actual secret
and token values (and their Base64 spellings), the field named and the value never."""

from __future__ import annotations

import base64

import pytest

from orchestrator.plan import PlanError, check_credentials_in_use, parse_plan

SECRET = "Sec-3a9e7c1b5d-unit"
TOKEN = "TOKEN-1f2e3d4c5b6a-unit"
IN_USE = {"the access key secret": SECRET, "the security token": TOKEN}


def _plan(command: str, tail: str = ""):
    return parse_plan(f"name: unit\ntargets: {{tags: {{app: web}}}}\ncommand:\n{command}{tail}")


def _refusals(command: str, tail: str = "") -> list[str]:
    with pytest.raises(PlanError) as caught:
        check_credentials_in_use(_plan(command, tail), IN_USE)
    text = str(caught.value)
    assert SECRET not in text
    assert TOKEN not in text
    return [f"{p.field}: {p.message}" for p in caught.value.problems]


def test_a_plan_without_them_passes() -> None:
    check_credentials_in_use(_plan('  content: echo {{x}}\n  parameters: {x: "1"}\n'), IN_USE)


@pytest.mark.parametrize("prefix", ["", "x", "xy"])  # every alignment of Base64's groups
def test_the_base64_of_the_secret_is_found_wherever_it_starts(prefix: str) -> None:
    encoded = base64.b64encode(f"{prefix}{SECRET} tail".encode()).decode()
    found = _refusals(f"  content: echo {encoded} | base64 -d | sh\n")
    assert found == [
        (
            "command.content: holds the access key secret in use: "
            "a plan may not send the run's credentials"
        )
    ]


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (f"  content: echo hi\n  name: {TOKEN}\n", "command.name"),
        (f"  content: echo hi\n  description: x{TOKEN}x\n", "command.description"),
        (f"  content: echo hi\n  working_dir: /tmp/{TOKEN}\n", "command.working_dir"),
        (f"  content: echo hi\n  username: {TOKEN}\n", "command.username"),
    ],
)
def test_every_text_field_is_checked(command: str, field: str) -> None:
    assert [f.split(":")[0] for f in _refusals(command)] == [field]


def test_a_key_holding_a_secret_is_not_named() -> None:
    found = _refusals(f"  content: echo {{{{{SECRET}}}}}\n  parameters: {{{SECRET}: v}}\n")
    assert "command.parameters: holds the access key secret in use in a key: " in "\n".join(found)


def test_the_plan_name_is_checked_it_starts_the_run_id() -> None:
    plan = parse_plan(
        f"name: n{SECRET}\ntargets: {{tags: {{app: web}}}}\ncommand: {{content: x, name: y}}\n"
    )
    with pytest.raises(PlanError, match=r"^<plan>: name: holds the access key secret in use"):
        check_credentials_in_use(plan, IN_USE)


def test_without_a_token_only_the_secret_is_looked_for() -> None:
    check_credentials_in_use(
        _plan(f"  content: echo {TOKEN}\n"), {"the access key secret": SECRET, "x": ""}
    )
