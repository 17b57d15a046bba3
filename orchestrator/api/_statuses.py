"""The status enums of the wire, and the per-instance error texts."""

from __future__ import annotations

import enum
from types import MappingProxyType
from typing import Final


class InstanceInvocationStatus(enum.StrEnum):
    """Per-instance `InvocationStatus` (both Describe calls)."""

    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    STOPPING = "Stopping"
    SUCCESS = "Success"
    FAILED = "Failed"
    INVALID = "Invalid"
    ABORTED = "Aborted"
    ERROR = "Error"
    TIMEOUT = "Timeout"
    CANCELLED = "Cancelled"
    TERMINATED = "Terminated"

    @property
    def terminal(self) -> bool:
        return self not in _ACTIVE


_ACTIVE: Final = frozenset(
    {
        InstanceInvocationStatus.PENDING,
        InstanceInvocationStatus.SCHEDULED,
        InstanceInvocationStatus.RUNNING,
        InstanceInvocationStatus.STOPPING,
    }
)


class InvocationStatus(enum.StrEnum):
    """Overall `InvocationStatus` of one invocation (DescribeInvocations)."""

    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    STOPPING = "Stopping"
    SUCCESS = "Success"
    FAILED = "Failed"
    PARTIAL_FAILED = "PartialFailed"
    STOPPED = "Stopped"


# Per-instance ErrorCode → ErrorInfo (DOC21 texts; pairing by list order, inferred).
INSTANCE_ERROR_INFO: Final = MappingProxyType(
    {
        "InstanceNotExists": "the specified instance does not exists",
        "InstanceReleased": "the instance has released when create task",
        "InstanceNotRunning": "the instance is not running when create task",
        "CommandNotApplicable": "the command is not applicable",
        "AccountNotExists": "the specified account does not exists",
        "DirectoryNotExists": "the specified directory does not exists",
        "BadCronExpression": "the cron job expression is invalid",
        "ClientNotRunning": "the aliyun service is not running on the instance",
        "ClientNotResponse": "the aliyun service in the instance does not response",
        "ClientIsUpgrading": "the aliyun service in the instance is upgrading now",
        "ClientNeedUpgrade": "the aliyun service in the instance need upgrade",
        "DeliveryTimeout": "the command delivery has been timeout",
        "ExecutionTimeout": "the command execution has been timeout",
        "ExecutionException": "the command execution got an exception",
        "ExecutionInterrupted": "the command execution has been interrupted",
        "ExitCodeNonzero": "the command execution exit code is not zero.",
        "SecurityGroupRuleDenied": "The security group rules denied access to the aliyun service.",
    }
)


# --- added with the ECS client: the remaining wire enums --------------------------


class InstanceStatus(enum.StrEnum):
    """`Status` of an instance (DescribeInstances); same values as INSTANCE_STATUSES."""

    PENDING = "Pending"
    RUNNING = "Running"
    STARTING = "Starting"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


class InvokeRecordStatus(enum.StrEnum):
    """`InvokeRecordStatus` of one record (DescribeInvocationResults, SDK71/SDK)."""

    RUNNING = "Running"
    FINISHED = "Finished"
    SUCCESS = "Success"
    FAILED = "Failed"
    PARTIAL_FAILED = "PartialFailed"
    STOPPED = "Stopped"
    STOPPING = "Stopping"
