"""Output grouping: what normalize_output masks (and what it leaves alone), and how
group_results groups, orders and samples thousands of results."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.report import (
    InstanceNames,
    OutputGroup,
    describe_group,
    group_results,
    normalize_output,
)
from orchestrator.report._groups import SAMPLE_CHARS, sample_of
from orchestrator.rollout import InstanceResult, Outcome

ID = "i-bp1g6zv0ce8oghu7k001"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the instance's own id, and any other instance id
        (f"hello from {ID}", "hello from <instance>"),
        ("peer i-bp1aaaaaaaaaaaaaaa02 is up", "peer <instance> is up"),
        ("i-abcdefgh1", "<instance>"),
        # words that merely contain "i-" stay
        ("multi-threaded semi-automatic", "multi-threaded semi-automatic"),
        ("i-short", "i-short"),
        # ISO 8601 in its forms
        ("at 2026-11-23T13:07:33Z done", "at <time> done"),
        ("at 2026-11-23T13:07:33.123456Z", "at <time>"),
        ("at 2026-11-23 13:07:33", "at <time>"),
        ("at 2026-11-23T13:07:33+08:00", "at <time>"),
        ("at 2026-11-23T13:07:33,5-0500", "at <time>"),
        ("at 2026-11-23T13:07", "at <time>"),
        ("on 2026-11-23", "on <time>"),
        ("run nginx-20261123T130733Z-aa03", "run nginx-<time>-aa03"),
        # date(1), syslog, RFC 2822
        ("Mon Nov 23 13:07:33 UTC 2026", "<time>"),
        ("Mon Nov 23 13:07:33 CST 2026 ok", "<time> ok"),
        ("Nov  3 01:02:03 web sshd[42]: ok", "<time> web sshd[42]: ok"),
        ("Date: Mon, 23 Nov 2026 13:07:33 +0000", "Date: <time>"),
        ("Mon 23 Nov 2026 13:07:33 GMT", "<time>"),
        # bare clock times, with fractions
        ("[13:07:33] started", "[<time>] started"),
        ("took until 9:05:01.250", "took until <time>"),
        # a clock time must not eat into longer colon runs
        ("ratio 1:2:3:4", "ratio 1:2:3:4"),
        # addresses
        ("listening on 10.0.12.7:80", "listening on <ip>:80"),
        ("from 192.168.1.20.", "from <ip>."),
        ("nginx/1.27.3 and 1.2.3", "nginx/1.27.3 and 1.2.3"),
        # ids and digests
        ("req 123e4567-e89b-12d3-a456-426614174000 ok", "req <id> ok"),
        ("sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "sha256 <id>"),
        ("container 3f4e5a6b7c8d started", "container <id> started"),
        # plain numbers and words are not ids
        ("copied 123456789012345 bytes", "copied 123456789012345 bytes"),
        ("facadebeadedface", "facadebeadedface"),
        # whitespace: the ends, and each line's tail
        ("  a  \n b \t\n\n", "a\n b"),
        ("line\r\nnext\r\n", "line\nnext"),
        ("", ""),
    ],
)
def test_normalize_output(text: str, expected: str):
    assert normalize_output(text, instance_id=ID) == expected


def test_the_hostname_is_masked_as_a_whole_word_only():
    text = "web-1 says hi; web-12 is another; web-1.example.com too"
    assert normalize_output(text, instance_id=ID, hostname="web-1") == (
        "<host> says hi; web-12 is another; <host>.example.com too"
    )


def test_the_instance_name_is_masked_as_a_whole_word_only():
    text = "ok: web-prod-11 (i-v1); web-prod-110 is another"
    assert normalize_output(text, instance_id="i-v1", hostname="iZv1Z", name="web-prod-11") == (
        "ok: <name> (<instance>); web-prod-110 is another"
    )


def test_a_hostname_holding_the_name_is_masked_whole():
    """The longer is masked first: `web-1.example.com` is the host, not `<name>.example.com`."""
    text = "web-1.example.com is web-1"
    assert normalize_output(text, instance_id=ID, hostname="web-1.example.com", name="web-1") == (
        "<host> is <name>"
    )
    assert normalize_output(
        "web-1 on web-1.lan", instance_id=ID, hostname="web-1", name="web-1.lan"
    ) == ("<host> on <name>")


def test_the_instance_id_is_masked_even_when_it_does_not_look_like_one():
    """Simulated and test ids (`i-v1`) are too short for the pattern: masked by value."""
    assert normalize_output("ok i-v1 and i-v12", instance_id="i-v1") == "ok <instance> and i-v12"


def test_given_addresses_are_masked_too_where_they_stand_whole():
    text = "bound to fe80::1 and 10.1.1.1, not fe80::10"
    assert normalize_output(text, instance_id=ID, ips=["fe80::1", ""]) == (
        "bound to <ip> and <ip>, not fe80::10"
    )


def test_lines_without_digits_are_left_as_they_are():
    """Every masked kind has a digit; a line without one is not even scanned."""
    text = "Mon Tue deadbeefcafe i-abcdefghij\nat 12:00:01 i-abcdefghij"
    assert normalize_output(text, instance_id=ID) == (
        "Mon Tue deadbeefcafe i-abcdefghij\nat <time> <instance>"
    )


def test_without_anything_to_mask_the_text_is_only_stripped():
    text = "nginx version: nginx/1.27.3\nconfiguration ok"
    assert normalize_output(f"\n{text}  \n", instance_id=ID) == text


# --- samples -----------------------------------------------------------------------------


def test_a_sample_keeps_the_last_lines_that_fit():
    lines = [f"line {n:03d} " + "x" * 40 for n in range(10)]
    sample = sample_of("\n".join(lines))
    assert len(sample) <= SAMPLE_CHARS
    assert sample.endswith(lines[-1])
    assert sample.splitlines() == lines[-len(sample.splitlines()) :]
    assert len(sample.splitlines()) == 4  # 4 lines of 49 + 3 newlines = 199


def test_a_sample_of_one_long_line_keeps_its_end():
    line = "a" * 500 + "THE END"
    sample = sample_of(line)
    assert len(sample) == SAMPLE_CHARS
    assert sample.startswith("…")
    assert sample.endswith("THE END")


# --- grouping ----------------------------------------------------------------------------

START = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


def ran(
    instance_id: str,
    output: str,
    *,
    outcome: Outcome = Outcome.SUCCEEDED,
    exit_code: int | None = 0,
    error_code: str = "",
    error_info: str = "",
    verify: InstanceResult | None = None,
) -> InstanceResult:
    return InstanceResult(
        instance_id,
        outcome,
        wave="all",
        exit_code=exit_code,
        error_code=error_code,
        error_info=error_info,
        output=output,
        verify=verify,
    )


def random_id(rng: random.Random) -> str:
    return "i-" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=20))


def test_1000_outputs_differing_only_by_id_host_and_time_make_one_group():
    rng = random.Random(7)
    results = []
    names = {}
    for n in range(1000):
        instance_id = random_id(rng)
        names[instance_id] = InstanceNames(hostname=f"iZweb{n:04d}Z", name=f"web-{n:04d}")
        moment = START + timedelta(seconds=rng.randrange(86_400), microseconds=rng.randrange(10**6))
        output = (
            f"{moment.isoformat()} deploy on {names[instance_id].hostname} ({instance_id})\n"
            f"I am {names[instance_id].name}\n"
            f"peer {random_id(rng)} at 10.0.{n // 256}.{n % 256}\n"
            f"{moment:%a %b %d %H:%M:%S} UTC {moment:%Y}: nginx version: nginx/1.27.3   \n"
            f"request {rng.getrandbits(128):032x} done at {moment:%H:%M:%S}\n"
        )
        results.append(ran(instance_id, output))
    (group,) = group_results(results, names)
    assert group.count == 1000
    assert group.instance_ids == tuple(r.instance_id for r in results)
    assert group.sample == (
        "<time> deploy on <host> (<instance>)\n"
        "I am <name>\n"
        "peer <instance> at <ip>\n"
        "<time>: nginx version: nginx/1.27.3\n"
        "request <id> done at <time>"
    )
    assert (group.outcome, group.exit_code, group.error_code) == (Outcome.SUCCEEDED, 0, "")


def test_distinct_exit_codes_make_distinct_groups():
    results = [
        ran(f"i-exit{n:05d}", "error: disk full", outcome=Outcome.FAILED, exit_code=n % 3 + 1)
        for n in range(9)
    ]
    groups = group_results(results)
    assert sorted(g.exit_code or 0 for g in groups) == [1, 2, 3]
    assert all(g.count == 3 for g in groups)


def test_distinct_outputs_error_codes_and_outcomes_make_distinct_groups():
    results = [
        ran("i-a0000001", "ok"),
        ran("i-a0000002", "ok"),
        ran("i-a0000003", "not ok"),
        ran("i-a0000004", "ok", outcome=Outcome.FAILED, exit_code=0, error_code="Timeout"),
        ran("i-a0000005", "ok", outcome=Outcome.FAILED, exit_code=0, error_code="Other"),
    ]
    counts = sorted(g.count for g in group_results(results))
    assert counts == [1, 1, 1, 2]


def test_groups_come_largest_first_then_failures_first():
    results = [
        *(ran(f"i-ok{n:06d}", "ok") for n in range(2)),
        *(ran(f"i-ba{n:06d}", "bad", outcome=Outcome.FAILED, exit_code=1) for n in range(2)),
        *(ran(f"i-bi{n:06d}", "big") for n in range(5)),
        ran("i-un000001", "", outcome=Outcome.UNDELIVERED, exit_code=None, error_info="offline"),
    ]
    groups = group_results(results)
    assert [(g.outcome, g.count) for g in groups] == [
        (Outcome.SUCCEEDED, 5),
        (Outcome.FAILED, 2),
        (Outcome.SUCCEEDED, 2),
        (Outcome.UNDELIVERED, 1),
    ]
    assert groups[3].sample == "offline"  # nothing printed: why is what is shown


def test_skipped_and_not_sent_group_by_why_not_by_output():
    results = [
        InstanceResult(
            "i-sk000001",
            Outcome.SKIPPED,
            error_code="InvalidInstance.NotFound",
            error_info="The instance i-sk000001 does not exist.",
        ),
        InstanceResult(
            "i-sk000002",
            Outcome.SKIPPED,
            error_code="InvalidInstance.NotFound",
            error_info="The instance i-sk000002 does not exist.",
        ),
        InstanceResult("i-ns000001", Outcome.NOT_SENT, error_info="halted: wave early breached"),
        InstanceResult("i-ns000002", Outcome.NOT_SENT, error_info="halted: wave early breached"),
        InstanceResult("i-ns000003", Outcome.NOT_SENT, error_info="not sent: the run stopped"),
    ]
    groups = {(g.outcome, g.sample): g for g in group_results(results)}
    skipped = groups[Outcome.SKIPPED, "The instance <instance> does not exist."]
    assert (skipped.count, skipped.error_code, skipped.exit_code) == (
        2,
        "InvalidInstance.NotFound",
        None,
    )
    assert groups[Outcome.NOT_SENT, "halted: wave early breached"].count == 2
    assert groups[Outcome.NOT_SENT, "not sent: the run stopped"].count == 1


def test_a_failed_verify_groups_on_the_verify_output_and_exit_code():
    def failed_verify(instance_id: str, exit_code: int) -> InstanceResult:
        check = ran(instance_id, f"check failed on {instance_id}", exit_code=exit_code)
        return ran(
            instance_id,
            "deployed",
            outcome=Outcome.FAILED,
            exit_code=0,
            error_code="VerifyFailed",
            verify=check,
        )

    results = [failed_verify("i-v0000001", 4), failed_verify("i-v0000002", 4)]
    results.append(failed_verify("i-v0000003", 5))
    results.append(ran("i-v0000004", "deployed"))
    groups = group_results(results)
    verify_groups = [g for g in groups if g.error_code == "VerifyFailed"]
    assert [(g.exit_code, g.count, g.sample) for g in verify_groups] == [
        (4, 2, "check failed on <instance>"),
        (5, 1, "check failed on <instance>"),
    ]


def test_describe_group_says_how_many_how_and_what():
    group = OutputGroup(
        Outcome.SUCCEEDED, 0, "", "nginx: ok\nnginx version: nginx/1.27.3", 1843, ()
    )
    assert (
        describe_group(group) == '1,843 instances: succeeded, exit 0, "nginx version: nginx/1.27.3"'
    )
    one = OutputGroup(Outcome.SKIPPED, None, "InvalidInstance.NotFound", "", 1, ("i-x",))
    assert describe_group(one) == "1 instance: skipped, InvalidInstance.NotFound"


def test_10000_results_that_differ_by_id_and_time_make_three_groups():
    """Only the version line tells them apart (speed is the benchmark's job, not this)."""
    rng = random.Random(3)
    results = [
        ran(random_id(rng), f"{START + timedelta(seconds=n)} ok\nversion 1.{n % 3}\n")
        for n in range(10_000)
    ]
    groups = group_results(results)
    assert [g.count for g in groups] == [3334, 3333, 3333]
