"""The option groups the sub-commands share: where calls go, where scripts may be, the
state dir, approvals, the concurrency escape hatch, output, and the overrides."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from orchestrator.cli._completion import DIRECTORY, FILE, completes
from orchestrator.rollout import DEFAULT_STATE_DIR

if TYPE_CHECKING:
    import argparse


def add_target_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("where to send calls")
    where.add_argument("--region", help="region id, e.g. cn-hangzhou")
    where.add_argument("--profile", help="aliyun CLI profile name in ~/.aliyun/config.json")
    # The embedded simulator is its own endpoint: with both, one would be ignored.
    endpoint = where.add_mutually_exclusive_group()
    endpoint.add_argument(
        "--endpoint", help="endpoint URL (default: https://ecs.<region>.aliyuncs.com)"
    )
    sim = endpoint.add_argument(
        "--sim",
        nargs="?",
        const="",
        metavar="FLEET",
        help="start the embedded simulator (the demo fleet, or FLEET) and call it",
    )
    completes(sim, FILE)


def add_script_dirs(parser: argparse.ArgumentParser) -> None:
    script_dir = parser.add_argument(
        "--script-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="also allow the plan's script files under DIR (default: only the plan "
        "file's directory; repeat for more)",
    )
    completes(script_dir, DIRECTORY)


def add_state_dir(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    state_dir = parser.add_argument(
        "--state-dir",
        default=os.environ.get("ORCHESTRATOR_STATE_DIR", str(DEFAULT_STATE_DIR)),
        metavar="DIR",
        help=f"where runs keep their journals, locks and approvals (default: {DEFAULT_STATE_DIR})",
    )
    completes(state_dir, DIRECTORY)


def add_approvals(parser: argparse.ArgumentParser) -> None:
    gates = parser.add_argument_group("approvals (waves with `approval: true`)")
    gates.add_argument(
        "--approve",
        action="append",
        default=[],
        metavar="WAVE",
        help="approve this wave up front (repeat for more waves)",
    )
    gates.add_argument(
        "--approve-all", action="store_true", help="approve every wave up front (unattended CI)"
    )
    add_state_dir(gates)


def add_allow_concurrent(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-concurrent",
        action="store_true",
        help="DANGEROUS: go on although another run of this plan is live (in this state "
        "dir, or seen through the API): the script can run twice on an instance",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    shown = parser.add_argument_group("output (docs/logging.md, docs/report-format.md)")
    shown.add_argument(
        "--log-format",
        choices=("auto", "console", "json"),
        default="auto",
        help="auto (default): a live display on a terminal, JSON lines on stderr elsewhere",
    )
    loudness = shown.add_mutually_exclusive_group()
    loudness.add_argument(
        "-q", "--quiet", action="store_true", help="only warnings, errors and the summary"
    )
    loudness.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also a line per batch sent and per instance finished",
    )
    report_dir = shown.add_argument(
        "--report-dir",
        metavar="DIR",
        help="write report.json, junit.xml and summary.md there "
        "(summary.md is also appended to $GITHUB_STEP_SUMMARY when set)",
    )
    output_dir = shown.add_argument(
        "--output-dir",
        metavar="DIR",
        help="keep every instance's whole output as DIR/<wave>/<instance>.log (1 MiB each)",
    )
    completes(report_dir, DIRECTORY)
    completes(output_dir, DIRECTORY)


def add_overrides(parser: argparse.ArgumentParser) -> None:
    """--param and --limit: change a plan for one run without editing it."""
    changes = parser.add_argument_group("overrides (recorded in the journal and the report)")
    changes.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="replace the value of a parameter the plan declares (repeat for more); "
        "reports name the parameter, never the value",
    )
    changes.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="SELECTOR",
        help="only the plan's targets that match: an instance id (i-...), zone=ZONE or "
        "tag=KEY=VALUE (repeat: any of them matches)",
    )


def add_child_options(parser: argparse.ArgumentParser) -> None:
    """What a run made from another (retry, rollback) takes: where its calls go (by
    default where the parent's went), the quota and concurrency escape hatches, output."""
    where = parser.add_argument_group("where to send calls (default: where RUN's went)")
    where.add_argument("--region", help="region id")
    where.add_argument("--profile", help="aliyun CLI profile name in ~/.aliyun/config.json")
    where.add_argument("--endpoint", help="endpoint URL")
    parser.add_argument(
        "--ignore-quota",
        action="store_true",
        help="start even if the daily invocation quota cannot cover the run",
    )
    parser.add_argument(
        "--new",
        action="store_true",
        help="start although the plan's last run here is interrupted",
    )
    add_allow_concurrent(parser)
    add_output_options(parser)
