"""Frequency: rate / at / Quartz cron parsing, the interval rules, and exact fire times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from orchestrator.sim._frequency import parse_frequency
from orchestrator.sim._protocol import SimApiError


def _utc(*fields: int) -> datetime:
    """A UTC datetime from (year, month, day[, hour[, minute[, second]]])."""
    year, month, day, *rest = fields
    hour, minute, second = (*rest, 0, 0, 0)[:3]
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _fires(text: str, after: datetime, count: int, *, timeout: int = 60) -> list[datetime]:
    frequency = parse_frequency(text, timeout=timeout)
    out: list[datetime] = []
    t = after
    for _ in range(count):
        nxt = frequency.next_after(t)
        assert nxt is not None
        out.append(nxt)
        t = nxt
    return out


class TestSeedExamples:
    def test_daily_shanghai_2022(self) -> None:
        """`0 15 10 ? * * 2022 Asia/Shanghai`: 10:15 +08 every day of 2022 only."""
        text = "0 15 10 ? * * 2022 Asia/Shanghai"
        assert _fires(text, _utc(2021, 6, 1), 2) == [
            _utc(2022, 1, 1, 2, 15),
            _utc(2022, 1, 2, 2, 15),
        ]
        frequency = parse_frequency(text, timeout=60)
        assert frequency.next_after(_utc(2022, 12, 31, 2, 15)) is None

    def test_half_hourly_gmt_plus_8(self) -> None:
        """`0 0/30 10-11 * * ? 2022 GMT+8:00`: 10:00, 10:30, 11:00, 11:30 at +08."""
        text = "0 0/30 10-11 * * ? 2022 GMT+8:00"
        assert _fires(text, _utc(2022, 3, 1, 1, 0), 5) == [
            _utc(2022, 3, 1, 2, 0),
            _utc(2022, 3, 1, 2, 30),
            _utc(2022, 3, 1, 3, 0),
            _utc(2022, 3, 1, 3, 30),
            _utc(2022, 3, 2, 2, 0),
        ]

    def test_every_other_october_utc(self) -> None:
        """`0 0/5 14 * 10 ? 2022/2 UTC`: 14:00-14:55 each October of even years."""
        text = "0 0/5 14 * 10 ? 2022/2 UTC"
        assert _fires(text, _utc(2022, 1, 1), 1) == [_utc(2022, 10, 1, 14, 0)]
        assert _fires(text, _utc(2022, 10, 1, 14, 50), 2) == [
            _utc(2022, 10, 1, 14, 55),
            _utc(2022, 10, 2, 14, 0),
        ]
        assert _fires(text, _utc(2022, 10, 31, 14, 55), 1) == [_utc(2024, 10, 1, 14, 0)]

    def test_at_gmt_minus_7(self) -> None:
        """`at(2022-06-06 13:15:30 GMT-7:00)` fires once at 20:15:30 UTC."""
        frequency = parse_frequency("at(2022-06-06 13:15:30 GMT-7:00)", timeout=60)
        assert frequency.kind == "at"
        assert frequency.next_after(_utc(2022, 1, 1)) == _utc(2022, 6, 6, 20, 15, 30)
        assert frequency.next_after(_utc(2022, 6, 6, 20, 15, 30)) is None

    def test_rate_5m(self) -> None:
        """`rate(5m)` fires every 300 s counted from the task's creation."""
        created = _utc(2024, 1, 1, 12, 0, 0)
        frequency = parse_frequency("rate(5m)", timeout=60).anchored(created)
        assert frequency.interval == timedelta(minutes=5)
        assert frequency.next_after(created) == _utc(2024, 1, 1, 12, 5)
        assert frequency.next_after(_utc(2024, 1, 1, 12, 5)) == _utc(2024, 1, 1, 12, 10)
        assert frequency.next_after(_utc(2024, 1, 1, 12, 7, 1)) == _utc(2024, 1, 1, 12, 10)
        assert frequency.next_after(_utc(2023, 1, 1)) == _utc(2024, 1, 1, 12, 5)


class TestRate:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("rate(60s)", 60), ("rate(2m)", 120), ("rate(1h)", 3600), ("rate(7d)", 604800)],
    )
    def test_units_and_bounds(self, text: str, seconds: int) -> None:
        """Every unit; 60 s and 7 days are both allowed."""
        assert parse_frequency(text, timeout=10).interval == timedelta(seconds=seconds)

    def test_case_and_space_as_the_agent_reads_them(self) -> None:
        """The agent's grammar is case-insensitive and allows a space before the unit."""
        assert parse_frequency("RATE(5 M)", timeout=60).interval == timedelta(minutes=5)

    def test_unanchored_counts_from_the_time_asked(self) -> None:
        """Without an anchor the next fire is one interval after `t`."""
        frequency = parse_frequency("rate(90s)", timeout=60)
        assert frequency.next_after(_utc(2024, 1, 1)) == _utc(2024, 1, 1, 0, 1, 30)

    @pytest.mark.parametrize(
        ("text", "timeout"),
        [
            ("rate(59s)", 0),  # below 60 s
            ("rate(604801s)", 0),  # above 7 days
            ("rate(8d)", 0),
            ("rate(1m)", 60),  # must be greater than Timeout
            ("rate(0s)", 0),
            ("rate(5)", 0),
            ("rate(5w)", 0),
            ("rate(-5m)", 0),
            ("rate(5m) x", 0),
            ("rate5m", 0),
        ],
    )
    def test_refusals(self, text: str, timeout: int) -> None:
        """Out of bounds, not above Timeout, or malformed: InvalidParam.Frequency."""
        with pytest.raises(SimApiError) as excinfo:
            parse_frequency(text, timeout=timeout)
        assert excinfo.value.code == "InvalidParam.Frequency"
        assert excinfo.value.http_status == 400


class TestAt:
    def test_default_zone_is_utc(self) -> None:
        """No zone means UTC."""
        frequency = parse_frequency("at(2030-01-02 03:04:05)", timeout=60)
        assert frequency.when == _utc(2030, 1, 2, 3, 4, 5)

    def test_iana_zone(self) -> None:
        """A full zone name, daylight saving included (Los Angeles in July: -07)."""
        frequency = parse_frequency("at(2022-07-01 08:00:00 America/Los_Angeles)", timeout=60)
        assert frequency.when == _utc(2022, 7, 1, 15, 0)
        frequency = parse_frequency("at(2022-06-06 13:15:30 Asia/Shanghai)", timeout=60)
        assert frequency.when == _utc(2022, 6, 6, 5, 15, 30)

    def test_explicit_utc_and_gmt_offsets(self) -> None:
        """`UTC`, `GMT+14:00` and a minutes offset `GMT+5:45` are allowed."""
        assert parse_frequency("at(2030-01-01 00:00:00 UTC)", timeout=0).when == _utc(2030, 1, 1)
        when = parse_frequency("at(2030-01-01 00:00:00 GMT+14:00)", timeout=0).when
        assert when == _utc(2029, 12, 31, 10, 0)
        when = parse_frequency("at(2030-01-01 00:00:00 GMT+5:45)", timeout=0).when
        assert when == _utc(2029, 12, 31, 18, 15)

    @pytest.mark.parametrize(
        "text",
        [
            "at(2022-06-06 13:15:30 GMT+08:00)",  # leading zero in the hour
            "at(2022-06-06 13:15:30 GMT-13:00)",  # no such zone
            "at(2022-06-06 13:15:30 GMT+8)",
            "at(2022-06-06 13:15:30 GMT)",  # of the abbreviations only UTC
            "at(2022-06-06 13:15:30 CST)",
            "at(2022-06-06 13:15:30 Mars/Olympus)",
            "at(2022-02-30 00:00:00)",  # no such day
            "at(2022-06-06T13:15:30)",
            "at(2022-6-6 13:15:30)",
            "at(2022-06-06 13:15)",
            "at()",
        ],
    )
    def test_refusals(self, text: str) -> None:
        """Malformed times and zones: InvalidParam.Frequency."""
        with pytest.raises(SimApiError) as excinfo:
            parse_frequency(text, timeout=60)
        assert excinfo.value.code == "InvalidParam.Frequency"


class TestCron:
    def test_six_fields_default_zone(self) -> None:
        """The classic form; no zone means the instance's own, simulated as UTC."""
        frequency = parse_frequency("0 */20 * * * ?", timeout=60)
        assert frequency.kind == "cron"
        assert frequency.zone is None
        assert _fires("0 */20 * * * ?", _utc(2024, 5, 5, 23, 59, 59), 2) == [
            _utc(2024, 5, 6, 0, 0),
            _utc(2024, 5, 6, 0, 20),
        ]

    def test_seven_fields_year_or_zone(self) -> None:
        """A 7th field is the year when numeric, else a zone."""
        assert parse_frequency("0 0 0 1 1 ? 2030", timeout=60).zone is None
        frequency = parse_frequency("0 0 0 1 1 ? GMT-7:00", timeout=60)
        assert frequency.zone == timezone(timedelta(hours=-7))
        assert frequency.next_after(_utc(2030, 1, 1)) == _utc(2030, 1, 1, 7, 0)

    def test_strictly_after(self) -> None:
        """A `t` on a fire time yields the following one."""
        assert _fires("0 0 12 * * ?", _utc(2024, 1, 1, 12), 1) == [_utc(2024, 1, 2, 12)]

    def test_subsecond_t(self) -> None:
        """A `t` between seconds rounds forward to the next whole fire time."""
        t = _utc(2024, 1, 1, 11, 59, 59) + timedelta(microseconds=500)
        assert _fires("0 0 12 * * ?", t, 1) == [_utc(2024, 1, 1, 12)]

    def test_daylight_saving_zone(self) -> None:
        """Weekdays at 09:00 New York: the Monday after the spring change is at -04."""
        text = "0 0 9 ? * MON-FRI America/New_York"
        # Friday 2024-03-08 10:00 EST, then Monday 2024-03-11 09:00 EDT.
        assert _fires(text, _utc(2024, 3, 8, 15), 2) == [
            _utc(2024, 3, 11, 13),
            _utc(2024, 3, 12, 13),
        ]

    @pytest.mark.parametrize(
        ("text", "after", "expected"),
        [
            # L: last day of the month (leap February).
            ("0 0 12 L * ?", _utc(2024, 2, 1), _utc(2024, 2, 29, 12)),
            # L-2: two days before the last.
            ("0 0 12 L-2 * ?", _utc(2024, 4, 1), _utc(2024, 4, 28, 12)),
            # LW: last weekday (2024-08-31 is a Saturday).
            ("0 0 12 LW * ?", _utc(2024, 8, 1), _utc(2024, 8, 30, 12)),
            # 15W: 2024-06-15 is a Saturday -> Friday 14th.
            ("0 0 12 15W * ?", _utc(2024, 6, 1), _utc(2024, 6, 14, 12)),
            # 1W: 2024-06-01 is a Saturday -> Monday 3rd, never May 31st.
            ("0 0 12 1W * ?", _utc(2024, 5, 31), _utc(2024, 6, 3, 12)),
            # 31W: 2024-03-31 is a Sunday -> Friday 29th.
            ("0 0 12 31W * ?", _utc(2024, 3, 1), _utc(2024, 3, 29, 12)),
            # 6#3: third Friday (Quartz 6 = FRI).
            ("0 0 12 ? * 6#3", _utc(2024, 1, 1), _utc(2024, 1, 19, 12)),
            # FRI#5 skips months without a fifth Friday (Feb-Apr 2024 -> May 31).
            ("0 0 12 ? * FRI#5", _utc(2024, 3, 30), _utc(2024, 5, 31, 12)),
            # 6L: last Friday.
            ("0 0 12 ? * 6L", _utc(2024, 6, 1), _utc(2024, 6, 28, 12)),
            # L alone in day-of-week is Saturday.
            ("0 0 12 ? * L", _utc(2024, 6, 3), _utc(2024, 6, 8, 12)),
            # 1 = SUN in Quartz numbering.
            ("0 0 12 ? * 1", _utc(2024, 6, 3), _utc(2024, 6, 9, 12)),
            # Month names and lists.
            ("0 0 0 1 JAN,jul ?", _utc(2024, 2, 1), _utc(2024, 7, 1)),
            # A reversed range wraps around: hours 22-2.
            ("0 0 22-2 * * ?", _utc(2024, 1, 1, 3), _utc(2024, 1, 1, 22)),
            ("0 0 22-2 * * ?", _utc(2024, 1, 1, 23), _utc(2024, 1, 2, 0)),
            # a/n runs to the top: seconds 10/20 = 10, 30, 50.
            ("10/20 * * * * ?", _utc(2024, 1, 1, 0, 0, 31), _utc(2024, 1, 1, 0, 0, 50)),
            # Day 31 skips short months.
            ("0 0 0 31 * ?", _utc(2024, 4, 1), _utc(2024, 5, 31)),
            # Leap day only.
            ("0 0 0 29 2 ?", _utc(2024, 3, 1), _utc(2028, 2, 29)),
        ],
    )
    def test_quartz_specials(self, text: str, after: datetime, expected: datetime) -> None:
        """`L`, `W`, `#`, names, wrap-around ranges and steps land on the right day."""
        assert _fires(text, after, 1, timeout=10) == [expected]

    def test_nothing_after_2099(self) -> None:
        """Quartz years end in 2099: no fire time after that."""
        frequency = parse_frequency("0 0 0 1 1 ?", timeout=60)
        assert frequency.next_after(_utc(2099, 1, 1)) is None
        assert frequency.next_after(_utc(2098, 6, 1)) == _utc(2099, 1, 1)

    def test_minimum_interval_exactly(self) -> None:
        """A 10 s gap passes; a gap equal to Timeout passes (≥, not >)."""
        parse_frequency("*/10 * * * * ?", timeout=10)
        parse_frequency("0 */2 * * * ?", timeout=120)

    @pytest.mark.parametrize(
        ("text", "timeout"),
        [
            ("*/5 * * * * ?", 0),  # 5 s < 10 s
            ("0,5 0 0 * * ?", 0),  # one 5 s gap among daily runs
            ("0,55 0,1 0 * * ?", 0),  # 00:00:55 -> 00:01:00 is 5 s
            ("0 * * * * ?", 120),  # 60 s < Timeout
            ("0 0 0 30 2 ?", 0),  # never fires
            ("0 0 0 ? * 6#6", 0),
            ("* * * * *", 0),  # five fields
            ("0 0 0 1 1 ? 2030 UTC extra", 0),  # nine fields
            ("0 0 0 ? * ?", 0),  # both day fields `?`
            ("0 0 0 * * *", 0),  # neither day field `?` (Quartz)
            ("0 0 0 1 * 2", 0),
            ("? 0 0 1 * ?", 0),  # `?` outside the day fields
            ("60 0 0 1 * ?", 0),
            ("0 60 0 1 * ?", 0),
            ("0 0 24 1 * ?", 0),
            ("0 0 0 32 * ?", 0),
            ("0 0 0 0 * ?", 0),
            ("0 0 0 1 13 ?", 0),
            ("0 0 0 ? * 8", 0),
            ("0 0 0 ? * 0", 0),
            ("0/0 0 0 1 * ?", 0),  # zero step
            ("0 0 0 1 FOO ?", 0),
            ("0 0 0 1 * ? 1969", 0),
            ("0 0 0 1 * ? 2100", 0),
            ("0 0 0 1 * ? 2030-2025", 0),  # years do not wrap
            ("0 0 0 L-31 * ?", 0),
            ("0 0 0 32W * ?", 0),
            ("0 0 0 1,,2 * ?", 0),
            ("0 0 0 1 * ? Asia/Nowhere", 0),
            ("0 0 0 1 * ? 2030 GMT+08:00", 0),
        ],
    )
    def test_refusals(self, text: str, timeout: int) -> None:
        """Malformed fields, too short a gap, or no fire time at all."""
        with pytest.raises(SimApiError) as excinfo:
            parse_frequency(text, timeout=timeout)
        assert excinfo.value.code == "InvalidParam.Frequency"
