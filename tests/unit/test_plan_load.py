"""Loading plans: YAML with lines, the model built, defaults, waves, hashes, errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from orchestrator.errors import PlanError, Problem
from orchestrator.plan import Amount, Plan, Wave, load_plan, parse_amount, parse_plan

MINIMAL = """\
name: hello
targets:
  tags: {app: web}
command:
  content: echo hello
"""


def _problems(text: str, source: Path | None = None) -> tuple[Problem, ...]:
    with pytest.raises(PlanError) as caught:
        parse_plan(text, source=source)
    return caught.value.problems


# --- the model ---------------------------------------------------------------------------


def test_minimal_plan_takes_every_default() -> None:
    """A name, a selector and a script are enough; everything else has its default."""
    plan = parse_plan(MINIMAL)
    assert plan.name == "hello"
    assert dict(plan.targets.tags) == {"app": "web"}
    assert plan.command.content == "echo hello"
    assert plan.command.type == "RunShellScript"
    assert plan.command.timeout == 60
    assert plan.command.name == "hello"  # the plan's name is the RunCommand Name
    assert plan.command.repeat_mode == "Once"
    assert not plan.command.parameters_enabled
    assert plan.waves == (Wave("all", Amount(100, percent=True)),)
    (wave,) = plan.waves
    assert (wave.max_errors, wave.max_concurrency, wave.pause) == (Amount(0), None, 0)
    assert (wave.approval, wave.verify) == (False, None)
    assert (plan.on_breach, plan.order, plan.count_undelivered) == (
        "stop_in_flight",
        "spread",
        True,
    )
    assert plan.limits.batch_size == 50
    assert plan.limits.max_concurrency is None
    assert plan.limits.delivery_timeout == 300
    assert plan.region is None
    assert plan.source is None


def test_every_key_reaches_the_model() -> None:
    """Each key of a full plan lands in its field."""
    plan = parse_plan(
        """\
name: full
description: all the keys
region: cn-shanghai
targets:
  instances: [i-abc, i-def]
  tags: {app: web, env: prod}
  zones: [cn-shanghai-a]
  exclude: [i-xyz]
command:
  type: RunPowerShellScript
  content: Write-Output {{who}}
  parameters: {who: world}
  timeout: 600
  username: deploy
  working_dir: C:\\app
  windows_password_name: deploy-password
  repeat_mode: Period
  frequency: rate(1h)
  keep_command: true
  tags: {team: ops}
  name: greet
  description: says hello
  termination_mode: ProcessTree
  launcher: powershell -File
waves:
  - {name: one, size: 1}
  - {name: rest, size: 100%}
limits:
  max_concurrency: 25%
  batch_size: 80
  instance_quota: 100
  qps: {RunCommand: 5, Describe: 12.5, StopInvocation: 1}
  delivery_timeout: 90
  ignore_quota: true
"""
    )
    assert plan.region == "cn-shanghai"
    assert plan.targets.instances == ("i-abc", "i-def")
    assert plan.targets.zones == ("cn-shanghai-a",)
    assert plan.targets.exclude == ("i-xyz",)
    command = plan.command
    assert (command.type, command.timeout, command.username) == (
        "RunPowerShellScript",
        600,
        "deploy",
    )
    assert command.working_dir == "C:\\app"
    assert command.windows_password_name == "deploy-password"
    assert (command.repeat_mode, command.frequency) == ("Period", "rate(1h)")
    assert command.keep_command
    assert dict(command.tags) == {"team": "ops"}
    assert (command.name, command.description) == ("greet", "says hello")
    assert (command.termination_mode, command.launcher) == ("ProcessTree", "powershell -File")
    assert dict(command.parameters) == {"who": "world"}
    assert command.parameters_enabled
    assert plan.waves == (Wave("one", Amount(1)), Wave("rest", Amount(100, percent=True)))
    assert plan.limits.max_concurrency == Amount(25, percent=True)
    assert plan.limits.batch_size == 80
    assert dict(plan.limits.qps) == {"RunCommand": 5, "Describe": 12.5, "StopInvocation": 1}
    assert plan.limits.delivery_timeout == 90
    assert plan.limits.ignore_quota


def test_plan_description_is_the_default_command_description() -> None:
    """The top-level description is sent as the RunCommand Description."""
    plan = parse_plan("description: why we run this\n" + MINIMAL)
    assert plan.command.description == "why we run this"


def test_frequency_without_repeat_mode_means_period() -> None:
    """As the API does: a Frequency makes the command periodic."""
    plan = parse_plan(MINIMAL + "  frequency: rate(5m)\n")
    assert plan.command.repeat_mode == "Period"


def test_builtins_alone_turn_enable_parameter_on() -> None:
    """{{ACS::InstanceId}} is filled by the agent only with EnableParameter on."""
    plan = parse_plan(MINIMAL.replace("echo hello", "echo {{ACS::InstanceId}}"))
    assert plan.command.enable_parameter is True
    assert plan.command.parameters_enabled


def test_other_braces_leave_enable_parameter_off() -> None:
    """A Go template in the content is not a parameter when nothing turns parameters on."""
    plan = parse_plan(MINIMAL.replace("echo hello", "docker inspect -f '{{.State.Status}}' web"))
    assert not plan.command.parameters_enabled


def test_plan_model_is_frozen() -> None:
    """The plan cannot change after loading (its hash describes it)."""
    plan = parse_plan(MINIMAL)
    with pytest.raises(AttributeError):
        plan.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.targets.tags["app"] = "api"  # type: ignore[index]


# --- waves ----------------------------------------------------------------------------------


def test_shorthand_waves_are_named_in_order() -> None:
    """The Ansible shorthand gives sizes only; names are wave-1, wave-2, …"""
    plan = parse_plan(MINIMAL + 'waves: [1, 5, "20%", 100%]\n')
    assert plan.waves == (
        Wave("wave-1", Amount(1)),
        Wave("wave-2", Amount(5)),
        Wave("wave-3", Amount(20, percent=True)),
        Wave("wave-4", Amount(100, percent=True)),
    )


def test_long_and_short_forms_mix() -> None:
    """A list may mix `{name, size}` entries and bare sizes; a long entry may omit its name."""
    plan = parse_plan(MINIMAL + "waves: [{name: canary, size: 1}, {size: 10%}, 100%]\n")
    assert [w.name for w in plan.waves] == ["canary", "wave-2", "wave-3"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (1, Amount(1)),
        ("0.5%", Amount(0.5, percent=True)),
        ("100%", Amount(100, percent=True)),
        (" 12.5 % ", Amount(12.5, percent=True)),
    ],
)
def test_amounts_parse(text: object, expected: Amount) -> None:
    """Counts from 1 and percentages in (0, 100], decimals allowed."""
    assert parse_amount(text) == expected


@pytest.mark.parametrize("text", [0, -1, "0%", "100.01%", "101%", "5", 2.5, True, None, "%"])
def test_bad_amounts_say_why(text: object) -> None:
    """Anything else is refused with a message (a string, not an Amount)."""
    assert isinstance(parse_amount(text), str)


@pytest.mark.parametrize(
    ("amount", "whole", "expected"),
    [
        (Amount(10, percent=True), 3, 1),  # rounds up, never to nothing
        (Amount(50, percent=True), 3, 2),
        (Amount(100, percent=True), 3, 3),
        (Amount(1, percent=True), 1000, 10),
        (Amount(0.1, percent=True), 3, 1),
        (Amount(30, percent=True), 10, 3),  # exact: 3, not 4 from float noise
        (Amount(5), 3, 3),  # a count larger than the whole is the whole
        (Amount(5), 0, 0),
        (Amount(10, percent=True), 0, 0),
    ],
)
def test_amount_of_rounds_up_and_is_at_least_one(amount: Amount, whole: int, expected: int) -> None:
    """Percentages of the whole target set round up, at least 1 of a non-empty whole."""
    assert amount.of(whole) == expected


def test_seven_instances_in_one_quarter_and_the_rest() -> None:
    """[1, 25%, 100%] over 7 instances: 1, 2, and the remaining 4."""
    plan = parse_plan(MINIMAL + "waves: [1, 25%, 100%]\n")
    first, second, _ = (wave.size.of(7) for wave in plan.waves)
    assert (first, second, 7 - first - second) == (1, 2, 4)


# --- YAML and lines --------------------------------------------------------------------------


def test_problems_carry_the_line_of_their_value() -> None:
    """Each problem names the file, the line the value is on and its dotted path."""
    text = MINIMAL + "  timeout: soon\nwaves:\n  - {name: a, size: 1}\n  - {name: b, size: 0%}\n"
    problems = _problems(text, source=Path("plans/x.yaml"))
    by_field = {p.field: p for p in problems}
    assert by_field["command.timeout"].line == 6
    assert by_field["waves[1].size"].line == 9
    assert str(by_field["command.timeout"]).startswith("plans/x.yaml:6: command.timeout: ")


def test_all_problems_are_reported_at_once_in_file_order() -> None:
    """Nothing stops at the first problem; the list is sorted by line."""
    text = """\
name: x
targets:
  instances: [web-1]
command:
  type: RunPython
  content: echo {{a b}}
  parameters: {c: "1"}
  timeout: -5
waves: [0]
limits: {batch_size: 500, qps: {RunComand: 1}}
"""
    problems = _problems(text)
    codes = [p.code for p in problems]
    assert codes == [
        "instance-id",
        "InvalidCmdType.NotFound",
        "CmdParam.InvalidParamName",
        "Parameter.NotMatched",
        "InvalidParameter",
        "wave-size",
        "InstanceIds.ExceedLimit",
        "unknown-key",
    ]
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_plan_error_message_lists_every_problem() -> None:
    """str(PlanError) is one line per problem; field and rule are the first's."""
    with pytest.raises(PlanError) as caught:
        parse_plan(
            "name: x\ntargets: {tags: {a: b}}\ncommand: {content: hi, timeout: x}\nlimits: 3\n"
        )
    error = caught.value
    assert str(error).splitlines() == [str(p) for p in error.problems]
    assert (error.field, error.rule) == ("command.timeout", "InvalidParameter")


def test_problem_renders_api_codes_in_parentheses_and_rules_in_brackets() -> None:
    """`(Code)` for an API rule, `[rule]` for a plan rule, no line when there is none."""
    api = Problem("p.yaml", 3, "command.name", "too long", "CmdName.ExceedLimit")
    rule = Problem("p.yaml", 0, "waves", "empty", "no-waves")
    assert str(api) == "p.yaml:3: command.name: too long (CmdName.ExceedLimit)"
    assert str(rule) == "p.yaml: waves: empty [no-waves]"
    assert api.api
    assert not rule.api


def test_duplicate_keys_are_refused_with_both_lines() -> None:
    """A repeated key is an error naming the first line, not a silent override."""
    problems = _problems(MINIMAL + "  timeout: 30\n  timeout: 60\n")
    assert len(problems) == 1
    assert (problems[0].field, problems[0].line) == ("command.timeout", 7)
    assert "first given on line 6" in problems[0].message


@pytest.mark.parametrize("key", ["1", "yes", "on", "null", "[a]", "2024-01-01"])
def test_non_string_keys_are_refused(key: str) -> None:
    """Keys YAML reads as something other than a string must be quoted."""
    problems = _problems(MINIMAL.replace("{app: web}", f"{{app: web, {key}: x}}"))
    assert [p.code for p in problems] == ["yaml"]
    assert "is not a string" in problems[0].message


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system [id]",
        "!!python/name:os.system",
        "!!binary aGk=",
        "!custom thing",
        "!!set {a: null}",
    ],
)
def test_tags_beyond_plain_yaml_are_refused(value: str) -> None:
    """No tag can build an object, or anything but plain data."""
    problems = _problems(MINIMAL + f"description: {value}\n")
    assert [p.code for p in problems] == ["yaml"]
    assert "is not allowed in a plan" in problems[0].message


def test_yaml_syntax_error_has_a_line() -> None:
    """A broken file is one problem with the parser's line, nothing cascading."""
    problems = _problems("name: x\ntargets:\n  tags: [a\ncommand: {}\n")
    assert len(problems) == 1
    assert problems[0].code == "yaml"
    assert problems[0].line > 0


@pytest.mark.parametrize(
    ("text", "line", "column", "says"),
    [
        # bad indentation: the line that does not fit is the mistake
        ("name: x\ncommand:\n  content: a\n timeout: 5\n", 4, 2, "indentation"),
        ("name: x\ntargets:\n  tags: {a: b}\n    extra: 1\n", 4, 5, "indentation"),
        # a construct left open: where it was opened, not where the parser gave up
        ("name: x\ndescription: 'abc\ncommand: {}\n", 2, 14, "quoted string is not closed"),
        ('name: "x\ntargets: {}\n', 1, 7, "quoted string is not closed"),
        ("name: x\ntargets: {tags: {a: b}\ncommand: {}\n", 2, 10, "'{' is not closed"),
        ("name: x\nzones: [a, b\n", 2, 8, "'[' is not closed"),
        ("name: x\ntargets\ncommand: {}\n", 2, 1, "no ':' after this key"),
        # a tab where indentation goes
        ("name: x\ncommand:\n  content: a\n\ttimeout: 5\n", 4, 1, "tab"),
        # mistakes the parser sees where they are
        ('name: "a\\qb"\n', 1, 10, "unknown escape character"),
        ("name: x\ndescription: a: b\n", 2, 15, "mapping values are not allowed here"),
        ("name: *nope\n", 1, 7, "undefined alias"),
        # a character YAML text may not hold
        ("name: x\ndescription: a\x07b\n", 2, 15, "#x0007 is not allowed"),
    ],
)
def test_a_yaml_syntax_error_points_at_the_line_and_column_of_the_mistake(
    text: str, line: int, column: int, says: str
) -> None:
    (problem,) = _problems(text, source=Path("plans/x.yaml"))
    assert (problem.line, problem.column, problem.code) == (line, column, "yaml")
    assert says in problem.message
    assert str(problem).startswith(f"plans/x.yaml:{line}:{column}: not valid YAML: ")


def test_a_duplicate_key_points_at_its_line_and_column() -> None:
    problems = _problems(MINIMAL + "  timeout: 30\n  timeout: 60\n", source=Path("p.yaml"))
    assert [(p.line, p.column) for p in problems] == [(7, 3)]
    assert str(problems[0]).startswith("p.yaml:7:3: command.timeout: duplicate key")
    # Two keys on one line: the column says which.
    line = "  tags: {app: web, app: db, 1: x}"
    problems = _problems(MINIMAL.replace("  tags: {app: web}", line))
    assert [(p.line, p.column) for p in problems] == [
        (3, line.rindex("app") + 1),
        (3, line.index("1:") + 1),
    ]


def test_other_problems_have_a_line_and_no_column() -> None:
    (problem,) = _problems(MINIMAL + "  timeout: x\n", source=Path("p.yaml"))
    assert problem.column == 0
    assert str(problem).startswith("p.yaml:6: command.timeout: ")


def test_anchors_aliases_and_merge_keys_work() -> None:
    """safe_load's anchors and `<<` merges are supported; the mapping's own keys win."""
    plan = parse_plan(
        """\
name: x
targets:
  tags: &web {app: web, env: prod}
command:
  <<: &defaults {timeout: 30, content: echo default}
  content: echo mine
waves:
  - &one {name: a, size: 1}
  - {<<: *one, name: b}
"""
    )
    assert plan.command.timeout == 30
    assert plan.command.content == "echo mine"
    assert [w.name for w in plan.waves] == ["a", "b"]


def test_alias_expansion_is_bounded() -> None:
    """A billion-laughs document is refused, not expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 9)]
    problems = _problems("\n".join(lines) + "\n")
    assert any("aliases expand to more than" in p.message for p in problems)


def test_empty_and_non_mapping_documents() -> None:
    """An empty file and a list are refused with one clear problem each."""
    assert [p.message for p in _problems("")] == ["the plan is empty"]
    assert [p.message for p in _problems("- a\n- b\n")] == ["must be a mapping, not a list"]


def test_multiple_documents_are_refused() -> None:
    """A plan is one YAML document."""
    problems = _problems(MINIMAL + "---\n" + MINIMAL)
    assert [p.code for p in problems] == ["yaml"]


def test_quoting_hint_for_numbers_where_text_is_expected() -> None:
    """`version: 1.10` would be the number 1.1: the message says to quote it."""
    problems = _problems(MINIMAL.replace("{app: web}", "{app: web, build: 1.10}"))
    assert problems[0].message == "must be a string, not a decimal number (quote it)"


SECONDS = "must be a whole number of seconds, e.g. 600"
UNQUOTE = " (write it without quotes)"


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        # A wrong value of a number field says what is accepted; never "quote it".
        ("  timeout: 1.5", "command.timeout", f"{SECONDS}, not a decimal number"),
        ("  timeout: '600'", "command.timeout", f"{SECONDS}, not a string{UNQUOTE}"),
        ("  timeout: ten", "command.timeout", f"{SECONDS}, not a string"),
        ("  timeout: true", "command.timeout", f"{SECONDS}, not a boolean"),
        ("  timeout: 2026-01-01", "command.timeout", f"{SECONDS}, not a date"),
        (
            "waves: [{name: a, size: 1, verify: {content: 'true', timeout: 2.5}}]",
            "waves[0].verify.timeout",
            f"{SECONDS}, not a decimal number",
        ),
        (
            "limits: {batch_size: 2.5}",
            "limits.batch_size",
            "must be a whole number of instances, e.g. 50, not a decimal number",
        ),
        (
            "limits: {instance_quota: '200'}",
            "limits.instance_quota",
            f"must be a whole number of instances, e.g. 100, not a string{UNQUOTE}",
        ),
        (
            "limits: {delivery_timeout: '300'}",
            "limits.delivery_timeout",
            f"must be a number of seconds, e.g. 300, not a string{UNQUOTE}",
        ),
        (
            "limits: {qps: {RunCommand: '2.5'}}",
            "limits.qps.RunCommand",
            f"must be a number of requests per second, e.g. 10, not a string{UNQUOTE}",
        ),
        ("count_undelivered: 1", "count_undelivered", "must be true or false, not an integer"),
        (
            "count_undelivered: 'false'",
            "count_undelivered",
            f"must be true or false, not a string{UNQUOTE}",
        ),
        (
            "waves: [1.5]",
            "waves[0]",
            'must be a positive integer or a percentage such as "10%", not a decimal number',
        ),
        (
            "waves: ['5']",
            "waves[0]",
            'must be a positive integer or a percentage such as "10%", not a string' + UNQUOTE,
        ),
        (
            "waves: [{name: a, size: 1, max_errors: '2'}]",
            "waves[0].max_errors",
            'must be a count (0 or more) or a percentage of the wave such as "5%", not a string'
            + UNQUOTE,
        ),
        # Where text is expected, quoting is the fix.
        ("description: 2026-01-01", "description", "must be a string, not a date (quote it)"),
        ("description: 12", "description", "must be a string, not an integer (quote it)"),
    ],
)
def test_a_wrong_value_is_told_what_is_accepted(extra: str, field: str, message: str) -> None:
    """`extra` is added to the end of MINIMAL: indented, it is a key of `command:`."""
    text = MINIMAL + extra + "\n"
    by_field = {p.field: p.message for p in _problems(text)}
    assert by_field[field] == message


# --- files, scripts, hashes ---------------------------------------------------------------


def test_load_plan_hashes_the_file_bytes(tmp_path: Path) -> None:
    """sha256 is the file's bytes; source is the path."""
    path = tmp_path / "plan.yaml"
    path.write_text(MINIMAL)
    plan = load_plan(path)
    assert plan.source == path
    assert plan.sha256 == hashlib.sha256(MINIMAL.encode()).hexdigest()


def test_script_is_read_relative_to_the_plan_and_hashed(tmp_path: Path) -> None:
    """`script` is a path next to the plan; its bytes join the hash, so editing it shows."""
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "run.sh"
    script.write_text("#!/bin/sh\necho from a file\n")
    text = MINIMAL.replace("content: echo hello", "script: scripts/run.sh")
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    first = load_plan(path)
    assert first.command.content == "#!/bin/sh\necho from a file\n"
    expected = hashlib.sha256(text.encode() + script.read_bytes()).hexdigest()
    assert first.sha256 == expected
    script.write_text("#!/bin/sh\necho changed\n")
    assert load_plan(path).sha256 != first.sha256


def test_script_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """A script must be UTF-8 text."""
    (tmp_path / "run.sh").write_bytes(b"echo \xff\xfe\n")
    problems = _problems(
        MINIMAL.replace("content: echo hello", "script: run.sh"), source=tmp_path / "p.yaml"
    )
    assert [(p.field, p.code) for p in problems] == [("command.script", "script")]


def test_unreadable_plan_file_is_a_plan_error(tmp_path: Path) -> None:
    """A missing file is a PlanError too (exit code USAGE), naming the file."""
    with pytest.raises(PlanError) as caught:
        load_plan(tmp_path / "missing.yaml")
    assert caught.value.problems[0].code == "read"
    assert "missing.yaml" in str(caught.value)


def test_plan_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """The plan itself must be UTF-8."""
    path = tmp_path / "plan.yaml"
    path.write_bytes(MINIMAL.encode() + b"# \xff\n")
    with pytest.raises(PlanError, match="not UTF-8"):
        load_plan(path)


def test_parse_plan_names_its_source_in_problems() -> None:
    """Without a source the problems say <plan>; with one, the path."""
    assert _problems("name: x\n")[0].file == "<plan>"
    assert _problems("name: x\n", source=Path("a/b.yaml"))[0].file == "a/b.yaml"


def test_plan_error_is_a_value_error() -> None:
    """Callers that expect a ValueError for bad input still catch it."""
    with pytest.raises(ValueError, match="is required"):
        parse_plan("name: x\n")


def test_returns_a_plan() -> None:
    """The public entry point returns the public type."""
    assert isinstance(parse_plan(MINIMAL), Plan)
