"""Reading what a CLI subprocess says, for the e2e tests: its run id, and its output up to
a line (each waits on the output itself, with a deadline, never on time alone)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from anyio.abc import Process

_RUN_LINE = re.compile(r"^run (\S+): ", re.MULTILINE)


def run_id_of(output: str) -> str:
    """The id in the first `run RUN: ...` line of a command's output."""
    match = _RUN_LINE.search(output)
    assert match is not None, output
    return match.group(1)


async def until_line(process: Process, text: str, *, within: float = 60) -> str:
    """Read the process's stdout until it holds `text`; all of it so far."""
    assert process.stdout is not None
    seen = ""
    with anyio.fail_after(within):
        async for chunk in process.stdout:
            seen += chunk.decode()
            if text in seen:
                return seen
    raise AssertionError(f"{text!r} never came:\n{seen}")
