"""Is a RunCommand `Frequency` well formed? The client's small checker (InvalidParam.Frequency).

Three forms (SEED): `rate(<n><s|m|h|d>)`, 60 s to 7 days and longer than the timeout;
`at(yyyy-MM-dd HH:mm:ss [zone])`; Quartz cron `<sec> <min> <hour> <day> <month>
<weekday> [<year>] [<zone>]`, exactly one of the two day fields `?`, whose fire times are
at least 10 s and at least the timeout apart. Zones: an IANA name (`Asia/Shanghai`),
`GMT+8:00` / `GMT-7:00` (no leading zero in the hour) or `UTC`.

This checks form, not schedules: the gap between cron fire times is measured within one
day (and across midnight when two days in a row can fire), which catches every
too-frequent expression a person writes; an expression that never fires (30 February)
passes here and is refused by the service.
"""

from __future__ import annotations

import re
from datetime import datetime
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator import api

CODE: Final = "InvalidParam.Frequency"
_RATE: Final = re.compile(r"rate\s*\(\s*(\d+)\s*([smhd])\s*\)", re.IGNORECASE)
_AT: Final = re.compile(
    r"at\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\s+(\S+))?\s*\)", re.IGNORECASE
)
_GMT: Final = re.compile(r"GMT([+-])([0-9]|1[0-4]):([0-5][0-9])")
_UNIT: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MONTH_NAMES: Final = (
    "JAN",
    "FEB",
    "MAR",
    "APR",
    "MAY",
    "JUN",
    "JUL",
    "AUG",
    "SEP",
    "OCT",
    "NOV",
    "DEC",
)
_MONTHS: Final = {m: i + 1 for i, m in enumerate(_MONTH_NAMES)}
_WEEKDAYS: Final = {
    d: i + 1 for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}
_DAY: Final = 86400
_GMT_WEST_MAX: Final = 12  # GMT-13/-14 do not exist; GMT+13/+14 do


class _Bad(ValueError):
    """The expression is malformed; the message says where."""


def check_zone(text: str) -> None:
    """Raise `_Bad` unless `text` is a zone Frequency accepts."""
    if text == "UTC":
        return
    if "/" in text:
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise _Bad(f"unknown time zone {text!r}") from exc
        return
    match = _GMT.fullmatch(text)
    if match is None or (match.group(1) == "-" and int(match.group(2)) > _GMT_WEST_MAX):
        raise _Bad(
            f"time zone {text!r}: use a name (Asia/Shanghai), GMT+8:00 (no leading zero) or UTC"
        )


def _number(token: str, names: dict[str, int]) -> int:
    if token.upper() in names:
        return names[token.upper()]
    if not token.isdigit():
        raise _Bad(f"{token!r} is not a number")
    return int(token)


def _values(text: str, lo: int, hi: int, names: dict[str, int] | None = None) -> set[int]:
    """The values of a plain cron field: `*`, `a`, `a-b`, `a/n`, `*/n`, lists of these."""
    names = names or {}
    found: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or not 1 <= int(step_text) <= hi - lo + 1:
                raise _Bad(f"bad step in {item!r}")
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, names), _number(last, names)
        else:
            start = _number(base, names)
            end = hi if slash else start
        if not (lo <= start <= hi and lo <= end <= hi):
            raise _Bad(f"{item!r} is outside {lo}-{hi}")
        span = end - start if end >= start else end + (hi - lo + 1) - start  # `FRI-MON` wraps
        found.update(lo + (start - lo + k) % (hi - lo + 1) for k in range(0, span + 1, step))
    return found


def _day_of_month(text: str) -> set[int] | None:
    """The days a day-of-month field names; None for `?`, `*` and the `L`/`W` forms."""
    upper = text.upper()
    if upper in {"?", "*", "L", "LW"}:
        return None
    if match := re.fullmatch(r"L-(\d{1,2})", upper):
        if int(match.group(1)) > 30:  # noqa: PLR2004 - Quartz: L-30 at most
            raise _Bad(f"day {text!r}")
        return None
    if match := re.fullmatch(r"(\d{1,2})W", upper):
        if not 1 <= int(match.group(1)) <= 31:  # noqa: PLR2004
            raise _Bad(f"day {text!r}")
        return None
    return _values(text, 1, 31)


def _day_of_week(text: str) -> set[int] | None:
    """The weekdays a day-of-week field names (1=SUN); None for `?`, `*`, `nL`, `n#k`."""
    upper = text.upper()
    if upper in {"?", "*"}:
        return None
    if upper == "L":
        return {7}
    if match := re.fullmatch(r"(\w+?)L", upper):
        if not 1 <= _number(match.group(1), _WEEKDAYS) <= 7:  # noqa: PLR2004
            raise _Bad(f"weekday {text!r}")
        return None
    if match := re.fullmatch(r"(\w+)#(\d)", upper):
        if not (1 <= _number(match.group(1), _WEEKDAYS) <= 7 and 1 <= int(match.group(2)) <= 5):  # noqa: PLR2004
            raise _Bad(f"weekday {text!r}")
        return None
    return _values(text, 1, 7, _WEEKDAYS)


def _consecutive(days: set[int] | None, field: str, cycle: int) -> bool:
    """Whether two days in a row can fire (None: every day, or a rule we do not expand)."""
    if days is None:
        return field in {"*", "?"}
    return any((d % cycle) + 1 in days for d in days)


def _cron(text: str, timeout: int) -> None:
    fields = text.split()
    if len(fields) == 7 and not re.fullmatch(r"[0-9*,/-]+", fields[6]):  # noqa: PLR2004
        check_zone(fields.pop())  # the 7th field is a zone, not a year
    elif len(fields) == 8:  # noqa: PLR2004
        check_zone(fields.pop())
    if len(fields) not in {6, 7}:
        raise _Bad("expected rate(...), at(...) or a cron expression of 6 or 7 fields")
    second, minute, hour, dom, month, dow, *year = fields
    if (dom == "?") == (dow == "?"):
        raise _Bad("exactly one of day-of-month and day-of-week must be '?'")
    seconds, minutes, hours = _values(second, 0, 59), _values(minute, 0, 59), _values(hour, 0, 23)
    days, weekdays = _day_of_month(dom), _day_of_week(dow)
    _values(month, 1, 12, _MONTHS)
    if year:
        _values(year[0], 1970, 2099)
    fires = sorted(h * 3600 + m * 60 + s for h in hours for m in minutes for s in seconds)
    gaps = [b - a for a, b in pairwise(fires)]
    if _consecutive(days, dom, 31) and _consecutive(weekdays, dow, 7):
        gaps.append(_DAY - fires[-1] + fires[0])
    floor = max(api.CRON_MIN_INTERVAL_SECONDS, timeout)
    if gaps and min(gaps) < floor:
        raise _Bad(
            f"fires every {min(gaps)} s; the interval must be at least {floor} s "
            f"(10 s, and the timeout of {timeout} s)"
        )


def frequency_problem(text: str, timeout: int) -> str | None:
    """Why `text` is not a valid Frequency for a command with `timeout`, or None."""
    text = text.strip()
    try:
        if match := _RATE.fullmatch(text):
            seconds = int(match.group(1)) * _UNIT[match.group(2).lower()]
            if not api.RATE_MIN_SECONDS <= seconds <= api.RATE_MAX_SECONDS:
                return f"rate interval is {seconds} s; it must be between 60 s and 7 days"
            if seconds <= timeout:
                return f"rate interval ({seconds} s) must be longer than the timeout ({timeout} s)"
            return None
        if text.lower().startswith("rate"):
            return "expected rate(<number><s|m|h|d>), e.g. rate(5m)"
        if text.lower().startswith("at("):
            match = _AT.fullmatch(text)
            if match is None:
                return "expected at(yyyy-MM-dd HH:mm:ss [zone])"
            datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007 - form only
            if match.group(2):
                check_zone(match.group(2))
            return None
        _cron(text, timeout)
    except _Bad as exc:
        return str(exc)
    except ValueError:  # strptime: no such date or time
        return "at(...) names no real date and time"
    return None
