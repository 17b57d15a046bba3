"""`orchestrator sim`: serve the ECS API simulator until interrupted."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli._exit import make_console, run_async
from orchestrator.sim import default_fleet, load_fleet, run_forever

if TYPE_CHECKING:
    import argparse


def run(args: argparse.Namespace) -> int:
    console = make_console()

    async def main() -> int:
        fleet = load_fleet(Path(args.fleet)) if args.fleet else default_fleet()
        await run_forever(fleet, host=args.host, port=args.port, print_fn=console.print)
        return 0

    return run_async(main)
