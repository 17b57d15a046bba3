"""The simulator's request counts: what tests and the benchmark read at `/_sim/stats`."""

from __future__ import annotations

from collections import Counter


class Stats:
    """Requests counted per action and per outcome ("ok", an error code, or a fault)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def record(self, action: str, outcome: str) -> None:
        """Count one request."""
        self._counts[action or "-", outcome] += 1

    def count(self, action: str, outcome: str | None = None) -> int:
        """Requests of `action` (with `outcome`, if given) so far."""
        return sum(
            n
            for (a, o), n in self._counts.items()
            if a == action and (outcome is None or o == outcome)
        )

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{action: {outcome: count}}."""
        out: dict[str, dict[str, int]] = {}
        for (action, outcome), n in sorted(self._counts.items()):
            out.setdefault(action, {})[outcome] = n
        return out
