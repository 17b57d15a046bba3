"""The seam between the simulator's wire (auth, parsing, rendering, throttling, faults)
and its domain (fleet, agents, invocations): a verified call in, a response body out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator import api


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated API call, as the domain sees it.

    `params` holds the request's own parameters as they arrived on the wire (flat
    `Name.N` / `Tag.N.Key` keys, string values), with the common ones (Action, Version,
    Format, AccessKeyId, Signature*, Timestamp, SecurityToken) removed.
    """

    action: str
    params: Mapping[str, str]
    access_key_id: str


class SimApiError(Exception):
    """Raised by a handler to answer with an API error; status and text default to the
    real service's, from `orchestrator.api`."""

    def __init__(
        self, code: str, message: str | None = None, http_status: int | None = None
    ) -> None:
        spec = api.ERRORS.get(code)
        self.code = code
        self.message = message if message is not None else (spec.message if spec else code)
        self.http_status = (
            http_status if http_status is not None else (spec.http_status if spec else 400)
        )
        super().__init__(f"{self.code}: {self.message}")


# A handler returns the response body without RequestId (the wire layer adds it).
Handler = Callable[[Call], Awaitable[dict[str, Any]]]
