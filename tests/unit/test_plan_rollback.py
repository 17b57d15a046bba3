"""A plan's `rollback:`: read like a verify, its own gate, the rule `on_breach: rollback`
adds, and `rollback_plan`, the plan a rollback run runs."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from orchestrator.cli._recorded import recorded_plan
from orchestrator.errors import PlanError, Problem
from orchestrator.journal import RunHeader, RunOrigin
from orchestrator.plan import (
    ROLLBACK_WAVE,
    Amount,
    Command,
    Rollback,
    Verify,
    Wave,
    load_plan,
    override_params,
    parse_plan,
    rollback_plan,
)

if TYPE_CHECKING:
    from pathlib import Path

MINIMAL = """\
name: rb
targets:
  tags: {app: web}
command:
  parameters: {version: "1.27.0"}
  content: yum install -y nginx-{{version}}
  username: app
  working_dir: /opt/app
  tags: {team: web}
"""
WITH_ROLLBACK = (
    MINIMAL
    + """\
waves:
  - {name: canary, size: 1, approval: true, verify: {content: nginx -v}}
  - {name: rest, size: 100%, max_errors: 2, pause: 30}
rollback:
  content: yum downgrade -y nginx-{{version}}
  timeout: 120
  max_errors: 10%
  max_concurrency: 5
on_breach: rollback
"""
)


def _problems(text: str) -> tuple[Problem, ...]:
    with pytest.raises(PlanError) as caught:
        parse_plan(text)
    return caught.value.problems


def test_every_rollback_key_reaches_the_model() -> None:
    """content (with the command's parameters put in), type, timeout and the gate keys."""
    plan = parse_plan(WITH_ROLLBACK)
    assert plan.on_breach == "rollback"
    assert plan.rollback == Rollback(
        content="yum downgrade -y nginx-{{version}}",  # filled when it is sent
        type="RunShellScript",
        timeout=120,
        max_errors=Amount(10, percent=True),
        max_concurrency=Amount(5),
    )


def test_a_rollback_defaults_to_no_error_limit_and_the_command_s_type() -> None:
    """A rollback that fails somewhere still rolls back the rest: no limit unless said."""
    plan = parse_plan(
        MINIMAL.replace("command:\n", "command:\n  type: RunPowerShellScript\n").replace(
            "  username: app\n", ""
        )
        + "rollback: {content: Restart-Service app}\n"
    )
    assert plan.rollback == Rollback("Restart-Service app", "RunPowerShellScript", 60)
    assert plan.rollback.max_errors is None
    assert plan.on_breach == "stop_in_flight"  # a rollback: section alone changes nothing


def test_no_rollback_section_is_none() -> None:
    assert parse_plan(MINIMAL).rollback is None


def test_on_breach_rollback_needs_a_rollback_section() -> None:
    """Named: the field, the rule, the line of on_breach."""
    problems = _problems(MINIMAL + "on_breach: rollback\n")
    assert [(p.field, p.code, p.line) for p in problems] == [("on_breach", "on-breach", 10)]
    assert "rollback: section" in problems[0].message
    assert str(problems[0]).startswith("<plan>:10: on_breach: ")


def test_a_broken_rollback_is_not_also_reported_missing() -> None:
    """`rollback:` that is not a mapping is one problem, not two."""
    problems = _problems(MINIMAL + "rollback: yum downgrade nginx\non_breach: rollback\n")
    assert [(p.field, p.code) for p in problems] == [("rollback", "type")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{}", [("rollback", "content-or-script")]),
        ("{content: '  '}", [("rollback.content", "MissingParameter")]),
        ("{content: x, script: undo.sh}", [("rollback.script", "content-or-script")]),
        ("{content: x, type: RunBashScript}", [("rollback.type", "InvalidCmdType.NotFound")]),
        ("{content: x, type: RunBatScript}", [("rollback.type", "rollback-type")]),
        ("{content: x, timeout: -1}", [("rollback.timeout", "InvalidParameter")]),
        ("{content: x, timeout: '60'}", [("rollback.timeout", "InvalidParameter")]),
        ("{content: 'echo {{ACS::InstanceId}}'}", [("rollback.content", "rollback-parameters")]),
        ("{content: 'echo {{nope}}'}", [("rollback.content", "rollback-parameters")]),
        ("{content: x, max_errors: -1}", [("rollback.max_errors", "max-errors")]),
        ("{content: x, max_errors: 101%}", [("rollback.max_errors", "max-errors")]),
        ("{content: x, max_concurrency: 0}", [("rollback.max_concurrency", "max-concurrency")]),
        ("{content: x, pause: 5}", [("rollback.pause", "unknown-key")]),
        ("{content: x, verify: {content: y}}", [("rollback.verify", "unknown-key")]),
    ],
)
def test_rollback_rules(body: str, expected: list[tuple[str, str]]) -> None:
    """The API's rules with the API's codes, the verify's rules under rollback's names."""
    problems = _problems(f"{MINIMAL}rollback: {body}\n")
    assert [(p.field, p.code) for p in problems] == expected


def test_a_rollback_too_large_is_refused_with_the_api_code() -> None:
    big = "x" * (20 * 1024)
    problems = _problems(f"{MINIMAL}rollback: {{content: {big}}}\n")
    assert [(p.field, p.code) for p in problems] == [("rollback.content", "CmdContent.ExceedLimit")]


def test_a_rollback_script_is_read_confined_scanned_and_hashed(tmp_path: Path) -> None:
    """`script` is read from the plan's directory, counts in the hash, is scanned for
    credentials, and may not leave the plan's directory."""
    (tmp_path / "undo.sh").write_text("systemctl restart app\n")
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(MINIMAL + "rollback: {script: undo.sh}\n")
    plan = load_plan(plan_file)
    assert plan.rollback is not None
    assert plan.rollback.content == "systemctl restart app\n"
    expected = hashlib.sha256(plan_file.read_bytes() + b"systemctl restart app\n").hexdigest()
    assert plan.sha256 == expected

    (tmp_path / "undo.sh").write_text("export KEY=LTAI5tAbCdEfGhIjKlMnOpQr\n")
    with pytest.raises(PlanError) as caught:
        load_plan(plan_file)
    assert [p.field for p in caught.value.problems] == ["rollback.script"]
    assert "LTAI5t" not in str(caught.value)

    outside = tmp_path.parent / f"{tmp_path.name}-outside.sh"
    outside.write_text("true\n")
    plan_file.write_text(MINIMAL + f"rollback: {{script: ../{outside.name}}}\n")
    with pytest.raises(PlanError) as caught:
        load_plan(plan_file)
    assert [(p.field, p.code) for p in caught.value.problems] == [("rollback.script", "script")]


def test_an_inline_secret_in_a_rollback_is_refused() -> None:
    problems = _problems(f"{MINIMAL}rollback: {{content: 'echo LTAI5tAbCdEfGhIjKlMnOpQr'}}\n")
    assert [p.field for p in problems] == ["rollback.content"]
    assert "LTAI5t" not in str(problems[0])


# --- rollback_plan ------------------------------------------------------------------------


def test_rollback_plan_runs_the_rollback_in_one_wave_of_its_gate() -> None:
    """The command is the rollback's; one wave, no verify, pause or approval; a rollback
    stops what runs on its own breach, and never rolls back."""
    plan = parse_plan(WITH_ROLLBACK)
    rollback = rollback_plan(plan)
    assert rollback.command == Command(
        content="yum downgrade -y nginx-1.27.0",
        type="RunShellScript",
        name="rb",
        timeout=120,
        tags=plan.command.tags,
        enable_parameter=False,
    )
    assert not rollback.command.parameters_enabled
    assert rollback.waves == (
        Wave(
            ROLLBACK_WAVE,
            Amount(100, percent=True),
            max_errors=Amount(10, percent=True),
            max_concurrency=Amount(5),
        ),
    )
    assert (rollback.on_breach, rollback.rollback) == ("stop_in_flight", None)
    # What is not the command's or the waves' is the plan's own.
    same = ("name", "targets", "limits", "region", "source", "sha256", "order")
    assert all(getattr(rollback, key) == getattr(plan, key) for key in same)


def test_rollback_plan_of_a_default_rollback_has_no_error_limit() -> None:
    plan = rollback_plan(parse_plan(MINIMAL + "rollback: {content: undo}\n"))
    assert plan.waves == (Wave(ROLLBACK_WAVE, Amount(100, percent=True), max_errors=None),)
    assert all(wave.verify is None for wave in plan.waves)


def test_rollback_plan_refuses_a_plan_without_rollback() -> None:
    with pytest.raises(ValueError, match="no rollback"):
        rollback_plan(parse_plan(MINIMAL))


def _header(origin: RunOrigin) -> RunHeader:
    return RunHeader(
        run_id="rb-1",
        plan_name="rb",
        plan_path="/nowhere/plan.yaml",
        plan_text=WITH_ROLLBACK,
        plan_sha256="ab" * 32,
        target={"region": "cn-hangzhou"},
        created_at=datetime(2026, 5, 1, tzinfo=UTC),
        instances=(),
        skipped=(),
        waves=(),
        origin=origin,
    )


def test_recorded_plan_of_a_rollback_run_is_the_rollback_plan() -> None:
    """A rollback run's journal keeps its parent's plan text: a resume derives the same
    rollback plan from it; a plan file's run stays the plan."""
    rollback = recorded_plan(_header(RunOrigin(kind="rollback", parent="run-0")))
    assert [wave.name for wave in rollback.waves] == [ROLLBACK_WAVE]
    assert rollback.command.content == "yum downgrade -y nginx-1.27.0"
    forward = recorded_plan(_header(RunOrigin()))
    assert [wave.name for wave in forward.waves] == ["canary", "rest"]
    assert forward.waves[0].verify == Verify("nginx -v")


def test_a_param_override_reaches_the_rollback() -> None:
    """`--param version=1.28.0` on the run: its rollback puts back that version's change."""
    plan = override_params(parse_plan(WITH_ROLLBACK), {"version": "1.28.0"})
    assert rollback_plan(plan).command.content == "yum downgrade -y nginx-1.28.0"
