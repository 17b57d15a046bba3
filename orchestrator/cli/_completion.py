"""`orchestrator completion bash|zsh`: the shell's completion script, made by shtab
from the same parser the command line is read with, so it never lists a stale flag.

`completes` marks the arguments whose values are paths (plan files, directories), so
the shell offers files there and sub-commands, flags and choices elsewhere.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Final

import shtab

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

SHELLS: Final = ("bash", "zsh")
FILE: Final = shtab.FILE
DIRECTORY: Final = shtab.DIRECTORY


def completes(action: argparse.Action, kind: Mapping[str, object]) -> argparse.Action:
    """Tell shtab that `action` takes a path of this `kind` (FILE or DIRECTORY)."""
    # shtab reads this attribute off the action; argparse does not declare it.
    action.complete = kind  # type: ignore[attr-defined]
    return action


def print_completion(parser: argparse.ArgumentParser, shell: str) -> int:
    """Write the completion script for `shell` to stdout."""
    sys.stdout.write(shtab.complete(parser, shell=shell))
    sys.stdout.flush()
    return 0
