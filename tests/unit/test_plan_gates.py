"""Wave gates in plans: every key reaching the model, wave_defaults, verify, durations."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest

from orchestrator.errors import PlanError, Problem
from orchestrator.plan import Amount, Verify, Wave, load_plan, parse_plan
from orchestrator.plan._findings import Findings
from orchestrator.plan._reader import LATER, Section
from orchestrator.plan._values import format_duration, parse_duration, parse_threshold

if TYPE_CHECKING:
    from pathlib import Path

MINIMAL = """\
name: gates
targets:
  tags: {app: web}
command:
  parameters: {version: "1.27.0"}
  content: yum install -y nginx-{{version}}
"""
PERCENT = Amount(100, percent=True)


def _problems(text: str) -> tuple[Problem, ...]:
    with pytest.raises(PlanError) as caught:
        parse_plan(text)
    return caught.value.problems


# --- every gate key reaches the model ------------------------------------------------------


def test_every_gate_key_reaches_the_model() -> None:
    """A wave's gate keys and the top-level run policy land in their fields."""
    plan = parse_plan(
        MINIMAL
        + """\
waves:
  - name: canary
    size: 1
    max_errors: 0
    max_concurrency: 1
    pause: 1h30m
    approval: true
    verify: {content: "nginx -v 2>&1 | grep -F {{version}}", type: RunShellScript, timeout: 9}
  - {name: early, size: 10%, max_errors: 5%, max_concurrency: 50%, pause: 90}
  - {name: rest, size: 100%, max_errors: 2}
on_breach: finish_in_flight
order: by_zone
count_undelivered: false
"""
    )
    canary, early, rest = plan.waves
    assert canary == Wave(
        "canary",
        Amount(1),
        max_errors=Amount(0),
        max_concurrency=Amount(1),
        pause=5400.0,
        approval=True,
        verify=Verify("nginx -v 2>&1 | grep -F 1.27.0", "RunShellScript", 9),
    )
    assert early == Wave(
        "early",
        Amount(10, percent=True),
        max_errors=Amount(5, percent=True),
        max_concurrency=Amount(50, percent=True),
        pause=90.0,
    )
    assert rest == Wave("rest", PERCENT, max_errors=Amount(2))
    assert (plan.on_breach, plan.order, plan.count_undelivered) == (
        "finish_in_flight",
        "by_zone",
        False,
    )


# --- wave_defaults ------------------------------------------------------------------------

DEFAULTS = """\
wave_defaults:
  max_errors: 2%
  max_concurrency: 25%
  pause: 10m
  approval: true
  verify: {content: "curl -fsS localhost/healthz"}
"""
HEALTH = Verify("curl -fsS localhost/healthz")


def test_wave_defaults_fill_what_a_wave_leaves_out() -> None:
    """Each gate key comes from the wave if it sets it, else from wave_defaults."""
    plan = parse_plan(
        MINIMAL
        + DEFAULTS
        + """\
waves:
  - {name: canary, size: 1, max_errors: 0, approval: false, pause: 0, verify: false}
  - {name: rest, size: 100%}
"""
    )
    canary, rest = plan.waves
    assert canary == Wave("canary", Amount(1), max_concurrency=Amount(25, percent=True))
    assert rest == Wave(
        "rest",
        PERCENT,
        max_errors=Amount(2, percent=True),
        max_concurrency=Amount(25, percent=True),
        pause=600.0,
        approval=True,
        verify=HEALTH,
    )


def test_shorthand_waves_take_the_defaults() -> None:
    """The Ansible shorthand gives sizes only; the gates come from wave_defaults."""
    plan = parse_plan(MINIMAL + DEFAULTS + 'waves: [1, "100%"]\n')
    assert [w.max_errors for w in plan.waves] == [Amount(2, percent=True)] * 2
    assert [w.verify for w in plan.waves] == [HEALTH, HEALTH]
    assert [w.approval for w in plan.waves] == [True, True]


def test_shorthand_waves_without_defaults_take_the_models() -> None:
    """Without wave_defaults a shorthand wave has the model's gate: 0 errors, no waits."""
    plan = parse_plan(MINIMAL + 'waves: [1, "100%"]\n')
    assert plan.waves == (Wave("wave-1", Amount(1)), Wave("wave-2", PERCENT))


def test_the_implicit_wave_takes_the_defaults() -> None:
    """A plan without waves runs as one wave, `all`, gated by wave_defaults."""
    (wave,) = parse_plan(MINIMAL + "wave_defaults: {max_errors: 3}\n").waves
    assert wave == Wave("all", PERCENT, max_errors=Amount(3))


def test_a_bad_default_is_reported_once() -> None:
    """A problem in wave_defaults is reported at its own path, not once per wave."""
    problems = _problems(MINIMAL + "wave_defaults: {pause: 2 hours}\nwaves: [1, 2, 100%]\n")
    assert [(p.field, p.code) for p in problems] == [("wave_defaults.pause", "pause")]
    assert "write 2h" in problems[0].message


# --- verify -------------------------------------------------------------------------------


def test_verify_type_defaults_to_the_commands() -> None:
    """A Windows command gets a PowerShell verify unless it says otherwise."""
    plan = parse_plan(
        """\
name: win
targets: {tags: {app: report}}
command: {type: RunPowerShellScript, content: Restart-Service report}
waves:
  - {size: 1, verify: {content: Get-Service report}}
  - {size: 100%, verify: {content: sc query report, type: RunBatScript}}
"""
    )
    assert [w.verify.type for w in plan.waves if w.verify] == [
        "RunPowerShellScript",
        "RunBatScript",
    ]


def test_verify_parameters_are_filled_from_the_command() -> None:
    """{{name}} in a verify takes the command's value (case-insensitive); other braces stay."""
    plan = parse_plan(
        MINIMAL
        + """\
wave_defaults:
  verify:
    content: "test {{ VERSION }} = 1.27.0 && docker inspect -f '{{.State}}' web"
"""
    )
    assert plan.waves[0].verify == Verify(
        "test 1.27.0 = 1.27.0 && docker inspect -f '{{.State}}' web"
    )


def test_verify_problems_name_each_reference_once() -> None:
    """Built-ins, store values and unknown names are each refused once, at the content."""
    problems = _problems(
        MINIMAL
        + """\
wave_defaults:
  verify:
    content: "{{ACS::InstanceId}} {{oos-secret:pw}} {{nope}} {{nope}}"
"""
    )
    assert [p.code for p in problems] == ["verify-parameters"] * 3
    assert {p.field for p in problems} == {"wave_defaults.verify.content"}


def test_verify_script_is_read_relative_to_the_plan_and_hashed(tmp_path: Path) -> None:
    """A verify script joins the hash after the command's script, defaults before waves."""
    (tmp_path / "run.sh").write_text("echo run {{version}}\n")
    (tmp_path / "check.sh").write_text("echo default check\n")
    (tmp_path / "canary.sh").write_text("echo canary check {{version}}\n")
    text = """\
name: scripts
targets: {tags: {app: web}}
command: {script: run.sh, parameters: {version: "2"}}
wave_defaults: {verify: {script: check.sh}}
waves:
  - {name: canary, size: 1, verify: {script: canary.sh, timeout: 5}}
  - {name: rest, size: 100%}
"""
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    plan = load_plan(path)
    assert plan.waves[0].verify == Verify("echo canary check 2\n", timeout=5)
    assert plan.waves[1].verify == Verify("echo default check\n")
    files = [path, tmp_path / "run.sh", tmp_path / "check.sh", tmp_path / "canary.sh"]
    expected = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    assert plan.sha256 == expected
    (tmp_path / "canary.sh").write_text("echo changed\n")
    assert load_plan(path).sha256 != plan.sha256


def test_verify_script_is_scanned_for_credentials(tmp_path: Path) -> None:
    """A verify script may not hold an access key ID either."""
    (tmp_path / "check.sh").write_text("curl -H 'key: LTAI5tAbCdEfGhIjKlMn' x\n")
    path = tmp_path / "plan.yaml"
    path.write_text(MINIMAL + "wave_defaults: {verify: {script: check.sh}}\n")
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    (problem,) = caught.value.problems
    assert (problem.field, problem.code) == ("wave_defaults.verify.script", "no-credentials")
    assert "LTAI" not in str(problem)


# --- values: thresholds, durations --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, Amount(0)),
        (7, Amount(7)),
        ("0%", Amount(0, percent=True)),
        ("2.5%", Amount(2.5, percent=True)),
        (" 100 % ", PERCENT),
    ],
)
def test_thresholds_parse(value: object, expected: Amount) -> None:
    """max_errors: a count from 0, or a percentage from 0% to 100%."""
    assert parse_threshold(value) == expected


@pytest.mark.parametrize("value", [-1, "-1%", "100.1%", 1.5, True, None, "3", "many"])
def test_bad_thresholds_say_why(value: object) -> None:
    """Anything else is refused with a sentence."""
    assert isinstance(parse_threshold(value), str)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (90, 90.0),
        (1.5, 1.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("90m", 5400.0),
        ("1.5h", 5400.0),
        ("0.5s", 0.5),
        (" 2m ", 120.0),
    ],
)
def test_durations_parse(value: object, seconds: float) -> None:
    """A number of seconds, or hours, minutes and seconds in that order."""
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 minutes", "'5 minutes' is not a duration; write 5m"),
        ("1 hour 30 minutes", "write 1h30m"),
        ("2 hours, 5 secs", "write 2h5s"),
        ("1 day", "write 24h"),
        ("5M", "write 5m"),
        ("30", "'30' has no unit; write 30s"),
        ("30m1h", "'30m1h' is not a duration; write 1h30m"),  # units out of order
        ("soon", "must be a duration: a number of seconds, or a string such as 30s"),
        ("", "must be a duration"),
        (-5, "must be 0 or more seconds, not -5"),
        (True, "not a boolean"),
        ([1], "not a list"),
    ],
)
def test_bad_durations_say_what_to_write(value: object, message: str) -> None:
    """A wordy duration is refused with the short form to write instead."""
    problem = parse_duration(value)
    assert isinstance(problem, str)
    assert message in problem


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (90, "1m30s"), (3600, "1h"), (5400, "1h30m"), (1.5, "1.5s")],
)
def test_durations_format_as_plans_write_them(seconds: float, text: str) -> None:
    """Messages show durations in the plan's own form, which parses back to the same."""
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


# --- Amount.floor_of: the threshold rule --------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "whole", "expected"),
    [
        (Amount(5, percent=True), 30, 1),  # 1.5 rounds down
        (Amount(5, percent=True), 10, 0),  # 0.5 rounds down to nothing: no error tolerated
        (Amount(5, percent=True), 14, 0),
        (Amount(5, percent=True), 20, 1),  # exactly 1, not 0 from float noise
        (Amount(2, percent=True), 120, 2),
        (Amount(10, percent=True), 50, 5),  # SSM's example: stop at the sixth error
        (Amount(0, percent=True), 1000, 0),
        (Amount(100, percent=True), 7, 7),  # never breaches
        (Amount(0), 7, 0),
        (Amount(3), 7, 3),
        (Amount(1000), 14, 14),  # a count beyond the wave is the wave
        (Amount(5, percent=True), 0, 0),
        (Amount(3), 0, 0),
    ],
)
def test_floor_of_never_rounds_up(amount: Amount, whole: int, expected: int) -> None:
    """Thresholds round down: a percentage never tolerates more than it says."""
    assert amount.floor_of(whole) == expected


# --- the later-keys mechanism stays --------------------------------------------------------


def test_section_still_refuses_keys_a_later_version_adds() -> None:
    """A key listed as later is refused with what it is for, not as a typo."""
    findings = Findings("p.yaml")
    Section(findings, {"budget": 3}, "waves[0]", ("size",), {"budget": "zone budgets come later"})
    (problem,) = findings.problems()
    assert (problem.field, problem.code) == ("waves[0].budget", LATER)
    assert "zone budgets come later" in problem.message
