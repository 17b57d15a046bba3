"""The Cloud Assistant agent model: how one instance answers one command run.

A simulated agent is a pure function: given the behaviour that applies to an instance
and a (seed, invoke id, instance id, run) tuple, `plan_run` says how long delivery and
execution take, whether the run fails or hangs, and what it prints. Nothing waits; the
invocation records derive their status from these planned times when asked, so a
100,000-instance fleet costs memory only. The local agent (`run_local`) really runs a
shell script in a subprocess, for demos and tests that want real effects.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Final

import anyio
import anyio.abc

from orchestrator import api

# Agent versions below these cannot run Frequency (scheduled) tasks or container
# commands (seed doc: Linux 2.2.3.282 / Windows 2.1.3.282; containers Linux 2.2.3.344).
FREQUENCY_MIN_VERSION: Final = {"linux": (2, 2, 3, 282), "windows": (2, 1, 3, 282)}
CONTAINER_MIN_VERSION: Final = (2, 2, 3, 344)
# SupportSessionManager needs agent >= 2.2.3.189 (Linux) / 2.1.3.189 (Windows) (SDK71).
SESSION_MANAGER_MIN_VERSION: Final = {"linux": (2, 2, 3, 189), "windows": (2, 1, 3, 189)}
# Exit code reported for a process the agent killed (timeout, stop): (unconfirmed).
KILLED_EXIT_CODE: Final = -1


@dataclass(frozen=True, slots=True)
class Span:
    """A duration in simulation seconds: fixed (`low == high`) or uniform in [low, high]."""

    low: float
    high: float

    def pick(self, u: float) -> float:
        return self.low + (self.high - self.low) * u


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How an agent runs commands (one fleet-file `behaviour` block, rules applied)."""

    duration: Span = Span(2.0, 2.0)
    delivery_delay: Span = Span(0.5, 0.5)
    exit_code: int = 0
    output: str = ""
    output_repeat: int = 1
    fail_rate: float = 0.0
    fail_exit_code: int = 1
    fail_output: str = "error: simulated failure\n"
    hang_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class BehaviourRule:
    """Overrides for instances that carry all `tags` or are listed in `instances`."""

    tags: tuple[tuple[str, str], ...] = ()
    instances: frozenset[str] = frozenset()
    overrides: tuple[tuple[str, object], ...] = ()

    def matches(self, instance_id: str, tags: tuple[tuple[str, str], ...]) -> bool:
        if self.instances and instance_id not in self.instances:
            return False
        return all(pair in tags for pair in self.tags)


@dataclass(frozen=True, slots=True)
class BehaviourSpec:
    """The default behaviour, the rules (later rules win), and agent-wide timings."""

    default: Behaviour = Behaviour()
    rules: tuple[BehaviourRule, ...] = ()
    # An offline agent's record stays Pending this long, then is Aborted (ClientNotResponse):
    # the doc says an instance must be reachable "within 1 minute" (SDK71, Aborted).
    offline_timeout: float = 60.0
    # How long a running record shows Stopping after StopInvocation before Terminated.
    stop_delay: float = 1.0
    _cache: dict[tuple[int, ...], Behaviour] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def for_instance(self, instance_id: str, tags: tuple[tuple[str, str], ...]) -> Behaviour:
        """The behaviour of one instance; shared between instances matching the same rules."""
        hits = tuple(i for i, rule in enumerate(self.rules) if rule.matches(instance_id, tags))
        cached = self._cache.get(hits)
        if cached is None:
            merged: dict[str, object] = {}
            for i in hits:
                merged.update(self.rules[i].overrides)
            cached = _replace(self.default, merged)
            self._cache[hits] = cached
        return cached


def _replace(base: Behaviour, overrides: dict[str, object]) -> Behaviour:
    values = {name: getattr(base, name) for name in Behaviour.__dataclass_fields__}
    values.update(overrides)
    return Behaviour(**values)


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What one simulated run will do, in simulation seconds from its fire time."""

    delay: float
    duration: float
    exit_code: int
    hang: bool
    output: str


def _uniforms(*key: object, count: int) -> list[float]:
    """`count` deterministic numbers in [0, 1) from `key` (independent of call order)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8 * count).digest()
    return [int.from_bytes(digest[i * 8 : i * 8 + 8], "big") / 2**64 for i in range(count)]


def plan_run(
    behaviour: Behaviour, *, seed: int, invoke_id: str, instance_id: str, run: int
) -> RunPlan:
    """Plan one run; the same inputs always give the same plan."""
    u_delay, u_duration, u_hang, u_fail = _uniforms(seed, invoke_id, instance_id, run, count=4)
    delay = behaviour.delivery_delay.pick(u_delay)
    duration = behaviour.duration.pick(u_duration)
    if u_hang < behaviour.hang_rate:
        return RunPlan(delay, duration, KILLED_EXIT_CODE, hang=True, output="")
    if u_fail < behaviour.fail_rate:
        code, output = behaviour.fail_exit_code, behaviour.fail_output
    else:
        code, output = behaviour.exit_code, behaviour.output * behaviour.output_repeat
    return RunPlan(delay, duration, code, hang=False, output=output)


def version_tuple(version: str) -> tuple[int, ...]:
    """`2.2.3.282` → (2, 2, 3, 282); anything unparsable sorts lowest."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()


def cut_output(data: bytes) -> tuple[bytes, int]:
    """Keep the first 24 KB of output; return it and the number of bytes dropped.
    (Whether the service keeps the head or the tail is unconfirmed; we keep the head.)"""
    limit = api.OUTPUT_MAX_BYTES
    return data[:limit], max(len(data) - limit, 0)


@dataclass(frozen=True, slots=True)
class LocalResult:
    """What a real local run produced."""

    exit_code: int
    output: bytes  # at most 24 KB
    dropped: int
    timed_out: bool
    stopped: bool


async def run_local(script: str, time_limit: float, stop: anyio.Event) -> LocalResult:
    """Run `script` with `/bin/sh -c` in a fresh temporary directory; kill its process
    group after `time_limit` real seconds (the command's Timeout), or once `stop` is set
    (StopInvocation)."""
    limit = api.OUTPUT_MAX_BYTES
    kept = bytearray()
    total = 0
    timed_out = killed = False
    with tempfile.TemporaryDirectory(prefix="orchestrator-sim-") as workdir:
        process = await anyio.open_process(
            ["/bin/sh", "-c", script],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a kill takes its children
        )
        try:
            async with anyio.create_task_group() as group:

                async def watch_stop() -> None:
                    await stop.wait()
                    group.cancel_scope.cancel()

                group.start_soon(watch_stop)
                with anyio.move_on_after(time_limit) as scope:
                    assert process.stdout is not None
                    async for chunk in process.stdout:
                        total += len(chunk)
                        if len(kept) < limit:
                            kept.extend(chunk[: limit - len(kept)])
                    await process.wait()
                timed_out = scope.cancelled_caught
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                if process.returncode is None:
                    killed = True
                    _kill_group(process)
                    await process.wait()
                await process.aclose()
    exit_code = KILLED_EXIT_CODE if killed else (process.returncode or 0)
    stopped = killed and not timed_out
    return LocalResult(exit_code, bytes(kept), total - len(kept), timed_out, stopped)


def _kill_group(process: anyio.abc.Process) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, signal.SIGKILL)
