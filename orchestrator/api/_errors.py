"""Every error code the services answer with, its HTTP status, message and kind."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


class ErrorKind(enum.Enum):
    """How a caller should treat an error code; one branch of `orchestrator.errors`."""

    THROTTLED = "throttled"
    SERVER = "server"
    IN_PROGRESS = "in_progress"
    AUTH = "auth"
    QUOTA = "quota"
    IDEMPOTENCY_MISMATCH = "idempotency_mismatch"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    INVALID = "invalid"

    @property
    def retryable(self) -> bool:
        return self in {ErrorKind.THROTTLED, ErrorKind.SERVER, ErrorKind.IN_PROGRESS}


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One API error code as the real service answers it."""

    code: str
    http_status: int
    message: str
    kind: ErrorKind


def _kind_for(code: str, status: int) -> ErrorKind:
    explicit = {
        "Invocation.ExceedQuota": ErrorKind.QUOTA,
        "CmdCount.ExceedQuota": ErrorKind.QUOTA,
        "IdempotentParameterMismatch": ErrorKind.IDEMPOTENCY_MISMATCH,
        "IdempotentProcessing": ErrorKind.IN_PROGRESS,
        "UnknownError": ErrorKind.SERVER,  # CORE retries it; it is the service's fault
    }
    if code in explicit:
        return explicit[code]
    if code.startswith("Throttling"):
        return ErrorKind.THROTTLED
    if status >= 500 or code.startswith(("InternalError", "ServiceUnavailable")):  # noqa: PLR2004
        return ErrorKind.SERVER
    if code in _AUTH_CODES or code.startswith(("InvalidSecurityToken", "Forbidden.")):
        return ErrorKind.AUTH
    if status == 404:  # noqa: PLR2004
        return ErrorKind.NOT_FOUND
    if status == 403:  # noqa: PLR2004
        return ErrorKind.FORBIDDEN
    return ErrorKind.INVALID


_AUTH_CODES: Final = frozenset(
    {
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "InvalidTimeStamp.Expired",
        "InvalidTimeStamp.Format",
        "IllegalTimestamp",
        "SignatureNonceUsed",
        "MissingSignature",
        "MissingTimestamp",
        "MissingAccessKeyId",
        "MissingSignatureNonce",
        "InvalidSignatureMethod",
        "TemporaryAccessKey.Error",
    }
)

# (code, HTTP status, message). Messages are the services' own English texts.
_TABLE: Final[tuple[tuple[str, int, str], ...]] = (
    # --- common: auth, throttling, service (ECSERR, GH issues quoting real replies) ---
    ("SignatureDoesNotMatch", 400, "Specified signature is not matched with our calculation."),
    (
        "IncompleteSignature",
        400,
        "The request signature does not conform to Alibaba Cloud standards.",
    ),
    ("InvalidAccessKeyId.NotFound", 404, "Specified access key is not found."),
    ("InvalidAccessKeyId.Inactive", 400, "Specified access key is disabled."),
    ("InvalidTimeStamp.Expired", 400, "Specified time stamp or date value is expired."),
    # (unconfirmed) the gateway's code for a malformed Timestamp / x-acs-date.
    ("InvalidTimeStamp.Format", 400, "Specified time stamp or date value is not well formatted."),
    (
        "IllegalTimestamp",
        400,
        (
            'The input parameter "Timestamp" that is mandatory for processing this request is '
            "not supplied."
        ),
    ),
    ("SignatureNonceUsed", 400, "Specified signature nonce was used already."),
    ("MissingSignature", 400, "Signature is mandatory for this action."),
    ("MissingTimestamp", 400, "Timestamp is mandatory for this action."),
    ("MissingAccessKeyId", 400, "AccessKeyId is mandatory for this action."),
    ("MissingSignatureNonce", 400, "SignatureNonce is mandatory for this action."),
    ("InvalidSignatureMethod", 400, "Specified signature method is not supported."),
    ("InvalidSecurityToken.Expired", 400, "Specified SecurityToken is expired."),
    ("InvalidSecurityToken.Malformed", 400, "Specified SecurityToken is malformed."),
    (
        "InvalidSecurityToken.MismatchWithAccessKey",
        400,
        "Specified SecurityToken mismatch with the AccessKey.",
    ),
    ("MissingSecurityToken", 400, "SecurityToken is mandatory for this action."),
    ("Forbidden.AccessKeyDisabled", 403, "The AccessKey is disabled."),
    (
        "Forbidden.RAM",
        403,
        (
            "User not authorized to operate on the specified resource, or this API doesn't "
            "support RAM."
        ),
    ),
    (
        "InvalidAction.NotFound",
        404,
        "Specified api is not found, please check your url and method.",
    ),
    (
        "MissingParameter",
        400,
        ("The input parameter that is mandatory for processing this request is not supplied."),
    ),
    ("InvalidVersion", 400, "Specified parameter Version is not valid."),
    (
        "Throttling",
        400,
        (
            "You have made too many requests within a short time; your request "
            "is denied due to request throttling."
        ),
    ),
    ("Throttling.User", 400, "Request was denied due to user flow control."),
    ("Throttling.Api", 400, "Request was denied due to api flow control."),
    ("UnknownError", 400, "The request processing has failed due to some unknown error."),
    ("OperationConflict", 409, "Request was denied due to conflict with a previous request."),
    (
        "InternalError",
        500,
        ("The request processing has failed due to some unknown error, exception or failure."),
    ),
    ("ServiceUnavailable", 503, "The request has failed due to a temporary failure of the server."),
    # --- RunCommand (SEED 2024 list, statuses as there) ---
    ("RegionId.ApiNotSupported", 400, "The api is not supported in this region."),
    ("MissingParam.InstanceId", 400, "The parameter instanceId is missing or empty."),
    ("NumberExceed.Tags", 400, "Ensure the number of tag parameters is not greater than 20."),
    ("InvalidTagValue.Malformed", 400, "The specified Tag.n.Value is not valid."),
    ("Duplicate.TagKey", 400, "The Tag.N.Key contain duplicate key."),
    ("InvalidTagKey.Malformed", 400, "The specified Tag.n.Key is not valid."),
    ("MissingParameter.TagKey", 400, "You must specify Tag.N.Key."),
    ("InvalidContainerId.Malformed", 400, "The specified parameter ContainerId is not valid."),
    ("InvalidContainerName.Malformed", 400, "The specified parameter ContainerName is not valid."),
    ("InvalidClientToken.Malformed", 400, "The specified parameter clientToken is not valid."),
    ("CmdParam.EmptyKey", 400, "Command parameters can not be empty."),
    ("CmdParam.InvalidParamName", 400, "A command parameter name is invalid."),
    ("CmdContent.DecodeError", 400, "The CommandContent can not be base64 decoded."),
    ("InvalidInstance.NotMatch", 400, "The specified instance type does not match the command."),
    (
        "MissingParam.Frequency",
        400,
        "The frequency must be specified when you create a timed task.",
    ),
    ("InvalidParam.Frequency", 400, "The specified frequency is invalid."),
    ("ParameterKey.Duplicate", 400, "The parameter may not contain duplicate keys."),
    ("Parameter.NotMatched", 400, "The parameters of creation do not match those of invocation."),
    (
        "WindowsPasswordName.Missed",
        400,
        "WindowsPasswordName must be specified when you create a Windows task.",
    ),
    (
        "Parameter.Disabled",
        400,
        "Parameters should not be passed when CreateCommand.EnableParameter is false.",
    ),
    ("InvalidParameter.WorkingDir", 400, "The specified parameter WorkingDir is not valid."),
    ("NumberExceed.ResourceTags", 400, "The maximum number of ResourceTags is exceeded."),
    ("MissingParameter.ResourceTagKey", 400, "You must specify ResourceTag.N.Key."),
    ("InvalidResourceTagKey.Malformed", 400, "The specified ResourceTag key is not valid."),
    ("InvalidResourceTagValue.Malformed", 400, "The specified ResourceTag value is not valid."),
    ("Duplicate.ResourceTagKey", 400, "The ResourceTag contains duplicate keys."),
    (
        "InvalidResourceTag.InstanceNotFound",
        400,
        "InstanceIds are not found by the specified ResourceTag.",
    ),
    (
        "InvalidResourceTag.ConflictWithInstanceIds",
        400,
        "The specified param ResourceTag conflicts with InstanceId.",
    ),
    ("CmdContent.ExceedLimit", 403, "The length of the command content exceeds the upper limit."),
    ("CmdName.ExceedLimit", 403, "The length of the command name exceeds the upper limit."),
    ("CmdDesc.ExceedLimit", 403, "The length of the command description exceeds the upper limit."),
    (
        "CmdCount.ExceedQuota",
        403,
        "The total number of commands in the current region exceeds the quota.",
    ),
    (
        "CmdParamCount.ExceedLimit",
        403,
        "You've reached the limit on the count of command parameters.",
    ),
    (
        "CmdParamName.ExceedLimit",
        403,
        "The length of the command parameter name exceeds the limit.",
    ),
    ("InstanceIds.ExceedLimit", 403, "The number of instance IDs exceeds the upper limit."),
    (
        "Invocation.ExceedQuota",
        403,
        "The invocation quota in the current region has been reached for today.",
    ),
    (
        "ParameterCount.ExceedLimit",
        403,
        "The number of command parameters exceeds the maximum number that can be set.",
    ),
    (
        "ParameterKey.ExceedLimit",
        403,
        ("The length of the specified parameter key exceeds the maximum length that can be set."),
    ),
    ("ParameterType.NotSupported", 403, "The type of parameter value is not supported."),
    ("Username.ExceedLimit", 403, "The length of the username exceeds the upper limit."),
    (
        "WindowsPasswordName.ExceedLimit",
        403,
        "The length of the WindowsPasswordName exceeds the upper limit.",
    ),
    ("ParameterStore.NotSupported", 403, "Parameter Store is not supported in this region."),
    ("TemporaryAccessKey.Error", 403, "The temporary accessKey is invalid."),
    ("ParameterStore.InvalidParameters", 403, "The parameter is invalid in Parameter Store."),
    ("ParameterStore.NoPermission", 403, "You have no access to Parameter Store."),
    ("OperationDenied.BidOwnResource", 403, "Bid user can not own resource."),
    ("Operation.Forbidden", 403, "The operation is not permitted."),
    (
        "IdempotentParameterMismatch",
        403,
        "The specified parameter has changed while using an already used clientToken.",
    ),
    ("IdempotentProcessing", 403, "The previous idempotent request(s) is still processing."),
    (
        "InvalidStatus.ResourceGroup",
        403,
        ("You cannot perform an operation on a resource group that is being created or deleted."),
    ),
    ("InvalidCmdType.NotFound", 404, "The specified command type does not exist."),
    ("InvalidRepeatMode.NotFound", 404, "The specified repeat mode does not exist."),
    ("InvalidRegionId.NotFound", 404, "The RegionId provided does not exist in our records."),
    ("InvalidInstance.NotFound", 404, "The specified instance does not exist."),
    ("InvalidCmdId.NotFound", 404, "The specified command ID does not exist."),
    (
        "InvalidResourceGroup.NotFound",
        404,
        "The ResourceGroup provided does not exist in our records.",
    ),
    ("InternalError.Dispatch", 500, "An error occurred when you dispatched the request."),
    # RepeatMode=DryRun / DryRun=true that passed every check (ECS-wide code and text).
    ("DryRunOperation", 400, "Request validation has been passed with DryRun flag set."),
    # The gateway's answer to a value of the wrong type or outside its enumeration; the
    # real text names the parameter ("The specified parameter \"Timeout\" is not valid.").
    ("InvalidParameter", 400, "The specified parameter is not valid."),
    # --- Describe* paging, StopInvocation (DOC) ---
    ("MissingParameter.RegionId", 400, "The input parameter RegionId is not supplied."),
    ("InvalidParam.PageSize", 400, "The specified parameter PageSize is not valid."),
    ("InvalidParam.PageNumber", 400, "The specified parameter PageNumber is not valid."),
    ("InvalidParameter.NextToken", 400, "The specified parameter NextToken is not valid."),
    ("InvalidParameter.MaxResults", 400, "The specified parameter MaxResults is not valid."),
    ("InvalidStatus.NotFound", 404, "The specified Status is not valid."),
    (
        "InvalidParameter.InstanceIds",
        400,
        "The specified parameter InstanceIds is not valid.",
    ),  # (unconfirmed)
    ("InvalidTagCount", 400, "The specified tags are beyond the permitted range."),
    ("InvalidInvokeId.NotFound", 404, "The specified invoke ID does not exist."),
    ("InvalidInstanceId.NotFound", 404, "The specified instance ID does not exist."),
    (
        "InvalidParameter.IncludeOutput",
        400,  # (unconfirmed) IncludeOutput needs an ID
        "IncludeOutput requires InvokeId or InstanceId.",
    ),
    (
        "InvalidParameter.ContentEncoding",
        400,
        "The specified parameter ContentEncoding is not valid.",
    ),
    (
        "InvalidAttributeName.NotFound",
        404,  # (unconfirmed) no per-call list found
        "The specified AttributeName does not exist.",
    ),
)

ERRORS: Final = MappingProxyType(
    {
        code: ErrorSpec(code, status, message, _kind_for(code, status))
        for code, status, message in _TABLE
    }
)


def spec_for(code: str) -> ErrorSpec:
    """The known spec of `code`, raising KeyError for a code not in the table."""
    return ERRORS[code]


def kind_of(code: str, http_status: int) -> ErrorKind:
    """Class an error reply, known code or not, by its code and HTTP status."""
    spec = ERRORS.get(code)
    return spec.kind if spec is not None else _kind_for(code, http_status)
