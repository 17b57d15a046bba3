"""YAML text → plain values, with the line of every value, under `yaml.safe_load` rules.

The text is composed with `yaml.SafeLoader` (composing builds no Python objects at all)
and the values are built here, so each keeps its dotted path (`command.timeout`,
`waves[1].size`, `targets.tags.app`) and the line it was written on: every problem can
then say `FILE:LINE`. Scalars are constructed by SafeLoader itself, so `yes`, `0x1f`,
`1.10` and dates mean exactly what they mean to `yaml.safe_load`. Stricter than
safe_load where silence would hide a mistake: a repeated key is refused (a silent
override is how typos ship), so are non-string keys and any tag beyond plain YAML
(strings, numbers, booleans, null, timestamps, lists, mappings). Anchors, aliases and
merge keys (`<<`) work as in safe_load; alias expansion is bounded, recursion refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import yaml

if TYPE_CHECKING:
    from orchestrator.plan._findings import Findings

_TAG: Final = "tag:yaml.org,2002:"
_STR: Final = _TAG + "str"
_MERGE: Final = _TAG + "merge"
_SCALARS: Final = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_SEQ: Final = _TAG + "seq"
_MAP: Final = _TAG + "map"
# A plan has a few hundred values; this bounds what aliases may expand to ("billion laughs").
MAX_VALUES: Final = 100_000
SYNTAX: Final = "yaml"  # rule name of every problem found here


def join(parent: str, key: str) -> str:
    """The dotted path of `key` inside `parent` (`""` is the document's root)."""
    return f"{parent}.{key}" if parent else key


class _TooLarge(Exception):
    """Aliases expand to more than MAX_VALUES values."""


class _Builder:
    """Builds plain values from composed nodes, recording lines and refusing what we refuse."""

    def __init__(self, loader: yaml.SafeLoader, findings: Findings) -> None:
        self._loader = loader
        self._findings = findings
        self._building: set[int] = set()  # ids of collection nodes being built (recursion)
        self._count = 0

    def build(self, node: yaml.Node, path: str) -> object:
        self._count += 1
        if self._count > MAX_VALUES:
            raise _TooLarge
        self._findings.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._building:
            self._problem(node, path, "an alias refers to the value that contains it")
            return None
        self._building.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
                return [self.build(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
                return self._mapping(node, path)
            self._problem(node, path, _tag_message(node.tag))
            return None
        finally:
            self._building.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, path: str) -> object:
        if node.tag not in _SCALARS:
            self._problem(node, path, _tag_message(node.tag))
            return None
        try:
            return self._loader.construct_object(node)
        except yaml.MarkedYAMLError as exc:  # e.g. `!!int abc`
            self._problem(node, path, exc.problem or "not a valid value")
            return None

    def _mapping(self, node: yaml.MappingNode, path: str) -> dict[str, object]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _STR and isinstance(key_node.value, str):
                if key_node.value in seen:
                    child = join(path, key_node.value)
                    first = seen[key_node.value]
                    self._problem(key_node, child, f"duplicate key (first given on line {first})")
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
                self._problem(key_node, path, f"key {shown!s} is not a string: quote it")
                continue
            child = join(path, key_node.value)
            self._findings.lines[child] = key_node.start_mark.line + 1
            result[key_node.value] = self.build(value_node, child)
        return result

    def _problem(self, node: yaml.Node, path: str, message: str) -> None:
        self._findings.add(path, message, SYNTAX, line=node.start_mark.line + 1)


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
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()  # what yaml.compose does
        if node is None:
            return None
        return _Builder(loader, findings).build(node, "")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "not valid YAML"
        findings.add("", f"not valid YAML: {message}", SYNTAX, line=mark.line + 1 if mark else 0)
    except yaml.YAMLError as exc:
        findings.add("", f"not valid YAML: {exc}", SYNTAX, line=0)
    except _TooLarge:
        findings.add("", f"aliases expand to more than {MAX_VALUES} values", SYNTAX, line=0)
    except RecursionError:
        findings.add("", "nested too deeply", SYNTAX, line=0)
    finally:
        loader.dispose()
    return None
