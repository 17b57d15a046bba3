"""The ECS Cloud Assistant API client: credentials, signing, retries and typed calls.

Import from here; the `_modules` are private. The API's facts (limits, statuses, error
codes) are `orchestrator.api`, beside the client: the plan checker and the simulator
read them without depending on the client.
"""

from orchestrator.ecs._build import build_provider
from orchestrator.ecs._chain import ResolvedCredentials, resolve_credentials
from orchestrator.ecs._client import DEFAULT_RETRY, EcsClient, endpoint_for_region
from orchestrator.ecs._concurrently import gather_in_order
from orchestrator.ecs._credentials import Credentials, Secret
from orchestrator.ecs._http import Session
from orchestrator.ecs._listing import InstancesPage, Zone
from orchestrator.ecs._providers import (
    CredentialsProvider,
    RefreshingProvider,
    StaticProvider,
    Temporary,
)
from orchestrator.ecs._ratelimit import (
    DEFAULT_RATES,
    RateLimiter,
    RateLimiterStats,
    ThrottleNotice,
    bucket_of,
)
from orchestrator.ecs._requests import RunCommandRequest
from orchestrator.ecs._responses import (
    AccountAttributes,
    CloudAssistantStatus,
    Instance,
    Invocation,
    InvocationInstance,
    InvocationResult,
    RecordNeeded,
    RunCommandResult,
)
from orchestrator.ecs._retry import PATIENT_READS, RetryDetails, RetryPolicy, error_code_of

__all__ = [
    "DEFAULT_RATES",
    "DEFAULT_RETRY",
    "PATIENT_READS",
    "AccountAttributes",
    "CloudAssistantStatus",
    "Credentials",
    "CredentialsProvider",
    "EcsClient",
    "Instance",
    "InstancesPage",
    "Invocation",
    "InvocationInstance",
    "InvocationResult",
    "RateLimiter",
    "RateLimiterStats",
    "RecordNeeded",
    "RefreshingProvider",
    "ResolvedCredentials",
    "RetryDetails",
    "RetryPolicy",
    "RunCommandRequest",
    "RunCommandResult",
    "Secret",
    "Session",
    "StaticProvider",
    "Temporary",
    "ThrottleNotice",
    "Zone",
    "bucket_of",
    "build_provider",
    "endpoint_for_region",
    "error_code_of",
    "gather_in_order",
    "resolve_credentials",
]
