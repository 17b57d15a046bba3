"""Typed, forgiving reads of one mapping of the plan (`command:`, `limits:`, a wave).

A `Section` knows the keys its mapping may hold. On creation it reports unknown keys
(suggesting the closest known one: `timout` → `timeout`) and keys that later versions
will add (`not-supported-yet`, with what they are for). Its getters check a value's type
and, when it is wrong, record a problem and return the default, so reading goes on and
every problem of the file is reported in one pass. `choice` reads one of a few words
(`order: by_zone`), suggesting the closest one for a typo. YAML types are taken as YAML
gives them: `timeout: "60"` is a string, not a number, and `version: 1.10` a float.
A wrong value is told what the field takes (`a whole number of seconds, e.g. 600`) and,
where it would fix it, to quote the value (text written as a number or a date) or to
drop the quotes (a number or a boolean written as text); never the other way round.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from typing import TYPE_CHECKING, Final

from orchestrator.plan._findings import shown
from orchestrator.plan._yaml import join

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from orchestrator.plan._findings import Findings

TYPE: Final = "type"
REQUIRED: Final = "required"
UNKNOWN: Final = "unknown-key"
LATER: Final = "not-supported-yet"
QUOTE: Final = " (quote it)"
UNQUOTE: Final = " (write it without quotes)"
INTEGER_TEXT: Final = re.compile(r"\s*[+-]?\d+\s*")
NUMBER_TEXT: Final = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")
BOOLEAN_TEXT: Final = re.compile(r"\s*(?:true|false)\s*", re.IGNORECASE)


def kind(value: object) -> str:
    """What a YAML value is, for messages (never the value itself)."""
    match value:
        case None:
            return "empty (null)"
        case bool():
            return "a boolean"
        case int():
            return "an integer"
        case float():
            return "a decimal number"
        case str():
            return "a string"
        case list():
            return "a list"
        case dict():
            return "a mapping"
        case dt.date():
            return "a date"
    return type(value).__name__


def quote_hint(value: object) -> str:
    """For a field that takes text: quoting makes a number, boolean or date text."""
    return QUOTE if isinstance(value, bool | int | float | dt.date) else ""


def unquote_hint(value: object, wanted: re.Pattern[str]) -> str:
    """For a field that takes no text: text that reads as what it takes (`"600"`) is
    right without its quotes."""
    return UNQUOTE if isinstance(value, str) and wanted.fullmatch(value) else ""


class Section:
    """One mapping of the plan with its path, checked against the keys it may hold."""

    def __init__(
        self,
        findings: Findings,
        value: object,
        path: str,
        keys: Collection[str],
        later: Mapping[str, str] | None = None,
    ) -> None:
        self.findings = findings
        self.path = path
        self.data: dict[str, object] = {}
        if isinstance(value, dict):
            self.data = value
        elif value is not None:  # `limits:` with nothing under it is an empty mapping
            findings.add(path, f"must be a mapping, not {kind(value)}", TYPE)
        later = later or {}
        for key in self.data:
            if key in keys:
                continue
            if key in later:
                findings.add(self.at(key), f"not supported yet: {later[key]}", LATER)
                continue
            close = difflib.get_close_matches(key, [*keys, *later], n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            findings.add(self.at(key), f"unknown key {key!r}{hint}", UNKNOWN)

    def at(self, key: str) -> str:
        """The dotted path of `key` in this section."""
        return join(self.path, key)

    def has(self, key: str) -> bool:
        """Whether the file gives `key` a non-null value."""
        return self.data.get(key) is not None

    def _type_error(self, key: str, expected: str, code: str, hint: str = "") -> None:
        value = self.data[key]
        self.findings.add(self.at(key), f"must be {expected}, not {kind(value)}{hint}", code)

    def string(
        self, key: str, default: str | None = None, *, required: bool = False, code: str = TYPE
    ) -> str | None:
        """A string; `required` also refuses an empty one."""
        value = self.data.get(key)
        if value is None:
            if required and not self.findings.broken(self.at(key)):
                self.findings.add(self.at(key), "is required", REQUIRED)
            return default
        if not isinstance(value, str):
            self._type_error(key, "a string", code, quote_hint(value))
            return default
        if required and not value.strip():
            self.findings.add(self.at(key), "must not be empty", REQUIRED)
            return default
        return value

    def integer(
        self, key: str, default: int, *, code: str = TYPE, accepted: str = "a whole number"
    ) -> int:
        """An integer (a boolean is not one); `accepted` says what the field takes, with
        an example, for the message: `a whole number of seconds, e.g. 600`."""
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self._type_error(key, accepted, code, unquote_hint(value, INTEGER_TEXT))
            return default
        return value

    def number(self, key: str, default: float, *, accepted: str = "a number") -> float:
        """An integer or a decimal number; `accepted` as for `integer`."""
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._type_error(key, accepted, TYPE, unquote_hint(value, NUMBER_TEXT))
            return default
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        """`true` or `false`."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self._type_error(key, "true or false", TYPE, unquote_hint(value, BOOLEAN_TEXT))
            return default
        return value

    def choice(self, key: str, options: Sequence[str], default: str, *, code: str) -> str:
        """One of `options` (a string; another value is reported with `code`, naming the
        closest option: `by-zone` → `by_zone`)."""
        value = self.string(key, default)
        if value is None or value in options:
            return value or default
        close = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self.findings.add(
            self.at(key), f"{shown(value)} is not one of {', '.join(options)}{hint}", code
        )
        return default

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of strings (problems for the items that are not)."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self._type_error(key, "a list", TYPE)
            return ()
        found: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item.strip():
                found.append(item)
            else:
                what = f"must be a non-empty string, not {kind(item)}{quote_hint(item)}"
                self.findings.add(f"{self.at(key)}[{i}]", what, TYPE)
        return tuple(found)

    def string_map(self, key: str, *, value_code: str = TYPE) -> dict[str, str]:
        """A mapping of string values; a value of another type is reported with `value_code`."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self._type_error(key, "a mapping", TYPE)
            return {}
        found: dict[str, str] = {}
        for name, item in value.items():
            if isinstance(item, str):
                found[name] = item
            elif item is None:
                found[name] = ""  # `key:` with nothing after it is the empty value
            else:
                what = f"must be a string, not {kind(item)}{quote_hint(item)}"
                self.findings.add(join(self.at(key), name), what, value_code)
        return found
