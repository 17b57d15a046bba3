"""A wave's gate, read and checked: `max_errors`, `max_concurrency`, `pause`, `approval`
and `verify`, in a wave or in the plan's `wave_defaults`.

`read_gates` reads the gate keys one mapping gives into a `Gates` (None = not given
there); `Gates.over(defaults)` fills what a wave leaves out from `wave_defaults`, and
`Gates.wave` builds the `Wave`, the model's defaults filling what neither gives. Plan
rules: `max-errors` (a count ≥ 0 or a percentage in [0, 100]), `max-concurrency`, the
zone budgets (`_zone_budgets.py`: `max-errors-per-zone`, `max-concurrency-per-zone`), `pause`
(a duration, at most 24 h), `verify-type` (a verify for the other OS family than the
command's could run nowhere), `verify-parameters`. A verify is a RunCommand of its own
(content, type and timeout only: the agent's default user and directory, no container),
so the API's own rules apply to it and are reported with the API's codes: type,
timeout, non-empty content, the content size. It is sent without EnableParameter: the
loader puts the command's `parameters` into its `{{name}}`s, and refuses built-ins
(`{{ACS::InstanceId}}`) and parameter-store values, which only EnableParameter fills in.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, TypeVar

from orchestrator import api
from orchestrator.plan._findings import shown
from orchestrator.plan._gate_rate import NO_RATE, RATE_KEYS, RateKeys, read_rate
from orchestrator.plan._model import Amount, Verify, Wave
from orchestrator.plan._reader import TYPE, Section, kind
from orchestrator.plan._rules_params import references, render
from orchestrator.plan._script import read_script
from orchestrator.plan._values import (
    TIMEOUT_ACCEPTED,
    format_duration,
    parse_amount,
    parse_duration,
    parse_threshold,
)
from orchestrator.plan._zone_budgets import read_zone_budgets

if TYPE_CHECKING:
    from collections.abc import Mapping
    from hashlib import _Hash

    from orchestrator.plan._findings import Findings
    from orchestrator.plan._model import Command
    from orchestrator.plan._script import ScriptPlaces

GATE_KEYS: Final = (
    "max_errors",
    "max_concurrency",
    "pause",
    "approval",
    "verify",
    "max_errors_per_zone",
    "max_concurrency_per_zone",
    *RATE_KEYS,
)
VERIFY_KEYS: Final = ("content", "script", "type", "timeout")
PAUSE_MAX: Final = 24 * 3600.0  # seconds
_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")
_AGENT_VALUES: Final = ("acs::", "oos:", "oos-secret:")
# What a check's content is, for "needs content (the … itself)".
_SCRIPT_OF: Final = {"verify": "check", "rollback": "script that undoes the command"}
_NO_VERIFY: Final = False  # `verify: false`: this wave has none, whatever the defaults say
_WAVE: Final = Wave("", Amount(1))  # the model's gate defaults
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Context:
    """What reading a verify needs from the rest of the plan."""

    command: Command  # its parameters fill the verify's {{name}}s; its type is the default
    scripts: ScriptPlaces  # a `script` is relative to the plan file, and must be there
    hasher: _Hash  # the plan's hash, which covers every script


def _pick(mine: _T | None, theirs: _T | None) -> _T | None:
    return mine if mine is not None else theirs


@dataclass(frozen=True, slots=True)
class Gates:
    """The gate keys one mapping gives; None = not given there."""

    max_errors: Amount | None = None
    max_concurrency: Amount | None = None
    pause: float | None = None
    approval: bool | None = None
    verify: Verify | Literal[False] | None = None
    max_errors_per_zone: Amount | None = None
    max_concurrency_per_zone: Amount | None = None
    rate: RateKeys = NO_RATE  # max_error_rate, confidence, min_sample

    def over(self, defaults: Gates) -> Gates:
        """These gates, with what they leave out taken from `defaults`."""
        return Gates(
            max_errors=_pick(self.max_errors, defaults.max_errors),
            max_concurrency=_pick(self.max_concurrency, defaults.max_concurrency),
            pause=_pick(self.pause, defaults.pause),
            approval=_pick(self.approval, defaults.approval),
            verify=_pick(self.verify, defaults.verify),
            max_errors_per_zone=_pick(self.max_errors_per_zone, defaults.max_errors_per_zone),
            max_concurrency_per_zone=_pick(
                self.max_concurrency_per_zone, defaults.max_concurrency_per_zone
            ),
            rate=self.rate.over(defaults.rate),
        )

    def wave(self, name: str, size: Amount) -> Wave:
        """The wave, the model's defaults standing in for what is still not given (a
        rate gate without `max_errors` has no count limit: the rate alone decides)."""
        rate = self.rate
        max_errors = self.max_errors
        if max_errors is None and rate.max_error_rate is None:
            max_errors = _WAVE.max_errors
        return Wave(
            name,
            size,
            max_errors=max_errors,
            max_concurrency=self.max_concurrency,
            pause=self.pause if self.pause is not None else _WAVE.pause,
            approval=self.approval if self.approval is not None else _WAVE.approval,
            verify=self.verify or None,
            max_errors_per_zone=self.max_errors_per_zone,
            max_concurrency_per_zone=self.max_concurrency_per_zone,
            max_error_rate=rate.max_error_rate,
            confidence=rate.confidence if rate.confidence is not None else _WAVE.confidence,
            min_sample=rate.min_sample if rate.min_sample is not None else _WAVE.min_sample,
        )


def read_wave_defaults(findings: Findings, value: object, context: Context) -> Gates:
    """The top-level `wave_defaults:` mapping (gate keys only)."""
    return read_gates(Section(findings, value, "wave_defaults", GATE_KEYS), context)


def read_gates(section: Section, context: Context) -> Gates:
    """The gate keys of a wave's (or `wave_defaults`') mapping."""
    findings, data = section.findings, section.data
    max_errors = concurrency = None
    if section.has("max_errors"):
        threshold = parse_threshold(data["max_errors"])
        if isinstance(threshold, str):
            findings.add(section.at("max_errors"), threshold, "max-errors")
        else:
            max_errors = threshold
    if section.has("max_concurrency"):
        amount = parse_amount(data["max_concurrency"])
        if isinstance(amount, str):
            findings.add(section.at("max_concurrency"), amount, "max-concurrency")
        else:
            concurrency = amount
    per_zone = read_zone_budgets(section)
    approval = section.boolean("approval", default=False) if section.has("approval") else None
    verify = None
    if section.has("verify"):
        verify = _read_verify(findings, data["verify"], section.at("verify"), context)
    return Gates(
        max_errors=max_errors,
        max_concurrency=concurrency,
        pause=_pause(section),
        approval=approval,
        verify=verify,
        max_errors_per_zone=per_zone.max_errors_per_zone,
        max_concurrency_per_zone=per_zone.max_concurrency_per_zone,
        rate=read_rate(section),
    )


def _pause(section: Section) -> float | None:
    if not section.has("pause"):
        return None
    value = section.data["pause"]
    field = section.at("pause")
    if isinstance(value, str) and value.strip().lower() == "approval":
        section.findings.add(field, "a manual gate is written approval: true", "pause")
        return None
    seconds = parse_duration(value)
    if isinstance(seconds, str):
        section.findings.add(field, seconds, "pause")
        return None
    if seconds > PAUSE_MAX:
        section.findings.add(
            field,
            f"is {format_duration(seconds)}; a pause is at most 24h: a run that sleeps longer "
            "acts on a view of the fleet resolved a day earlier. For a hold of unknown "
            "length use approval: true; for a longer one, split the rollout into two runs",
            "pause",
        )
        return None
    return seconds


def _family(command_type: str) -> str:
    return "Windows" if command_type in api.WINDOWS_COMMAND_TYPES else "Linux"


def _read_verify(
    findings: Findings, value: object, path: str, context: Context
) -> Verify | Literal[False] | None:
    if value is False:
        return _NO_VERIFY
    if not isinstance(value, dict):
        findings.add(
            path,
            "must be a mapping such as {content: curl -fsS localhost/healthz} (or false for "
            f"no verify), not {kind(value)}",
            TYPE,
        )
        return None
    return read_check(Section(findings, value, path, VERIFY_KEYS), context)


def read_check(
    section: Section, context: Context, *, what: str = "verify", filled: bool = True
) -> Verify:
    """A script of its own besides the command (a `verify`, or the plan's `rollback`):
    its content or script, type and timeout, checked by the API's rules with the
    command's parameters put in. `what` names it in messages and rule names
    (`verify-type`, `rollback-parameters`); `filled`: whether the content returned has
    the parameters put in, or is as written (to be filled when it is sent)."""
    findings = section.findings
    content, where = _check_content(section, context, what)
    check_type = _check_type(section, context.command, what)
    timeout = section.integer(
        "timeout", api.DEFAULT_TIMEOUT, code="InvalidParameter", accepted=TIMEOUT_ACCEPTED
    )
    if timeout < 0:
        findings.add(
            section.at("timeout"), "must be a non-negative number of seconds", "InvalidParameter"
        )
    text = _fill(content or "", context.command.parameters, findings, where, what)
    size = len(base64.b64encode(text.encode()))
    if size > api.CONTENT_MAX_BYTES:
        findings.add(
            where,
            f"is {size} bytes after Base64 (and parameters); at most {api.CONTENT_MAX_BYTES}",
            "CmdContent.ExceedLimit",
        )
    return Verify(content=text if filled else content or "", type=check_type, timeout=timeout)


def _check_content(section: Section, context: Context, what: str) -> tuple[str | None, str]:
    """The check's script text (from `content` or `script`) and the field it came from."""
    findings = section.findings
    has_content, has_script = section.has("content"), section.has("script")
    if has_content and has_script:
        findings.add(section.at("script"), "give content or script, not both", "content-or-script")
    elif not has_content and not has_script and not findings.broken(section.path):
        findings.add(
            section.path,
            f"needs content (the {_SCRIPT_OF.get(what, what)} itself) or script (a file)",
            "content-or-script",
        )
    where = section.at("script" if has_script and not has_content else "content")
    content = section.string("content")
    if content is None and has_script:
        content = read_script(section, context.scripts, context.hasher)
        if content is not None:
            findings.scan_secrets(content, where)
    if content is not None and not content.strip():
        findings.add(where, "is empty", "MissingParameter")
    return content, where


def _check_type(section: Section, command: Command, what: str) -> str:
    """The check's type: as given, else the command's; of the command's OS family."""
    default = command.type if command.type in api.COMMAND_TYPES else "RunShellScript"
    check_type = section.string("type", default) or default
    if check_type not in api.COMMAND_TYPES:
        section.findings.add(
            section.at("type"),
            f"{shown(check_type)} is not one of {', '.join(api.COMMAND_TYPES)}",
            "InvalidCmdType.NotFound",
        )
    elif command.type in api.COMMAND_TYPES and _family(check_type) != _family(command.type):
        family = _family(command.type)
        section.findings.add(
            section.at("type"),
            f"the command is a {family} script, so every instance it ran on is {family}: "
            f"a {check_type} {what} could run on none of them",
            f"{what}-type",
        )
    return check_type


def _fill(
    content: str, values: Mapping[str, str], findings: Findings, where: str, what: str
) -> str:
    """The check's content with the command's parameters put in; a reference nothing can
    fill (a built-in, the parameter store, a name the command has no value for) is refused."""
    given = {key.casefold() for key in values}
    reported: set[str] = set()
    for ref in references(content):
        if ref in reported:
            continue
        if ref.casefold().startswith(_AGENT_VALUES):
            reported.add(ref)
            findings.add(
                where,
                f"{{{{{ref}}}}}: a {what} is sent without EnableParameter, so the agent would "
                "not fill this in; use the shell's own means (hostname, the metadata service)",
                f"{what}-parameters",
            )
        elif _NAME.fullmatch(ref) and ref.casefold() not in given:
            reported.add(ref)
            names = ", ".join(sorted(values)) or "none"
            findings.add(
                where,
                f"{{{{{ref}}}}}: a {what} may use the command's parameters ({names}), and "
                "this is not one of them",
                f"{what}-parameters",
            )
    return render(content, values)
