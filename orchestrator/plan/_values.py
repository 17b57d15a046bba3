"""The plan's small value grammars: amounts, error thresholds and durations.

Each parser takes a YAML value and returns the parsed value or, when it cannot, the
sentence saying why (the caller adds the field and the rule). An amount (a wave's
`size`, `max_concurrency`) is a count ≥ 1 or a percentage in (0, 100]. A threshold
(`max_errors`) may also be zero: a count ≥ 0 or a percentage in [0, 100]. A duration
(`pause`) is a number of seconds or a string of hours, minutes and seconds in that
order (`30s`, `5m`, `1h`, `1h30m`, `1.5h`); the wordy forms people write (`5 minutes`,
`1 day`) are refused with the short form to write instead.
"""

from __future__ import annotations

import math
import re
from typing import Final

from orchestrator.plan._findings import shown
from orchestrator.plan._model import Amount
from orchestrator.plan._reader import INTEGER_TEXT, kind, unquote_hint

_PERCENT: Final = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*%\s*")
_FULL: Final = 100.0
_NUMBER: Final = r"(\d+(?:\.\d+)?)"
_DURATION: Final = re.compile(rf"(?:{_NUMBER}h)?(?:{_NUMBER}m)?(?:{_NUMBER}s)?")
_WORD: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)")
_FILLER: Final = re.compile(r"[\s,]|\band\b", re.IGNORECASE)
_UNITS: Final = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), ("s", 1)),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), ("m", 60)),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), ("h", 3600)),
    **dict.fromkeys(("d", "day", "days"), ("h", 86400)),
}
_SECONDS_PER: Final = (3600, 60, 1)
DURATION_EXAMPLES: Final = "a number of seconds, or a string such as 30s, 5m, 1h or 1h30m"
TIMEOUT_ACCEPTED: Final = "a whole number of seconds, e.g. 600"  # the API's Timeout is a Long


def parse_amount(value: object) -> Amount | str:
    """A count (`5`) or a percentage (`"10%"`); a message saying why not otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Amount(value) if value >= 1 else f"must be at least 1, not {value}"
    if isinstance(value, str) and (match := _PERCENT.fullmatch(value)):
        percent = float(match.group(1))
        if 0 < percent <= _FULL:
            return Amount(percent, percent=True)
        return f"a percentage must be more than 0% and at most 100%, not {value.strip()}"
    hint = unquote_hint(value, INTEGER_TEXT)
    return f'must be a positive integer or a percentage such as "10%", not {kind(value)}{hint}'


def parse_threshold(value: object) -> Amount | str:
    """An error threshold: a count ≥ 0 (`0`, `3`) or a percentage in [0, 100] (`"5%"`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Amount(value) if value >= 0 else f"must be 0 or more, not {value}"
    if isinstance(value, str) and (match := _PERCENT.fullmatch(value)):
        percent = float(match.group(1))
        if 0 <= percent <= _FULL:
            return Amount(percent, percent=True)
        return (
            f"a percentage of the wave is between 0% and 100% (100% never breaches), "
            f"not {value.strip()}"
        )
    return (
        'must be a count (0 or more) or a percentage of the wave such as "5%", '
        f"not {kind(value)}{unquote_hint(value, INTEGER_TEXT)}"
    )


def _shorthand(text: str) -> str | None:
    """`5 minutes` → `5m`, `1 hour 30 minutes` → `1h30m`, `1 day` → `24h`; None when
    `text` is not numbers with unit words."""
    pairs = _WORD.findall(text)
    if not pairs or _FILLER.sub("", _WORD.sub("", text)):
        return None
    seconds = 0.0
    for number, unit in pairs:
        if unit.lower() not in _UNITS:
            return None
        seconds += float(number) * _UNITS[unit.lower()][1]
    return format_duration(seconds)


def format_duration(seconds: float) -> str:
    """Seconds as the plan writes them: `90` → `1m30s`, `5400` → `1h30m`, `0` → `0s`."""
    if not math.isfinite(seconds) or seconds != int(seconds):
        return f"{seconds:g}s"
    left, parts = int(seconds), []
    for size, unit in zip(_SECONDS_PER, "hms", strict=True):
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_duration(value: object) -> float | str:
    """Seconds from a number (`90`, `1.5`) or a string (`30s`, `5m`, `1h30m`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if value >= 0 else f"must be 0 or more seconds, not {value:g}"
    if not isinstance(value, str):
        return f"must be a duration: {DURATION_EXAMPLES}, not {kind(value)}"
    text = value.strip()
    match = _DURATION.fullmatch(text)
    if text and match is not None:
        seconds = float(
            sum(
                float(part) * size
                for part, size in zip(match.groups(), _SECONDS_PER, strict=True)
                if part is not None
            )
        )
        # 400 digits of hours make a float infinity, which no clock can wait for.
        return seconds if math.isfinite(seconds) else f"{shown(text)} is too long a duration"
    if (short := _shorthand(text)) is not None:
        return f"{text!r} is not a duration; write {short}"
    if re.fullmatch(_NUMBER, text):
        return f"{text!r} has no unit; write {text}s (or the number {text} without quotes)"
    return f"must be a duration: {DURATION_EXAMPLES}, not {text!r}"


def parse_rate(value: object) -> float | str:
    """`max_error_rate`: a percentage in [0, 100] (`"2%"`), as a number of percent."""
    if isinstance(value, str) and (match := _PERCENT.fullmatch(value)):
        percent = float(match.group(1))
        if 0 <= percent <= _FULL:
            return percent
        return f"a failure rate is between 0% and 100%, not {value.strip()}"
    return f'must be a percentage such as "2%", not {kind(value)}'


def parse_confidence(value: object) -> float | str:
    """`confidence`: a percentage strictly between 0 and 100 (`"95%"`)."""
    if isinstance(value, str) and (match := _PERCENT.fullmatch(value)):
        percent = float(match.group(1))
        if 0 < percent < _FULL:
            return percent
        return (
            "a confidence is more than 0% and less than 100% (e.g. 90%, 95%, 99%), "
            f"not {value.strip()}"
        )
    return f'must be a percentage such as "95%", not {kind(value)}'
