"""The collector and a long run: what the targets step built is frozen out of its sight.

By the time a run starts, the process holds everything it will keep to the end: the
plan, the resolved instances (100,000 of them at the largest fleets), the journal
header. CPython's cyclic collector scans every tracked object it has in the oldest
generation on each full collection, so these long-lived objects make every full
collection of the run slower the bigger the fleet (measured at 100k: pauses of
hundreds of milliseconds on the event loop, the loop's worst lag). Nothing among them
becomes garbage while the run goes on, so scanning them buys nothing.

While the targets step lists the fleet, the collector is paused (`paused_collector()`):
every page adds instances that will live to the end, so the collections it triggers
(full ones among them, each walking all that was listed so far: ~250 ms at 100k, three
times in a listing) find nothing to free; the pages themselves are freed by reference
counting as ever. The one full collection that follows reclaims any cycle made meanwhile.

`frozen_heap()` runs one full collection first (the CPython documentation's advice: what
is garbage now would otherwise be frozen with the rest and never reclaimed, a frozen
cycle is never collected), then `gc.freeze()` moves every surviving object into the
permanent generation for the run. Reference counting still frees a frozen object whose
last reference goes; only the cycle detector stops looking at them. What the run settles
lives to its end as well (each instance's result and output), and would make every full
collection of a long run walk all of it again: so every `REFREEZE_EVERY` seconds a
thread freezes what survived since, and a full collection walks at most that long's
allocations (a cycle that became garbage in that window waits for the unfreeze). On exit
`gc.unfreeze()` gives them back to the oldest generation, so a process that goes on
after the run (tests, a rollback run after a breach in the same process, a library user)
leaks nothing.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

# Seconds between two freezes of what the run settled meanwhile (see the docstring).
REFREEZE_EVERY: Final = 2.0


@contextmanager
def frozen_heap(refreeze_every: float = REFREEZE_EVERY) -> Iterator[None]:
    """Collect, freeze what survives for the duration of the block (and, every
    `refreeze_every` seconds, what survived since), then unfreeze."""
    gc.collect()
    gc.freeze()
    done = threading.Event()

    def refreeze() -> None:
        while not done.wait(refreeze_every):
            gc.freeze()

    keeper = threading.Thread(target=refreeze, name="orchestrator-refreeze", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()
        gc.unfreeze()


@contextmanager
def paused_collector() -> Iterator[None]:
    """No cyclic collection for the duration of the block (the targets step); the
    collector is on again after it, as it was before if it was off."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
