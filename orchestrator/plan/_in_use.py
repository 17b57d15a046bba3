"""The credentials in use must not ride along: every string a plan sends, checked for them.

The plan's own scan (`_secrets`) finds what looks like an access key ID; what it cannot
know is the secret and the security token the run signs with, which only the CLI holds
once it has connected. A script that echoes the secret (`echo <it>`, or a parameter
holding it) would hand it to every instance, where anyone who may read invocations sees
it. So before any RunCommand, the strings RunCommand would carry are checked for the
actual values: the content as sent and with its `{{name}}`s filled in as the agent fills
them (a secret split over two parameters comes together only there), each parameter's
name and value, every verify's content and the rollback's, the name, description,
working directory, username and the other text fields, and the tags. Content goes out
Base64, so the Base64 spellings of a secret count too (a script may carry it encoded and
decode it). A finding names the field and which credential, never the value.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import TYPE_CHECKING, Final

from orchestrator.errors import PlanError, Problem
from orchestrator.plan._rules_params import render

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from orchestrator.plan._model import Command, Plan

RULE: Final = "credential-in-use"
_NO_SOURCE: Final = "<plan>"
# The Command fields RunCommand carries as text (content is checked on its own).
_SKIPPED: Final = frozenset({"content", "parameters", "tags"})


def _needles(secret: str) -> tuple[str, ...]:
    """`secret` and the Base64 text any Base64 encoding holding it contains: Base64 writes
    3 bytes as 4 characters, so where the secret starts (mod 3) decides its spelling; the
    whole 3-byte groups from its first group boundary on are spelled the same whatever
    surrounds them."""
    raw = secret.encode()
    found = [secret]
    for skip in range(3):
        tail = raw[skip:]
        whole = tail[: len(tail) // 3 * 3]
        if len(whole) >= 6:  # shorter spellings would match by chance  # noqa: PLR2004
            found.append(base64.b64encode(whole).decode("ascii"))
    return tuple(found)


def _sent(plan: Plan) -> Iterator[tuple[str, str, str]]:
    """(field, how, text) for every string the plan's RunCommands carry."""
    command = plan.command
    yield "name", "", plan.name  # the run id, in the run's tag, starts with it
    yield "command.content", "", command.content
    if command.parameters_enabled:
        filled = render(command.content, command.parameters)
        yield "command.content", " once its parameters are filled in", filled
    for mapping, pairs in (("parameters", command.parameters), ("tags", command.tags)):
        for key, value in pairs.items():
            # A key is named by its mapping only: the key itself might be the secret.
            yield f"command.{mapping}", " in a key", key
            yield f"command.{mapping}", f" in the value of {key}", value
    yield from _fields(command)
    for i, wave in enumerate(plan.waves):
        if wave.verify is not None:
            yield f"waves[{i}].verify.content", "", wave.verify.content
    if plan.rollback is not None:  # sent later, by a rollback run, but sent all the same
        yield "rollback.content", "", plan.rollback.content


def _fields(command: Command) -> Iterator[tuple[str, str, str]]:
    for field in dataclasses.fields(command):
        value = getattr(command, field.name)
        if field.name not in _SKIPPED and isinstance(value, str):
            yield f"command.{field.name}", "", value


def check_credentials_in_use(plan: Plan, credentials: Mapping[str, str]) -> None:
    """Raise `PlanError` when a string the plan sends holds one of `credentials` (what it
    is, such as "the access key secret", → its value), or a Base64 spelling of one."""
    wanted = [(what, _needles(value)) for what, value in credentials.items() if value]
    file = str(plan.source) if plan.source is not None else _NO_SOURCE
    every = [needle for _, needles in wanted for needle in needles]
    problems: dict[tuple[str, str], Problem] = {}
    for field, written, text in _sent(plan):
        # A key holding a secret would be named in "in the value of KEY".
        how = " in the value of a key" if any(n in written for n in every) else written
        for what, needles in wanted:
            if (field, what) not in problems and any(n in text for n in needles):
                message = f"holds {what} in use{how}: a plan may not send the run's credentials"
                problems[field, what] = Problem(file, 0, field, message, RULE)
    if problems:
        raise PlanError.of(list(problems.values()))
