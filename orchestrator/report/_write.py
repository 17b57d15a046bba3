"""Putting reports on disk: the three report files, and every instance's whole output.

CI reads the report directory after the job, possibly after a crash or a cancelled
job, so each file appears whole or not at all: it is written to a temporary file in
the same directory and renamed over the target (`os.replace` is atomic on one file
system). `--output-dir` is different: outputs arrive one by one while the run goes, and
`OutputFiles` writes each when it arrives, so nothing is held in memory; instance ids
and wave names come from the API and the plan, so they become path parts only when
they look like names (anything else is written under a sanitised name, never
interpreted as a path).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from orchestrator.report._groups import group_results
from orchestrator.report._json import report_chunks
from orchestrator.report._junit import junit_chunks
from orchestrator.report._markdown import render_markdown
from orchestrator.rollout import InstanceOutput

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from orchestrator.report._collect import ReportCollector, RunFacts
    from orchestrator.report._groups import Named, OutputGroup
    from orchestrator.rollout import Event

JSON_NAME: Final = "report.json"
JUNIT_NAME: Final = "junit.xml"
MARKDOWN_NAME: Final = "summary.md"
OUTPUT_CAP: Final = 1_048_576  # bytes of one instance's output kept by OutputFiles
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NAME_MAX: Final = 128
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where the reports went."""

    json: Path
    junit: Path
    markdown: Path


def _atomic_write(path: Path, chunks: Iterable[bytes]) -> None:
    """`chunks`, one after the other, at `path`, whole or not at all. Written as they
    come: a 100,000-instance report never exists whole in memory."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.writelines(chunks)
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def names_of(facts: RunFacts) -> Mapping[str, Named]:
    """Instance id → what it calls itself (hostname and instance name), for grouping:
    the resolved instances themselves, no copy of their names."""
    if facts.resolution is None:
        return MappingProxyType({})
    return {i.instance_id: i for i in facts.resolution.runnable}


def write_reports(
    directory: Path,
    facts: RunFacts,
    collector: ReportCollector,
    *,
    step_summary: Path | None = None,
    groups: Sequence[OutputGroup] | None = None,
) -> ReportPaths:
    """Write report.json, junit.xml and summary.md into `directory` (created if
    needed), each atomically; append summary.md to `step_summary` when given (GitHub's
    $GITHUB_STEP_SUMMARY: appended, never overwritten). A run that was interrupted, or
    never started, gets its reports too, from what the collector saw."""
    directory.mkdir(parents=True, exist_ok=True)
    results = collector.result.results if collector.result else ()
    if groups is None:  # the caller may have grouped them already, for its summary
        groups = group_results(results, names_of(facts))
    paths = ReportPaths(directory / JSON_NAME, directory / JUNIT_NAME, directory / MARKDOWN_NAME)
    # "replace" keeps a lone surrogate (undecodable output) from failing the whole file.
    json_bytes = (
        c.encode("utf-8", errors="replace") for c in report_chunks(facts, collector, groups)
    )
    _atomic_write(paths.json, json_bytes)
    _atomic_write(paths.junit, junit_chunks(facts, collector))
    markdown = render_markdown(facts, collector, groups).encode("utf-8", errors="replace")
    _atomic_write(paths.markdown, (markdown,))
    if step_summary is not None:
        with step_summary.open("ab") as file:
            file.write(b"\n" + markdown)
    return paths


def safe_name(name: str) -> str:
    """`name` if it is a safe path part (`[A-Za-z0-9][A-Za-z0-9._-]*`, not too long),
    else a sanitised form with a digest of the original (two different unsafe names
    never share a file)."""
    if len(name) <= _NAME_MAX and _NAME.fullmatch(name):
        return name
    cleaned = _UNSAFE.sub("_", name).lstrip("._-")[:64] or "unnamed"
    digest = hashlib.sha256(name.encode("utf-8", errors="replace")).hexdigest()[:12]
    return f"{cleaned}-{digest}"


class OutputFiles:
    """An `EventSink` writing each instance's whole output to `<dir>/<wave>/<id>.log`
    as it arrives (`InstanceOutput`), cut at `cap_bytes` with a last line saying how much
    was cut, and a line with the bytes the API itself dropped. It never raises: a file
    that cannot be written is counted in `failed` (with the last error in `problem`)
    and the run goes on."""

    def __init__(self, directory: Path, cap_bytes: int = OUTPUT_CAP) -> None:
        self.directory = directory
        self.cap_bytes = cap_bytes
        self.failed = 0
        self.problem = ""
        self._written: set[Path] = set()

    @property
    def files(self) -> int:
        """Output files written."""
        return len(self._written)

    def path_for(self, wave: str, instance_id: str) -> Path:
        """Where the output of `instance_id` in `wave` goes."""
        return self.directory / safe_name(wave or "-") / f"{safe_name(instance_id)}.log"

    def __call__(self, event: Event) -> None:
        if not isinstance(event, InstanceOutput):
            return
        path = self.path_for(event.wave, event.instance_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self._content(event))
        except OSError as error:
            self.failed += 1
            self.problem = f"{path}: {error.strerror or error}"
        else:
            self._written.add(path)

    def _content(self, event: InstanceOutput) -> bytes:
        data = event.output.encode("utf-8", errors="replace")
        notes: list[str] = []
        if event.dropped > 0:
            notes.append(f"[... {event.dropped} bytes dropped by the API ...]")
        if len(data) > self.cap_bytes:
            # Cut on a character boundary: the partial character's bytes go too.
            kept = data[: self.cap_bytes].decode("utf-8", errors="ignore").encode()
            notes.append(f"[... {len(data) - len(kept)} bytes cut (cap {self.cap_bytes}) ...]")
            data = kept
        if not notes:
            return data
        if data and not data.endswith(b"\n"):
            data += b"\n"
        return data + "".join(f"{note}\n" for note in notes).encode()
