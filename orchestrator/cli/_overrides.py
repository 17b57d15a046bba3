"""`run PLAN --param NAME=VALUE --limit SELECTOR` (and the dry run's): a plan changed for one run.

`--param` replaces the value of a parameter the plan declares (`override_params`, which
checks the result as the plan's own values are checked). `--limit` narrows the plan's
targets without editing it: a union of selectors, each an instance id (`i-…`),
`zone=ZONE` or `tag=KEY=VALUE`, applied to the resolved targets (`Start.narrow`). A
runnable or skipped instance outside the limit becomes excluded, so `targets.selected`
still counts all the plan matched. A limit only narrows: an id the plan does not target
is refused, and so is a limit that keeps none of the plan's targets. A skipped instance
is kept when the limit names its id or its zone (DescribeInstances did not say the tags
of one it does not know). Both are recorded in the run's origin (`RunOrigin.limit`,
`.params`) for a resume, which runs the journal's instances: the narrowed set. Bad
input is a `PlanError` (exit 2) naming the flag, never a parameter's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from orchestrator.errors import PlanError
from orchestrator.journal import RunOrigin
from orchestrator.plan import override_params, parse_param
from orchestrator.report import ReportedOrigin
from orchestrator.targets import Resolution

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from orchestrator.ecs import Instance
    from orchestrator.journal import RunHeader
    from orchestrator.plan import Plan

RULE: Final = "limit"
_SELECTOR_HELP: Final = "give an instance id (i-…), zone=ZONE or tag=KEY=VALUE"


@dataclass(frozen=True, slots=True)
class Limit:
    """The `--limit` selectors as given, and what they select: a union."""

    selectors: tuple[str, ...]
    ids: frozenset[str]
    zones: frozenset[str]
    tags: tuple[tuple[str, str], ...]

    def keeps(self, instance_id: str, zone_id: str, tags: dict[str, str] | None) -> bool:
        """Whether an instance (its tags, None when they are not known) is in the limit."""
        if instance_id in self.ids or zone_id in self.zones:
            return True
        return tags is not None and any(tags.get(key) == value for key, value in self.tags)

    def narrow(self, resolution: Resolution) -> Resolution:
        """`resolution` with what is outside the limit excluded; `PlanError` for an id
        the plan does not target, or a limit that keeps none of its targets."""
        targeted = [i.instance_id for i in resolution.runnable]
        targeted += [s.instance_id for s in resolution.skipped]
        strangers = sorted(self.ids - set(targeted))
        if strangers:
            raise PlanError(
                f"--limit {strangers[0]}: not one of the plan's {len(targeted)} targets "
                "(a limit only narrows them)",
                field="--limit",
                rule=RULE,
            )
        runnable = tuple(i for i in resolution.runnable if self._keeps_instance(i))
        skipped = tuple(s for s in resolution.skipped if self.keeps(s.instance_id, s.zone_id, None))
        if not runnable and not skipped:
            raise PlanError(
                f"--limit {' '.join(self.selectors)} matches none of the plan's "
                f"{len(targeted)} targets",
                field="--limit",
                rule=RULE,
            )
        kept = {i.instance_id for i in runnable} | {s.instance_id for s in skipped}
        dropped = [i for i in targeted if i not in kept]
        return Resolution(runnable, skipped, tuple(sorted((*resolution.excluded, *dropped))))

    def _keeps_instance(self, instance: Instance) -> bool:
        return self.keeps(instance.instance_id, instance.zone_id, dict(instance.tags))


def parse_limit(texts: Sequence[str]) -> Limit | None:
    """The `--limit` selectors → a `Limit`; None without any. `PlanError` for one that
    is none of the three forms."""
    if not texts:
        return None
    ids: set[str] = set()
    zones: set[str] = set()
    tags: list[tuple[str, str]] = []
    for text in texts:
        kind, equals, rest = text.partition("=")
        if not equals and text.startswith("i-") and len(text) > len("i-"):
            ids.add(text)
        elif kind == "zone" and rest:
            zones.add(rest)
        elif kind == "tag" and "=" in rest and rest.partition("=")[0]:
            key, _, value = rest.partition("=")
            tags.append((key, value))
        else:
            raise PlanError(f"--limit {text}: {_SELECTOR_HELP}", field="--limit", rule=RULE)
    return Limit(tuple(texts), frozenset(ids), frozenset(zones), tuple(tags))


def parse_params(texts: Sequence[str]) -> dict[str, str]:
    """The `--param NAME=VALUE`s → NAME → VALUE; `PlanError` for a name given twice."""
    values: dict[str, str] = {}
    seen: set[str] = set()
    for text in texts:
        name, value = parse_param(text)
        if name.casefold() in seen:
            raise PlanError(f"--param {name}: given twice", field="--param", rule="param-override")
        seen.add(name.casefold())
        values[name] = value
    return values


@dataclass(frozen=True, slots=True)
class Overridden:
    """A plan with the `--param` values in place, the run's origin saying so, and the
    `--limit` to narrow its resolved targets with (None: all of them)."""

    plan: Plan
    origin: RunOrigin
    narrow: Callable[[Resolution], Resolution] | None


def apply_overrides(args: argparse.Namespace, plan: Plan) -> Overridden:
    """`plan` as `--param` and `--limit` change it; `PlanError` for bad ones."""
    params = parse_params(args.param)
    limit = parse_limit(args.limit)
    origin = RunOrigin(limit=limit.selectors if limit else (), params=params)
    return Overridden(
        override_params(plan, params), origin, limit.narrow if limit is not None else None
    )


def overrides_line(origin: RunOrigin) -> str:
    """What a run overrides, for people: parameter names only, never a value."""
    parts = [f"--param {name}" for name in origin.params]
    parts += [f"--limit {selector}" for selector in origin.limit]
    return ", ".join(parts)


def reported_origin(origin: RunOrigin) -> ReportedOrigin:
    """The run's origin as reports say it: the overridden parameters by name only."""
    return ReportedOrigin(
        kind=origin.kind,
        parent=origin.parent,
        only=origin.only,
        params=tuple(origin.params),
        limit=origin.limit,
    )


def origin_lines(header: RunHeader) -> list[str]:
    """`status`'s lines on how the run came to be: whose retry (or rollback) it is, on
    how many instances, and what it overrides."""
    origin = header.origin
    lines = []
    if origin.parent is not None:
        chosen = len(header.instances) + len(header.skipped)
        only = f"{', '.join(origin.only)}: " if origin.only else ""
        lines.append(f"{origin.kind} of {origin.parent} ({only}{chosen} instances)")
    if overrides_line(origin):
        lines.append(f"overrides: {overrides_line(origin)}")
    return lines
