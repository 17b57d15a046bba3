"""RunCommand `Frequency`: parse the three schedule forms and compute fire times.

Forms (SEED): `rate(<n><s|m|h|d>)` — a fixed interval, 60 s ≤ interval ≤ 7 days and
greater than Timeout, first run one interval after creation; `at(yyyy-MM-dd HH:mm:ss
[<zone>])` — once, default UTC; Quartz cron `<sec> <min> <hour> <day-of-month> <month>
<day-of-week> [<year>] [<zone>]` whose smallest gap between fire times is ≥ 10 s and
≥ Timeout. Zones: an IANA name (`Asia/Shanghai`), `GMT+8:00` / `GMT-7:00` (no leading
zero in the hour) or `UTC`. Every refusal is `SimApiError("InvalidParam.Frequency")`.
`Frequency.next_after` gives the simulator the next fire time on its own clock; the
cron evaluator is one value set per field and a forward search, nothing cleverer.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from itertools import islice, pairwise
from typing import TYPE_CHECKING, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator import api
from orchestrator.sim._protocol import SimApiError

if TYPE_CHECKING:
    from collections.abc import Iterator

_INVALID: Final = "InvalidParam.Frequency"
# The agent's own grammar (aliyun_assist_client timermanager): case-insensitive.
_RATE: Final = re.compile(r"rate\s*\((\d+)\s*([smhd])\)", re.IGNORECASE)
_AT: Final = re.compile(
    r"at\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\s+(\S+))?\s*\)", re.IGNORECASE
)
# GMT+13/+14 exist, GMT-13/-14 do not (same note in the agent's source).
_GMT: Final = re.compile(r"GMT([+-])([0-9]|1[0-4]):([0-5][0-9])")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Spelled out: calendar.month_abbr follows the process locale.
_MONTH_NAMES: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN")
_MONTH_NAMES_2: Final = ("JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS: Final = {name: i + 1 for i, name in enumerate(_MONTH_NAMES + _MONTH_NAMES_2)}
_WEEKDAYS: Final = {
    d: i + 1 for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}
_SUNDAY: Final = 1
_SATURDAY: Final = 7
_WEEKEND: Final = frozenset({_SUNDAY, _SATURDAY})
_YEARS: Final = (1970, 2099)  # Quartz's year range; nothing fires after 2099
_INTERVAL_SAMPLES: Final = 32  # fire times inspected for the minimum-gap rule


class _Invalid(ValueError):
    """Internal: the expression is malformed (becomes InvalidParam.Frequency)."""


def parse_zone(text: str) -> tzinfo:
    """A zone as Frequency writes it; raises ValueError."""
    if text == "UTC":  # SEED: of the abbreviations only UTC
        return UTC
    if "/" in text:  # full TZ-database names carry a slash (as the agent tests)
        try:
            return ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise _Invalid(text) from exc
    match = _GMT.fullmatch(text)
    if match is None:
        raise _Invalid(text)
    sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    if sign == "-" and offset > timedelta(hours=12):
        raise _Invalid(text)
    return timezone(-offset if sign == "-" else offset, text)


# --- cron -----------------------------------------------------------------------------


def _value(token: str, names: dict[str, int]) -> int:
    if token.upper() in names:
        return names[token.upper()]
    if not token.isdigit():
        raise _Invalid(token)
    return int(token)


def _parse_field(
    text: str, lo: int, hi: int, names: dict[str, int] | None = None, *, wrap: bool = True
) -> tuple[int, ...]:
    """A plain Quartz field (`*`, lists, ranges, steps, names) as its sorted values."""
    names = names or {}
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or not 1 <= int(step_text) <= hi - lo + 1:
                raise _Invalid(item)
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, names), _value(last, names)
        else:
            start = _value(base, names)
            end = hi if step_text else start  # `a/n`: from a to the top, step n
        if not (lo <= start <= hi and lo <= end <= hi) or (end < start and not wrap):
            raise _Invalid(item)
        # Quartz wraps a reversed range around the top: `FRI-MON`, hours `22-2`.
        span = end - start if end >= start else end + (hi - lo + 1) - start
        values.update(lo + (start - lo + k) % (hi - lo + 1) for k in range(0, span + 1, step))
    return tuple(sorted(values))


@dataclass(frozen=True, slots=True)
class DayRule:
    """Which days of a month one of the two day fields admits."""

    kind: Literal[
        "any", "days", "last", "last_weekday", "nearest_weekday", "weekdays", "last_of", "nth_of"
    ]
    values: frozenset[int] = frozenset()  # days of month, or Quartz weekdays 1=SUN..7=SAT
    n: int = 0  # offset from the last day, the `W` day, or the weekday of `nL` / `n#k`
    k: int = 0  # the k of `n#k`

    def days(self, year: int, month: int) -> set[int]:
        """The days of `year`-`month` this rule admits."""
        first_weekday, length = calendar.monthrange(year, month)  # Monday = 0
        # Quartz numbering, 1 = SUN .. 7 = SAT, for every day of the month.
        weekdays = {day: (first_weekday + day) % 7 + 1 for day in range(1, length + 1)}
        if self.kind in {"weekdays", "last_of", "nth_of"}:
            return self._by_weekday(weekdays)
        return self._by_date(weekdays, length)

    def _by_date(self, weekdays: dict[int, int], length: int) -> set[int]:
        match self.kind:
            case "days":
                return {d for d in self.values if d <= length}
            case "last":
                return {length - self.n} if length - self.n >= 1 else set()
            case "last_weekday":
                return {max(d for d, w in weekdays.items() if w not in _WEEKEND)}
            case "nearest_weekday":
                return _nearest_weekday(self.n, length, weekdays)
        return set(weekdays)  # "any"

    def _by_weekday(self, weekdays: dict[int, int]) -> set[int]:
        if self.kind == "weekdays":
            return {d for d, w in weekdays.items() if w in self.values}
        matching = [d for d, w in weekdays.items() if w == self.n]
        if self.kind == "last_of":
            return {matching[-1]}
        return {matching[self.k - 1]} if self.k <= len(matching) else set()  # "nth_of"


def _nearest_weekday(day: int, length: int, weekdays: dict[int, int]) -> set[int]:
    """`nW`: the weekday nearest day n, never leaving the month (Quartz)."""
    if day > length:
        return set()
    if weekdays[day] == _SATURDAY:  # → Friday, or Monday when the 1st is a Saturday
        return {day + 2 if day == 1 else day - 1}
    if weekdays[day] == _SUNDAY:  # → Monday, or Friday when the last day is a Sunday
        return {day - 2 if day == length else day + 1}
    return {day}


def _parse_day_of_month(text: str) -> DayRule:
    if text in {"*", "?"}:
        return DayRule("any")
    upper = text.upper()
    if upper == "L":
        return DayRule("last")
    if upper == "LW":
        return DayRule("last_weekday")
    if match := re.fullmatch(r"L-(\d{1,2})", upper):
        if int(match.group(1)) > 30:  # noqa: PLR2004 - L-30 is the earliest Quartz allows
            raise _Invalid(text)
        return DayRule("last", n=int(match.group(1)))
    if match := re.fullmatch(r"(\d{1,2})W", upper):
        if not 1 <= int(match.group(1)) <= 31:  # noqa: PLR2004
            raise _Invalid(text)
        return DayRule("nearest_weekday", n=int(match.group(1)))
    return DayRule("days", frozenset(_parse_field(text, 1, 31)))


def _parse_day_of_week(text: str) -> DayRule:
    if text in {"*", "?"}:
        return DayRule("any")
    upper = text.upper()
    if upper == "L":  # `L` alone is the last day of the week: Saturday (Quartz)
        return DayRule("weekdays", frozenset({7}))
    if match := re.fullmatch(r"(\w+)L", upper):
        day = _value(match.group(1), _WEEKDAYS)
        if not 1 <= day <= 7:  # noqa: PLR2004
            raise _Invalid(text)
        return DayRule("last_of", n=day)
    if match := re.fullmatch(r"(\w+)#(\d)", upper):
        day, k = _value(match.group(1), _WEEKDAYS), int(match.group(2))
        if not (1 <= day <= 7 and 1 <= k <= 5):  # noqa: PLR2004
            raise _Invalid(text)
        return DayRule("nth_of", n=day, k=k)
    return DayRule("weekdays", frozenset(_parse_field(text, 1, 7, _WEEKDAYS)))


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A parsed Quartz expression: one value set per field."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_of_month: DayRule
    months: tuple[int, ...]
    day_of_week: DayRule
    years: tuple[int, ...]

    def local_fires(self, start: datetime) -> Iterator[datetime]:
        """Naive local fire times at or after naive `start`, in order, until 2099."""
        for year in self.years:
            if year < start.year:
                continue
            for month in self.months:
                if (year, month) < (start.year, start.month):
                    continue
                days = self.day_of_month.days(year, month) & self.day_of_week.days(year, month)
                for day in sorted(days):
                    if date(year, month, day) < start.date():
                        continue
                    day_start = datetime(year, month, day)  # noqa: DTZ001 - local wall clock
                    yield from self._times_of(day_start, start)

    def _times_of(self, day: datetime, start: datetime) -> Iterator[datetime]:
        same_day = day.date() == start.date()
        for hour in self.hours:
            if same_day and hour < start.hour:
                continue
            same_hour = same_day and hour == start.hour
            for minute in self.minutes:
                if same_hour and minute < start.minute:
                    continue
                same_minute = same_hour and minute == start.minute
                for second in self.seconds:
                    if same_minute and second < start.second:
                        continue
                    yield day.replace(hour=hour, minute=minute, second=second)


def _parse_cron(fields: list[str]) -> CronSpec:
    seconds, minutes, hours, dom, month, dow, *rest = fields
    year = rest[0] if rest else "*"
    # Quartz: exactly one of the two day fields is `?` (the 2024 doc's examples all
    # follow it; the older doc's `0 */20 * * * *` would be refused).
    if (dom == "?") == (dow == "?"):
        raise _Invalid("day-of-month / day-of-week")
    return CronSpec(
        seconds=_parse_field(seconds, 0, 59),
        minutes=_parse_field(minutes, 0, 59),
        hours=_parse_field(hours, 0, 23),
        day_of_month=_parse_day_of_month(dom),
        months=_parse_field(month, 1, 12, _MONTHS),
        day_of_week=_parse_day_of_week(dow),
        years=_parse_field(year, *_YEARS, wrap=False),  # years do not wrap around
    )


def _split_cron(text: str) -> tuple[list[str], tzinfo | None]:
    fields = text.split()
    if len(fields) == 6:  # noqa: PLR2004
        return fields, None
    if len(fields) == 7:  # noqa: PLR2004
        # The 7th field is the year unless it names a zone (zones have letters).
        if re.fullmatch(r"[0-9*,/-]+", fields[6]):
            return fields, None
        return fields[:6], parse_zone(fields[6])
    if len(fields) == 8:  # noqa: PLR2004
        return fields[:7], parse_zone(fields[7])
    raise _Invalid(text)


# --- the value ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frequency:
    """A parsed Frequency.

    rate: `interval`, fires at `start + k·interval` (k ≥ 1) once `anchored(start)` is
    set, else one interval after the time asked about. at: `when` (aware UTC). cron:
    `cron` evaluated in `zone`; `zone=None` is "the instance's system zone", which the
    simulator takes to be UTC.
    """

    kind: Literal["rate", "at", "cron"]
    expression: str
    interval: timedelta | None = None
    when: datetime | None = None
    zone: tzinfo | None = None
    cron: CronSpec | None = field(default=None, repr=False)
    start: datetime | None = None

    def anchored(self, start: datetime) -> Frequency:
        """This frequency counting rate intervals from `start` (the task's creation)."""
        return replace(self, start=start)

    def next_after(self, t: datetime) -> datetime | None:
        """The next fire time strictly after aware `t` (as aware UTC), None if none."""
        match self.kind:
            case "rate":
                assert self.interval is not None
                if self.start is None:
                    return (t + self.interval).astimezone(UTC)
                if t < self.start:
                    return (self.start + self.interval).astimezone(UTC)
                periods = (t - self.start) // self.interval
                return (self.start + (periods + 1) * self.interval).astimezone(UTC)
            case "at":
                assert self.when is not None
                return self.when if self.when > t else None
            case "cron":
                assert self.cron is not None
                zone = self.zone or UTC
                local = t.astimezone(zone).replace(tzinfo=None, microsecond=0)
                # Non-existent local times (a DST gap) take the offset before the gap,
                # ambiguous ones the first occurrence (zoneinfo's fold=0).
                for naive in self.cron.local_fires(local):
                    fire = naive.replace(tzinfo=zone).astimezone(UTC)
                    if fire > t:
                        return fire
                return None


def parse_frequency(text: str, *, timeout: int) -> Frequency:
    """Parse and check `text` against `timeout`; raises InvalidParam.Frequency."""
    text = text.strip()
    try:
        if text.lower().startswith("rate"):
            return _rate(text, timeout)
        if text.lower().startswith("at("):
            return _at(text)
        return _cron(text, timeout)
    except _Invalid as exc:
        raise SimApiError(_INVALID) from exc


def _rate(text: str, timeout: int) -> Frequency:
    match = _RATE.fullmatch(text)
    if match is None:
        raise _Invalid(text)
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if not api.RATE_MIN_SECONDS <= seconds <= api.RATE_MAX_SECONDS or seconds <= timeout:
        raise _Invalid(text)
    return Frequency("rate", text, interval=timedelta(seconds=seconds))


def _at(text: str) -> Frequency:
    match = _AT.fullmatch(text)
    if match is None:
        raise _Invalid(text)
    moment, zone_text = match.groups()
    zone = parse_zone(zone_text) if zone_text else UTC
    try:
        local = datetime.strptime(moment, "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007 - zone set below
    except ValueError as exc:
        raise _Invalid(text) from exc
    return Frequency("at", text, when=local.replace(tzinfo=zone).astimezone(UTC), zone=zone)


def _cron(text: str, timeout: int) -> Frequency:
    fields, zone = _split_cron(text)
    spec = _parse_cron(fields)
    # The smallest gap, sampled over the first fire times from the first allowed year
    # (local wall-clock differences: the expression's own rhythm, not DST's).
    fires = spec.local_fires(datetime(spec.years[0], 1, 1))  # noqa: DTZ001 - wall clock
    sample = list(islice(fires, _INTERVAL_SAMPLES))
    if not sample:
        raise _Invalid(text)  # an expression that can never fire
    floor = max(api.CRON_MIN_INTERVAL_SECONDS, timeout)
    if any((b - a).total_seconds() < floor for a, b in pairwise(sample)):
        raise _Invalid(text)
    return Frequency("cron", text, zone=zone, cron=spec)
