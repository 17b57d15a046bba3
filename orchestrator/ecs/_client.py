"""The ECS Cloud Assistant client: one typed async method per API action.

`EcsClient` composes the pure parts (models, signing, retry) with the one module that
talks HTTP. Each call adds RegionId, signs afresh on every attempt (new nonce and
timestamp from the wall clock, nonce from the nonce factory) and sends the identical
parameters, so retries are safe where the service deduplicates: Describe* and
StopInvocation always go through the retry policy, RunCommand only when it carries a
ClientToken; DescribeInstances, DescribeCloudAssistantStatus and DescribeAccountAttributes
take another policy for one call when the caller asks (`retry=`: the targets step and the
quota check are patient with throttling). Paged calls are async iterators that follow
NextToken to the end and split ID lists into the largest chunks the API accepts;
DescribeCloudAssistantStatus asks its chunks concurrently, under the rate limiter.
"""

from __future__ import annotations

import functools
import random
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from orchestrator import api
from orchestrator.clock import Clock, SystemClock
from orchestrator.ecs._attempt import Attempts
from orchestrator.ecs._caller import Caller
from orchestrator.ecs._concurrently import gather_in_order
from orchestrator.ecs._credentials import Credentials
from orchestrator.ecs._http import DEFAULT_MAX_ANSWER_BYTES, HttpSender, Session
from orchestrator.ecs._listing import (
    InstancesPage,
    Zone,
    count_instances,
    describe_zones,
    first_instances_page,
)
from orchestrator.ecs._providers import CredentialsProvider, StaticProvider
from orchestrator.ecs._requests import (
    RunCommandRequest,
    encode_describe_account_attributes,
    encode_describe_cloud_assistant_status,
    encode_describe_instances,
    encode_describe_invocation_results,
    encode_describe_invocations,
    encode_run_command,
    encode_stop_invocation,
    tag_list,
)
from orchestrator.ecs._responses import (
    AccountAttributes,
    CloudAssistantStatus,
    Instance,
    Invocation,
    InvocationResult,
    Page,
    RecordNeeded,
    RunCommandResult,
    decode_account_attributes,
    decode_cloud_assistant_status_page,
    decode_instances_page,
    decode_invocation_results_page,
    decode_invocations_page,
    decode_run_command,
)
from orchestrator.ecs._retry import RetryHook, RetryPolicy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence

    from orchestrator.ecs._ratelimit import RateLimiter

DEFAULT_RETRY: Final = RetryPolicy()
_SYSTEM_CLOCK: Final = SystemClock()
# DescribeCloudAssistantStatus takes 100 InstanceId.N (api.ASSISTANT_STATUS_MAX_IDS, DOC
# 2024-12); the older documented limit was 50 (DOC21), which every endpoint takes, so an
# older endpoint is served with `EcsClient(assistant_status_ids=50)`.

# Status calls in the air at once. The rate limiter paces them; this only lets their round
# trips overlap (the targets step is bound by the Describe rate, not by the latency).
STATUS_CALLS_AT_ONCE: Final = 8


def endpoint_for_region(region_id: str) -> str:
    """The public ECS endpoint of `region_id`."""
    return f"https://ecs.{region_id}.aliyuncs.com"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _uuid_hex() -> str:
    return uuid.uuid4().hex


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    """`items` in order, `size` at a time; a bare string is refused, not split into letters."""
    if isinstance(items, str):
        raise TypeError("expected a sequence of IDs, got a single string")
    ids = list(items)
    return [ids[start : start + size] for start in range(0, len(ids), size)]


class EcsClient:
    """Typed access to the Cloud Assistant calls of one region at one endpoint.

    The session, clock, nonce factory and random source are injected: tests point the
    client at the simulator on 127.0.0.1 and drive retries on a hand-advanced clock.
    `on_retry` is told about every retry (the run path counts throttles with it).
    `rate_limiter`, when given, is asked before EVERY attempt of every call (retries
    included) and told which attempts were throttled and which were answered.
    `credentials` are fixed keys or a provider (`_providers.py`) asked before every
    attempt, which renews temporary credentials ahead of their expiry.
    `assistant_status_ids`: InstanceId.N per DescribeCloudAssistantStatus (50 for an
    endpoint that still has the older limit).
    """

    def __init__(
        self,
        endpoint: str,
        session: Session,
        credentials: Credentials | CredentialsProvider,
        *,
        region_id: str,
        clock: Clock = _SYSTEM_CLOCK,
        signature_version: Literal["v1", "v3"] = "v3",
        retry: RetryPolicy = DEFAULT_RETRY,
        nonce_factory: Callable[[], str] = _uuid_hex,
        rng: random.Random | None = None,
        request_timeout: float | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        on_retry: RetryHook | None = None,
        wall_clock: Callable[[], datetime] = _utc_now,
        rate_limiter: RateLimiter | None = None,
        assistant_status_ids: int = api.ASSISTANT_STATUS_MAX_IDS,
    ) -> None:
        if not 1 <= assistant_status_ids <= api.ASSISTANT_STATUS_MAX_IDS:
            raise ValueError(
                "assistant_status_ids must be between 1 and "
                f"{api.ASSISTANT_STATUS_MAX_IDS}, not {assistant_status_ids}"
            )
        if signature_version not in {"v1", "v3"}:
            raise ValueError(f"signature_version must be 'v1' or 'v3', not {signature_version!r}")
        if not region_id:
            raise ValueError("region_id is required: every ECS call sends RegionId")
        self._http = HttpSender(
            session, endpoint, request_timeout=request_timeout, max_answer_bytes=max_answer_bytes
        )
        provider: CredentialsProvider = (
            StaticProvider(credentials) if isinstance(credentials, Credentials) else credentials
        )
        self.region_id = region_id
        self._signature_version = signature_version
        self._retry = retry
        self._rate_limiter = rate_limiter
        self._assistant_status_ids = assistant_status_ids
        self._attempts = Attempts(
            self._http,
            provider,
            signature_version=signature_version,
            nonce_factory=nonce_factory,
            wall_clock=wall_clock,
            rate_limiter=rate_limiter,
        )
        self._caller = Caller(
            self._attempts,
            region_id=region_id,
            policy=retry,
            clock=clock,
            # Jitter only needs to be unpredictable across clients, not secure.
            rng=rng if rng is not None else random.Random(),  # noqa: S311
            on_retry=on_retry,
        )

    @property
    def endpoint(self) -> str:
        """`scheme://host[:port]` of the endpoint."""
        return self._http.endpoint

    @property
    def assistant_status_ids(self) -> int:
        """InstanceId.N per DescribeCloudAssistantStatus call (100, or 50 for an older endpoint)."""
        return self._assistant_status_ids

    @property
    def rate_limiter(self) -> RateLimiter | None:
        """The limiter every call goes through, if any (its counts feed progress and reports)."""
        return self._rate_limiter

    def __repr__(self) -> str:
        return (
            f"EcsClient(endpoint={self.endpoint!r}, region_id={self.region_id!r}, "
            f"credentials={self._attempts.provider.description!r}, "
            f"signature_version={self._signature_version!r})"
        )

    # --- the calls ------------------------------------------------------------------------

    async def run_command(
        self, req: RunCommandRequest, *, proceed: Callable[[], bool] | None = None
    ) -> RunCommandResult:
        """Run `req` on its instances: RunCommand.

        Retried with the client's policy ONLY when `req.client_token` is set. Without a
        token a retry after a lost answer could run the script a second time, so such a
        request is sent exactly once and any error goes straight to the caller. With a
        token every attempt sends the same token and parameters, and the service answers
        a repeat with the first invocation (or IdempotentProcessing, which is retried).

        `proceed` is asked once, after the rate-limit wait and just before the first
        attempt leaves: False withdraws the call (`Withdrawn`) with nothing sent. Once an
        attempt has been sent, retries go on regardless: it may have been carried out.
        """
        policy = self._retry if req.client_token else RetryPolicy.none()
        answer = await self._caller.call(
            "RunCommand", encode_run_command(req), policy=policy, proceed=proceed
        )
        return self._caller.decode("RunCommand", answer, decode_run_command)

    async def describe_instances(
        self,
        *,
        instance_ids: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        zone_id: str | None = None,
        status: str | None = None,
        page_size: int = api.DESCRIBE_INSTANCES_MAX_RESULTS,
        retry: RetryPolicy | None = None,
        after: str | None = None,
    ) -> AsyncIterator[Instance]:
        """Every instance matching all the filters (tags AND-ed), page after page.

        More than 100 IDs are split over several requests. An empty `instance_ids`
        matches nothing (as the API's `[]` does) and makes no call. `after` (a NextToken
        of the same query, no `instance_ids`) resumes a chain past the pages already read.
        """
        max_results = min(page_size, api.DESCRIBE_INSTANCES_MAX_RESULTS)
        id_chunks: list[Sequence[str] | None]
        if instance_ids is None:
            id_chunks = [None]
        elif after is not None:
            raise ValueError("after resumes one chain: it does not go with instance_ids")
        else:
            id_chunks = list(_chunks(instance_ids, api.DESCRIBE_INSTANCES_MAX_IDS))
        for chunk in id_chunks:

            def params(token: str | None, ids: Sequence[str] | None = chunk) -> dict[str, str]:
                return encode_describe_instances(
                    instance_ids=ids,
                    tags=tags,
                    zone_id=zone_id,
                    status=status,
                    max_results=max_results,
                    next_token=token,
                )

            pages = self._caller.pages(
                "DescribeInstances", params, decode_instances_page, policy=retry, after=after
            )
            async for instance in pages:
                yield instance

    async def first_instances_page(
        self, tags: Mapping[str, str], *, retry: RetryPolicy | None = None
    ) -> InstancesPage:
        """The first 100 instances carrying `tags`, the NextToken that resumes their
        chain, and the page's TotalCount (a hint only: `_listing.py`)."""
        return await first_instances_page(self._caller, tags, retry)

    async def count_instances(
        self, tags: Mapping[str, str], *, retry: RetryPolicy | None = None
    ) -> int | None:
        """How many instances carry `tags` (a PageNumber page's TotalCount), or None."""
        return await count_instances(self._caller, tags, retry)

    async def describe_zones(self, *, retry: RetryPolicy | None = None) -> tuple[Zone, ...]:
        """The region's zones (DescribeZones; its shape and limits: `_listing.py`)."""
        return await describe_zones(self._caller, retry)

    async def describe_cloud_assistant_status(
        self, instance_ids: Sequence[str], *, retry: RetryPolicy | None = None
    ) -> list[CloudAssistantStatus]:
        """The agent status of each instance; [] without a call for no IDs.

        `assistant_status_ids` IDs per call, the calls concurrent (each attempt still
        waits for the rate limiter), the statuses in the order of the chunks.
        """
        jobs = [
            functools.partial(self._statuses_of, chunk, retry)
            for chunk in _chunks(instance_ids, self._assistant_status_ids)
        ]
        answers = await gather_in_order(jobs, at_once=STATUS_CALLS_AT_ONCE)
        return [status for answer in answers for status in answer]

    async def _statuses_of(
        self, ids: Sequence[str], retry: RetryPolicy | None
    ) -> list[CloudAssistantStatus]:
        def params(token: str | None) -> dict[str, str]:
            return encode_describe_cloud_assistant_status(ids, next_token=token)

        pages = self._caller.pages(
            "DescribeCloudAssistantStatus",
            params,
            decode_cloud_assistant_status_page,
            policy=retry,
        )
        return [status async for status in pages]

    async def describe_invocations(
        self,
        *,
        invoke_id: str | None = None,
        instance_id: str | None = None,
        include_output: bool = False,
        invoke_status: str | None = None,
        tags: Mapping[str, str] | None = None,
        page_size: int = api.INVOCATIONS_MAX_RESULTS,
        retry: RetryPolicy | None = None,
        needed: RecordNeeded | None = None,
    ) -> AsyncIterator[Invocation]:
        """Invocations with their instances; output (when asked for) decoded from Base64.

        `tags` keeps the invocations whose command carries all of them (`Tag.N`).
        `needed` (invoke_id, instance_id, status → bool) narrows each invocation's
        `instances` to the records it accepts; the others are not decoded past their
        status (the tracker skips what it has already seen). It is called inside the
        decoding: it must not raise.
        """
        max_results = min(page_size, api.INVOCATIONS_MAX_RESULTS)

        def params(token: str | None) -> dict[str, str]:
            return encode_describe_invocations(
                invoke_id=invoke_id,
                instance_id=instance_id,
                include_output=include_output,
                invoke_status=invoke_status,
                max_results=max_results,
                next_token=token,
            ) | tag_list("Tag", tags or {})

        def decode(body: Mapping[str, Any]) -> Page[Invocation]:
            return decode_invocations_page(body, needed)

        pages = self._caller.pages("DescribeInvocations", params, decode, policy=retry)
        async for invocation in pages:
            yield invocation

    async def describe_invocation_results(
        self,
        *,
        invoke_id: str | None = None,
        instance_id: str | None = None,
        invoke_record_status: str | None = None,
        page_size: int = api.INVOCATIONS_MAX_RESULTS,
    ) -> AsyncIterator[InvocationResult]:
        """Execution records, output decoded from Base64 (paging sits inside `Invocation`)."""
        max_results = min(page_size, api.INVOCATIONS_MAX_RESULTS)

        def params(token: str | None) -> dict[str, str]:
            return encode_describe_invocation_results(
                invoke_id=invoke_id,
                instance_id=instance_id,
                invoke_record_status=invoke_record_status,
                max_results=max_results,
                next_token=token,
            )

        async for result in self._caller.pages(
            "DescribeInvocationResults", params, decode_invocation_results_page
        ):
            yield result

    async def stop_invocation(self, invoke_id: str, instance_ids: Sequence[str] = ()) -> None:
        """Stop `invoke_id` on `instance_ids` (50 per call), or everywhere when empty."""
        chunks = _chunks(instance_ids, api.STOP_INVOCATION_MAX_INSTANCES) or [()]
        for chunk in chunks:
            await self._caller.call(
                "StopInvocation", encode_stop_invocation(invoke_id, chunk), policy=self._retry
            )

    async def describe_account_attributes(
        self, names: Sequence[str], *, retry: RetryPolicy | None = None
    ) -> AccountAttributes:
        """The named account attributes (8 per call), or all of them when `names` is empty."""
        chunks = _chunks(names, api.ACCOUNT_ATTRIBUTE_NAMES_MAX) or [()]
        values: dict[str, str] = {}
        for chunk in chunks:
            answer = await self._caller.call(
                "DescribeAccountAttributes",
                encode_describe_account_attributes(chunk),
                policy=retry or self._retry,
            )
            attributes = self._caller.decode(
                "DescribeAccountAttributes", answer, decode_account_attributes
            )
            values.update(attributes.values)
        return AccountAttributes(values)
