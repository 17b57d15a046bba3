"""`--json` and `orchestrator show` through the real CLI (issue 12).

`python -m orchestrator` runs in subprocesses against a simulator the test starts: a run
that passes (a verify, an exclusion, skipped instances, `--output-dir`) and one that
halts. Each `--json` document is read back with `json.loads` (the whole stdout: nothing
else may be on it) and its fields checked; every field docs/json-output.md documents
appears in the documents, and every field they hold is documented. `show` is checked in
both forms, for people and as JSON.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from orchestrator.api import InstanceStatus
from orchestrator.ecs import Instance
from orchestrator.journal import RunHeader, WaveRow, create_journal, journal_path
from orchestrator.rollout import BatchAttempt, BatchDispatched, client_token
from orchestrator.sim import RunningSimulator, load_fleet, serve
from tests.e2e.cli_io import run_id_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parents[2]
SMALL = ROOT / "plans" / "fleets" / "small.yaml"
REFERENCE = ROOT / "docs" / "json-output.md"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# app=web: i-web1, i-web2, i-web3 (excluded), i-offline1 and i-stopped1 (skipped).
PASSES = """\
name: json-web
targets: {tags: {app: web}, exclude: [i-web3]}
command:
  content: nginx -v
  timeout: 30
waves:
  - {name: canary, size: 1, verify: {content: nginx -v}}
  - {name: rest, size: 100%}
limits:
  qps: {RunCommand: 50, Describe: 100}
"""

# app=worker: i-legacy1 fails (exit 127), i-hang1 hangs: the first wave breaches.
HALTS = """\
name: json-breach
targets: {tags: {app: worker}}
command:
  content: nginx -v
  timeout: 86400
waves:
  - {name: first, size: 2}
  - {name: rest, size: 100%}
limits:
  qps: {RunCommand: 50, Describe: 100}
"""

BROKEN = """\
name: json-broken
targets: {tags: {app: web}}
command: {content: echo hi, timeout: 30}
waves:
  - {name: canary, size: 1, pause: -5}
"""


@dataclass
class Session:
    """What the commands printed, by command, and the run ids."""

    home: Path
    passed: str = ""
    halted: str = ""
    done: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def document(self, name: str) -> dict[str, Any]:
        result = self.done[name]
        loaded: dict[str, Any] = json.loads(result.stdout)  # the whole stdout is one document
        return loaded


def env_for(home: Path, sim: RunningSimulator) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
        "ORCHESTRATOR_STATE_DIR": str(home / "state"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": sim.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sim.access_key_secret,
    }


async def cli(
    home: Path, sim: RunningSimulator, *args: str, where: bool = False
) -> subprocess.CompletedProcess[str]:
    """The CLI in a worker thread (the simulator keeps serving), stdout and stderr apart."""
    endpoint = ["--endpoint", sim.url, "--region", sim.region] if where else []

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "orchestrator", *args, *endpoint],
            capture_output=True,
            text=True,
            env=env_for(home, sim),
            cwd=ROOT,
            timeout=120,
            check=False,
        )

    return await anyio.to_thread.run_sync(call)


async def at_once(
    done: dict[str, subprocess.CompletedProcess[str]],
    commands: dict[str, tuple[str, ...]],
    home: Path,
    sim: RunningSimulator,
    *,
    where: bool = False,
) -> None:
    """Each of `commands` run side by side, its result in `done` under its name."""

    async def one(name: str, args: tuple[str, ...]) -> None:
        done[name] = await cli(home, sim, *args, where=where)

    async with anyio.create_task_group() as group:
        for name, args in commands.items():
            group.start_soon(one, name, args)


@pytest.fixture(scope="module")
async def session(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Session]:
    """Both runs, then every --json command once (and `show` for people)."""
    home = tmp_path_factory.mktemp("json")
    for name, text in (("passes.yaml", PASSES), ("halts.yaml", HALTS), ("broken.yaml", BROKEN)):
        (home / name).write_text(text)
    fleet = load_fleet(SMALL.read_text().replace("time_scale: 0.01", "time_scale: 0.001"))
    async with serve(fleet) as sim:
        found = Session(home)
        done = found.done
        passes, halts = str(home / "passes.yaml"), str(home / "halts.yaml")
        # The read-only commands do not depend on one another: each group runs at once
        # (a CLI process spends most of its time starting up, on a core of its own).
        await at_once(
            done,
            {
                "plan": ("plan", passes, "--json"),
                "plan-text": ("plan", passes),
                "instances": ("instances", "--json"),
            },
            home,
            sim,
            where=True,
        )
        done["validate"] = await cli(
            home, sim, "validate", passes, str(home / "broken.yaml"), "--json"
        )
        done["run-passes"] = await cli(
            home, sim, "run", passes, "--output-dir", str(home / "out"), where=True
        )
        done["run-halts"] = await cli(home, sim, "run", halts, where=True)
        found.passed = run_id_of(done["run-passes"].stdout)
        found.halted = run_id_of(done["run-halts"].stdout)
        reads: dict[str, tuple[str, ...]] = {"runs": ("runs", "--json")}
        for tag, run in (("passed", found.passed), ("halted", found.halted)):
            reads[f"status-{tag}"] = ("status", run, "--json")
            reads[f"show-{tag}"] = ("show", run, "--json")
            reads[f"show-{tag}-text"] = ("show", run)
        for instance in ("i-web1", "i-offline1"):
            reads[f"show-{instance}"] = ("show", found.passed, instance, "--json")
            reads[f"show-{instance}-text"] = ("show", found.passed, instance)
        reads["show-unknown"] = ("show", found.passed, "i-nope", "--json")
        reads["status-unknown"] = ("status", "no-such-run", "--json")
        await at_once(done, reads, home, sim)
        yield found


# --- each document ------------------------------------------------------------------


def assert_times(value: Any) -> None:
    """Every `*_at` / `*_time` field is null or ISO 8601 UTC with a Z."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith(("_at", "_time")) or key == "at":
                assert item is None or ISO_UTC.match(item), (key, item)
            assert_times(item)
    elif isinstance(value, list):
        for item in value:
            assert_times(item)


async def test_the_runs_passed_and_halted(session: Session):
    assert session.done["run-passes"].returncode == 0, session.done["run-passes"].stderr
    assert session.done["run-halts"].returncode == 3, session.done["run-halts"].stderr


async def test_plan_json_has_the_numbers_the_table_shows(session: Session):
    done = session.done["plan"]
    assert done.returncode == 0, done.stderr
    plan = session.document("plan")
    assert plan["schema"] == "orchestrator.plan/1"
    targets = plan["targets"]
    assert (targets["selected"], targets["runnable"]) == (5, 2)
    assert targets["runnable_ids"] == ["i-web1", "i-web2"]
    assert {s["instance_id"]: s["reason"] for s in targets["skipped"]} == {
        "i-offline1": "agent_offline",
        "i-stopped1": "not_running",
    }
    assert targets["excluded"] == ["i-web3"]
    canary, rest = plan["waves"]
    assert (canary["name"], canary["size"], canary["batches"]) == ("canary", 1, 1)
    assert canary["then"] == {"verify": True, "pause_s": 0.0, "approval": False}
    assert (canary["max_errors"], canary["threshold"]) == ("0", 0)
    assert rest["then"]["verify"] is False
    assert plan["api_calls"]["run_command"] == 2
    assert plan["quota"] == {
        "invocations": 3,  # two instances, and the canary's verify
        "verify_invocations": 1,
        "invocations_daily_limit": 1000,
        "kept_commands": 0,
        "commands_limit": 20,
    }
    # The same numbers as the table: both come from one computation.
    text = session.done["plan-text"].stdout
    assert f"API calls: {plan['api_calls']['run_command']} RunCommand (at most 1 " in text
    assert f"quota: {plan['quota']['invocations']} invocations (1 of them verify runs)" in text
    assert f"{plan['time']['run_command_per_s']:g} RunCommand/s" in text


async def test_validate_json_lists_every_file_and_each_problem_and_exits_2(session: Session):
    done = session.done["validate"]
    assert done.returncode == 2, done.stderr
    # On stderr as without --json (a CI log shows them), and in the document.
    assert "broken.yaml:5: waves[0].pause: must be 0 or more seconds" in done.stderr
    document = session.document("validate")
    assert document["schema"] == "orchestrator.validate/1"
    assert document["ok"] is False
    good, bad = document["files"]
    assert good["ok"] is True
    assert (good["plan"], good["waves"], good["problems"]) == ("json-web", 2, [])
    assert bad["ok"] is False
    assert bad["plan"] is None
    (problem,) = bad["problems"]
    assert problem["file"].endswith("broken.yaml")
    assert problem["line"] == 5
    assert problem["field"] == "waves[0].pause"
    assert problem["code"]
    assert problem["message"]


async def test_instances_json_lists_every_instance_with_its_agent(session: Session):
    document = session.document("instances")
    assert document["schema"] == "orchestrator.instances/1"
    assert document["total"] == 12
    assert len(document["instances"]) == 12  # all of them: --limit only cuts the table
    by_id = {i["instance_id"]: i for i in document["instances"]}
    assert by_id["i-web1"]["agent_online"] is True
    assert by_id["i-offline1"]["agent_online"] is False
    assert by_id["i-web1"]["tags"] == {"app": "web", "env": "prod"}
    assert sum(zone["count"] for zone in document["zones"]) == 12


async def test_runs_json_lists_both_runs_newest_first(session: Session):
    document = session.document("runs")
    assert document["schema"] == "orchestrator.runs/1"
    halted, passed = document["runs"]
    assert (halted["run_id"], passed["run_id"]) == (session.halted, session.passed)
    assert (halted["state"], halted["halt_reason"], halted["exit_code"]) == (
        "finished",
        "breach",
        3,
    )
    assert passed["counts"]["succeeded"] == 2
    assert halted["alive"] is False
    assert_times(document)


async def test_status_json_says_where_each_run_stands(session: Session):
    passed, halted = session.document("status-passed"), session.document("status-halted")
    assert passed["schema"] == "orchestrator.status/1"
    assert passed["state_text"] == "finished, exit 0"
    assert passed["halt"] is None
    assert [w["name"] for w in passed["waves"]] == ["canary", "rest"]
    assert [w["state"] for w in passed["waves"]] == ["passed", "passed"]
    assert passed["batches"]["accepted"] >= 2
    assert halted["halt"]["reason"] == "breach"
    assert "wave first breached" in halted["halt"]["text"]
    assert halted["state_text"] == "halted (breach), exit 3"
    assert_times([passed, halted])


async def test_show_run_json_has_the_waves_and_the_gate_decisions(session: Session):
    document = session.document("show-passed")
    assert document["schema"] == "orchestrator.show-run/1"
    assert (document["instances"], document["skipped"]) == (2, 2)
    assert [(g["wave"], g["verdict"]) for g in document["gates"]] == [
        ("canary", "pass"),
        ("rest", "pass"),
    ]
    halted = session.document("show-halted")
    assert halted["gates"][-1]["verdict"] == "breach"
    assert halted["waves"][1]["counts"]["not_sent"] >= 1
    assert_times([document, halted])


async def test_show_run_for_people(session: Session):
    text = session.done["show-halted-text"].stdout
    assert f"run {session.halted}: plan json-breach" in text
    assert "state: halted (breach), exit 3" in text
    assert "breach: wave first breached: 1 error > max_errors 0" in text
    assert "halted (breach): wave first breached" in text
    assert re.search(r"^│ first\s+│\s+2 │ finished", text, re.MULTILINE), text


async def test_show_instance_json_has_its_result_verify_and_whole_output_file(session: Session):
    document = session.document("show-i-web1")
    assert document["schema"] == "orchestrator.show-instance/1"
    assert (document["phase"], document["wave"], document["outcome"]) == (
        "result",
        "canary",
        "succeeded",
    )
    assert document["exit_code"] == 0
    assert document["invoke_id"].startswith("t-")
    assert document["output"] == "nginx version: nginx/1.27.0\n"
    assert document["verify"]["outcome"] == "succeeded"
    kept = Path(document["output_file"])
    assert kept == session.home / "out" / "canary" / "i-web1.log"
    assert document["output_file_exists"] is True
    assert await anyio.Path(kept).read_text() == document["output"]
    assert document["skipped"] is None
    assert_times(document)


async def test_show_instance_skipped_before_dispatch_says_why(session: Session):
    document = session.document("show-i-offline1")
    assert (document["phase"], document["outcome"], document["wave"]) == ("skipped", None, None)
    assert document["skipped"]["reason"] == "agent_offline"
    text = session.done["show-i-offline1-text"].stdout
    assert "skipped before dispatch: agent_offline: Cloud Assistant agent" in text


async def test_show_instance_for_people(session: Session):
    text = session.done["show-i-web1-text"].stdout
    assert f"instance i-web1 of run {session.passed}" in text
    assert "wave: canary, zone cn-hangzhou-h" in text
    assert "outcome: succeeded (status Success, exit 0)" in text
    assert "verify: succeeded" in text
    assert "nginx version: nginx/1.27.0" in text
    assert f"whole output: {session.home / 'out' / 'canary' / 'i-web1.log'}" in text


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("show-unknown", "has no instance i-nope: it has 2 instances to run and 2 skipped"),
        ("status-unknown", "no-such-run"),
    ],
)
async def test_a_json_failure_exits_2_printing_nothing(session: Session, name: str, what: str):
    done = session.done[name]
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert what in done.stderr, done.stderr


# --- the reference ------------------------------------------------------------------

DOCUMENTS = {
    "orchestrator.runs/1": ["runs"],
    "orchestrator.status/1": ["status-passed", "status-halted"],
    "orchestrator.show-run/1": ["show-passed", "show-halted"],
    "orchestrator.show-instance/1": ["show-i-web1", "show-i-offline1"],
    "orchestrator.instances/1": ["instances"],
    "orchestrator.plan/1": ["plan"],
    "orchestrator.validate/1": ["validate"],
}


def reference() -> dict[str, dict[str, str]]:
    """docs/json-output.md: schema → documented field path → its type."""
    parts = re.split(r"^## (.+)$", REFERENCE.read_text(), flags=re.MULTILINE)
    found: dict[str, dict[str, str]] = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        schema = re.search(r"`(orchestrator\.[a-z-]+/\d+)`", heading)
        if schema is None:
            continue
        rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \|", body, flags=re.MULTILINE)
        found[schema.group(1)] = {path: kind.strip() for path, kind in rows}
    return found


def paths(value: Any, prefix: str = "") -> set[str]:
    """Every field path in `value`: `a.b`, and `a[].b` for the objects of a list."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found |= {path} | paths(item, path)
    elif isinstance(value, list):
        for item in value:
            found |= paths(item, f"{prefix}[]")
    return found


async def test_the_reference_has_a_section_for_every_schema():
    assert set(reference()) == set(DOCUMENTS)


@pytest.mark.parametrize("schema", sorted(DOCUMENTS))
async def test_every_documented_field_is_output_and_every_output_field_documented(
    session: Session, schema: str
):
    documented = reference()[schema]
    # A map (tag → value) is one field: its keys are data, not fields.
    maps = [path for path, kind in documented.items() if kind.startswith("map")]
    seen: set[str] = set()
    for name in DOCUMENTS[schema]:
        document = session.document(name)
        assert document["schema"] == schema
        seen |= {p for p in paths(document) if not any(p.startswith(f"{m}.") for m in maps)}
    assert sorted(seen - set(documented)) == [], "output but not documented"
    assert sorted(set(documented) - seen) == [], "documented but never output"


# --- an instance with no result yet: sent, or not sent yet ----------------------------

LIVE = """\
name: json-live
targets: {instances: [i-a, i-b]}
command: {content: echo hi, timeout: 30}
waves:
  - {name: first, size: 1}
  - {name: second, size: 100%}
"""


async def live_run(state: Path) -> str:
    """A journal as a live run leaves it: i-a's batch accepted, i-b not sent yet."""
    run_id = "json-live-20260501T120000Z-0001"
    instances = tuple(
        Instance(name, name, InstanceStatus.RUNNING, "cn-hangzhou-h", "cn-hangzhou", "linux")
        for name in ("i-a", "i-b")
    )
    header = RunHeader(
        run_id=run_id,
        plan_name="json-live",
        plan_path=str(state / "live.yaml"),
        plan_text=LIVE,
        plan_sha256="00" * 32,
        target={"region": "cn-hangzhou"},
        created_at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
        instances=instances,
        skipped=(),
        waves=(WaveRow(0, "first", 1, 1), WaveRow(1, "second", 1, 1)),
    )
    token = client_token(run_id, 0, 0, "")
    async with create_journal(journal_path(state, run_id), header) as writer:
        await writer.before_dispatch(BatchAttempt(run_id, 0, 0, "", token, ("i-a",)))
        at = datetime(2026, 5, 1, 12, 0, 1, tzinfo=UTC)
        writer(BatchDispatched(0, 0, "", token, "t-live0001", ("i-a",), at))
    return run_id


async def test_show_an_instance_sent_without_result_and_one_not_sent_yet(tmp_path: Path):
    run_id = await live_run(tmp_path / "state")
    fleet = load_fleet(SMALL.read_text())
    async with serve(fleet) as sim:  # only for the environment: show calls nothing
        sent = await cli(tmp_path, sim, "show", run_id, "i-a", "--json")
        pending = await cli(tmp_path, sim, "show", run_id, "i-b", "--json")
        text = await cli(tmp_path, sim, "show", run_id, "i-a")
    assert sim.stats.count("RunCommand") == 0
    a, b = json.loads(sent.stdout), json.loads(pending.stdout)
    assert (a["phase"], a["wave"], a["invoke_id"], a["outcome"]) == (
        "sent",
        "first",
        "t-live0001",
        None,
    )
    assert (a["output"], a["output_file"], a["verify"]) == (None, None, None)
    assert (b["phase"], b["wave"], b["invoke_id"]) == ("pending", "second", None)
    assert "outcome: none yet: sent (invocation t-live0001), no result yet" in text.stdout
