"""YAML text → plain values, with the line of every value, under `yaml.safe_load` rules.

The text is composed with `yaml.SafeLoader` (composing builds no Python objects at all)
and the values are built here, so each keeps its dotted path (`command.timeout`,
`waves[1].size`, `targets.tags.app`) and the line it was written on: every problem can
then say `FILE:LINE`. Scalars are constructed by SafeLoader itself, so `yes`, `0x1f`,
`1.10` and dates mean exactly what they mean to `yaml.safe_load`. Stricter than
safe_load where silence would hide a mistake: a repeated key is refused (a silent
override is how typos ship), so are non-string keys and any tag beyond plain YAML
(strings, numbers, booleans, null, timestamps, lists, mappings). Anchors, aliases and
merge keys (`<<`) work as in safe_load.

What `validate` accepts, `run` must be able to use, so values no check downstream could
reason about are refused here, once, for every field: NaN and infinity (rule `number`:
every comparison with NaN is false, so each range check would pass it), numbers beyond
64 bits, strings holding NUL or a lone surrogate (rule `text`: YAML's `"\\0"` and
`"\\ud800"` escapes make them; no API field carries them, and a surrogate cannot even be
printed as UTF-8), timestamps that are no date. Building is bounded, so a hostile plan
costs milliseconds: at most MAX_DEPTH levels of nesting and MAX_VALUES values built
(aliases counted each time they expand: the "billion laughs"); a plan has a few hundred
values, nested five deep. Merge keys cannot multiply: since PyYAML 6.0.4 (the floor in
pyproject.toml) its flatten keeps one pair per key (`<<: [*a, *a]` doubled them).
"""

from __future__ import annotations

import math
import re
from typing import Final

import yaml

from orchestrator.plan._findings import Findings, printable

_TAG: Final = "tag:yaml.org,2002:"
_STR: Final = _TAG + "str"
_MERGE: Final = _TAG + "merge"
_SCALARS: Final = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_SEQ: Final = _TAG + "seq"
_MAP: Final = _TAG + "map"
# A plan has a few hundred values; this bounds what aliases may expand to ("billion laughs")
# and leaves room for a target list of thousands of instance IDs.
MAX_VALUES: Final = 100_000
# A plan nests about five deep (waves[0].verify.content); far below Python's recursion limit.
MAX_DEPTH: Final = 32
# Beyond 64 bits: no field takes such a number (Timeout, the widest, is a long, and says
# so with the API's own code), and 10**400 would not even convert to a float.
NUMBER_MAX: Final = 2**64
SYNTAX: Final = "yaml"  # rule name of the problems of the YAML itself
NUMBER: Final = "number"  # a number no field can use: NaN, infinity, out of range
TEXT: Final = "text"  # a string no field can carry: NUL, a lone surrogate
_NUMBERS: Final = frozenset((_TAG + "int", _TAG + "float"))
_OUT_OF_RANGE: Final = (
    "is out of range: no field of a plan takes a number beyond 2^64 (quote it if it is text)"
)
# PyYAML's problem mark is where it noticed; for a construct left open (a quote, a `{`
# or `[`, a key without its `:`) that is a later line, and the mistake is where the
# construct began: its context mark.
_LEFT_OPEN: Final = {
    "while scanning a simple key": "no ':' after this key",
    "while scanning a quoted scalar": "this quoted string is not closed",
    "while parsing a flow mapping": "this '{' is not closed, or an entry in it lacks its ','",
    "while parsing a flow sequence": "this '[' is not closed, or an item in it lacks its ','",
}
_BLOCK_END: Final = "expected <block end>"
_TAB: Final = "'\\t'"  # PyYAML names the character as repr() writes it
_BAD_TEXT: Final = re.compile("[\\x00\\ud800-\\udfff]")


def join(parent: str, key: str) -> str:
    """The dotted path of `key` inside `parent` (`""` is the document's root)."""
    return f"{parent}.{key}" if parent else key


def text_problem(text: str) -> str | None:
    """Why no RunCommand field can carry `text` (None when it can)."""
    found = _BAD_TEXT.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "holds a NUL character (\\0), which no API field carries"
    return (
        f"holds a lone surrogate (\\u{ord(found.group()):04x}), which is not text "
        "(UTF-8 cannot encode it)"
    )


def number_problem(value: object) -> str | None:
    """Why no field can use the number `value` (None when it can, or it is no number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN and infinity are not numbers a plan can use (quote it if it is text)"
    if abs(value) > NUMBER_MAX:
        return _OUT_OF_RANGE
    return None


def _syntax_problem(exc: yaml.MarkedYAMLError) -> tuple[str, int, int]:
    """What is wrong, and the 1-based line and column of the mistake (0, 0: unknown)."""
    problem = printable(exc.problem or exc.context or "not valid YAML")
    found, opened = exc.problem_mark, exc.context_mark
    left_open = _LEFT_OPEN.get(exc.context or "")
    if left_open and opened is not None and (found is None or found.line > opened.line):
        noticed = f" on line {found.line + 1}, column {found.column + 1}" if found else ""
        return f"{left_open} ({problem}{noticed})", opened.line + 1, opened.column + 1
    if _TAB in problem:
        problem = f"a tab where YAML wants spaces: indent with spaces only ({problem})"
    elif problem.startswith(_BLOCK_END):
        problem = f"this line's indentation does not fit the lines above it ({problem})"
    mark = found or opened
    return (problem, mark.line + 1, mark.column + 1) if mark else (problem, 0, 0)


class _TooCostly(Exception):
    """Building would pass a bound; `line` is where it was passed."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _TooLarge(_TooCostly):
    """Aliases expand to more than MAX_VALUES values."""


class _TooDeep(_TooCostly):
    """Nested more than MAX_DEPTH levels."""


class _Loader(yaml.SafeLoader):
    """safe_load's loader, refusing to compose deeper than MAX_DEPTH: PyYAML composes
    recursively, so a deep `[[[[…` would otherwise end in a RecursionError."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _TooDeep(event.start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Builder:
    """Builds plain values from composed nodes, recording lines and refusing what we refuse."""

    def __init__(self, loader: yaml.SafeLoader, findings: Findings) -> None:
        self._loader = loader
        self._findings = findings
        self._building: set[int] = set()  # ids of collection nodes being built (recursion)
        self._count = 0

    def build(self, node: yaml.Node, path: str, depth: int = 0) -> object:
        self._count += 1
        if self._count > MAX_VALUES:
            raise _TooLarge(node.start_mark.line + 1)
        if depth > MAX_DEPTH:  # aliases can stack what composing saw as shallow
            raise _TooDeep(node.start_mark.line + 1)
        self._findings.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._building:
            self._problem(node, path, "an alias refers to the value that contains it")
            return None
        self._building.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
                return [
                    self.build(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node.value)
                ]
            if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
                return self._mapping(node, path, depth)
            self._problem(node, path, _tag_message(node.tag))
            return None
        finally:
            self._building.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, path: str) -> object:
        if node.tag not in _SCALARS:
            self._problem(node, path, _tag_message(node.tag))
            return None
        try:
            value = self._loader.construct_object(node)
        except yaml.MarkedYAMLError as exc:  # e.g. `!!int abc`
            self._problem(node, path, exc.problem or "not a valid value")
            return None
        except (ValueError, OverflowError) as exc:  # 2024-13-45, an int of 5000 digits
            if node.tag in _NUMBERS:
                self._findings.add(path, _OUT_OF_RANGE, NUMBER, line=node.start_mark.line + 1)
            else:
                self._problem(node, path, f"not a valid date: {printable(str(exc))}")
            return None
        if (problem := number_problem(value)) is not None:
            self._findings.add(path, problem, NUMBER, line=node.start_mark.line + 1)
            return None
        if isinstance(value, str) and (problem := text_problem(value)) is not None:
            self._findings.add(path, problem, TEXT, line=node.start_mark.line + 1)
            return None
        return value

    def _mapping(self, node: yaml.MappingNode, path: str, depth: int) -> dict[str, object]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _STR and isinstance(key_node.value, str):
                if key_node.value in seen:
                    child = join(path, key_node.value)
                    first = seen[key_node.value]
                    self._problem(
                        key_node, child, f"duplicate key (first given on line {first})", key=True
                    )
                seen.setdefault(key_node.value, key_node.start_mark.line + 1)
        try:
            # safe_load's own merge: `<<` entries first, so the mapping's own keys win.
            self._loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            self._problem(node, path, exc.problem or "bad merge key")
            return {}
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            if key_node.tag != _STR or not isinstance(key_node.value, str):
                shown = (
                    key_node.value if isinstance(key_node, yaml.ScalarNode) else "(a collection)"
                )
                message = f"key {printable(shown)} is not a string: quote it"
                self._problem(key_node, path, message, key=True)
                continue
            if (problem := text_problem(key_node.value)) is not None:
                self._findings.add(
                    path, f"a key {problem}", TEXT, line=key_node.start_mark.line + 1
                )
                continue
            child = join(path, key_node.value)
            self._findings.lines[child] = key_node.start_mark.line + 1
            result[key_node.value] = self.build(value_node, child, depth + 1)
        return result

    def _problem(self, node: yaml.Node, path: str, message: str, *, key: bool = False) -> None:
        """A problem of the YAML at `node`; a refused key is also given its column (a
        line can hold several keys: `{a: 1, a: 2}`)."""
        mark = node.start_mark
        column = mark.column + 1 if key else 0
        self._findings.add(path, message, SYNTAX, line=mark.line + 1, column=column)


def _tag_message(tag: str) -> str:
    shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
    return (
        f"tag {shown} is not allowed in a plan "
        "(plain YAML only: strings, numbers, booleans, null, lists, mappings)"
    )


def parse_yaml(text: str, findings: Findings) -> object:
    """The plain value of one YAML document; problems go to `findings` (None if unusable).

    `findings.lines` receives the line of every path. An empty document is None.
    """
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader refuses control characters here already
        node = loader.get_single_node()  # what yaml.compose does
        if node is None:
            return None
        return _Builder(loader, findings).build(node, "")
    except yaml.MarkedYAMLError as exc:
        message, line, column = _syntax_problem(exc)
        findings.add("", f"not valid YAML: {message}", SYNTAX, line=line, column=column)
    except yaml.reader.ReaderError as exc:  # a character YAML text may not hold
        position = max(exc.position, 0)
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        shown = f"#x{exc.character:04x}" if isinstance(exc.character, int) else "a character"
        message = f"not valid YAML: {shown} is not allowed in YAML text"
        findings.add("", message, SYNTAX, line=line, column=column)
    except yaml.YAMLError as exc:
        findings.add("", f"not valid YAML: {printable(str(exc))}", SYNTAX, line=0)
    except _TooLarge as exc:
        findings.add("", f"aliases expand to more than {MAX_VALUES} values", SYNTAX, line=exc.line)
    except _TooDeep as exc:
        findings.add("", f"nested more than {MAX_DEPTH} levels deep", SYNTAX, line=exc.line)
    except RecursionError:  # a path the bounds above missed: still a problem, not a crash
        findings.add("", "nested too deeply", SYNTAX, line=0)
    finally:
        if loader is not None:
            loader.dispose()
    return None
