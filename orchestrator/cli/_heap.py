"""The collector and a long run: what the targets step built is frozen out of its sight.

By the time a run starts, the process holds everything it will keep to the end: the
plan, the resolved instances (100,000 of them at the largest fleets), the journal
header. CPython's cyclic collector scans every tracked object it has in the oldest
generation on each full collection, so these long-lived objects make every full
collection of the run slower the bigger the fleet (measured at 100k: pauses of
hundreds of milliseconds on the event loop, the loop's worst lag). Nothing among them
becomes garbage while the run goes on, so scanning them buys nothing.

`frozen_heap()` runs one full collection first (the CPython documentation's advice:
what is garbage now would otherwise be frozen with the rest and never reclaimed, a
frozen cycle is never collected), then `gc.freeze()` moves every surviving object into
the permanent generation for the run. Reference counting still frees a frozen object
whose last reference goes; only the cycle detector stops looking at them. On exit
`gc.unfreeze()` gives them back to the oldest generation, so a process that goes on
after the run (tests, a rollback run after a breach in the same process, a library
user) leaks nothing.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Collect, freeze what survives for the duration of the block, then unfreeze."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
