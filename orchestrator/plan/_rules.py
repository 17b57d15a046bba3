"""Every rule RunCommand enforces on a command, checked on the plan before any call.

A client-side reading of the API's rules (SEED = the 2024 RunCommand page, table at its
end; limits from `orchestrator.api`), each problem carrying the code the service
would answer with, so `orchestrator validate` fails in milliseconds with the same words
the API would use. Checked here: Type, RepeatMode and Frequency, Timeout, the lengths of
Name, Description, WorkingDir, Username, WindowsPasswordName and Launcher, the Windows
password rule, container ID and name forms and the container restrictions, the command
tags (with the one orchestrator adds), the `{{ }}` grammar and `parameters`
(`_rules_params`), and the content size after Base64 and after substitution. Whether
an instance's OS matches the script type needs the instances: the targets step checks it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from orchestrator import api
from orchestrator.plan import _rules_params as params
from orchestrator.plan._findings import shown
from orchestrator.plan._rules_frequency import CODE as FREQUENCY_CODE
from orchestrator.plan._rules_frequency import frequency_problem
from orchestrator.plan._yaml import join

if TYPE_CHECKING:
    from orchestrator.plan._findings import Findings
    from orchestrator.plan._model import Command

# orchestrator tags every RunCommand with the run's ID and the plan's name and digest
# (`rollout._tags`: the same keys), so a plan has three tags less.
RUN_TAG: Final = "orchestrator-run"
PLAN_TAGS: Final = ("orchestrator-plan", "orchestrator-plan-sha256")
RESERVED_TAGS: Final = (RUN_TAG, *PLAN_TAGS)
USER_TAGS_MAX: Final = api.TAGS_MAX - len(RESERVED_TAGS)
TERMINATION_MODES: Final = ("Process", "ProcessTree")
LAUNCHER_MAX_BYTES: Final = 1024  # SDK: "cannot exceed 1 KB"
TIMEOUT_MAX: Final = 2**63 - 1  # Timeout is a `long`
_CONTAINER_ID: Final = re.compile(r"(?:docker://|containerd://|cri-o://)?[0-9a-fA-F]{64}")
# (unconfirmed) the service documents only the error; Docker's own name rule, ≤ 255.
_CONTAINER_NAME: Final = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}")


@dataclass(frozen=True, slots=True)
class Where:
    """The plan fields a command's values came from (a default name comes from `name`)."""

    command: str = "command"
    name: str = "command.name"
    description: str = "command.description"
    content: str = "command.content"

    def of(self, key: str) -> str:
        """The path of a `command:` key."""
        return join(self.command, key)


def check_command(command: Command, findings: Findings, where: Where | None = None) -> None:
    """Record every RunCommand rule `command` breaks."""
    where = where or Where()
    _check_enumerations(command, findings, where)
    _check_lengths(command, findings, where)
    _check_container(command, findings, where)
    _check_tags(command, findings, where)
    _check_content(command, findings, where)


def _check_enumerations(command: Command, findings: Findings, where: Where) -> None:
    if command.type not in api.COMMAND_TYPES:
        findings.add(
            where.of("type"),
            f"{shown(command.type)} is not one of {', '.join(api.COMMAND_TYPES)}",
            "InvalidCmdType.NotFound",
        )
    if command.repeat_mode not in api.REPEAT_MODES:
        findings.add(
            where.of("repeat_mode"),
            f"{shown(command.repeat_mode)} is not one of {', '.join(api.REPEAT_MODES)}",
            "InvalidRepeatMode.NotFound",
        )
    elif command.repeat_mode == "Period" and command.frequency is None:
        findings.add(where.of("repeat_mode"), "Period needs a frequency", "MissingParam.Frequency")
    elif command.frequency is not None and command.repeat_mode not in {"Period", "DryRun"}:
        # The API would silently run it as Period: say so instead of surprising anyone.
        findings.add(
            where.of("repeat_mode"),
            f"a frequency makes the command periodic; {command.repeat_mode} would be "
            "ignored (use Period, or drop the frequency)",
            "frequency-needs-period",
        )
    if command.timeout < 0 or command.timeout > TIMEOUT_MAX:
        findings.add(
            where.of("timeout"), "must be a non-negative number of seconds", "InvalidParameter"
        )
    if command.frequency is not None:
        problem = frequency_problem(command.frequency, max(command.timeout, 0))
        if problem is not None:
            findings.add(where.of("frequency"), problem, FREQUENCY_CODE)
    if command.termination_mode is not None and command.termination_mode not in TERMINATION_MODES:
        findings.add(
            where.of("termination_mode"),
            f"{shown(command.termination_mode)} is not one of {', '.join(TERMINATION_MODES)}",
            "InvalidParameter",  # (unconfirmed) no documented code: the gateway's
        )


def _check_lengths(command: Command, findings: Findings, where: Where) -> None:
    # (field, value, limit, code); Launcher is measured in bytes, the rest in characters.
    limits = (
        (where.name, command.name, api.NAME_MAX, "CmdName.ExceedLimit"),
        (where.description, command.description, api.DESCRIPTION_MAX, "CmdDesc.ExceedLimit"),
        (
            where.of("working_dir"),
            command.working_dir,
            api.WORKING_DIR_MAX,
            "InvalidParameter.WorkingDir",
        ),
        (where.of("username"), command.username, api.USERNAME_MAX, "Username.ExceedLimit"),
        (
            where.of("windows_password_name"),
            command.windows_password_name,
            api.WINDOWS_PASSWORD_NAME_MAX,
            "WindowsPasswordName.ExceedLimit",
        ),
    )
    for field, value, limit, code in limits:
        if value is not None and len(value) > limit:
            findings.add(field, f"is {len(value)} characters long; at most {limit}", code)
    launcher = command.launcher.encode() if command.launcher is not None else b""
    if len(launcher) > LAUNCHER_MAX_BYTES:
        findings.add(
            where.of("launcher"),
            f"is {len(launcher)} bytes long; at most {LAUNCHER_MAX_BYTES}",
            "InvalidParameter",  # (unconfirmed) no documented code: the gateway's
        )
    # (unconfirmed) our reading of SEED: a Windows script run as anyone but System needs
    # the name of that user's password in the parameter store.
    if (
        command.type in api.WINDOWS_COMMAND_TYPES
        and command.username is not None
        and command.username.lower() != "system"
        and not command.windows_password_name
    ):
        findings.add(
            where.of("windows_password_name"),
            f"is required to run a Windows script as {shown(command.username)} (not System)",
            "WindowsPasswordName.Missed",
        )


def _check_container(command: Command, findings: Findings, where: Where) -> None:
    if command.container_id is not None and not _CONTAINER_ID.fullmatch(command.container_id):
        findings.add(
            where.of("container_id"),
            "must be 64 hexadecimal characters, optionally after docker://, containerd:// "
            "or cri-o://",
            "InvalidContainerId.Malformed",
        )
    if command.container_name is not None and not _CONTAINER_NAME.fullmatch(command.container_name):
        findings.add(
            where.of("container_name"),
            "must start with a letter or digit and use only letters, digits, _ . and - "
            "(at most 255)",
            "InvalidContainerName.Malformed",
        )
    if command.container_id is None and command.container_name is None:
        return
    field = where.of("container_id" if command.container_id is not None else "container_name")
    if command.type != "RunShellScript":
        # (unconfirmed) containers run on Linux agents only: no instance can match, the
        # same answer as a script type that does not fit the instance.
        findings.add(field, "a container runs only RunShellScript", "InvalidInstance.NotMatch")
    if command.content.startswith("#!"):
        # (unconfirmed) SEED: an interpreter line is "not supported" in a container.
        findings.add(
            where.content,
            "a script run in a container may not start with a #! interpreter line",
            "Operation.Forbidden",
        )


def _has_url(text: str) -> bool:
    return "http://" in text.lower() or "https://" in text.lower()


def _check_tags(command: Command, findings: Findings, where: Where) -> None:
    field = where.of("tags")
    if len(command.tags) > USER_TAGS_MAX:
        findings.add(
            field,
            f"has {len(command.tags)} tags; at most {USER_TAGS_MAX} "
            f"(the API allows {api.TAGS_MAX}, and orchestrator adds {', '.join(RESERVED_TAGS)})",
            "NumberExceed.Tags",
        )
    for key, value in command.tags.items():
        at = join(field, key)
        if not key:
            findings.add(at, "a tag key may not be empty", "MissingParameter.TagKey")
        elif key in RESERVED_TAGS:
            findings.add(at, f"{key} is the tag orchestrator adds itself", "Duplicate.TagKey")
        elif (
            len(key) > api.TAG_KEY_MAX
            or key.lower().startswith(("aliyun", "acs:"))
            or _has_url(key)
        ):
            findings.add(
                at,
                f"a tag key has at most {api.TAG_KEY_MAX} characters, may not start with "
                "aliyun or acs: and may not hold http:// or https://",
                "InvalidTagKey.Malformed",
            )
        if len(value) > api.TAG_VALUE_MAX or _has_url(value):
            findings.add(
                at,
                f"a tag value has at most {api.TAG_VALUE_MAX} characters and may not hold "
                "http:// or https://",
                "InvalidTagValue.Malformed",
            )


def _base64_size(text: str) -> int:
    return len(base64.b64encode(text.encode()))


def _check_content(command: Command, findings: Findings, where: Where) -> None:
    parameters_field = where.of("parameters")
    enabled = command.parameters_enabled
    if command.parameters and command.enable_parameter is False:
        findings.add(
            parameters_field,
            "are given, but enable_parameter is false",
            "Parameter.Disabled",
        )
    elif enabled:
        names = params.custom_names(command.content, findings, where.content)
        params.check_values(command.parameters, names, findings, parameters_field)
    # SEED: the Base64 size, of the content and of the content with the parameters put
    # in, ≤ 18 KB with KeepCommand, 24 KB without (KB = 1024 bytes).
    limit = api.CONTENT_MAX_BYTES_KEPT if command.keep_command else api.CONTENT_MAX_BYTES
    size = _base64_size(command.content)
    if enabled:
        size = max(size, _base64_size(params.render(command.content, command.parameters)))
    if size > limit:
        kept = "with keep_command" if command.keep_command else "without keep_command"
        findings.add(
            where.content,
            f"is {size} bytes after Base64 (and parameters); at most {limit} {kept}",
            "CmdContent.ExceedLimit",
        )
