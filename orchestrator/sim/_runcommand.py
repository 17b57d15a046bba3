"""RunCommand request validation: wire parameters in, a `RunCommandSpec` or the API error out.

Everything that can be decided from the parameters alone is decided here, with the real
service's codes (SEED = the 2024 RunCommand page; statuses and texts in
`orchestrator.api`). Instances, resource-tag matches, quotas, idempotency and agent
versions need state: the RunCommand handler checks them afterwards. The first rule broken
wins, in this order (the service's own order is not documented; this one is plausible:
the API gateway's checks, then enumerations, targets, plain strings, content, schedule):

1. gateway: Type and CommandContent present (MissingParameter); Timeout a non-negative
   integer, KeepCommand / EnableParameter booleans (InvalidParameter);
2. enumerations: Type (InvalidCmdType.NotFound), RepeatMode (InvalidRepeatMode.NotFound,
   then Period without Frequency: MissingParam.Frequency), TerminationMode (InvalidParameter);
3. targets: Tag.N, then ResourceTag.N (count, key, value, duplicates), InstanceId.N count
   (InstanceIds.ExceedLimit), ResourceTag with InstanceId, neither (MissingParam.InstanceId);
4. strings: Name, Description, WorkingDir, Username, WindowsPasswordName (length, then
   Missed), ClientToken, Launcher, ContainerId, ContainerName;
5. content: Base64 decoding, container rules, the `{{ }}` grammar, Parameters (Disabled,
   type, count, keys, duplicates, NotMatched; in `_parameters`), then the size after
   substitution;
6. schedule: Frequency (InvalidParam.Frequency).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from orchestrator import api
from orchestrator.sim._frequency import Frequency, parse_frequency
from orchestrator.sim._parameters import custom_names, parse_values, render
from orchestrator.sim._protocol import SimApiError

if TYPE_CHECKING:
    from collections.abc import Mapping

LAUNCHER_MAX_BYTES: Final = 1024  # SDK: "cannot exceed 1 KB"
CONTAINER_NAME_MAX: Final = 255  # (unconfirmed) no documented limit; Linux NAME_MAX
TERMINATION_MODES: Final = ("Process", "ProcessTree")
_LONG_MAX: Final = 2**63 - 1
_CONTAINER_ID: Final = re.compile(r"(?:docker://|containerd://|cri-o://)?[0-9a-fA-F]{64}")
# (unconfirmed) Docker's own name rule; the service documents only the error.
_CONTAINER_NAME: Final = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_INSTANCE_KEY: Final = re.compile(r"InstanceId\.(\d+)")


@dataclass(frozen=True, slots=True)
class RunCommandSpec:
    """A RunCommand request that passed every stateless check."""

    type: str
    content: str  # decoded plain text, before any parameter substitution
    name: str
    description: str
    working_dir: str | None
    username: str | None
    windows_password_name: str | None
    timeout: int
    enable_parameter: bool
    parameters: Mapping[str, str]
    parameter_names: tuple[str, ...]
    repeat_mode: str
    frequency: Frequency | None
    keep_command: bool
    instance_ids: tuple[str, ...]
    resource_tags: tuple[tuple[str, str], ...]
    tags: tuple[tuple[str, str], ...]
    container_id: str | None
    container_name: str | None
    client_token: str | None
    resource_group_id: str | None
    launcher: str | None
    termination_mode: str | None
    oss_output_delivery: str | None


def _missing(name: str) -> SimApiError:
    return SimApiError(
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is '
        "not supplied.",
    )


def _invalid(name: str) -> SimApiError:
    return SimApiError("InvalidParameter", f'The specified parameter "{name}" is not valid.')


def _text(params: Mapping[str, str], name: str) -> str | None:
    """A parameter's value; an empty value counts as not sent (SDKs send "" for unset)."""
    value = params.get(name)
    return value or None


def _boolean(params: Mapping[str, str], name: str) -> bool:
    value = _text(params, name)
    if value is None:
        return False
    if value.lower() not in {"true", "false"}:  # SDKs send `True`/`true`
        raise _invalid(name)
    return value.lower() == "true"


def _timeout(params: Mapping[str, str]) -> int:
    value = _text(params, "Timeout")
    if value is None:
        return api.DEFAULT_TIMEOUT
    # (unconfirmed) the gateway's type check of a `long`: InvalidParameter.
    if not value.isascii() or not value.isdigit() or int(value) > _LONG_MAX:
        raise _invalid("Timeout")
    return int(value)


def _repeat_mode(params: Mapping[str, str], frequency: str | None) -> str:
    given = _text(params, "RepeatMode")
    if given is not None and given not in api.REPEAT_MODES:
        raise SimApiError("InvalidRepeatMode.NotFound")
    if frequency is not None:
        # SEED: with a Frequency the mode is Period whatever RepeatMode says. DryRun is
        # newer than that rule and kept: a dry run must never turn into a schedule.
        return "DryRun" if given == "DryRun" else "Period"
    if given == "Period":
        raise SimApiError("MissingParam.Frequency")
    return given or "Once"


@dataclass(frozen=True, slots=True)
class _TagRules:
    prefix: str
    limit: int
    count: str
    missing_key: str
    bad_key: str
    bad_value: str
    duplicate: str


_TAG: Final = _TagRules(
    "Tag",
    api.TAGS_MAX,
    "NumberExceed.Tags",
    "MissingParameter.TagKey",
    "InvalidTagKey.Malformed",
    "InvalidTagValue.Malformed",
    "Duplicate.TagKey",
)
_RESOURCE_TAG: Final = _TagRules(
    "ResourceTag",
    api.RESOURCE_TAGS_MAX,  # SEED: N 1..10 (SDK 7.11.8: 20)
    "NumberExceed.ResourceTags",
    "MissingParameter.ResourceTagKey",
    "InvalidResourceTagKey.Malformed",
    "InvalidResourceTagValue.Malformed",
    "Duplicate.ResourceTagKey",
)


def _has_url(text: str) -> bool:
    return "http://" in text.lower() or "https://" in text.lower()


def _tags(params: Mapping[str, str], rules: _TagRules) -> tuple[tuple[str, str], ...]:
    pattern = re.compile(rf"{rules.prefix}\.(\d+)\.(Key|Value)")
    entries: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        if (match := pattern.fullmatch(key)) and int(match.group(1)) >= 1:
            entries.setdefault(int(match.group(1)), {})[match.group(2)] = value
    if entries and max(entries) > rules.limit:
        raise SimApiError(rules.count)
    tags: list[tuple[str, str]] = []
    for index in sorted(entries):
        tag_key, tag_value = entries[index].get("Key", ""), entries[index].get("Value", "")
        if not tag_key:  # once a tag is sent its key may not be empty (SEED)
            raise SimApiError(rules.missing_key)
        # (unconfirmed) the reserved prefixes are matched case-insensitively.
        if (
            len(tag_key) > api.TAG_KEY_MAX
            or tag_key.lower().startswith(("aliyun", "acs:"))
            or _has_url(tag_key)
        ):
            raise SimApiError(rules.bad_key)
        if len(tag_value) > api.TAG_VALUE_MAX or _has_url(tag_value):
            raise SimApiError(rules.bad_value)
        if any(tag_key == seen for seen, _ in tags):
            raise SimApiError(rules.duplicate)
        tags.append((tag_key, tag_value))
    return tuple(tags)


def _instance_ids(params: Mapping[str, str], limit: int) -> tuple[str, ...]:
    numbered = sorted(
        (int(m.group(1)), value)
        for key, value in params.items()
        if (m := _INSTANCE_KEY.fullmatch(key)) and value
    )
    # The limit is on N, the list as sent (SEED: "N 的取值范围 1~50"), so it is applied
    # before duplicates are dropped.
    if len(numbered) > limit:
        raise SimApiError("InstanceIds.ExceedLimit")
    # (unconfirmed) a repeated ID runs once: dropped silently, first position kept.
    return tuple(dict.fromkeys(value for _, value in numbered))


def _check_length(value: str | None, limit: int, code: str) -> None:
    if value is not None and len(value) > limit:
        raise SimApiError(code)


def _check_strings(params: Mapping[str, str], command_type: str) -> None:
    _check_length(_text(params, "Name"), api.NAME_MAX, "CmdName.ExceedLimit")
    _check_length(_text(params, "Description"), api.DESCRIPTION_MAX, "CmdDesc.ExceedLimit")
    working_dir = _text(params, "WorkingDir")
    _check_length(working_dir, api.WORKING_DIR_MAX, "InvalidParameter.WorkingDir")
    username = _text(params, "Username")
    _check_length(username, api.USERNAME_MAX, "Username.ExceedLimit")
    password_name = _text(params, "WindowsPasswordName")
    _check_length(password_name, api.WINDOWS_PASSWORD_NAME_MAX, "WindowsPasswordName.ExceedLimit")
    # (unconfirmed) our reading of SEED: a Windows script run as anyone but System needs
    # the name of that user's password in the parameter store.
    if (
        command_type in api.WINDOWS_COMMAND_TYPES
        and username is not None
        and username.lower() != "system"
        and password_name is None
    ):
        raise SimApiError("WindowsPasswordName.Missed")
    token = _text(params, "ClientToken")
    if token is not None and (not token.isascii() or len(token) > api.CLIENT_TOKEN_MAX):
        raise SimApiError("InvalidClientToken.Malformed")
    launcher = _text(params, "Launcher")
    if launcher is not None and len(launcher.encode()) > LAUNCHER_MAX_BYTES:
        raise _invalid("Launcher")  # (unconfirmed) no documented code
    container_id = _text(params, "ContainerId")
    if container_id is not None and not _CONTAINER_ID.fullmatch(container_id):
        raise SimApiError("InvalidContainerId.Malformed")
    container_name = _text(params, "ContainerName")
    if container_name is not None and (
        len(container_name) > CONTAINER_NAME_MAX or not _CONTAINER_NAME.fullmatch(container_name)
    ):
        raise SimApiError("InvalidContainerName.Malformed")


def _decode(raw: str, encoding: str | None) -> str:
    # SEED: the encoding is case-insensitive and anything but Base64 means PlainText.
    if (encoding or "").lower() != "base64":
        return raw
    try:
        # (unconfirmed) strict: no line breaks inside, and the script must be UTF-8.
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise SimApiError("CmdContent.DecodeError") from exc


def _check_size(content: str, keep_command: bool) -> None:
    # SEED: the Base64 size of the content (with parameters substituted) ≤ 18 KB when
    # kept, 24 KB otherwise; KB = 1024 bytes.
    encoded = 4 * -(-len(content.encode()) // 3)
    limit = api.CONTENT_MAX_BYTES_KEPT if keep_command else api.CONTENT_MAX_BYTES
    if encoded > limit:
        raise SimApiError("CmdContent.ExceedLimit")


def parse_run_command(
    params: Mapping[str, str], *, max_instances: int = api.RUN_COMMAND_MAX_INSTANCES
) -> RunCommandSpec:
    """Validate RunCommand's wire parameters; raise `SimApiError` on the first rule broken."""
    # 1. gateway. (unconfirmed) Type and CommandContent are required in the API model, so
    # the gateway answers MissingParameter before the service sees the request.
    command_type = _text(params, "Type")
    if command_type is None:
        raise _missing("Type")
    raw_content = _text(params, "CommandContent")
    if raw_content is None:
        raise _missing("CommandContent")
    timeout = _timeout(params)
    keep_command = _boolean(params, "KeepCommand")
    enable_parameter = _boolean(params, "EnableParameter")

    # 2. enumerations
    if command_type not in api.COMMAND_TYPES:
        raise SimApiError("InvalidCmdType.NotFound")
    frequency_text = (_text(params, "Frequency") or "").strip() or None
    repeat_mode = _repeat_mode(params, frequency_text)
    termination_mode = _text(params, "TerminationMode")
    if termination_mode is not None and termination_mode not in TERMINATION_MODES:
        raise _invalid("TerminationMode")  # (unconfirmed) no documented code

    # 3. targets
    tags = _tags(params, _TAG)
    resource_tags = _tags(params, _RESOURCE_TAG)
    instance_ids = _instance_ids(params, max_instances)
    if resource_tags and instance_ids:
        raise SimApiError("InvalidResourceTag.ConflictWithInstanceIds")
    if not resource_tags and not instance_ids:
        raise SimApiError("MissingParam.InstanceId")

    # 4. strings
    _check_strings(params, command_type)

    # 5. content
    content = _decode(raw_content, _text(params, "ContentEncoding"))
    container = _text(params, "ContainerId") or _text(params, "ContainerName")
    if container is not None:
        # (unconfirmed) containers run on Linux only: a Windows script cannot match any
        # instance that could run it, the same answer as a type/OS mismatch.
        if command_type != "RunShellScript":
            raise SimApiError("InvalidInstance.NotMatch")
        # (unconfirmed) SEED says an interpreter line is "not supported" in a container.
        if content.startswith("#!"):
            raise SimApiError("Operation.Forbidden")
    names = custom_names(content) if enable_parameter else ()
    parameters = parse_values(_text(params, "Parameters"), enabled=enable_parameter, names=names)
    _check_size(render(content, parameters, {}) if enable_parameter else content, keep_command)

    # 6. schedule
    frequency = parse_frequency(frequency_text, timeout=timeout) if frequency_text else None

    return RunCommandSpec(
        type=command_type,
        content=content,
        name=_text(params, "Name") or "",
        description=_text(params, "Description") or "",
        working_dir=_text(params, "WorkingDir"),
        username=_text(params, "Username"),
        windows_password_name=_text(params, "WindowsPasswordName"),
        timeout=timeout,
        enable_parameter=enable_parameter,
        parameters=parameters,
        parameter_names=names,
        repeat_mode=repeat_mode,
        frequency=frequency,
        keep_command=keep_command,
        instance_ids=instance_ids,
        resource_tags=resource_tags,
        tags=tags,
        container_id=_text(params, "ContainerId"),
        container_name=_text(params, "ContainerName"),
        client_token=_text(params, "ClientToken"),
        resource_group_id=_text(params, "ResourceGroupId"),
        launcher=_text(params, "Launcher"),
        termination_mode=termination_mode,
        oss_output_delivery=_text(params, "OssOutputDelivery"),  # format not checked
    )
