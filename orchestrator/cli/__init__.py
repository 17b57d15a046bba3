"""The `orchestrator` command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    from orchestrator.cli._commands import dispatch  # noqa: PLC0415  (keeps `import orchestrator` light)

    return dispatch(argv)
