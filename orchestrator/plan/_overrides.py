"""`--param NAME=VALUE`: a plan with some of its parameters' values replaced, checked again.

An operator rolls version 1.2.4 out with the plan written for 1.2.3 without editing it.
Only a parameter the plan declares (`command.parameters`) can be replaced: an unknown
name is a typo, and a value the content has no `{{name}}` for would never reach an
instance. Names compare case-insensitively, as the API compares them; the plan's own
spelling is kept. The new command is checked by the same RunCommand rules as the plan's
own (`check_command`: the content's size once the values are put in, among others), and
every new value by the credentials scan (`_secrets`). A problem names the flag and the
parameter, never the value.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from orchestrator.errors import PlanError, Problem
from orchestrator.plan._findings import Findings
from orchestrator.plan._rules import check_command

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.plan._model import Plan

RULE: Final = "param-override"
_NO_SOURCE: Final = "<plan>"


def _refused(plan: Plan, field: str, message: str) -> PlanError:
    file = str(plan.source) if plan.source is not None else _NO_SOURCE
    return PlanError.of([Problem(file, 0, field, message, RULE)])


def override_params(plan: Plan, values: Mapping[str, str]) -> Plan:
    """`plan` with `values` (NAME → VALUE, as `--param` gave them) in place of the values
    of the parameters it declares; `PlanError` for a name it does not declare, a plan
    without parameters, or a result that breaks a rule. No values: `plan` itself."""
    if not values:
        return plan
    declared = {key.casefold(): key for key in plan.command.parameters}
    first = next(iter(values))
    if not declared:
        raise _refused(
            plan,
            f"--param {first}",
            "the plan declares no parameters (command.parameters) to override",
        )
    names = ", ".join(plan.command.parameters)
    parameters = dict(plan.command.parameters)
    for name, value in values.items():
        key = declared.get(name.casefold())
        if key is None:
            raise _refused(
                plan,
                f"--param {name}",
                f"the plan declares no parameter {name} (its parameters: {names})",
            )
        parameters[key] = value
    command = replace(plan.command, parameters=MappingProxyType(parameters))
    findings = Findings(str(plan.source) if plan.source is not None else _NO_SOURCE)
    for name, value in values.items():
        findings.scan_secrets(value, f"--param {name}")
    check_command(command, findings)
    if findings:
        raise PlanError.of(findings.problems())
    return replace(plan, command=command)


def parse_param(text: str) -> tuple[str, str]:
    """`NAME=VALUE` → (NAME, VALUE); the value may hold `=` and may be empty.
    `PlanError` without a `=` or a name (the message never repeats the text: it may be
    a value)."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise PlanError(
            "--param: give NAME=VALUE (e.g. --param version=1.2.4)", field="--param", rule=RULE
        )
    return name.strip(), value
