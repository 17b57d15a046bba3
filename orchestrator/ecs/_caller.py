"""One call, and one chain of NextToken pages, of any action: the client's plumbing.

`Caller` adds RegionId, makes every attempt through `Attempts` (signed afresh each time,
under the rate limiter) inside the retry policy, and decodes the answer; a document
that does not follow the schema is a `MalformedResponse` naming the action. `EcsClient`
and the calls kept in modules of their own (`_listing.py`) are built on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, get_args

from orchestrator.ecs._http import Answer, one_line
from orchestrator.ecs._retry import RetryHook, RetryPolicy, retry_call
from orchestrator.errors import MalformedResponse, Withdrawn

if TYPE_CHECKING:
    import random
    from collections.abc import AsyncIterator, Callable, Mapping

    from orchestrator.clock import Clock
    from orchestrator.ecs._attempt import Attempts
    from orchestrator.ecs._responses import Page

T = TypeVar("T")

# Every action this client can call, and so every permission a run needs: the RAM policy
# of docs/ram-policy.json grants exactly these (a test compares), so a new call cannot
# land without the policy that allows it.
Action = Literal[
    "DescribeAccountAttributes",
    "DescribeCloudAssistantStatus",
    "DescribeInstances",
    "DescribeInvocationResults",
    "DescribeInvocations",
    "DescribeZones",
    "RunCommand",
    "StopInvocation",
]
ACTIONS: Final = frozenset(get_args(Action))


def request_id_of(answer: Answer) -> str:
    """The answer's RequestId when it is a string (anything else is not shown)."""
    value = answer.document.get("RequestId")
    return one_line(value) if isinstance(value, str) else ""


class Caller:
    """Calls of one region through `attempts`, retried with `policy` unless told otherwise."""

    def __init__(
        self,
        attempts: Attempts,
        *,
        region_id: str,
        policy: RetryPolicy,
        clock: Clock,
        rng: random.Random,
        on_retry: RetryHook | None,
    ) -> None:
        self._attempts = attempts
        self._region_id = region_id
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self._on_retry = on_retry

    @property
    def policy(self) -> RetryPolicy:
        """The client's own retry policy, for the calls that take no other."""
        return self._policy

    async def call(
        self,
        action: Action,
        params: Mapping[str, str],
        *,
        policy: RetryPolicy | None = None,
        proceed: Callable[[], bool] | None = None,
    ) -> Answer:
        """One call of `action`; `proceed` is asked once, just before the first attempt."""
        full = {**params, "RegionId": self._region_id}
        sent = False

        def may_send() -> None:
            nonlocal sent
            if not sent and proceed is not None and not proceed():
                raise Withdrawn(f"{action} withdrawn before it was sent")
            sent = True

        return await retry_call(
            lambda: self._attempts.attempt(action, full, may_send=may_send),
            policy=policy or self._policy,
            clock=self._clock,
            rng=self._rng,
            action=action,
            on_retry=self._on_retry,
        )

    async def pages(
        self,
        action: Action,
        params: Callable[[str | None], dict[str, str]],
        decode: Callable[[Mapping[str, Any]], Page[T]],
        *,
        policy: RetryPolicy | None = None,
        after: str | None = None,
    ) -> AsyncIterator[T]:
        """The items of every page, following NextToken to the end; `after` resumes a
        chain whose pages up to that token the caller has already read."""
        token = after
        seen: set[str] = {after} if after else set()
        while True:
            answer = await self.call(action, params(token), policy=policy)
            page = self.decode(action, answer, decode)
            for item in page.items:
                yield item
            if not page.next_token:
                return
            if page.next_token in seen:
                # A token the server already gave would loop forever.
                raise MalformedResponse(
                    "InvalidResponse",
                    "NextToken repeats an earlier page",
                    request_id=request_id_of(answer),
                    http_status=answer.status,
                    action=action,
                )
            seen.add(page.next_token)
            token = page.next_token

    @staticmethod
    def decode(action: Action, answer: Answer, decode: Callable[[Mapping[str, Any]], T]) -> T:
        """`decode(answer.document)`, any schema error turned into a `MalformedResponse`."""
        try:
            return decode(answer.document)
        except (
            AttributeError,
            KeyError,
            TypeError,
            ValueError,  # UnicodeError and binascii.Error (bad Base64) among them
            OverflowError,  # a time past year 9999 once in UTC
            RecursionError,  # str() of a value nested nearly as deep as json.loads allows
        ) as exc:
            raise MalformedResponse(
                "InvalidResponse",
                f"the response does not follow the schema: {one_line(str(exc))}",
                request_id=request_id_of(answer),
                http_status=answer.status,
                action=action,
            ) from exc
