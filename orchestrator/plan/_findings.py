"""The problem collector every check writes to: a field path in, a located `Problem` out.

Checks never raise on a broken rule: they call `Findings.add(field, message, code)` and go
on, so a plan's problems are all reported at once, in file order (each printable: NUL
and surrogates in a field or message are written as escapes). The line comes from the
path → line map the YAML layer filled in; a field the file does not spell out (a default,
a missing key) takes the line of its nearest written parent. `shown()` is how a message
quotes a value from the plan: short, and never a credential.
"""

from __future__ import annotations

import re
from typing import Final

from orchestrator.errors import Problem
from orchestrator.plan import _secrets
from orchestrator.plan._secrets import looks_like_credential, redact

_LAST_STEP: Final = re.compile(r"(?:\.[^.\[\]]*|\[\d+\])$")
_SHOWN_MAX: Final = 40
_UNPRINTABLE: Final = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\ud800-\\udfff]")


def printable(text: str) -> str:
    """`text` as one line of a message: control characters (a key may hold a newline),
    line separators and surrogates written as escapes."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return "\\0" if code == 0 else f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"  # noqa: PLR2004


def parent(path: str) -> str:
    """`waves[1].size` → `waves[1]` → `waves` → `` (the root)."""
    return _LAST_STEP.sub("", path) if _LAST_STEP.search(path) else ""


def shown(value: object) -> str:
    """A value as a message may quote it: truncated, and redacted if it may be a secret."""
    text = value if isinstance(value, str) else repr(value)
    if looks_like_credential(text):
        return "(a value that looks like a credential)"
    if len(text) > _SHOWN_MAX:
        text = text[: _SHOWN_MAX - 1] + "…"
    return repr(text) if isinstance(value, str) else text


class Findings:
    """Problems found in one plan file, and the line of every value in it."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[str, int] = {}
        self._problems: list[Problem] = []

    def line_of(self, field: str) -> int:
        """The line `field` was written on, else its nearest written parent's (0: none)."""
        path = field
        while path:
            if path in self.lines:
                return self.lines[path]
            path = parent(path)
        return self.lines.get("", 0)

    def add(
        self, field: str, message: str, code: str, *, line: int | None = None, column: int = 0
    ) -> None:
        """Record that `field` breaks a rule (`code`: an API error code or a rule name);
        `column` (1-based) only where the YAML itself is wrong."""
        where = self.line_of(field) if line is None else line
        # A key may itself be a credential, and paths and messages name keys; a key may
        # also hold a NUL or a surrogate, which would break the line it is printed on.
        field, message = redact(printable(field)), redact(printable(message))
        self._problems.append(Problem(self.file, where, field, message, code, column))

    def scan_secrets(self, value: object, path: str) -> None:
        """A problem for every credential-looking string and secret-named key under `value`
        (a plan, a script, a `--param`), at its path."""
        for field, message in _secrets.scan(value, path):
            self.add(field, message, _secrets.RULE)

    def broken(self, field: str) -> bool:
        """Whether a problem was already found at `field` or under it (so a check that
        would only repeat it, such as "is required" after a refused value, stays quiet)."""
        return any(
            p.field == field or p.field.startswith((f"{field}.", f"{field}["))
            for p in self._problems
        )

    def problems(self) -> tuple[Problem, ...]:
        """Every distinct problem, in file order (ties keep the order they were found)."""
        unique = dict.fromkeys(self._problems)
        return tuple(sorted(unique, key=lambda p: p.line))

    def __bool__(self) -> bool:
        return bool(self._problems)
