"""Pure arithmetic of a rollout: instances → waves → batches, and the batch ClientTokens.

Each wave's size is its own `Amount` of the WHOLE target set (a percentage rounds up, at
least 1), capped by what is left; the last wave takes the rest; a wave left with nothing
is empty (and reported, never dropped). Batches cut a wave, in order, into RunCommands of
at most `batch_size` instances. The order of the instances is a parameter (`order`), so
zone spreading can plug in later without touching the arithmetic. Nothing here does I/O.

A batch's ClientToken is derived from (run id, wave, batch, split path), so a retried
RunCommand, and a resumed run, send exactly the same token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from orchestrator import api

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from orchestrator.ecs import Instance
    from orchestrator.plan._model import Wave

_TOKEN_DIGEST_CHARS: Final = 24


def keep_order(instances: Sequence[Instance]) -> Sequence[Instance]:
    """The default order: as the targets step resolved them."""
    return instances


@dataclass(frozen=True, slots=True)
class Batch:
    """Up to `batch_size` instances sent in one RunCommand."""

    wave: int  # 0-based wave index
    index: int  # 0-based batch index within the wave
    instances: tuple[Instance, ...]

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return tuple(instance.instance_id for instance in self.instances)


@dataclass(frozen=True, slots=True)
class WavePlan:
    """One wave as it will run: its instances, cut into batches."""

    index: int
    name: str
    instances: tuple[Instance, ...]
    batches: tuple[Batch, ...]

    @property
    def size(self) -> int:
        return len(self.instances)


def wave_sizes(waves: Sequence[Wave], total: int) -> list[int]:
    """How many instances each wave takes out of `total` (the last takes the rest)."""
    sizes: list[int] = []
    left = total
    for position, wave in enumerate(waves):
        size = left if position == len(waves) - 1 else min(left, wave.size.of(total))
        sizes.append(size)
        left -= size
    return sizes


def split_batches(wave: int, instances: Sequence[Instance], batch_size: int) -> tuple[Batch, ...]:
    """`instances` in order, at most `batch_size` per batch."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    return tuple(
        Batch(wave, number, tuple(instances[start : start + batch_size]))
        for number, start in enumerate(range(0, len(instances), batch_size))
    )


def plan_waves(
    waves: Sequence[Wave],
    instances: Sequence[Instance],
    *,
    batch_size: int = api.RUN_COMMAND_MAX_INSTANCES,
    order: Callable[[Sequence[Instance]], Sequence[Instance]] = keep_order,
) -> tuple[WavePlan, ...]:
    """Every wave with its instances and batches, deterministically."""
    if not waves:
        raise ValueError("a plan has at least one wave")
    ordered = list(order(instances))
    if len({i.instance_id for i in ordered}) != len(ordered):
        raise ValueError("an instance appears twice in the targets")
    plans: list[WavePlan] = []
    start = 0
    for index, (wave, size) in enumerate(zip(waves, wave_sizes(waves, len(ordered)), strict=True)):
        members = tuple(ordered[start : start + size])
        start += size
        plans.append(WavePlan(index, wave.name, members, split_batches(index, members, batch_size)))
    return tuple(plans)


def client_token(run_id: str, wave: int, batch: int, split_path: str = "") -> str:
    """The ClientToken of one RunCommand: ASCII, at most 64 characters, the same on every
    retry and resume. A readable prefix names the batch; a digest of the whole key keeps
    tokens of different runs apart."""
    key = f"{run_id}\x00{wave}\x00{batch}\x00{split_path}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:_TOKEN_DIGEST_CHARS]
    path = f"s{split_path}-" if split_path else ""
    token = f"orc-w{wave}-b{batch}-{path}{digest}"
    if len(token) > api.CLIENT_TOKEN_MAX:
        # Only a split path deeper than any 100-instance batch allows gets here.
        token = f"orc-{hashlib.sha256(key.encode()).hexdigest()[:40]}"
    return token
