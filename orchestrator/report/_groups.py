"""Output grouping: 10,000 outputs become the handful of distinct things the fleet said.

An operator reading a run wants "1,843 instances printed the new version, 12 printed an
error, 3 never ran", not 10,000 lines. Outputs differ by what each instance is (its id,
hostname, name, addresses) and when it ran (timestamps), so `normalize_output` masks those
before grouping; what is left differs only where the instances really behaved
differently. The instances that never ran (skipped, not sent) group by why instead.
Everything here is pure: the regexes are compiled once, at import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol

from orchestrator.rollout import Outcome

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from orchestrator.rollout import InstanceResult

SAMPLE_CHARS: Final = 200  # the most of a group's text shown as its sample
VERIFY_FAILED: Final = "VerifyFailed"

# Failures first when counts tie: the order in which an operator wants to read them.
_SEVERITY: Final = {
    Outcome.FAILED: 0,
    Outcome.UNDELIVERED: 1,
    Outcome.STOPPED: 2,
    Outcome.NOT_SENT: 3,
    Outcome.SKIPPED: 4,
    Outcome.SUCCEEDED: 5,
}
_NEVER_RAN: Final = frozenset({Outcome.SKIPPED, Outcome.NOT_SENT})

_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_CLOCK = r"\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?"
_HEX_CHAR = "[0-9a-fA-F]"
# ISO 8601: 2026-11-23, 2026-11-23T13:07:33.123Z, 2026-11-23 13:07:33+08:00
_ISO = (
    r"(?<!\d)\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?(?!\d)"
)
# ISO 8601 basic format, as in names: 20261123T130733Z
_ISO_BASIC = r"(?<!\d)\d{8}T\d{6}(?:[.,]\d+)?Z?(?!\d)"
# date(1) and syslog: Mon Nov 23 13:07:33 UTC 2026, Nov 23 13:07:33
_DATE = rf"\b(?:{_DAY}\s+)?{_MONTH}\s+\d{{1,2}}\s+{_CLOCK}(?:\s+(?:[A-Z]{{2,5}}\s+)?\d{{4}}\b)?"
# RFC 2822 and date(1) in other locales: Mon, 23 Nov 2026 13:07:33 +0000
_RFC = (
    rf"\b(?:{_DAY},?\s+)?\d{{1,2}}\s+{_MONTH}\s+\d{{4}}\s+{_CLOCK}"
    rf"(?:\s+(?:[+-]\d{{4}}|UTC|GMT)\b)?"
)
_UUID = rf"\b{_HEX_CHAR}{{8}}(?:-{_HEX_CHAR}{{4}}){{3}}-{_HEX_CHAR}{{12}}\b"
# Everything that varies, as one alternation scanned once (a pass per kind would scan
# every output nine times). At one position the first alternative that matches wins,
# so whole dates come before the bare clock times inside them.
_VARYING: Final = re.compile(
    "|".join(
        f"(?P<{name}>{pattern})"
        for name, pattern in (
            ("iso", _ISO),
            ("basic", _ISO_BASIC),
            ("date", _DATE),
            ("rfc", _RFC),
            ("instance", r"(?<![\w-])i-[a-z0-9]{8,}(?![\w-])"),
            ("uuid", _UUID),
            ("hex", rf"\b{_HEX_CHAR}{{12,}}\b"),
            ("ip", r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)"),
            ("clock", rf"(?<![\d:]){_CLOCK}(?![\d:])"),
        )
    )
)
_MASKS: Final = {
    "iso": "<time>",
    "basic": "<time>",
    "date": "<time>",
    "rfc": "<time>",
    "clock": "<time>",
    "instance": "<instance>",
    "uuid": "<id>",
    "ip": "<ip>",
}
_DIGIT: Final = re.compile(r"\d")
# Everything `_VARYING` masks has a digit in it (real instance ids too: their region
# prefix, `bp1`, `2ze`, has one), so lines without a digit are left alone: in plain
# text that is most lines, and the scan of a line costs ten times the look for a digit.
_DIGIT_LINE: Final = re.compile(r"^[^\n\d]*\d.*$", re.MULTILINE)
_HEX_LETTER: Final = re.compile("[a-fA-F]")
_TRAILING: Final = re.compile(r"[ \t\r\f\v]+$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class OutputGroup:
    """Instances that ended alike: same outcome, exit code, error code and (normalised)
    output. `sample` is the text shown for all of them (the normalised output's last
    lines, at most SAMPLE_CHARS); `instance_ids` lists them in target order."""

    outcome: Outcome
    exit_code: int | None
    error_code: str
    sample: str
    count: int
    instance_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InstanceNames:
    """What an instance calls itself besides its id: its hostname (`HostName`) and its
    instance name (`InstanceName`, which the `{{ACS::InstanceName}}` parameter prints)."""

    hostname: str = ""
    name: str = ""


class Named(Protocol):
    """Anything with an instance's two names: an `InstanceNames`, or the resolved
    `ecs.Instance` itself (a 100,000-instance run groups without a copy of each)."""

    @property
    def hostname(self) -> str: ...

    @property
    def name(self) -> str: ...


_NO_NAMES: Final[Mapping[str, Named]] = MappingProxyType({})
_UNNAMED: Final = InstanceNames()


def _mask_word(text: str, word: str, mask: str) -> str:
    """`word` masked where it stands whole: `web-1` must not eat the front of `web-12`."""
    if not word or word not in text:  # the usual case, without building a regex
        return text
    return re.sub(rf"(?<![\w-]){re.escape(word)}(?![\w-])", mask, text)


def _mask_address(text: str, address: str) -> str:
    """`address` masked where it stands whole: `10.0.0.1` must not eat `10.0.0.12`."""
    if not address or address not in text:
        return text
    return re.sub(rf"(?<![\w.:]){re.escape(address)}(?![\w:]|\.\w)", "<ip>", text)


def normalize_output(
    text: str,
    *,
    instance_id: str,
    hostname: str = "",
    name: str = "",
    ips: Iterable[str] = (),
) -> str:
    """`text` with what differs from instance to instance, and from run to run, masked:
    instance ids as `<instance>`, the hostname as `<host>`, the instance name as
    `<name>`, IPv4 addresses (and `ips`) as `<ip>`, timestamps as `<time>`, UUIDs and
    long hex runs as `<id>`; trailing whitespace of each line and of the whole is gone."""
    masked = _mask_word(text.strip(), instance_id, "<instance>")
    # The longer first: a hostname `web-1.example.com` holds the name `web-1` whole.
    for word, mask in sorted(((hostname, "<host>"), (name, "<name>")), key=_longest_first):
        masked = _mask_word(masked, word, mask)
    for ip in ips:
        masked = _mask_address(masked, ip)
    masked = _DIGIT_LINE.sub(_mask_line, masked)
    return _TRAILING.sub("", masked)


def _longest_first(pair: tuple[str, str]) -> int:
    return -len(pair[0])


def _mask_line(line: re.Match[str]) -> str:
    return _VARYING.sub(_mask, line.group())


def _mask(match: re.Match[str]) -> str:
    kind = match.lastgroup or ""
    if kind != "hex":
        return _MASKS[kind]
    # A hex run is an id or a digest only with a digit and a letter in it: plain
    # numbers and words stay what they are.
    text = match.group()
    return "<id>" if _DIGIT.search(text) and _HEX_LETTER.search(text) else text


def sample_of(text: str, limit: int = SAMPLE_CHARS) -> str:
    """The last lines of `text` that fit in `limit` characters (a last line longer than
    that is cut at the front: the end of an output is where it says how it went)."""
    lines = text.splitlines()
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        extra = len(line) + (1 if kept else 0)
        if size + extra > limit:
            break
        kept.append(line)
        size += extra
    if not kept and lines:
        return "…" + lines[-1][-(limit - 1) :]
    return "\n".join(reversed(kept))


def _shown(result: InstanceResult) -> InstanceResult:
    """The run whose output tells the story: the verify's, when verify failed it."""
    if result.error_code == VERIFY_FAILED and result.verify is not None:
        return result.verify
    return result


def _text(result: InstanceResult, names: Named) -> str:
    """The normalised text an instance is grouped on."""
    if result.outcome in _NEVER_RAN:
        return normalize_output(result.error_info, instance_id=result.instance_id)
    shown = _shown(result)
    own = {"instance_id": result.instance_id, "hostname": names.hostname, "name": names.name}
    text = normalize_output(shown.output, **own)
    if text:
        return text
    # Nothing printed (undelivered, stopped before it spoke): why is the text to show.
    return normalize_output(result.error_info, **own)


def group_results(
    results: Sequence[InstanceResult], names: Mapping[str, Named] = _NO_NAMES
) -> list[OutputGroup]:
    """`results` grouped by (outcome, exit code, error code, normalised text); `names`
    maps an instance id to its hostname and instance name. Largest group first; on a
    tie, failures first."""
    members: dict[tuple[Outcome, int | None, str, str], list[str]] = {}
    for result in results:
        exit_code = None if result.outcome in _NEVER_RAN else _shown(result).exit_code
        text = _text(result, names.get(result.instance_id, _UNNAMED))
        key = (result.outcome, exit_code, result.error_code, text)
        members.setdefault(key, []).append(result.instance_id)
    groups = [
        OutputGroup(outcome, exit_code, error_code, sample_of(text), len(ids), tuple(ids))
        for (outcome, exit_code, error_code, text), ids in members.items()
    ]
    groups.sort(
        key=lambda g: (
            -g.count,
            _SEVERITY[g.outcome],
            -1 if g.exit_code is None else g.exit_code,
            g.error_code,
            g.sample,
        )
    )
    return groups


def group_kind(group: OutputGroup) -> str:
    """`failed, exit 2, ScriptFailed`: how the group's instances ended."""
    parts = [group.outcome.value]
    if group.exit_code is not None:
        parts.append(f"exit {group.exit_code}")
    if group.error_code:
        parts.append(group.error_code)
    return ", ".join(parts)


def describe_group(group: OutputGroup) -> str:
    """`1,843 instances: succeeded, exit 0, "nginx version: nginx/1.27.3"` (the sample's
    last line)."""
    noun = "instance" if group.count == 1 else "instances"
    lines = group.sample.splitlines()
    sample = f', "{lines[-1]}"' if lines else ""
    return f"{group.count:,} {noun}: {group_kind(group)}{sample}"
