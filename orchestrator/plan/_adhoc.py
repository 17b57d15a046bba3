"""An ad-hoc command (`orchestrator exec`'s flags) → a plan's YAML text, checked as a plan.

The flags become the text of a plan file, and that text is checked by `parse_plan`: every
rule `validate` applies is applied, by the same code, and what is journalled (and what
`--print-plan` writes) is a plan a person can save, review and `orchestrator run`. A
problem names a field of that text (`command.timeout`); `_adhoc_flags` points it back at
the flag that wrote the field (`--timeout 1.5: …`), as `Problem`s whose "file" is the flag.

The script goes into the text itself (`command.content`), also when it comes from
`--script FILE`: that file is first read by the loader, as a plan's `script:` is, with
the same confinement (the current directory, or a `--script-dir`), then written inline.
So the journal holds all a run sends: a resume never reads a file that may have changed
or be elsewhere, and the printed plan validates from any directory.

The plan's name is `--name`, else `exec-` and 8 hex digits of the SHA-256 of what the
command is and where it goes (the `targets` and `command` sections): the plan lock and the
live-run guard then keep the same ad-hoc command from running twice at once, while
different ones run side by side. Waves and gates are not part of it: the same command on
the same targets is the same danger, however it is cut into waves.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import yaml

from orchestrator.errors import PlanError
from orchestrator.plan._adhoc_flags import Flag, FlagMap, flag_problem, point_at_flags
from orchestrator.plan._findings import printable
from orchestrator.plan._load import parse_plan

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.errors import Problem
    from orchestrator.plan._model import Plan

ADHOC_PLAN_PATH: Final = "(exec)"  # the plan's "file": what the journal records as its path
NAME_PREFIX: Final = "exec-"
_INTEGER: Final = re.compile(r"[+-]?\d+")
_DECIMAL: Final = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?")
_OTHER_BREAKS: Final = re.compile("[\r\x85\u2028\u2029]")  # line breaks to YAML, not \n
_SHOWN_SCRIPT: Final = 60  # characters of the script the header's command line shows


@dataclass(frozen=True, slots=True)
class AdhocCommand:
    """`orchestrator exec`'s plan-shaping flags, as given (strings: the loader says what
    is wrong with a value, in the words it uses for a plan's).

    `script`: the words after `--`, joined with spaces; `script_file`: `--script FILE`.
    `tags` and `params`: `KEY=VALUE` each. `waves`: `--waves`' comma-separated sizes.
    """

    script: str | None = None
    script_file: str | None = None
    tags: tuple[str, ...] = ()
    instances: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    type: str | None = None
    timeout: str | None = None
    user: str | None = None
    working_dir: str | None = None
    params: tuple[str, ...] = ()
    canary: str | None = None
    waves: str | None = None
    max_errors: str | None = None
    max_concurrency: str | None = None
    name: str | None = None
    region: str | None = None

    def command_line(self) -> str:
        """The flags that shape the plan, in a fixed order, as a shell would take them
        (a long or multi-line script is abbreviated: the text holds it whole)."""
        words = ["orchestrator", "exec"]
        for flag, values in (
            ("--name", (self.name,)),
            ("--region", (self.region,)),
            ("--tag", self.tags),
            ("--instance", self.instances),
            ("--zone", self.zones),
            ("--exclude", self.exclude),
            ("--type", (self.type,)),
            ("--timeout", (self.timeout,)),
            ("--user", (self.user,)),
            ("--working-dir", (self.working_dir,)),
            ("--param", self.params),
            ("--canary", (self.canary,)),
            ("--waves", (self.waves,)),
            ("--max-errors", (self.max_errors,)),
            ("--max-concurrency", (self.max_concurrency,)),
            ("--script", (self.script_file,)),
        ):
            for value in values:
                if value is not None:
                    words += [flag, value]
        line = shlex.join(words)
        if self.script is not None:
            shown = self.script
            if len(shown) > _SHOWN_SCRIPT or "\n" in shown:
                shown = "SCRIPT (whole below, as command.content)"
            line += " -- " + shown
        return printable(line)  # a newline would end the comment and start YAML


@dataclass(frozen=True, slots=True)
class AdhocPlan:
    """The checked plan, and its text: what the journal keeps and `--print-plan` writes."""

    plan: Plan
    text: str


def build_adhoc_plan(
    command: AdhocCommand, *, base: Path, script_dirs: tuple[Path, ...] = ()
) -> AdhocPlan:
    """The plan `command` stands for; `PlanError` with every problem pointed at its flag.

    `base`: the directory a `--script FILE` is named from and must be in (or in one of
    `script_dirs`), as a plan file's directory is for its `script:`."""
    flags = FlagMap()
    pairs = _pairs(command, flags)
    no_script = _script_source(command)
    if no_script is not None:
        raise PlanError.of([no_script, *flags.syntax])
    if flags.syntax:
        raise PlanError.of(flags.syntax)
    source = base / ADHOC_PLAN_PATH
    content = command.script
    if command.script_file is not None:
        # The loader reads the file as it reads a plan's `script:`, with its confinement
        # and its checks; the text then carries what it read.
        first = _document(command, pairs, flags, content=None)
        try:
            read = parse_plan(_text(command, first), source=source, script_dirs=script_dirs)
        except PlanError as exc:
            raise PlanError.of(point_at_flags(exc.problems, flags)) from exc
        content = read.command.content
    document = _document(command, pairs, flags, content=content)
    text = _text(command, document)
    try:
        plan = parse_plan(text, source=source, script_dirs=script_dirs)
    except PlanError as exc:
        raise PlanError.of(point_at_flags(exc.problems, flags)) from exc
    return AdhocPlan(plan, text)


@dataclass(frozen=True, slots=True)
class _Pairs:
    tags: dict[str, str]
    params: dict[str, str]


def _pairs(command: AdhocCommand, flags: FlagMap) -> _Pairs:
    return _Pairs(
        tags=flags.pairs("--tag", command.tags, "targets.tags"),
        params=flags.pairs("--param", command.params, "command.parameters"),
    )


def _script_source(command: AdhocCommand) -> Problem | None:
    given = (command.script is not None) + (command.script_file is not None)
    if given == 1:
        return None
    what = (
        "give the script after -- or with --script FILE, not both"
        if given
        else "give the script to run after -- (exec --tag app=web -- uptime), or --script FILE"
    )
    return flag_problem(Flag("-- SCRIPT"), what, "script-source")


def _scalar(text: str) -> int | float | str:
    """A flag's value as YAML would read it unquoted, for numbers: `--timeout 1.5` is the
    plan's `timeout: 1.5`, refused with the plan's own message. Anything else stays text
    (never YAML syntax of its own: the dumper quotes what needs it)."""
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return text


class _Flow(dict[str, Any]):
    """A mapping written on one line (`{name: canary, size: 1}`), as plans write waves."""


def _document(
    command: AdhocCommand, pairs: _Pairs, flags: FlagMap, *, content: str | None
) -> dict[str, Any]:
    targets = _targets(command, pairs, flags)
    body = _command(command, pairs, flags, content=content)
    document: dict[str, Any] = {"name": command.name or _derived_name(targets, body)}
    if command.name is not None:
        flags.add("name", Flag("--name", command.name))
        flags.add("command.name", Flag("--name", command.name))
    if command.region is not None:
        document["region"] = command.region
        flags.add("region", Flag("--region", command.region))
    document["targets"] = targets
    document["command"] = body
    document["waves"] = _waves(command, flags)
    defaults: dict[str, Any] = {}
    for key, flag, value in (
        ("max_errors", "--max-errors", command.max_errors),
        ("max_concurrency", "--max-concurrency", command.max_concurrency),
    ):
        if value is not None:
            defaults[key] = _scalar(value)
            flags.add(f"wave_defaults.{key}", Flag(flag, value))
    if defaults:
        document["wave_defaults"] = defaults
    return document


def _derived_name(targets: dict[str, Any], command: dict[str, Any]) -> str:
    canonical = json.dumps({"targets": targets, "command": command}, sort_keys=True)
    return NAME_PREFIX + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _targets(command: AdhocCommand, pairs: _Pairs, flags: FlagMap) -> dict[str, Any]:
    targets: dict[str, Any] = {}
    flags.add("targets", Flag("--tag/--instance"))
    for key, flag, values in (
        ("instances", "--instance", command.instances),
        ("zones", "--zone", command.zones),
        ("exclude", "--exclude", command.exclude),
    ):
        if values:
            targets[key] = list(values)
            flags.add(f"targets.{key}", Flag(flag))
            for i, value in enumerate(values):
                flags.add(f"targets.{key}[{i}]", Flag(flag, value))
        if key == "instances" and pairs.tags:
            targets["tags"] = pairs.tags  # in a plan's order: instances, tags, zones, exclude
    return targets


def _command(
    command: AdhocCommand, pairs: _Pairs, flags: FlagMap, *, content: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if command.type is not None:
        body["type"] = command.type
        flags.add("command.type", Flag("--type", command.type))
    if content is not None:
        body["content"] = content
    else:
        body["script"] = command.script_file
        flags.add("command.script", Flag("--script", command.script_file))
    script_flag = (
        Flag("--script", command.script_file) if command.script_file else Flag("-- SCRIPT")
    )
    flags.add("command", script_flag)
    flags.add("command.content", script_flag)
    for key, flag, value in (
        ("timeout", "--timeout", command.timeout),
        ("username", "--user", command.user),
        ("working_dir", "--working-dir", command.working_dir),
    ):
        if value is not None:
            body[key] = _scalar(value) if key == "timeout" else value
            flags.add(f"command.{key}", Flag(flag, value))
    if pairs.params:
        body["parameters"] = pairs.params
    return body


def _waves(command: AdhocCommand, flags: FlagMap) -> list[_Flow]:
    """`--canary N` then `--waves`' sizes (w1, w2, …); `--canary` alone: canary, then the
    rest; neither: one wave `all` of every target."""
    sizes: list[tuple[str, str, Flag]] = []
    if command.canary is not None:
        sizes.append(("canary", command.canary, Flag("--canary", command.canary)))
    if command.waves is not None:
        for i, size in enumerate(command.waves.split(",")):
            part = f"size {i + 1}: {size.strip() or 'empty'}"
            sizes.append((f"w{i + 1}", size.strip(), Flag("--waves", command.waves, part)))
    elif command.canary is not None:
        sizes.append(("rest", "100%", Flag("--canary", command.canary)))
    if not sizes:
        sizes.append(("all", "100%", Flag("--waves")))
    flags.add("waves", Flag("--waves" if command.waves is not None else "--canary"))
    for i, (_, _, flag) in enumerate(sizes):
        flags.add(f"waves[{i}]", flag)
    return [_Flow(name=name, size=_scalar(size)) for name, size, _ in sizes]


class _Dumper(yaml.SafeDumper):
    """Plain YAML a person reads: a multi-line script as a `|` block, waves on one line
    each. PyYAML falls back to a quoted string wherever a style cannot hold a value."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # PyYAML writes a NEL or a line separator as is in a plain or single-quoted string,
    # where the reader folds it into a space: only double quotes (`\N`) keep them.
    style = '"' if _OTHER_BREAKS.search(value) else "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_flow(dumper: yaml.SafeDumper, value: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=True)


class _QuotedDumper(_Dumper):
    """Every string double-quoted: escapes for all that is not plain text, always exact."""


def _represent_quoted(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


_Dumper.add_representer(str, _represent_text)
_Dumper.add_representer(_Flow, _represent_flow)
_QuotedDumper.add_representer(str, _represent_quoted)


def _dump(document: dict[str, Any], *, quoted: bool = False) -> str:
    return yaml.dump(
        document,
        Dumper=_QuotedDumper if quoted else _Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1 << 20,  # never fold a long line: the script stays as written
    )


def _text(command: AdhocCommand, document: dict[str, Any]) -> str:
    body = _dump(document)
    # The text must mean exactly what the flags say. Read back, it does, or every string
    # is written double-quoted.
    if yaml.safe_load(body) != document:
        body = _dump(document, quoted=True)
    header = (
        "# A plan made by `orchestrator exec` from this command line:\n"
        f"#   {command.command_line()}\n"
        "# Saved as a file, it is a plan like any other: `orchestrator validate FILE`,\n"
        "# `orchestrator run FILE` (docs/plan-reference.md).\n"
    )
    return header + body
