"""Structured logs: the event names and levels, flat fields, rate limiting on the run's
clock, -q and -v, and secrets that never reach a line. Real events from the dataclasses
go to an `EventLog`; every line it writes is parsed as JSON."""

from __future__ import annotations

import io
import json
import re
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from orchestrator.cli._eventlog import EventLog
from orchestrator.cli._logging import REDACTED, configure_logging, register_secret
from orchestrator.clock import ScaledClock
from orchestrator.plan import Amount
from orchestrator.rollout import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    BatchDispatched,
    BatchRefused,
    BatchState,
    BreachStopSent,
    GateDecided,
    GateDecision,
    GateEvaluated,
    Halt,
    InstanceFinished,
    InstanceOutput,
    InstanceRejected,
    InstanceResult,
    Outcome,
    RolloutResult,
    RunFinished,
    RunStarted,
    Throttled,
    Verdict,
    VerifyFinished,
    VerifyStarted,
    WaveFinished,
    WavePaused,
    WaveStarted,
    WaveSummary,
)
from orchestrator.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator

AT = datetime(2026, 1, 1, tzinfo=UTC)


class Lines:
    """Log lines written to a string, parsed as JSON."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.all() if line["event"] == name]

    def names(self) -> list[str]:
        return [line["event"] for line in self.all()]


@pytest.fixture(autouse=True)
def reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def logged(verbosity: int = 0) -> Lines:
    lines = Lines()
    configure_logging(fmt="json", verbosity=verbosity, stream=lines.stream)
    return lines


def result(n: int, outcome: Outcome, wave: str = "canary", **fields: Any) -> InstanceResult:
    return InstanceResult(f"i-{n:05d}", outcome, wave=wave, invoke_id="t-1", **fields)


def decision(verdict: Verdict, errors: int, *, wave: str = "canary") -> GateDecision:
    return GateDecision(
        wave=0,
        name=wave,
        size=45,
        max_errors=Amount(5, percent=True),
        threshold=2,
        errors=errors,
        verdict=verdict,
        reason="within max_errors" if verdict is Verdict.PASS else "the (T+1)-th counted error",
        failed=errors,
    )


def fail(message: str) -> None:
    raise RuntimeError(message)


def whole_run() -> list[Any]:
    """A two-wave run whose first wave passes after verify and approval, the second breaches."""
    ok = result(1, Outcome.SUCCEEDED)
    bad = result(2, Outcome.FAILED, exit_code=3, error_code="ExitCodeNonzero", output="x\nboom")
    halt = Halt("breach", wave="full", decision=decision(Verdict.BREACH, 3, wave="full"))
    final = RolloutResult(
        run_id="r-1",
        results=(ok, bad, result(3, Outcome.NOT_SENT, wave="full")),
        waves=(WaveSummary(0, "canary", 2), WaveSummary(1, "full", 1)),
        api_calls={"RunCommand": 2, "DescribeInvocationResults": 5},
        throttles=1,
        halt=halt,
    )
    return [
        RunStarted("r-1", "web", 3, (2, 1), AT),
        WaveStarted(0, "canary", 2, 1, AT),
        BatchDispatched(0, 0, "", "orc-w0-b0-abc", "t-1", ("i-00001", "i-00002"), AT),
        Throttled("DescribeInvocationResults", 5.0),
        InstanceOutput("i-00001", "canary", "hello", 0),
        InstanceFinished(ok),
        InstanceFinished(bad),
        GateEvaluated(decision(Verdict.PASS, 1)),
        VerifyStarted(0, "canary", 1, AT),
        VerifyFinished(0, "canary", 1, 0, 0, "", AT),
        GateDecided(decision(Verdict.PASS, 1)),
        WaveFinished(0, "canary", {Outcome.SUCCEEDED: 1, Outcome.FAILED: 1}, AT),
        WavePaused(0, "canary", 60.0, AT),
        ApprovalRequested(
            "r-1", 0, "canary", "plan approval", "orchestrator approve r-1 canary", AT
        ),
        ApprovalGranted(0, "canary", AT),
        WaveStarted(1, "full", 1, 1, AT),
        BatchRefused(1, 0, "", "orc-w1-b0-def", BatchState.REFUSED, "QuotaExceed", "too many"),
        InstanceRejected(1, "i-00003", "InvalidInstance.NotFound", "gone"),
        BreachStopSent(1, "full", 1, 4, AT),
        GateDecided(decision(Verdict.BREACH, 3, wave="full")),
        WaveFinished(1, "full", {Outcome.NOT_SENT: 1}, AT),
        RunFinished(final),
    ]


def test_a_run_logs_one_named_line_per_meaningful_event():
    """At info level: every step but the debug ones, in order, each one JSON line."""
    lines = logged()
    log = EventLog(clock=ManualClock())
    for event in whole_run():
        log(event)
    assert lines.names() == [
        "run.started",
        "wave.started",
        "throttled",
        "instance.finished",  # the failure; the success is a debug line
        "verify.started",
        "verify.finished",
        "gate.decided",
        "wave.finished",
        "wave.paused",
        "approval.requested",
        "approval.granted",
        "wave.started",
        "batch.refused",
        "instance.rejected",
        "breach.stop_sent",
        "gate.decided",
        "wave.finished",
        "run.finished",
    ]
    levels = {line["event"]: line["level"] for line in lines.all()}
    assert levels["run.started"] == "info"
    assert levels["throttled"] == "warning"
    assert levels["batch.refused"] == "warning"
    assert levels["instance.rejected"] == "warning"
    assert levels["breach.stop_sent"] == "warning"
    assert levels["approval.requested"] == "warning"
    assert levels["run.finished"] == "warning"  # it halted
    assert all(line["run_id"] == "r-1" and "timestamp" in line for line in lines.all())
    for line in lines.all():  # flat: no line carries a nested mapping
        assert not any(isinstance(value, dict) for value in line.values())


def test_lines_carry_the_numbers():
    lines = logged()
    log = EventLog(clock=ManualClock())
    for event in whole_run():
        log(event)
    started = lines.named("run.started")[0]
    assert (started["plan"], started["instances"], started["wave_sizes"]) == ("web", 3, [2, 1])
    failed = lines.named("instance.finished")[0]
    assert failed["instance_id"] == "i-00002"
    assert (failed["outcome"], failed["exit_code"], failed["error_code"]) == (
        "failed",
        3,
        "ExitCodeNonzero",
    )
    assert failed["output_tail"] == "x\nboom"
    passed, breached = lines.named("gate.decided")
    assert (passed["level"], passed["verdict"], passed["errors"]) == ("info", "pass", 1)
    assert (breached["level"], breached["verdict"], breached["wave"]) == (
        "warning",
        "breach",
        "full",
    )
    assert breached["threshold"] == 2
    assert breached["limit"] == "2 (5% of 45)"
    assert breached["summary"] == "wave full breached: 3 errors > max_errors 2 (5% of 45)"
    wave = lines.named("wave.finished")[0]
    assert (wave["wave"], wave["succeeded"], wave["failed"], wave["size"]) == ("canary", 1, 1, 2)
    refused = lines.named("batch.refused")[0]
    assert (refused["state"], refused["code"], refused["wave"]) == (
        "refused",
        "QuotaExceed",
        "full",
    )
    finished = lines.named("run.finished")[0]
    assert finished["halt_reason"] == "breach"
    assert finished["halt_wave"] == "full"
    assert finished["halt_text"].startswith("wave full breached: 3 errors")
    assert finished["interrupted"] is False
    assert (finished["api_calls"], finished["describe_calls"], finished["throttles"]) == (7, 5, 1)
    assert (finished["succeeded"], finished["failed"], finished["not_sent"]) == (1, 1, 1)
    assert lines.named("wave.paused")[0]["until"] == AT.isoformat()
    assert lines.named("approval.requested")[0]["how"] == "orchestrator approve r-1 canary"


def test_only_the_tail_of_an_output_is_logged():
    lines = logged()
    log = EventLog(clock=ManualClock())
    output = "HEAD" + "x" * 5000 + "the end"
    log(InstanceFinished(result(1, Outcome.FAILED, exit_code=1, output=output)))
    tail = lines.named("instance.finished")[0]["output_tail"]
    assert len(tail) == 200
    assert tail.endswith("the end")
    assert "HEAD" not in lines.stream.getvalue()


def test_failures_are_rate_limited_then_counted_when_the_window_rolls_over():
    """50 failures at once: 20 lines; 10 s later the next one first says 30 were held."""
    lines = logged()
    clock = ManualClock()
    log = EventLog(clock=clock, burst=20, window=10.0)
    log(WaveStarted(0, "canary", 100, 1, AT))
    for n in range(40):
        log(InstanceFinished(result(n, Outcome.FAILED, exit_code=1)))
    for n in range(40, 50):
        log(InstanceFinished(result(n, Outcome.UNDELIVERED)))
    clock.advance(9.9)
    log(InstanceFinished(result(50, Outcome.STOPPED)))  # same window: held too
    assert len(lines.named("instance.finished")) == 20
    assert lines.named("instance.finished.suppressed") == []
    clock.advance(0.1)
    log(InstanceFinished(result(51, Outcome.FAILED, exit_code=1)))
    suppressed = lines.named("instance.finished.suppressed")
    assert len(suppressed) == 1
    held = suppressed[0]
    assert held["level"] == "info"
    assert held["suppressed"] == 31
    assert (held["failed"], held["undelivered"], held["stopped"]) == (20, 10, 1)
    assert held["window_s"] == 10.0
    assert lines.names()[-3:] == [
        "instance.finished.suppressed",
        "instance.finished",
        "wave.progress",  # 10 s since the wave started
    ]
    assert lines.named("instance.finished")[-1]["instance_id"] == "i-00051"


def test_successes_never_use_up_the_burst():
    lines = logged()
    log = EventLog(clock=ManualClock(), burst=3)
    for n in range(100):
        log(InstanceFinished(result(n, Outcome.SUCCEEDED)))
    log(InstanceFinished(result(100, Outcome.FAILED, exit_code=1)))
    assert [line["instance_id"] for line in lines.named("instance.finished")] == ["i-00100"]


def test_held_counts_are_reported_when_the_wave_ends():
    """No count is lost when nothing comes after the burst: the wave's end reports it."""
    lines = logged()
    log = EventLog(clock=ManualClock(), burst=2)
    log(WaveStarted(0, "canary", 5, 1, AT))
    for n in range(5):
        log(InstanceFinished(result(n, Outcome.FAILED, exit_code=1)))
    log(WaveFinished(0, "canary", {Outcome.FAILED: 5}, AT))
    assert lines.names()[-2:] == ["instance.finished.suppressed", "wave.finished"]
    assert lines.named("instance.finished.suppressed")[0]["suppressed"] == 3


def test_throttles_are_rate_limited_the_same_way():
    lines = logged()
    clock = ManualClock()
    log = EventLog(clock=clock, burst=20, window=10.0)
    for _ in range(25):
        log(Throttled("RunCommand", 2.5))
    assert len(lines.named("throttled")) == 20
    clock.advance(10)
    log(Throttled("RunCommand", 1.25))
    held = lines.named("throttled.suppressed")
    assert [(line["level"], line["suppressed"]) for line in held] == [("warning", 5)]
    assert lines.named("throttled")[-1]["rate"] == 1.25


def test_wave_progress_at_most_once_per_window_per_wave():
    lines = logged()
    clock = ManualClock()
    log = EventLog(clock=clock, window=10.0)
    log(WaveStarted(0, "canary", 1000, 10, AT))
    log(GateEvaluated(decision(Verdict.PASS, 1)))
    for n in range(1000):
        if n % 100 == 0:
            clock.advance(4)  # 40 s in all: a progress line every 10 s at most
        outcome = Outcome.FAILED if n == 0 else Outcome.SUCCEEDED
        log(InstanceFinished(result(n, outcome)))
    progress = lines.named("wave.progress")
    assert [line["done"] for line in progress] == [201, 501, 801]
    first = progress[0]
    assert (first["size"], first["succeeded"], first["failed"], first["errors"]) == (
        1000,
        200,
        1,
        1,
    )
    assert first["level"] == "info"


def test_quiet_shows_only_warnings_and_worse():
    lines = logged(verbosity=-1)
    log = EventLog(clock=ManualClock())
    for event in whole_run():
        log(event)
    assert {line["level"] for line in lines.all()} == {"warning"}
    assert "run.started" not in lines.names()
    assert "instance.finished" not in lines.names()
    assert "batch.refused" in lines.names()
    assert "run.finished" in lines.names()  # it halted


def test_verbose_shows_debug_lines():
    lines = logged(verbosity=1)
    log = EventLog(clock=ManualClock())
    for event in whole_run():
        log(event)
    dispatched = lines.named("batch.dispatched")
    assert [(d["level"], d["invoke_id"], d["instances"], d["wave"]) for d in dispatched] == [
        ("debug", "t-1", 2, "canary")
    ]
    finished = lines.named("instance.finished")
    assert [(f["instance_id"], f["level"]) for f in finished] == [
        ("i-00001", "debug"),
        ("i-00002", "info"),
    ]
    assert lines.named("gate.evaluated")[0]["level"] == "debug"
    # A ClientToken names a batch that wave/batch/split already name; it is never logged.
    assert "orc-w0-b0-abc" not in lines.stream.getvalue()


def test_no_normal_line_is_debug():
    lines = logged()
    log = EventLog(clock=ManualClock())
    for event in whole_run():
        log(event)
    assert "debug" not in {line["level"] for line in lines.all()}
    assert "batch.dispatched" not in lines.names()


def test_a_registered_secret_never_appears():
    lines = logged(verbosity=1)
    secret = secrets.token_urlsafe(24)
    register_secret(secret)
    log = EventLog(clock=ManualClock())
    log(RunStarted("r-1", "web", 1, (1,), AT))
    log(BatchRefused(0, 0, "", "tok", BatchState.REFUSED, "Forbidden", f"bad key {secret}!"))
    log(InstanceFinished(result(1, Outcome.FAILED, exit_code=1, output=f"echo {secret}")))
    other = structlog.get_logger("orchestrator.rollout._dispatcher")
    other.warning("rollout.poll_failed", error=f"signed with {secret}", nested={"x": [secret]})
    try:
        fail(f"failed with {secret}")
    except RuntimeError:
        other.exception("rollout.crashed")
    text = lines.stream.getvalue()
    assert secret not in text
    assert lines.named("batch.refused")[0]["message"] == f"bad key {REDACTED}!"
    assert lines.named("instance.finished")[0]["output_tail"] == f"echo {REDACTED}"
    assert lines.named("rollout.poll_failed")[0]["nested"] == {"x": [REDACTED]}
    assert f"failed with {REDACTED}" in lines.named("rollout.crashed")[0]["exception"]


@pytest.mark.parametrize(
    "key", ["access_key_secret", "security_token", "password", "Signature", "credentials"]
)
def test_a_key_that_names_a_secret_is_redacted(key):
    lines = logged()
    structlog.get_logger("x").info("connected", **{key: "hunter2-value", "region": "cn-x"})
    (line,) = lines.all()
    assert line[key] == REDACTED
    assert line["region"] == "cn-x"
    assert "hunter2-value" not in lines.stream.getvalue()


def test_console_format_writes_readable_lines():
    stream = io.StringIO()
    configure_logging(fmt="console", verbosity=0, stream=stream)
    log = EventLog(clock=ManualClock())
    log(RunStarted("r-1", "web", 3, (2, 1), AT))
    log(BatchDispatched(0, 0, "", "tok", "t-1", ("i-1",), AT))  # debug: not shown
    text = stream.getvalue()
    assert "run.started" in text
    assert "plan=web" in text
    assert "batch.dispatched" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_every_name_logged_is_documented():
    """docs/logging.md's table names every line an EventLog writes, with its level."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "logging.md").read_text()
    names = docs.split("### Event names")[1].split("\n## ")[0]
    documented = {
        row.split("|")[1].strip().strip("`"): row.split("|")[2]
        for row in names.splitlines()
        if row.startswith("| `")
    }
    lines = logged(verbosity=1)
    clock = ManualClock()
    log = EventLog(clock=clock, burst=1)
    for event in whole_run()[:-1]:
        log(event)
    for n in range(3):
        log(InstanceRejected(1, f"i-{n}", "Bad", "bad"))
        log(InstanceFinished(result(n, Outcome.FAILED, exit_code=1)))
        log(Throttled("RunCommand", 1.0))
    clock.advance(10)
    log(InstanceFinished(result(9, Outcome.SUCCEEDED)))  # and a wave.progress line
    log(ApprovalDenied(1, "full", AT))
    log(whole_run()[-1])
    for line in lines.all():
        assert line["event"] in documented, line["event"]
        assert line["level"] in documented[line["event"]], line["event"]
    # ...and documents no line it never writes (the engine's and the API client's own
    # lines aside: rollout.*, credentials.*).
    ours = {name for name in documented if not name.startswith(("rollout.", "credentials."))}
    assert {line["event"] for line in lines.all()} == ours


def finished_line(result: RolloutResult, *, skipped_before_dispatch: int = 0) -> dict[str, Any]:
    lines = logged()
    log = EventLog(clock=ManualClock(), skipped_before_dispatch=skipped_before_dispatch)
    log(RunStarted(result.run_id, "web", len(result.results), (len(result.results),), AT))
    log(RunFinished(result))
    (line,) = lines.named("run.finished")
    return line


def test_halt_fields_are_null_whenever_there_is_no_such_thing():
    """One convention for jq and every script: `halt_code` is null unless an API answer
    caused the halt, `halt_wave` null unless it happened in a wave; never `""` in one run
    and null in another."""
    plain = RolloutResult("r-1", (result(1, Outcome.SUCCEEDED),), (WaveSummary(0, "canary", 1),))
    breach = replace(plain, halt=Halt("breach", wave="canary", message="breached"))
    refused = replace(plain, halt=Halt("refused", code="QuotaExceed", message="no more"))
    fields = ("halt_reason", "halt_code", "halt_wave")
    assert [finished_line(r)[f] for r in (plain, breach, refused) for f in fields] == [
        *(None, None, None),
        *("breach", None, "canary"),
        *("refused", "QuotaExceed", None),
    ]


def test_run_finished_counts_the_instances_skipped_before_dispatch():
    """The summary says 7 skipped (5 before dispatch, 2 refused by RunCommand): so does the
    line, and `instances` is every target, as the outcome counts add up to."""
    results = (
        result(1, Outcome.SUCCEEDED),
        result(2, Outcome.SKIPPED, error_code="InvalidInstance.NotMatch"),
        result(3, Outcome.SKIPPED, error_code="InvalidInstance.NotMatch"),
    )
    run = RolloutResult("r-1", results, (WaveSummary(0, "canary", 3),))
    line = finished_line(run, skipped_before_dispatch=5)
    assert (line["skipped"], line["skipped_before_dispatch"], line["instances"]) == (7, 5, 8)
    counts = sum(line[outcome.value] for outcome in Outcome)
    assert counts == line["instances"]


def test_run_finished_fields_are_the_documented_ones():
    """docs/logging.md's `run.finished` row names exactly the fields the line carries."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "logging.md").read_text()
    (row,) = [r for r in docs.splitlines() if r.startswith("| `run.finished` |")]
    fields_cell = row.split("|")[3]
    # A field is named first in its part of the list: `name` (...) or `name`,
    documented = set(re.findall(r"(?:^|, )`([a-z_]+)`", fields_cell.strip()))
    line = finished_line(RolloutResult("r-1", (), ()))
    emitted = set(line) - {"event", "level", "timestamp", "run_id"}
    assert emitted == documented


def test_run_finished_names_its_clock_and_the_real_duration():
    """On the simulator's scaled clock `duration_s` is its seconds; the line says which
    clock that is and how long the run really took."""
    waited = [0.0]
    clock = ScaledClock(0.05, real_time=lambda: waited[0])
    run = RolloutResult("r-1", (), (), started_at=AT, finished_at=AT + timedelta(seconds=36))
    lines = logged()
    log = EventLog(clock=clock)
    log(RunFinished(run))
    (line,) = lines.named("run.finished")
    assert (line["clock"], line["time_scale"], line["duration_s"]) == ("scaled", 0.05, 36.0)
    assert line["real_duration_s"] == pytest.approx(1.8)
    real = finished_line(run)
    assert (real["clock"], real["time_scale"], real["real_duration_s"]) == ("real", 1.0, 36.0)
