"""docs/ci-guide.md is copied into pipelines as it stands, so its code is checked as code.

Every YAML (and JSON) block must parse; every `orchestrator ...` command line in a YAML
block or a shell block must parse with the CLI's own parser; every plan a command names
must exist and validate, every fleet file load, every repository path the guide names
exist; and each JUnit path a pipeline hands to its CI must be one a `--report-dir` of
the same block writes. A typo in a flag, a sub-command, a plan path or a report path
fails here, not in somebody's first pipeline run.

Shell is read the way a reader's shell would split it, with two liberties: `$VAR`,
`${VAR}` and `$(...)` stand in for values (the variable's name, `SUBST`), so a positional
argument given by a variable still counts; and leading `NAME=value` assignments and
keywords (`exec`, `then`, ...) are not part of the command.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
import yaml

from orchestrator.cli._commands import build_parser
from orchestrator.plan import load_plan
from orchestrator.sim import load_fleet

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

ROOT: Final = Path(__file__).parents[2]
GUIDE: Final = ROOT / "docs" / "ci-guide.md"

FENCE: Final = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHELL_KINDS: Final = frozenset({"sh", "bash", "shell"})
# GitHub expressions spliced into a script are an injection risk (and unparseable
# here): inputs reach commands through `env:`.
EXPRESSION: Final = re.compile(r"\$\{\{.*?\}\}")
SUBSTITUTION: Final = re.compile(r"\$\([^()]*\)")
VARIABLE: Final = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
ASSIGNMENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
KEYWORDS: Final = frozenset(
    {"!", "command", "do", "elif", "else", "exec", "if", "then", "time", "until", "while"}
)
REPO_PATH: Final = re.compile(r"(?<![\w./-])((?:docs|plans)/[\w./*-]+\.(?:md|ya?ml))")
LINK: Final = re.compile(r"\]\((?!https?:|#)([^)#]+)")


@dataclass(frozen=True, slots=True)
class Block:
    kind: str
    text: str
    line: int  # where its fence opens in the guide, for messages

    @property
    def name(self) -> str:
        return f"{self.kind or 'text'}@{self.line}"


@dataclass(frozen=True, slots=True)
class Command:
    block: Block
    line: str  # the logical line it came from
    argv: tuple[str, ...]  # after `orchestrator`


def blocks(text: str) -> list[Block]:
    return [
        Block(match.group(1), match.group(2), text.count("\n", 0, match.start()) + 1)
        for match in FENCE.finditer(text)
    ]


def strings(value: Any) -> Iterator[str]:
    """Every string in a parsed YAML document, keys excluded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def logical_lines(script: str) -> Iterator[str]:
    """The script's lines with backslash continuations joined."""
    pending = ""
    for raw in script.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        yield pending + raw
        pending = ""
    if pending:
        yield pending


def simple_commands(line: str) -> Iterator[list[str]]:
    """The words of each simple command on a line (split at `;`, `&&`, `|`, ...),
    without redirections, assignments in front, or keywords in front."""
    text = VARIABLE.sub(r"\1", SUBSTITUTION.sub("SUBST", line))
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    redirected = False
    for word in lexer:
        if word and set(word) <= set("();<>|&"):
            if word[0] in "<>":
                if words and words[-1].isdigit():
                    words.pop()  # `2>&1`: the 2 names a descriptor, not an argument
                redirected = True
                continue
            yield words
            words, redirected = [], False
        elif not redirected:
            words.append(word)
    yield words


def command_words(words: list[str]) -> list[str]:
    """The command itself: without assignments and keywords in front of it."""
    start = 0
    while start < len(words) and (words[start] in KEYWORDS or ASSIGNMENT.match(words[start])):
        start += 1
    return words[start:]


def commands_in(script: str, block: Block) -> Iterator[Command]:
    for line in logical_lines(script):
        if "orchestrator" not in line:
            continue
        try:
            found = [command_words(words) for words in simple_commands(line)]
        except ValueError as exc:  # shlex: an unclosed quote
            raise ValueError(f"guide line {block.line}: {line!r}: {exc}") from exc
        for words in found:
            if words and (words[0] == "orchestrator" or words[0].endswith("/orchestrator")):
                yield Command(block, line.strip(), tuple(words[1:]))
            elif words[:3] in (["python", "-m", "orchestrator"], ["python3", "-m", "orchestrator"]):
                yield Command(block, line.strip(), tuple(words[3:]))


def scripts(block: Block) -> list[str]:
    if block.kind != "yaml":
        return [block.text]
    try:
        return list(strings(yaml.safe_load(block.text)))
    except yaml.YAMLError:
        return []  # test_every_yaml_block_parses names the block and the error


def parse(command: Command) -> argparse.Namespace:
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return build_parser().parse_args(list(command.argv))
    except SystemExit:
        pytest.fail(f"guide line {command.block.line}: {command.line!r}: {errors.getvalue()}")


GUIDE_TEXT: Final = GUIDE.read_text(encoding="utf-8")
BLOCKS: Final = blocks(GUIDE_TEXT)
YAML_BLOCKS: Final = [b for b in BLOCKS if b.kind == "yaml"]
CODE_BLOCKS: Final = [b for b in BLOCKS if b.kind == "yaml" or b.kind in SHELL_KINDS]
COMMANDS: Final = [c for b in CODE_BLOCKS for s in scripts(b) for c in commands_in(s, b)]


def by_name(items: list[Block]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("block", items, ids=[b.name for b in items])


@by_name(YAML_BLOCKS)
def test_every_yaml_block_parses(block: Block):
    document = yaml.safe_load(block.text)
    assert isinstance(document, dict), block.name


@by_name([b for b in BLOCKS if b.kind == "json"])
def test_every_json_block_parses(block: Block):
    assert isinstance(json.loads(block.text), dict)


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.block.line}:{c.line}" for c in COMMANDS])
def test_every_orchestrator_command_parses(command: Command):
    assert not EXPRESSION.search(command.line), f"${{{{ }}}} in a command: {command.line}"
    args = parse(command)
    assert args.command in {"run", "plan", "validate", "resume", "runs", "status", "approve"}


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.block.line}:{c.line}" for c in COMMANDS])
def test_every_plan_and_fleet_a_command_names_loads(command: Command):
    args = parse(command)
    named = [args.plan] if getattr(args, "plan", None) else list(getattr(args, "plans", []))
    for pattern in named:
        paths = sorted(ROOT.glob(pattern)) if "*" in pattern else [ROOT / pattern]
        assert paths, f"{pattern} matches no file"
        for path in paths:
            assert path.is_file(), f"{command.line}: no plan {pattern}"
            load_plan(path)
    if getattr(args, "sim", None):
        load_fleet(ROOT / args.sim)


def test_the_guide_shows_every_step_of_a_pipeline():
    """Validate and dry run on pull requests, the rollout against the real endpoint
    with reports, the simulator variant, and the resume: if one goes, this says so."""
    seen = {(c.argv[0], "--sim" in c.argv, "--report-dir" in c.argv) for c in COMMANDS}
    assert ("validate", False, False) in seen
    assert ("plan", False, False) in seen
    assert ("run", False, True) in seen  # the real endpoint
    assert ("run", True, True) in seen  # the dry pipeline
    assert ("resume", False, True) in seen
    real = [c for c in COMMANDS if c.argv[0] == "run" and "--sim" not in c.argv]
    assert all("--approve-all" in c.argv for c in real)


def test_every_path_the_guide_names_exists():
    named = set(REPO_PATH.findall(GUIDE_TEXT))
    named |= {
        str((GUIDE.parent / link).resolve().relative_to(ROOT)) for link in LINK.findall(GUIDE_TEXT)
    }
    assert "plans/ci-rollout.yaml" in named
    for path in sorted(named):
        assert list(ROOT.glob(path)), f"the guide names {path}, which does not exist"


@by_name(YAML_BLOCKS)
def test_junit_reports_are_what_a_report_dir_writes(block: Block):
    """The CI is told to show reports/junit.xml: a command of the same pipeline must
    write it, or the CI shows nothing and says little."""
    report_dirs = {
        parse(c).report_dir for c in COMMANDS if c.block == block and c.argv[0] in {"run", "resume"}
    }
    junit = {s for s in strings(yaml.safe_load(block.text)) if s.endswith("junit.xml")}
    for path in junit:
        assert path in {f"{d.rstrip('/')}/junit.xml" for d in report_dirs if d}, (block.name, path)


@by_name(YAML_BLOCKS)
def test_reports_are_kept_even_when_the_rollout_fails(block: Block):
    """Every upload-artifact step runs `if: always()`; every GitLab job that keeps
    artifacts keeps them `when: always`."""
    document = yaml.safe_load(block.text)
    for job in _jobs(document):
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith(("actions/upload-artifact", "mikepenz/")):
                assert step.get("if") == "always()", (block.name, step)
        if "artifacts" in job:
            assert job["artifacts"].get("when") == "always", block.name


def _jobs(document: dict[str, Any]) -> list[dict[str, Any]]:
    if "jobs" in document:  # GitHub Actions
        return list(document["jobs"].values())
    if "steps" in document:  # a fragment: one job's keys
        return [document]
    return [job for job in document.values() if isinstance(job, dict) and "script" in job]
