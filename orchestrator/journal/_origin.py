"""How a run came to be: from a plan file, an ad-hoc command, or another run's instances.

Recorded in the journal's header (schema 3), so a resume derives the very plan the run
started with, and `status`, `show` and the reports say where a run came from.
"""

from __future__ import annotations

from collections.abc import Mapping  # noqa: TC003 - dataclass field types are read at run time
from dataclasses import dataclass, field
from typing import Any, Final

ORIGIN_KINDS: Final = ("run", "exec", "retry", "rollback")


def _no_params() -> Mapping[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class RunOrigin:
    """How a run came to be, so a resume derives the very plan the run started with.

    `kind`: `run` (a plan file, `plan_path`), `exec` (a plan built from flags: the
    journal's plan text is all there is of it), `retry` or `rollback` (a new run of
    `parent`'s recorded plan on some of its instances). `limit`: the `--limit` selectors
    as given; `params`: the `--param` overrides. The journal keeps their values, as it
    keeps the plan's text, for a resume to send exactly what the run sent; reports and
    listings name the overridden parameters only. `only`: the outcomes a retry took.
    """

    kind: str = "run"
    parent: str | None = None
    limit: tuple[str, ...] = ()
    params: Mapping[str, str] = field(default_factory=_no_params, hash=False)
    only: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ORIGIN_KINDS:
            kinds = ", ".join(ORIGIN_KINDS)
            raise ValueError(f"a run's origin is one of {kinds}: {self.kind!r}")
        if (self.parent is None) == (self.kind in {"retry", "rollback"}):
            raise ValueError(
                f"a {self.kind} run {'needs' if self.parent is None else 'has no'} parent"
            )

    @property
    def from_plan_file(self) -> bool:
        """Whether `plan_path` is a file the run was started from (a resume checks it)."""
        return self.kind == "run"


PLAN_FILE: Final = RunOrigin()  # a run of a plan file, with nothing overridden


def encode_origin(origin: RunOrigin) -> dict[str, Any]:
    return {
        "kind": origin.kind,
        "parent": origin.parent,
        "limit": list(origin.limit),
        "params": dict(origin.params),
        "only": list(origin.only),
    }


def decode_origin(data: Mapping[str, Any]) -> RunOrigin:
    """A journal's origin; `{}` (a journal older than schema 3) is a plan file's run."""
    return RunOrigin(
        kind=data.get("kind", "run"),
        parent=data.get("parent"),
        limit=tuple(data.get("limit", ())),
        params=dict(data.get("params", {})),
        only=tuple(data.get("only", ())),
    )
