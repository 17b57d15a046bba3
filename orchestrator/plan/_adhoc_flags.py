"""Which `orchestrator exec` flag wrote which field of the ad-hoc plan, and problems
pointed back at it: `--timeout 1.5: must be a whole number … (InvalidParameter)`.

A problem of the generated text names a field path (`command.timeout`,
`targets.instances[2]`, `waves[1].size`); the flag is that of the path or of its nearest
parent that a flag wrote. The problem then reads as a plan's, with the flag and its value
where a plan's says `FILE:LINE: field`: the same message and code `validate` gives.
A value is shown as a shell would take it, cut short, never a credential: a `--param`
or `--tag` whose key is named like a secret shows its key only.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from orchestrator.errors import Problem
from orchestrator.plan._findings import parent, printable
from orchestrator.plan._secrets import redact, secret_key_name
from orchestrator.plan._yaml import join

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

_SHOWN_MAX: Final = 60
_PAIRED: Final = ("--tag", "--param")  # KEY=VALUE flags
ROOT: Final = "exec"  # where a problem no flag wrote is said to be


@dataclass(frozen=True, slots=True)
class Flag:
    """A flag, and the value it was given (None: the flag as a whole, all its values);
    `part`: which piece of a list value (`--waves 1,200%` → `size 2: 200%`)."""

    name: str
    value: str | None = None
    part: str | None = None

    def __str__(self) -> str:
        if self.value is None:
            return self.name
        value = self.value
        if self.name in _PAIRED and "=" in value and secret_key_name(value.split("=", 1)[0]):
            value = value.split("=", 1)[0] + "=…"  # its value is never repeated
        if len(value) > _SHOWN_MAX:
            value = value[: _SHOWN_MAX - 1] + "…"
        shown = f"{self.name} {redact(printable(shlex.quote(value)))}"
        return f"{shown} ({redact(printable(self.part))})" if self.part else shown


def flag_problem(flag: Flag, message: str, code: str) -> Problem:
    """A problem of a flag itself (`--tag web: must be KEY=VALUE`), before any plan."""
    return Problem(str(flag), 0, "", message, code)


@dataclass(slots=True)
class FlagMap:
    """The field paths of the ad-hoc plan, each with the flag that wrote it, and the
    problems of flags that could not be written at all (`syntax`)."""

    syntax: list[Problem] = field(default_factory=list)
    _fields: dict[str, Flag] = field(default_factory=dict)

    def add(self, path: str, flag: Flag) -> None:
        """`flag` wrote the field at `path`."""
        self._fields[path] = flag

    def flag_for(self, path: str) -> Flag:
        """The flag that wrote `path`, or its nearest parent; `exec` itself if none did."""
        while path:
            if path in self._fields:
                return self._fields[path]
            path = parent(path)
        return self._fields.get("", Flag(ROOT))

    def pairs(self, name: str, given: Sequence[str], path: str) -> dict[str, str]:
        """The `KEY=VALUE` values of flag `name` as a mapping at `path`; a value without
        `=`, or a key given twice, is a problem of the flag (the plan would not show it:
        a mapping has no repeated keys)."""
        found: dict[str, str] = {}
        self.add(path, Flag(name))
        for raw in given:
            key, equals, value = raw.partition("=")
            if not equals:
                self.syntax.append(flag_problem(Flag(name, raw), "must be KEY=VALUE", "key-value"))
            elif key in found:
                self.syntax.append(
                    flag_problem(
                        Flag(name, raw),
                        redact(printable(f"the key {key!r} is given twice")),
                        "duplicate-key",
                    )
                )
            else:
                found[key] = value
                self.add(join(path, key), Flag(name, raw))
        return found


def point_at_flags(problems: Iterable[Problem], flags: FlagMap) -> list[Problem]:
    """The generated plan's problems, each pointed at the flag that wrote its field."""
    pointed = (Problem(str(flags.flag_for(p.field)), 0, "", p.message, p.code) for p in problems)
    return list(dict.fromkeys(pointed))
