"""A plan file → a checked, frozen `Plan`, or `PlanError` carrying every problem at once.

Pure apart from reading the plan and the script it names: no network, no clock. The
steps: YAML with lines (`_yaml`), the sections read with their types checked
(`_reader`, `_sections`, the `command:` reader here), the RunCommand rules (`_rules`),
and the credentials scan (`_secrets`). Nothing stops at the first problem; the error
lists them in file order, `FILE:LINE: field: what is wrong (Code)`.

`Plan.sha256` is the SHA-256 of the plan file's bytes followed by the bytes of every
script file it names (the command's, the verifies', the rollback's, in that order): the
journal refuses to resume a run when one changed. Scripts are read from the plan file's
directory, or the `script_dirs` the operator names (`_script`). A plan is small: more
than MAX_PLAN_BYTES is refused unread (rule `read`), so `orchestrator validate
/dev/zero` ends at once.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal, cast

from orchestrator import api
from orchestrator.errors import PlanError, Problem
from orchestrator.plan._findings import Findings
from orchestrator.plan._gates import Context, read_wave_defaults
from orchestrator.plan._model import Command, Plan, Targets
from orchestrator.plan._reader import Section
from orchestrator.plan._rollback import check_on_breach, read_rollback
from orchestrator.plan._rules import Where, check_command
from orchestrator.plan._rules_params import uses_agent_values
from orchestrator.plan._script import ScriptPlaces, read_script
from orchestrator.plan._sections import read_limits, read_targets, read_waves
from orchestrator.plan._values import TIMEOUT_ACCEPTED
from orchestrator.plan._yaml import parse_yaml

if TYPE_CHECKING:
    from hashlib import _Hash

TOP_KEYS: Final = (
    "name",
    "region",
    "description",
    "targets",
    "command",
    "waves",
    "wave_defaults",
    "limits",
    "on_breach",
    "order",
    "count_undelivered",
    "rollback",
)
# Keys the next versions add (`not-supported-yet`); none at present.
TOP_LATER: Final[MappingProxyType[str, str]] = MappingProxyType({})
ON_BREACH: Final = ("stop_in_flight", "finish_in_flight", "rollback")  # the first: default
ORDERS: Final = ("spread", "by_zone")  # the first is the default
COMMAND_KEYS: Final = (
    "type",
    "content",
    "script",
    "parameters",
    "enable_parameter",
    "timeout",
    "username",
    "working_dir",
    "windows_password_name",
    "container_id",
    "container_name",
    "repeat_mode",
    "frequency",
    "keep_command",
    "tags",
    "name",
    "description",
    "termination_mode",
    "launcher",
)
_REGION: Final = re.compile(r"[a-z]{2,}(?:-[a-z0-9]+)+")
_NO_SOURCE: Final = "<plan>"
# Hundreds of values and a script of at most 18 KiB make a plan of a few KiB; a list of
# thousands of instance IDs, some hundred KiB.
MAX_PLAN_BYTES: Final = 1024 * 1024
_TOO_LARGE: Final = f"the plan is more than {MAX_PLAN_BYTES} bytes; a plan is a few KiB"


def load_plan(path: Path, *, script_dirs: tuple[Path, ...] = ()) -> Plan:
    """Read and check the plan at `path`; raise `PlanError` listing every problem.

    `script_dirs`: directories besides the plan's own that its scripts may be in."""
    return parse_plan(read_plan_text(path), source=path, script_dirs=script_dirs)


def read_plan_text(path: Path) -> str:
    """The text of the plan file at `path`, read once: a caller that keeps the text (the
    journal does) checks what it keeps with `parse_plan`, not a second read of a file
    that may have changed, or a pipe (`<(…)`) that is empty the second time.
    `PlanError` (rule `read`) when it cannot be read, is too large or is not UTF-8."""
    try:
        with path.open("rb") as file:  # not necessarily a regular file: <(…) is a pipe
            raw = file.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PlanError.of(
            [Problem(str(path), 0, "", f"cannot read the plan: {reason}", "read")]
        ) from exc
    _check_size(raw, str(path))
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise PlanError.of(
            [Problem(str(path), 0, "", "the plan is not UTF-8 text", "read")]
        ) from exc


def parse_plan(
    text: str, *, source: Path | None = None, script_dirs: tuple[Path, ...] = ()
) -> Plan:
    """Check a plan given as text; `source` names it in problems and anchors `script`
    (without it, a relative `script` is read from the current directory); `script_dirs`
    as for `load_plan`."""
    return _parse(text, text.encode("utf-8", "surrogatepass"), source, script_dirs)


def _check_size(raw: bytes, file: str) -> None:
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanError.of([Problem(file, 0, "", _TOO_LARGE, "read")])


def _parse(text: str, raw: bytes, source: Path | None, script_dirs: tuple[Path, ...]) -> Plan:
    findings = Findings(str(source) if source is not None else _NO_SOURCE)
    _check_size(raw, findings.file)
    hasher = hashlib.sha256(raw)
    data = parse_yaml(text, findings)
    if data is None and findings:  # not YAML at all: nothing more to say
        raise PlanError.of(findings.problems())
    findings.scan_secrets(data, "")
    top = Section(findings, data, "", TOP_KEYS, TOP_LATER)
    if data is None:
        findings.add("", "the plan is empty", "required")
    if not isinstance(data, dict):  # nothing to read the sections from
        raise PlanError.of(findings.problems())
    name = top.string("name", "", required=True) or ""
    region = top.string("region")
    if region is not None and not _REGION.fullmatch(region):
        findings.add("region", "is not a region ID such as cn-hangzhou", "region")
    description = top.string("description", "") or ""
    targets = Targets()
    if top.has("targets"):
        targets = read_targets(findings, top.data["targets"])
    elif not findings.broken("targets"):
        findings.add("targets", "is required", "required")
    command = Command(content="")
    places = ScriptPlaces.of(source.parent if source is not None else Path.cwd(), script_dirs)
    if top.has("command"):
        command = _read_command(
            findings,
            top.data["command"],
            plan_name=name,
            plan_description=description,
            places=places,
            hasher=hasher,
        )
    elif not findings.broken("command"):
        findings.add("command", "is required", "required")
    context = Context(command, places, hasher)
    defaults = read_wave_defaults(findings, top.data.get("wave_defaults"), context)
    waves = read_waves(findings, top.data.get("waves"), defaults=defaults, context=context)
    limits = read_limits(findings, top.data.get("limits"))
    rollback = read_rollback(findings, top.data.get("rollback"), context)
    on_breach = top.choice("on_breach", ON_BREACH, ON_BREACH[0], code="on-breach")
    check_on_breach(findings, on_breach, rollback)
    order = top.choice("order", ORDERS, ORDERS[0], code="order")
    count_undelivered = top.boolean("count_undelivered", default=True)
    if findings:
        raise PlanError.of(findings.problems())
    return Plan(
        name=name,
        targets=targets,
        command=command,
        waves=waves,
        limits=limits,
        region=region,
        source=source,
        sha256=hasher.hexdigest(),
        on_breach=cast("Literal['stop_in_flight', 'finish_in_flight', 'rollback']", on_breach),
        order=cast("Literal['spread', 'by_zone']", order),
        count_undelivered=count_undelivered,
        rollback=rollback,
    )


def _read_command(
    findings: Findings,
    value: object,
    *,
    plan_name: str,
    plan_description: str,
    places: ScriptPlaces,
    hasher: _Hash,
) -> Command:
    section = Section(findings, value, "command", COMMAND_KEYS)
    has_content, has_script = section.has("content"), section.has("script")
    if has_content and has_script:
        findings.add("command.script", "give content or script, not both", "content-or-script")
    elif not has_content and not has_script and not findings.broken("command"):
        findings.add(
            "command", "needs content (the script itself) or script (a file)", "content-or-script"
        )
    content_field = "command.script" if has_script and not has_content else "command.content"
    content = section.string("content")
    if content is None:
        content = read_script(section, places, hasher)
        if content is not None:
            findings.scan_secrets(content, "command.script")
    if content is not None and not content.strip():
        findings.add(content_field, "is empty", "MissingParameter")
    parameters = section.string_map("parameters", value_code="ParameterType.NotSupported")
    enable: bool | None = None
    if section.has("enable_parameter"):
        enable = section.boolean("enable_parameter", default=False)
    elif not parameters and content and uses_agent_values(content):
        enable = True  # built-ins are filled in only with EnableParameter on
    frequency = section.string("frequency")
    command = Command(
        content=content or "",
        type=section.string("type", "RunShellScript") or "RunShellScript",
        name=section.string("name", plan_name) or plan_name,
        description=section.string("description", plan_description) or "",
        parameters=MappingProxyType(parameters),
        timeout=section.integer(
            "timeout", api.DEFAULT_TIMEOUT, code="InvalidParameter", accepted=TIMEOUT_ACCEPTED
        ),
        username=section.string("username"),
        working_dir=section.string("working_dir"),
        windows_password_name=section.string("windows_password_name"),
        container_id=section.string("container_id", code="InvalidContainerId.Malformed"),
        container_name=section.string("container_name", code="InvalidContainerName.Malformed"),
        repeat_mode=section.string("repeat_mode", "Period" if frequency else "Once") or "Once",
        frequency=frequency,
        keep_command=section.boolean("keep_command", default=False),
        tags=MappingProxyType(section.string_map("tags", value_code="InvalidTagValue.Malformed")),
        termination_mode=section.string("termination_mode"),
        launcher=section.string("launcher"),
        enable_parameter=enable,
    )
    where = Where(
        name="command.name" if section.has("name") else "name",
        description="command.description" if section.has("description") else "description",
        content=content_field,
    )
    check_command(command, findings, where)
    return command
