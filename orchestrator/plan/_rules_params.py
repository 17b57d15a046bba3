"""The `{{ }}` parameter grammar of command content, and the `parameters` that fill it.

The client's own reading of the RunCommand rules (SEED = the 2024 RunCommand page), so a
bad plan fails before any call: with EnableParameter on, every `{{ name }}` in the content
is a reference (spaces and newlines around the name ignored); custom names use
`a-zA-Z0-9_-`, at most 64 bytes, compare case-insensitively, at most 20 distinct; the
`acs::` prefix belongs to the built-ins (`{{ACS::InstanceId}}` …); `{{oos:NAME}}` and
`{{oos-secret:NAME}}` read the parameter store. `parameters` hold at most 10 pairs, keys
non-empty and at most 64 characters, each naming a custom parameter of the content.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from orchestrator import api
from orchestrator.plan._findings import shown
from orchestrator.plan._yaml import join

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.plan._findings import Findings

_REFERENCE: Final = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")
_BUILTINS: Final = frozenset(name.casefold() for name in api.BUILTIN_PARAMETERS)
_STORE: Final = ("oos:", "oos-secret:")
PARAMETER_KEY_MAX: Final = 64  # SEED: "键 … 最多支持 64 个字符"


def references(content: str) -> list[str]:
    """Every `{{ }}` reference of `content`, stripped, in order (repeats kept)."""
    return [match.group(1).strip() for match in _REFERENCE.finditer(content)]


def uses_agent_values(content: str) -> bool:
    """Whether the content refers to a built-in (`{{ACS::…}}`) or the parameter store
    (`{{oos:…}}`): the agent fills those in only when EnableParameter is on."""
    return any(ref.casefold().startswith(("acs::", *_STORE)) for ref in references(content))


def _name_problem(name: str) -> tuple[str, str] | None:
    """(message, code) for a bad reference, None for a good one."""
    folded = name.casefold()
    if not name:
        return "{{ }} names no parameter", "CmdParam.EmptyKey"
    if folded.startswith("acs::"):
        if folded in _BUILTINS:
            return None
        builtins = ", ".join(api.BUILTIN_PARAMETERS)
        return (
            f"{{{{{name}}}}}: the acs:: prefix is reserved for the built-ins ({builtins})",
            "CmdParam.InvalidParamName",
        )
    if folded.startswith(_STORE):
        if name.split(":", 1)[1].strip():
            return None
        return f"{{{{{name}}}}} names no parameter-store value", "CmdParam.InvalidParamName"
    if len(name.encode()) > api.PARAMETER_NAME_MAX_BYTES:
        limit = api.PARAMETER_NAME_MAX_BYTES
        return f"parameter name {shown(name)} is longer than {limit} bytes", (
            "CmdParamName.ExceedLimit"
        )
    if not _NAME.fullmatch(name):
        return (
            f"parameter name {shown(name)} may use only letters, digits, _ and -",
            "CmdParam.InvalidParamName",
        )
    return None


def custom_names(content: str, findings: Findings, field: str) -> dict[str, str]:
    """Check every reference of `content`; its custom names, case-folded → first spelling."""
    names: dict[str, str] = {}
    reported: set[str] = set()
    for ref in references(content):
        problem = _name_problem(ref)
        if problem is not None:
            if ref not in reported:
                reported.add(ref)
                findings.add(field, *problem)
            continue
        if not ref.casefold().startswith(("acs::", *_STORE)):
            names.setdefault(ref.casefold(), ref)
    if len(names) > api.PARAMETER_NAMES_MAX:
        findings.add(
            field,
            f"uses {len(names)} distinct parameters; at most {api.PARAMETER_NAMES_MAX}",
            "CmdParamCount.ExceedLimit",
        )
    return names


def check_values(
    parameters: Mapping[str, str], names: Mapping[str, str], findings: Findings, field: str
) -> None:
    """Check the `parameters` pairs against the content's custom `names` (case-folded)."""
    if len(parameters) > api.PARAMETER_VALUES_MAX:
        findings.add(
            field,
            f"has {len(parameters)} pairs; at most {api.PARAMETER_VALUES_MAX}",
            "ParameterCount.ExceedLimit",
        )
    if parameters and not names:
        findings.add(
            field,
            "are given, but the content uses no {{name}} to put them in",
            "Parameter.NotMatched",
        )
        return
    seen: set[str] = set()
    for key in parameters:
        where = join(field, key)
        if not key:
            findings.add(where, "a parameter name may not be empty", "CmdParam.EmptyKey")
            continue
        if len(key) > PARAMETER_KEY_MAX:
            findings.add(
                where,
                f"parameter name is longer than {PARAMETER_KEY_MAX} characters",
                "ParameterKey.ExceedLimit",
            )
            continue  # no content name can match it: one problem is enough
        if key.casefold() in seen:  # names are case-insensitive
            findings.add(where, "names the same parameter as another key", "ParameterKey.Duplicate")
        seen.add(key.casefold())
        if key.casefold() not in names:
            used = ", ".join(sorted(names.values()))
            findings.add(
                where,
                f"the content has no {{{{{key}}}}} (it uses: {used})",
                "Parameter.NotMatched",
            )


def render(content: str, parameters: Mapping[str, str]) -> str:
    """The content with custom parameters substituted, as the service sizes it.

    A name without a value becomes the empty string (SEED); built-ins and store references
    stay as written: their values are only known on the instance.
    """
    values = {key.casefold(): value for key, value in parameters.items()}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name.casefold().startswith(("acs::", *_STORE)) or not _NAME.fullmatch(name):
            return match.group(0)
        return values.get(name.casefold(), "")

    return _REFERENCE.sub(substitute, content)
