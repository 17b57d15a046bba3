"""Every exception orchestrator raises, in one tree.

    OrchestratorError
    ├── PlanError                  a plan breaks rules (carries `field` and `rule` of the
    │                              first, and every `Problem` found, all at once)
    ├── QuotaTooSmall              the account's quota cannot cover the run (checked before
    │                              any RunCommand)
    ├── CredentialsError           no usable credentials, or an unsupported profile mode
    ├── ApiError                   the ECS API answered with an error (code, message,
    │   │                          request_id, http_status, action)
    │   ├── Throttled              Throttling*: slow down, then retry
    │   ├── ServerError            5xx, InternalError*, ServiceUnavailable*: retry
    │   │   └── MalformedResponse  an answer that cannot be read (not JSON, not the API's
    │   │                          shape, too deep, too large): InvalidResponse or
    │   │                          ResponseTooLarge, retried like a server fault
    │   ├── IdempotentProcessing   the same ClientToken is still being processed: retry
    │   ├── AuthError              signature, access key, token or timestamp refused
    │   ├── QuotaExceeded          a daily or kept-command quota is used up
    │   ├── IdempotencyMismatch    same ClientToken, other parameters: a bug, halt
    │   ├── NotFound               404: a region, instance, invocation that does not exist
    │   ├── Forbidden              403 that is not a quota: an operation not permitted
    │   └── InvalidParameter       400 validation errors: the request is wrong
    ├── TransportError             no answer from the endpoint (reset, timeout, refused)
    ├── Withdrawn                  the caller withdrew a call before it was sent
    ├── TrackingAbandoned          tracking gave up: the API kept failing past the moment
    │                              every command must have ended, or refused the
    │                              credentials (carries the last error as `cause`)
    ├── JournalError               a run's journal cannot be used (missing, not a journal,
    │                              from a newer orchestrator, created twice, unwritable)
    ├── ConcurrentRun              another run of the same plan is live (its plan lock, or
    │   │                          its invocations in the region) or was left interrupted:
    │   │                          nothing was sent (carries the other run's id)
    │   └── PlanLocked             another live process holds the plan's lock in this state
    │                              dir (defined with the lock, in `orchestrator.journal`)
    └── RunLocked                  another live process holds the run (defined with the
                                   lock, in `orchestrator.journal`: it carries the holder)

`retryable` says whether sending the *same* request again may succeed. It is a fact
about the error, so it lives on the error; which code belongs to which branch is an API
fact and lives in `orchestrator.api`.

No exception text may hold a secret: credentials reach this module only as access key
IDs (which are not secret), never as secrets or tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


class OrchestratorError(Exception):
    """Root of every error orchestrator raises on purpose."""

    retryable: bool = False


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule of a plan, and where: `FILE:LINE: field.path: what is wrong (Code)`.

    `code` is the API's own error code when the API enforces the rule (CamelCase with
    dots: `CmdContent.ExceedLimit`), shown in parentheses; otherwise the short name of a
    plan rule (kebab-case: `unknown-key`), shown in brackets. `line` is 1-based; 0 means
    the problem has no place in the file. `column` (1-based) is given where the YAML
    itself is broken or a key is refused, as `FILE:LINE:COL:`; 0 for a rule about a
    value, which its line locates. A message never repeats a secret.
    """

    file: str
    line: int
    field: str
    message: str
    code: str
    column: int = 0

    @property
    def api(self) -> bool:
        """Whether `code` is an API error code (as opposed to a plan rule name)."""
        return self.code[:1].isupper()

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.line and self.column:
            where += f":{self.column}"
        what = f"{self.field}: {self.message}" if self.field else self.message
        if not self.code:
            return f"{where}: {what}"
        return f"{where}: {what} ({self.code})" if self.api else f"{where}: {what} [{self.code}]"


class PlanError(OrchestratorError, ValueError):
    """A plan breaks rules; `field` is the dotted path, `rule` the rule (or API code).

    A plan checked by `orchestrator.plan` carries every problem found in `problems` (in
    file order); `field` and `rule` are those of the first. The message is one line per
    problem.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str = "",
        rule: str = "",
        problems: Iterable[Problem] = (),
    ) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule
        self.problems: tuple[Problem, ...] = tuple(problems)

    @classmethod
    def of(cls, problems: Iterable[Problem]) -> PlanError:
        """The error for a non-empty list of problems."""
        found = tuple(problems)
        if not found:
            raise ValueError("PlanError.of needs at least one problem")
        return cls(
            "\n".join(str(p) for p in found),
            field=found[0].field,
            rule=found[0].code,
            problems=found,
        )


class QuotaTooSmall(OrchestratorError):
    """The run needs more of an account quota than the account has; nothing was sent."""

    def __init__(self, message: str, *, attribute: str, needed: int, available: int) -> None:
        super().__init__(message)
        self.attribute = attribute
        self.needed = needed
        self.available = available


class UsageError(OrchestratorError):
    """The command line lacks something it needs or contradicts itself (exit 2)."""


class CredentialsError(OrchestratorError):
    """No usable credentials were found, or a profile uses a mode we do not support."""


class ApiError(OrchestratorError):
    """The ECS API answered a request with an error body."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        request_id: str = "",
        http_status: int = 0,
        action: str = "",
    ) -> None:
        super().__init__(
            f"{action + ': ' if action else ''}{code}: {message}"
            f" (HTTP {http_status}, RequestId {request_id or '-'})"
        )
        self.code = code
        self.message = message
        self.request_id = request_id
        self.http_status = http_status
        self.action = action


class Throttled(ApiError):
    """The endpoint throttled the caller; the same request may be sent again later."""

    retryable = True


class ServerError(ApiError):
    """The endpoint failed on its side (5xx or an internal error code)."""

    retryable = True


class MalformedResponse(ServerError):
    """An answer that cannot be read as the API's: not JSON, not its shape, nested too
    deep, values out of range, or larger than the size cap.

    Retryable like any server fault: a proxy's garbage may be gone on the next attempt,
    and a RunCommand whose answer could not be read may have run, so it must be re-sent
    with its ClientToken, never taken for a refusal.
    """


class IdempotentProcessing(ApiError):
    """The same ClientToken is still being processed: ask again, it will answer."""

    retryable = True


class AuthError(ApiError):
    """The request's identity or signature was refused."""


class QuotaExceeded(ApiError):
    """An account quota (daily invocations, kept commands) is used up."""


class IdempotencyMismatch(ApiError):
    """A ClientToken was reused with other parameters: the caller has a bug."""


class NotFound(ApiError):
    """Something the request names does not exist."""


class Forbidden(ApiError):
    """The operation is not permitted (and is not a quota)."""


class InvalidParameter(ApiError):
    """The request breaks a parameter rule."""


class TransportError(OrchestratorError):
    """The endpoint could not be reached, or its answer was lost.

    A lost answer does not mean the request was not carried out: a RunCommand whose
    response was dropped may have run. Retry it only with the same ClientToken.
    """

    retryable = True


class Withdrawn(OrchestratorError):
    """A call was withdrawn before anything was sent (its `proceed` check said no, e.g. a
    gate breached while it waited for a rate-limit token). Nothing reached the endpoint."""


class JournalError(OrchestratorError):
    """A run's journal is missing, is not a journal, is newer than this code, or fails."""


class TrackingAbandoned(OrchestratorError):
    """Tracking gave up on the run's invocations: the API kept failing (throttling, 5xx,
    no answer) until no command could still be running, or refused the call outright
    (credentials revoked). The commands may have run: the run is interrupted, and a
    resume follows them by their InvokeIds. `cause` is the last error, whose kind picks
    the exit code."""

    def __init__(self, message: str, *, cause: OrchestratorError) -> None:
        super().__init__(message)
        self.cause = cause


class ConcurrentRun(OrchestratorError):
    """Starting (or resuming) this run could run the plan's script a second time on some
    instances: another run of the same plan is live, or was left interrupted. Nothing
    was sent. `other_run` is that run's id ("" when it could not be told)."""

    def __init__(self, message: str, *, other_run: str) -> None:
        super().__init__(message)
        self.other_run = other_run
