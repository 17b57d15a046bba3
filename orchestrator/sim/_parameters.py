"""The `{{ }}` custom-parameter grammar of Cloud Assistant command content.

With EnableParameter=true every `{{ ... }}` in the content is a parameter reference
(SEED): spaces and newlines around the name are ignored; custom names use
`a-zA-Z0-9_-`, are case-insensitive and at most 64 bytes; at most 20 distinct custom
names; the `acs::` prefix is reserved for the built-ins `{{ACS::RegionId}}`,
`{{ACS::AccountId}}`, `{{ACS::InstanceId}}`, `{{ACS::InstanceName}}`,
`{{ACS::InvokeId}}`, `{{ACS::CommandId}}`; `{{oos:NAME}}` / `{{oos-secret:NAME}}` refer
to the parameter store and are no custom parameters. `custom_names` validates a
content and lists its custom names; `parse_values` checks the request's `Parameters`
object against them; `check_store` checks the parameter-store references against the
account; `render` substitutes values. Errors are raised as `SimApiError` with the
service's own api.
"""

from __future__ import annotations

import ast
import json
import re
from typing import TYPE_CHECKING, Final

from orchestrator import api
from orchestrator.sim._protocol import SimApiError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.sim._spec import AccountSpec

# Non-greedy, across lines: the name may be wrapped in newlines (SEED).
_REFERENCE: Final = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")
_BUILTIN_PREFIX: Final = "acs::"
_STORE_PREFIXES: Final = ("oos:", "oos-secret:")
_BUILTINS_FOLDED: Final = {name.casefold(): name for name in api.BUILTIN_PARAMETERS}
PARAMETER_KEY_MAX: Final = 64  # SEED: a Parameters key has at most 64 characters


def _is_store_reference(name: str) -> bool:
    return name.casefold().startswith(_STORE_PREFIXES)


def _check_name(name: str) -> None:
    """Raise the service's code for a reference `{{name}}` (already stripped)."""
    if not name:
        raise SimApiError("CmdParam.EmptyKey")
    if name.casefold().startswith(_BUILTIN_PREFIX):
        # Reserved prefix: only the documented built-ins (any case, names are
        # case-insensitive) may use it.
        if name.casefold() not in _BUILTINS_FOLDED:
            raise SimApiError("CmdParam.InvalidParamName")
        return
    if _is_store_reference(name):
        if not name.split(":", 1)[1].strip():
            raise SimApiError("CmdParam.InvalidParamName")  # `{{oos:}}` names nothing
        return
    # The limit is stated in bytes, so it is checked on the raw name before the
    # character set (unconfirmed which of the two the service tests first).
    if len(name.encode()) > api.PARAMETER_NAME_MAX_BYTES:
        raise SimApiError("CmdParamName.ExceedLimit")
    if not _NAME.fullmatch(name):
        raise SimApiError("CmdParam.InvalidParamName")


def custom_names(content: str) -> tuple[str, ...]:
    """The custom parameter names of `content`, first spelling, in order of first use.

    Built-ins and parameter-store references are checked but not listed. Raises
    `SimApiError` (CmdParam.EmptyKey, CmdParam.InvalidParamName,
    CmdParamName.ExceedLimit, CmdParamCount.ExceedLimit) on the first bad reference.
    """
    seen: dict[str, str] = {}
    for match in _REFERENCE.finditer(content):
        name = match.group(1).strip()
        _check_name(name)
        if name.casefold().startswith(_BUILTIN_PREFIX) or _is_store_reference(name):
            continue
        seen.setdefault(name.casefold(), name)
    if len(seen) > api.PARAMETER_NAMES_MAX:
        raise SimApiError("CmdParamCount.ExceedLimit")
    return tuple(seen.values())


def _store_key(name: str) -> str:
    """`oos:NAME` / `oos-secret:NAME`: the prefix folded, the name as written (stripped).

    (unconfirmed) Parameter-store names are matched case-sensitively, as OOS names are
    distinct resources; only the prefix is case-insensitive, as for `acs::`.
    """
    prefix, _, rest = name.partition(":")
    return f"{prefix.casefold()}:{rest.strip()}"


def store_references(content: str) -> tuple[str, ...]:
    """The parameter-store references of `content` as `oos:NAME` / `oos-secret:NAME`."""
    found = (match.group(1).strip() for match in _REFERENCE.finditer(content))
    return tuple(dict.fromkeys(_store_key(name) for name in found if _is_store_reference(name)))


def check_store(content: str, account: AccountSpec, *, access: bool) -> None:
    """Check the parameter-store references of `content` (EnableParameter=true content).

    In this order: the region has a parameter store (ParameterStore.NotSupported), the
    caller may read it (ParameterStore.NoPermission), every named parameter exists
    (ParameterStore.InvalidParameters). A store that is not configured (None) holds
    every name: the behaviour before stores could be configured.
    """
    references = store_references(content)
    if not references:
        return
    if not account.parameter_store_supported:
        raise SimApiError("ParameterStore.NotSupported")
    if not access:
        raise SimApiError("ParameterStore.NoPermission")
    for reference in references:
        prefix, _, name = reference.partition(":")
        store = account.parameter_store if prefix == "oos" else account.secret_parameters
        if store is not None and name not in store:
            raise SimApiError("ParameterStore.InvalidParameters")


def render(
    content: str,
    parameters: Mapping[str, str],
    builtins: Mapping[str, str],
    store: Mapping[str, str] | None = None,
) -> str:
    """Substitute `{{ name }}`, `{{ACS::X}}` and parameter-store references in `content`.

    Names match case-insensitively. A custom name with no value becomes the empty string
    (SEED: "for parameters not passed, an empty string stands in"). `builtins` is keyed
    by the full built-in name (`"ACS::InstanceId"`), `store` by `oos:NAME` /
    `oos-secret:NAME` (`AccountSpec.store_values()`); a built-in or stored parameter it
    lacks and anything that is not a valid name stay as written (the agent or the store
    fills them; validation is `custom_names`' and `check_store`'s job).
    """
    values = {key.casefold(): value for key, value in parameters.items()}
    known = {key.casefold(): value for key, value in builtins.items()}
    stored = store or {}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        folded = name.casefold()
        if folded.startswith(_BUILTIN_PREFIX):
            return known.get(folded, match.group(0))
        if _is_store_reference(name):
            return stored.get(_store_key(name), match.group(0))
        if not _NAME.fullmatch(name):
            return match.group(0)
        return values.get(folded, "")

    return _REFERENCE.sub(substitute, content)


class _Pairs(list[tuple[str, object]]):
    """A JSON object as its key/value pairs, duplicates kept (to be refused)."""


def _python_literal(text: str) -> _Pairs:
    """A Python dict literal, as the legacy SDK sends a dict (`{'a': 'b'}`).

    (unconfirmed) Tolerated: Alibaba's Java services commonly parse JSON with fastjson,
    which reads single quotes by default; a strict JSON parser would refuse this text.
    """
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise SimApiError("ParameterType.NotSupported") from exc
    if not isinstance(node, ast.Dict):
        raise SimApiError("ParameterType.NotSupported")
    pairs = _Pairs()
    for key, value in zip(node.keys, node.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            raise SimApiError("ParameterType.NotSupported")
        pairs.append((key.value, value.value if isinstance(value, ast.Constant) else value))
    return pairs


def _parse_object(text: str) -> _Pairs:
    try:
        parsed = json.loads(text, object_pairs_hook=_Pairs)
    except ValueError:
        return _python_literal(text)
    except RecursionError as exc:
        raise SimApiError("ParameterType.NotSupported") from exc
    # (unconfirmed) Parameters that are not an object at all: the type code.
    if not isinstance(parsed, _Pairs):
        raise SimApiError("ParameterType.NotSupported")
    return parsed


def parse_values(text: str | None, *, enabled: bool, names: tuple[str, ...]) -> dict[str, str]:
    """The `Parameters` object of a request, checked against the content's `names`.

    `text` is the wire value (None when absent). Raises Parameter.Disabled,
    ParameterType.NotSupported, ParameterCount.ExceedLimit, CmdParam.EmptyKey,
    ParameterKey.ExceedLimit, ParameterKey.Duplicate or Parameter.NotMatched.
    """
    if text is None:
        return {}
    if not enabled:
        # SEED: Parameters do not switch EnableParameter on (the code exists because they
        # do not); only an empty object may accompany EnableParameter=false.
        if not _is_empty_object(text):
            raise SimApiError("Parameter.Disabled")
        return {}
    pairs = _parse_object(text)
    if any(not isinstance(value, str) for _, value in pairs):
        raise SimApiError("ParameterType.NotSupported")
    if len(pairs) > api.PARAMETER_VALUES_MAX:
        raise SimApiError("ParameterCount.ExceedLimit")
    _check_keys([key for key, _ in pairs])
    defined = {name.casefold() for name in names}
    if any(key.casefold() not in defined for key, _ in pairs):
        raise SimApiError("Parameter.NotMatched")
    return {key: str(value) for key, value in pairs}


def _is_empty_object(text: str) -> bool:
    try:
        return _parse_object(text) == []
    except SimApiError:
        return False


def _check_keys(keys: list[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if not key:
            raise SimApiError("CmdParam.EmptyKey")
        if len(key) > PARAMETER_KEY_MAX:
            raise SimApiError("ParameterKey.ExceedLimit")
        if key.casefold() in seen:  # names are case-insensitive, so are duplicates
            raise SimApiError("ParameterKey.Duplicate")
        seen.add(key.casefold())
