"""`build_adhoc_plan`: exec's flags → a plan text that means exactly what the flags say.

Whatever the script holds (quotes, `{{`, trailing spaces, tabs, YAML syntax, line
separators), the plan's content is that script, byte for byte; no flag value can write
YAML of its own (a newline in a tag cannot end the header's comment); and a value no
RunCommand field can carry is refused, pointed at its flag.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from orchestrator.plan import AdhocCommand, PlanError, build_adhoc_plan, parse_plan

WEB = ("app=web",)
# Every character but NUL and surrogates (no RunCommand field carries those).
TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1
).filter(str.strip)


@given(script=TEXT)
@example(script="0\x85")  # NEL: PyYAML writes it bare where a reader folds it to a space
@example(script="a\u2028b\r\nc\n  trailing  \n")
def test_the_content_is_the_script_byte_for_byte(script: str):
    built = build_adhoc_plan(AdhocCommand(script=script, tags=WEB), base=Path.cwd())
    assert built.plan.command.content == script
    # The text stands on its own: parsed again (as a resume does), the same plan.
    assert parse_plan(built.text).command.content == script


@given(value=TEXT)
@example(value="0\x85")
def test_no_flag_value_writes_yaml_of_its_own(value: str):
    """A tag value is a tag value, whatever it holds; the header stays a comment."""
    command = AdhocCommand(script="uptime", tags=(f"app={value}",), user="root")
    built = build_adhoc_plan(command, base=Path.cwd())
    assert dict(built.plan.targets.tags) == {"app": value}
    assert built.plan.command.username == "root"
    header = built.text.split("\nname: ", 1)[0]
    assert all(line.startswith("#") for line in header.splitlines())


def test_the_name_is_the_commands_digest_unless_given():
    one = build_adhoc_plan(AdhocCommand(script="uptime", tags=WEB), base=Path.cwd())
    waved = build_adhoc_plan(
        AdhocCommand(script="uptime", tags=WEB, canary="1", max_errors="1"), base=Path.cwd()
    )
    other = build_adhoc_plan(AdhocCommand(script="uptime", tags=("app=db",)), base=Path.cwd())
    named = build_adhoc_plan(
        AdhocCommand(script="uptime", tags=WEB, name="nightly"), base=Path.cwd()
    )
    assert one.plan.name.startswith("exec-")
    assert len(one.plan.name) == len("exec-") + 8
    assert waved.plan.name == one.plan.name
    assert other.plan.name != one.plan.name
    assert named.plan.name == "nightly"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (AdhocCommand(script="echo \x00", tags=WEB), "-- SCRIPT: holds a NUL character"),
        (AdhocCommand(script="uptime", tags=("app=web", "app=db")), "--tag app=db: the key"),
        (AdhocCommand(script="uptime", tags=WEB, params=("novalue",)), "--param novalue: must"),
        (AdhocCommand(script="uptime", tags=WEB, waves="1,,100%"), "--waves 1,,100% (size 2"),
        (AdhocCommand(script="uptime", tags=WEB, timeout="abc"), "--timeout abc: must be"),
        (AdhocCommand(script="uptime", tags=WEB, region="Hangzhou"), "--region Hangzhou: is"),
        (
            AdhocCommand(script="echo LTAI5tAbCdEfGhIjKlMn", tags=WEB),
            "-- SCRIPT: holds what looks like an access key ID",
        ),
    ],
)
def test_a_problem_names_the_flag(command: AdhocCommand, expected: str):
    with pytest.raises(PlanError) as caught:
        build_adhoc_plan(command, base=Path.cwd())
    assert expected in str(caught.value)
    assert "LTAI5tAbCdEfGhIjKlMn" not in str(caught.value)
