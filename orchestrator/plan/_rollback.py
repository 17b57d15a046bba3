"""The plan's `rollback:` section, the rule `on_breach: rollback` adds, and the plan a
rollback run runs (`rollback_plan`).

A rollback is read as a `verify` is (`_gates.read_check`: content or script, type,
timeout; the API's rules with the API's codes, the secrets scan of a script, scripts
only from where the plan's may be; its `{{name}}`s must be the command's parameters,
built-ins and parameter-store values are refused with `[rollback-parameters]`, its type
of the command's OS family, `[rollback-type]`), plus its own gate: `max_errors` (a
threshold; absent: no limit) and `max_concurrency` (an amount). Plan rule
`on-breach`: `on_breach: rollback` needs a `rollback:` section.

Unlike a verify's, its content is kept as written: `rollback_plan` puts in the command's
parameters as the run had them, so a run's `--param` values reach its rollback too.
`rollback_plan(plan)` is pure: the same plan, its command now the rollback's, one wave
`rollback` of 100% with the rollback's gate, no verify, pause or approval, and
`on_breach: stop_in_flight` with no `rollback` of its own: a rollback never rolls back.
`recorded_plan` applies it to a rollback run's recorded plan, so a resume rebuilds the
very waves and batches the rollback started with.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Final

from orchestrator.plan._gates import read_check
from orchestrator.plan._model import Amount, Command, Rollback, Wave
from orchestrator.plan._reader import TYPE, Section, kind
from orchestrator.plan._rules_params import render
from orchestrator.plan._values import parse_amount, parse_threshold

if TYPE_CHECKING:
    from orchestrator.plan._findings import Findings
    from orchestrator.plan._gates import Context
    from orchestrator.plan._model import Plan

ROLLBACK_KEYS: Final = ("content", "script", "type", "timeout", "max_errors", "max_concurrency")
ROLLBACK_WAVE: Final = "rollback"  # the one wave of a rollback run
_WHAT: Final = "rollback"


def read_rollback(findings: Findings, value: object, context: Context) -> Rollback | None:
    """The top-level `rollback:` mapping; None when it is absent or not a mapping."""
    if value is None:
        return None
    if not isinstance(value, dict):
        findings.add(
            _WHAT,
            "must be a mapping such as {content: systemctl restart app} (the script that "
            f"undoes the command), not {kind(value)}",
            TYPE,
        )
        return None
    section = Section(findings, value, _WHAT, ROLLBACK_KEYS)
    # As written: `rollback_plan` puts in the parameters the run had (`--param` included).
    check = read_check(section, context, what=_WHAT, filled=False)
    max_errors = concurrency = None
    if section.has("max_errors"):
        threshold = parse_threshold(section.data["max_errors"])
        if isinstance(threshold, str):
            findings.add(section.at("max_errors"), threshold, "max-errors")
        else:
            max_errors = threshold
    if section.has("max_concurrency"):
        amount = parse_amount(section.data["max_concurrency"])
        if isinstance(amount, str):
            findings.add(section.at("max_concurrency"), amount, "max-concurrency")
        else:
            concurrency = amount
    return Rollback(
        content=check.content,
        type=check.type,
        timeout=check.timeout,
        max_errors=max_errors,
        max_concurrency=concurrency,
    )


def check_on_breach(findings: Findings, on_breach: str, rollback: Rollback | None) -> None:
    """`on_breach: rollback` needs something to roll back with."""
    if on_breach == "rollback" and rollback is None and not findings.broken(_WHAT):
        findings.add(
            "on_breach",
            "rollback needs a rollback: section (the script that undoes the command, "
            "e.g. rollback: {content: ...}), or choose stop_in_flight or finish_in_flight",
            "on-breach",
        )


def rollback_plan(plan: Plan) -> Plan:
    """The plan a rollback run of `plan` runs (`ValueError` if it has no `rollback`)."""
    rollback = plan.rollback
    if rollback is None:
        raise ValueError(f"plan {plan.name!r} has no rollback: section")
    command = Command(
        content=render(rollback.content, plan.command.parameters),
        type=rollback.type,
        name=plan.command.name,
        description=plan.command.description,
        timeout=rollback.timeout,
        tags=plan.command.tags,
        enable_parameter=False,  # the loader put the parameters in, as for a verify
    )
    wave = Wave(
        ROLLBACK_WAVE,
        Amount(100, percent=True),
        max_errors=rollback.max_errors,
        max_concurrency=rollback.max_concurrency,
    )
    return replace(plan, command=command, waves=(wave,), on_breach="stop_in_flight", rollback=None)
