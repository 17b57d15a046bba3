"""The access key to sign with, and its secret kept out of every text.

Secrets are wrapped in `Secret`, whose repr and str are `***`: a `Credentials` can be
logged, printed or put in an exception without leaking anything. Where credentials come
from is `_chain.py` (the chain) and `_sources.py` (the profile file); how temporary
ones are fetched and refreshed is `_providers.py`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import CredentialsError


class Secret:
    """A string that does not show itself: repr and str are `***`; `reveal()` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself; call it only where the value is consumed (the signer)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling would write the secret into whatever holds the pickle.
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True, slots=True)
class Credentials:
    """An access key (and STS token) to sign requests with; its repr shows only the ID."""

    access_key_id: str
    access_key_secret: Secret
    security_token: Secret | None = None

    def __post_init__(self) -> None:
        if not self.access_key_id:
            raise CredentialsError("access key ID is empty")
        if not self.access_key_secret.reveal():
            raise CredentialsError(f"access key secret of {self.access_key_id} is empty")

    @classmethod
    def of(
        cls, access_key_id: str, access_key_secret: str, security_token: str | None = None
    ) -> Credentials:
        """Credentials from plain strings (tests, or keys read by the caller)."""
        return cls(
            access_key_id,
            Secret(access_key_secret),
            Secret(security_token) if security_token else None,
        )
