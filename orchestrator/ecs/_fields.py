"""Reading the fields of a decoded JSON answer, each by its rule, strictly.

The decoders of `_responses` are built from these. Each raises ValueError or TypeError
naming the field, quoting at most a clipped, shallow view of a value (a hostile value
may be megabytes long or nested hundreds deep). Integers outside 64 bits, times that
datetime cannot hold, text that is not valid Unicode and lists longer than any page are
refused too: each would break later, far from the answer (in the journal, in the output).
"""

from __future__ import annotations

import base64
import re
import reprlib
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

E = TypeVar("E", bound=StrEnum)

# Kept apart from the same two helpers in _requests, so neither side imports the other.
_EMPTY: Mapping[str, str] = MappingProxyType({})


_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")  # ASCII digits only: int() also reads "٣"
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
# No list the API answers is longer than a page (100 instances, 50 records) or an
# invocation's instances (100); ten times that bounds the time a hostile page of tiny
# items (200,000 fit in the size cap) can cost the decoders.
_MAX_ITEMS = 1000
# A value quoted in an error: a few levels and characters of it, however large or deep.
_SHOWN = reprlib.Repr()  # keyword arguments to Repr() need Python 3.12
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 2, 60, 60, 40


def show(value: object) -> str:
    return _SHOWN.repr(value)


def empty() -> Mapping[str, Any]:
    return _EMPTY


def frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping)) if mapping else _EMPTY


def text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        if not value.isascii():
            # JSON may escape a lone surrogate (`\ud800`): such a str cannot be printed,
            # logged or stored as UTF-8, so it is refused here rather than crash later.
            value.encode("utf-8")  # UnicodeEncodeError, a ValueError, names the position
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"{key} must be a string, got {type(value).__name__}")


def required(body: Mapping[str, Any], key: str) -> str:
    value = text(body, key)
    if not value:
        raise ValueError(f"{key} is missing from the response")
    return value


def integer(body: Mapping[str, Any], key: str) -> int | None:
    """An integer field (the API's `long`), from a number or a string of ASCII digits.

    Out of the signed 64-bit range it is refused: the journal stores it in SQLite, which
    cannot hold more, and no exit code or byte count is that large.
    """
    value = body.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise TypeError(f"{key} must be an integer, got {show(value)}")
    if not _LONG_MIN <= number <= _LONG_MAX:
        raise ValueError(f"{key} is out of the 64-bit range")
    return number


def count(body: Mapping[str, Any], key: str) -> int:
    value = integer(body, key)
    return 0 if value is None else value


def parse_time(value: str | None) -> datetime | None:
    """`yyyy-MM-ddTHH:mm:ssZ` or `yyyy-MM-ddTHH:mmZ` as an aware UTC datetime; "" is None."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)  # 3.11 reads both forms and the Z suffix
    if moment.tzinfo is None:  # the API documents UTC; a bare time is read as UTC
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def time_of(body: Mapping[str, Any], key: str) -> datetime | None:
    try:
        return parse_time(text(body, key))
    except (ValueError, OverflowError):  # OverflowError: past year 9999 once in UTC
        raise ValueError(f"{key} is not a time: {show(body.get(key))}") from None


def enum_of(kind: type[E], body: Mapping[str, Any], key: str) -> E:
    value = text(body, key)
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{key} has an unknown value {show(value)}") from None


def nested(body: Mapping[str, Any], outer: str, inner: str) -> list[Mapping[str, Any]]:
    """`body[outer][inner]` as a list of objects; absent or empty containers are []."""
    container = body.get(outer) or {}
    if not isinstance(container, Mapping):
        raise TypeError(f"{outer} must be an object")
    items = container.get(inner) or []
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise TypeError(f"{outer}.{inner} must be a list of objects")
    if len(items) > _MAX_ITEMS:
        raise ValueError(f"{outer}.{inner} has {len(items)} items, more than any page holds")
    return items


def tags_of(body: Mapping[str, Any]) -> Mapping[str, str]:
    return frozen(
        {text(tag, "TagKey"): text(tag, "TagValue") for tag in nested(body, "Tags", "Tag")}
    )


def decode_output(value: str) -> str:
    """Base64 output to text; bytes that are not UTF-8 become U+FFFD, never an error."""
    return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
