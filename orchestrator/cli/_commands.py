"""Argument parsing: one sub-command per job, each a thin call into the library."""

from __future__ import annotations

import argparse
from importlib import metadata
from typing import TYPE_CHECKING, Final

from orchestrator.cli import (
    _approve,
    _exec,
    _instances,
    _recover,
    _retry,
    _rollback,
    _rollout,
    _runs,
    _show,
    _sim,
    _status,
)
from orchestrator.cli._completion import FILE, SHELLS, completes, print_completion
from orchestrator.cli._json_output import add_json_flag
from orchestrator.cli._logging import configure_logging
from orchestrator.cli._options import (
    add_allow_concurrent,
    add_approvals,
    add_child_options,
    add_output_options,
    add_overrides,
    add_script_dirs,
    add_state_dir,
    add_target_options,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    # The sub-parsers' container; argparse has no public name for its type.
    _Commands = argparse._SubParsersAction[argparse.ArgumentParser]  # noqa: SLF001

_COMMANDS: Final[dict[str, Callable[[argparse.Namespace], int]]] = {
    "approve": _approve.approve,
    "completion": lambda args: print_completion(build_parser(), args.shell),
    "exec": _exec.exec_command,
    "instances": _instances.run,
    "plan": _rollout.dry_run,
    "recover": _recover.recover,
    "resume": _runs.resume,
    "retry": _retry.retry,
    "rollback": _rollback.rollback,
    "run": _rollout.run,
    "runs": _status.runs,
    "show": _show.show,
    "sim": _sim.run,
    "status": _status.status,
    "stop": _runs.stop,
    "validate": _rollout.validate,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Run a script across a fleet of Alibaba Cloud ECS instances.",
    )
    # The installed distribution's version, so a bug report names what actually ran.
    parser.add_argument(
        "--version", action="version", version=f"orchestrator {metadata.version('orchestrator')}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_rollout_commands(commands)
    _add_retry_command(commands)
    _add_exec_command(commands)
    _add_rollback_command(commands)
    _add_journal_commands(commands)
    _add_offline_commands(commands)
    return parser


def _add_rollout_commands(commands: _Commands) -> None:
    """run, resume, recover: the commands that send (or rebuild what was sent)."""
    run = commands.add_parser(
        "run",
        help="run a plan: every wave, every instance, then a summary",
        description="Run a plan's command on its targets, wave after wave.",
    )
    completes(run.add_argument("plan", help="the plan file (YAML)"), FILE)
    add_script_dirs(run)
    add_target_options(run)
    run.add_argument(
        "--ignore-quota",
        action="store_true",
        help="start even if the daily invocation quota cannot cover the run",
    )
    run.add_argument(
        "--new",
        action="store_true",
        help="start a new run although the plan's last run here is interrupted "
        "(`orchestrator resume RUN` continues that one instead)",
    )
    add_overrides(run)
    add_allow_concurrent(run)
    add_output_options(run)
    add_approvals(run)

    resume = commands.add_parser(
        "resume",
        help="continue an interrupted run from its journal (nothing runs twice)",
        description="Continue run RUN where it stopped: sent batches are followed by their "
        "InvokeId, unanswered ones are sent again with their ClientToken, the rest is sent. "
        "A finished run only prints its summary.",
    )
    resume.add_argument("run", metavar="RUN", help="the run id")
    resume.add_argument(
        "--force",
        action="store_true",
        help="resume although the plan file changed (the plan recorded at the start runs)",
    )
    add_allow_concurrent(resume)
    add_output_options(resume)
    add_approvals(resume)

    recover = commands.add_parser(
        "recover",
        help="rebuild a lost or damaged journal from the API, for `resume` to continue",
        description="Rebuild the journal of run RUN from PLAN (the plan file it started "
        "with) and the API: every invocation tagged with the run is recorded as sent, so "
        "`orchestrator resume RUN` follows it and never sends it again. Sends nothing.",
    )
    recover.add_argument("run", metavar="RUN", help="the run id")
    completes(
        recover.add_argument("--plan", required=True, metavar="PLAN", help="the run's plan file"),
        FILE,
    )
    where = recover.add_argument_group("where the run's calls went")
    where.add_argument("--region", help="region id (default: the plan's)")
    where.add_argument("--endpoint", help="endpoint URL")
    where.add_argument("--profile", help="aliyun CLI profile name in ~/.aliyun/config.json")
    add_state_dir(recover)


def _add_retry_command(commands: _Commands) -> None:
    """retry: a new run of a finished run's plan where it did not succeed."""
    retry = commands.add_parser(
        "retry",
        help="run a finished run's plan again on its instances that did not succeed",
        description="Start a new run of RUN's plan (as its journal recorded it) on exactly "
        "RUN's instances with the --only outcomes; one that succeeded is never among them. "
        "Its calls go where RUN's went, unless --endpoint, --region or --profile say "
        "otherwise. Nothing to retry: exit 0.",
    )
    retry.add_argument("run", metavar="RUN", help="the finished run's id")
    retry.add_argument(
        "--only",
        metavar="OUTCOMES",
        help="the outcomes to retry, comma-separated, of failed, undelivered, not_sent, "
        "stopped (default: failed,undelivered,not_sent)",
    )
    add_child_options(retry)
    add_approvals(retry)


def _add_exec_command(commands: _Commands) -> None:
    """exec: one command on the fleet without a plan file (docs/operator-commands.md)."""
    exe = commands.add_parser(
        "exec",
        help="run one command without a plan file: exec --tag app=web -- uptime",
        description="Run SCRIPT (everything after --) on the selected instances, as a run "
        "of the plan these flags make: checked like a plan, journalled (status, stop and "
        "resume work on it), one live run per command. On a terminal it asks first.",
    )
    exe.add_argument(
        "script", nargs=argparse.REMAINDER, metavar="-- SCRIPT", help="the script, after --"
    )
    where = exe.add_argument_group(
        "which instances: each --instance, and those with every --tag; then --zone, --exclude"
    )
    for flag, metavar, meaning in (
        ("--tag", "KEY=VALUE", "instances with this tag (repeat: all must match)"),
        ("--instance", "ID", "this instance too (repeat for more)"),
        ("--zone", "ZONE", "only instances in this zone (repeat for more)"),
        ("--exclude", "ID", "never this instance (repeat for more)"),
    ):
        where.add_argument(flag, action="append", default=[], metavar=metavar, help=meaning)
    what = exe.add_argument_group("the command (docs/plan-reference.md, command:)")
    what.add_argument("--script", dest="script_file", metavar="FILE", help="instead of -- SCRIPT")
    what.add_argument("--type", help="RunShellScript (default), RunBatScript, RunPowerShellScript")
    what.add_argument("--timeout", metavar="SECONDS", help="per instance (default 60)")
    what.add_argument("--user", help="the user it runs as (default: the agent's)")
    what.add_argument("--working-dir", metavar="DIR", help="the directory it runs in")
    what.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="fills {{KEY}}"
    )
    waves = exe.add_argument_group("waves and gates (each applies to every wave)")
    waves.add_argument("--canary", metavar="N", help="a first wave of N (or N%%), then the rest")
    waves.add_argument("--waves", metavar="SIZES", help="wave sizes, e.g. 1,10%%,100%%")
    waves.add_argument("--max-errors", metavar="N|P%", help="errors a wave tolerates (0)")
    waves.add_argument("--max-concurrency", metavar="N|P%", help="instances of a wave at once")
    exe.add_argument("--name", help="the plan's name (default: exec- and a digest of the command)")
    exe.add_argument(
        "--print-plan", action="store_true", help="print the plan as YAML and stop (no call)"
    )
    exe.add_argument("-y", "--yes", action="store_true", help="do not ask on a terminal")
    add_script_dirs(exe)
    add_target_options(exe)
    exe.add_argument(
        "--ignore-quota", action="store_true", help="start even if the daily quota cannot cover it"
    )
    exe.add_argument(
        "--new", action="store_true", help="start anew although its last run is interrupted"
    )
    add_allow_concurrent(exe)
    add_output_options(exe)
    add_approvals(exe)


def _add_rollback_command(commands: _Commands) -> None:
    """rollback: a finished run's `rollback:` on the instances it touched."""
    rollback = commands.add_parser(
        "rollback",
        help="run a finished run's rollback: on the instances it touched",
        description="Start a new run of RUN's rollback: (its plan as the journal recorded "
        "it) on exactly the instances RUN touched: succeeded, failed or stopped, never "
        "one it did not reach. Its calls go where RUN's went, unless --endpoint, --region "
        "or --profile say otherwise. Nothing touched: exit 0.",
    )
    rollback.add_argument("run", metavar="RUN", help="the finished run's id")
    add_child_options(rollback)
    add_state_dir(rollback)
    rollback.set_defaults(approve=[], approve_all=False)  # a rollback has no approval


def _add_journal_commands(commands: _Commands) -> None:
    """status, runs, stop, approve: a run's journal, from any shell."""
    status = commands.add_parser(
        "status",
        help="where a run stands (read-only; works while it runs)",
        description="Show a run's state from its journal: waves, outcomes, what is in flight.",
    )
    status.add_argument("run", metavar="RUN", nargs="?", help="the run id (default: the latest)")
    add_state_dir(status)
    add_json_flag(status)

    runs = commands.add_parser("runs", help="list the runs in the state dir, newest first")
    add_state_dir(runs)
    add_json_flag(runs)

    show = commands.add_parser(
        "show",
        help="a run in detail, or one instance of it (read-only)",
        description="Show what the journal of RUN knows: its waves, times and gate decisions; "
        "with INSTANCE, that instance's outcome, codes, times, invocation, verify result and "
        "output (and where its whole output is, if the run kept it with --output-dir).",
    )
    show.add_argument("run", metavar="RUN", help="the run id")
    show.add_argument("instance", metavar="INSTANCE", nargs="?", help="an instance id of the run")
    add_state_dir(show)
    add_json_flag(show)

    stop = commands.add_parser(
        "stop",
        help="stop a run: nothing more is sent, StopInvocation for what runs",
        description="Ask the process running RUN to stop it and wait until it has; when "
        "that process is gone, stop what the run sent, from here.",
    )
    stop.add_argument("run", metavar="RUN", help="the run id")
    stop.add_argument(
        "--wait",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for the running process to stop (default 300)",
    )
    add_state_dir(stop)

    approve = commands.add_parser(
        "approve",
        help="approve a wave of a run waiting in another shell or CI job",
        description="Let a run waiting for the approval of WAVE go on (or halt it, "
        "with --deny). RUN is the run id the run printed when it started.",
    )
    approve.add_argument("run", metavar="RUN", help="the run id")
    approve.add_argument("wave", metavar="WAVE", help="the wave whose gate waits")
    approve.add_argument("--deny", action="store_true", help="refuse: the run halts (exit 3)")
    add_state_dir(approve)


def _add_offline_commands(commands: _Commands) -> None:
    """plan, validate, instances, sim: look before a run, or serve the simulator."""
    dry = commands.add_parser(
        "plan",
        help="dry run: resolve targets, show waves, batches, calls, quota and time",
        description="Show what `run` would do, resolving targets through real calls, "
        "without sending any RunCommand.",
    )
    completes(dry.add_argument("plan", help="the plan file (YAML)"), FILE)
    add_json_flag(dry)
    add_script_dirs(dry)
    add_target_options(dry)
    add_overrides(dry)

    validate = commands.add_parser(
        "validate",
        help="check plan files offline (no network)",
        description="Check plans against every RunCommand rule; exit 0 if all are valid, "
        "2 otherwise.",
    )
    plans = validate.add_argument("plans", nargs="+", metavar="PLAN", help="plan files (YAML)")
    completes(plans, FILE)
    add_json_flag(validate)
    add_script_dirs(validate)

    instances = commands.add_parser(
        "instances",
        help="list instances and their Cloud Assistant status",
        description="List instances (DescribeInstances) with their Cloud Assistant status.",
    )
    add_target_options(instances)
    instances.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only instances with this tag (repeat: all must match)",
    )
    instances.add_argument("--zone", help="only instances in this zone")
    instances.add_argument(
        "--limit",
        type=int,
        help="instances to list one by one (default 20; with --json: all)",
    )
    add_json_flag(instances)

    completion = commands.add_parser(
        "completion",
        help="print the shell completion script (bash or zsh)",
        description="Print the completion script for SHELL on stdout "
        '(docs/operator-commands.md, "Shell completion", says where to put it).',
    )
    completion.add_argument("shell", metavar="SHELL", choices=SHELLS, help="bash or zsh")

    sim = commands.add_parser(
        "sim",
        help="run the ECS API simulator",
        description="Serve the ECS API simulator on loopback until interrupted.",
    )
    completes(sim.add_argument("--fleet", help="fleet file (default: the demo fleet)"), FILE)
    sim.add_argument("--port", type=int, default=0, help="port (0 = any free port)")
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")


def dispatch(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    # Library warnings as readable lines on stderr; `run` and `resume` choose again.
    configure_logging(fmt="console", verbosity=0)
    return _COMMANDS[args.command](args)
