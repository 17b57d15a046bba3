"""Fleet files: loading, seeded generation, behaviour rules and validation messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.sim import FleetError, default_fleet, load_fleet
from orchestrator.sim._agent import Span, plan_run
from orchestrator.sim._spec import FaultSpec

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "plans" / "fleets" / "demo.yaml"
SMALL = ROOT / "plans" / "fleets" / "small.yaml"

GROUP = """
region: cn-hangzhou
seed: 11
generate:
  - {count: 30, zones: [cn-hangzhou-h, cn-hangzhou-i, cn-hangzhou-j], tags: {app: web},
     offline_rate: 0.2, stopped_rate: 0.1, old_agent_rate: 0.1}
"""


def test_demo_fleet_shape() -> None:
    """The demo fleet has ~300 instances over three zones, a few offline and stopped."""
    fleet = load_fleet(DEMO)
    assert len(fleet.instances) == 300
    assert {i.zone for i in fleet.instances} == {"cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"}
    assert 0 < sum(i.agent == "offline" for i in fleet.instances) < 20
    assert 0 < sum(i.status == "Stopped" for i in fleet.instances) < 20
    assert sum(i.os == "windows" for i in fleet.instances) == 10
    assert fleet.time_scale == 0.05


def test_default_fleet_is_the_packaged_demo_and_plans_copy_matches() -> None:
    """default_fleet() loads the packaged demo, whose text equals plans/fleets/demo.yaml."""
    packaged = ROOT / "orchestrator" / "sim" / "fleets" / "demo.yaml"
    assert packaged.read_text() == DEMO.read_text()
    assert default_fleet().instances == load_fleet(DEMO).instances


def test_small_fleet_loads() -> None:
    """The test fleet loads with its readable IDs and rules."""
    fleet = load_fleet(SMALL)
    ids = [i.instance_id for i in fleet.instances]
    assert "i-web1" in ids
    assert "i-noagent1" in ids
    noagent = next(i for i in fleet.instances if i.instance_id == "i-noagent1")
    assert noagent.agent_version == ""


def test_generation_is_deterministic_and_ids_look_real() -> None:
    """The same file yields the same instances; IDs are i- plus 20 lowercase alnum chars."""
    first, second = load_fleet(GROUP), load_fleet(GROUP)
    assert first.instances == second.instances
    for inst in first.instances:
        assert re.fullmatch(r"i-[a-z0-9]{20}", inst.instance_id)
    other = load_fleet(GROUP.replace("seed: 11", "seed: 12"))
    assert {i.instance_id for i in other.instances}.isdisjoint(
        {i.instance_id for i in first.instances}
    )


def test_round_robin_zones_and_rates() -> None:
    """Round-robin spreads zones evenly; rates produce some offline/stopped/old agents."""
    fleet = load_fleet(GROUP)
    zones = [i.zone for i in fleet.instances]
    assert zones[:3] == ["cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"]
    assert zones.count("cn-hangzhou-h") == 10
    assert any(i.agent == "offline" for i in fleet.instances)
    assert any(i.status == "Stopped" for i in fleet.instances)
    assert any(i.agent_version == "2.2.0.106" for i in fleet.instances)
    assert [i.name for i in fleet.instances][:2] == ["node-1-01", "node-1-02"]


def test_changing_one_rate_keeps_ids() -> None:
    """Changing a rate does not reshuffle the IDs and zones of a group."""
    base = load_fleet(GROUP)
    changed = load_fleet(GROUP.replace("offline_rate: 0.2", "offline_rate: 0.5"))
    assert [i.instance_id for i in base.instances] == [i.instance_id for i in changed.instances]


def test_keys_throttle_faults_quotas() -> None:
    """The wire sections map onto _spec.py's dataclasses; quotas get their defaults."""
    fleet = load_fleet(
        """
keys:
  - {access_key_id: ak1, access_key_secret: s1}
  - {access_key_id: ak2, access_key_secret: s2, security_token: tok}
throttle: {qps: 5, burst: 10, per_action: {RunCommand: 2}}
faults: {seed: 3, error_rate: 0.1, actions: [RunCommand]}
quotas: {commands: 7}
"""
    )
    assert [k.access_key_id for k in fleet.keys] == ["ak1", "ak2"]
    assert fleet.keys[1].security_token == "tok"
    assert "s1" not in repr(fleet.keys)
    assert fleet.throttle.qps == 5
    assert fleet.throttle.per_action["RunCommand"] == 2
    assert fleet.faults == FaultSpec(seed=3, error_rate=0.1, actions=frozenset({"RunCommand"}))
    assert fleet.quotas.commands == 7
    assert fleet.quotas.invocations_daily == 10_000
    assert fleet.quotas.max_instances_per_call == 50
    assert fleet.keys != ()
    assert load_fleet("region: cn-hangzhou").keys == ()


def test_behaviour_rules_merge_in_order() -> None:
    """Rules matched by tag or id override the default; later rules win."""
    fleet = load_fleet(SMALL)
    by_id = {i.instance_id: i for i in fleet.instances}
    web = fleet.behaviour.for_instance("i-web1", by_id["i-web1"].tags)
    legacy = fleet.behaviour.for_instance("i-legacy1", by_id["i-legacy1"].tags)
    hang = fleet.behaviour.for_instance("i-hang1", by_id["i-hang1"].tags)
    assert web.output == "nginx version: nginx/1.27.0\n"
    assert legacy.fail_rate == 1.0
    assert legacy.fail_exit_code == 127
    assert hang.hang_rate == 1.0
    assert web.duration == Span(2.0, 2.0)


def test_plan_run_is_seeded() -> None:
    """A run plan depends only on (seed, invoke id, instance id, run)."""
    behaviour = load_fleet(DEMO).behaviour.default
    one = plan_run(behaviour, seed=1, invoke_id="t-1", instance_id="i-1", run=0)
    assert one == plan_run(behaviour, seed=1, invoke_id="t-1", instance_id="i-1", run=0)
    assert 2 <= one.duration <= 6
    others = {
        plan_run(behaviour, seed=1, invoke_id="t-1", instance_id=f"i-{n}", run=0).duration
        for n in range(10)
    }
    assert len(others) > 1


def test_load_from_path_string(tmp_path: Path) -> None:
    """A string naming an existing file is read as a path."""
    path = tmp_path / "f.yaml"
    path.write_text("region: cn-beijing\n")
    assert load_fleet(str(path)).region == "cn-beijing"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "generate:\n  - {count: 3, zones: []}",
            "fleet.generate[0].zones: must be a non-empty list",
        ),
        ("generate:\n  - {count: 3}", "fleet.generate[0].zones: must be a non-empty list"),
        (
            "generate:\n  - {count: 0, zones: [cn-hangzhou-h]}",
            "fleet.generate[0].count: must be >= 1",
        ),
        (
            "generate:\n  - {count: 1, zones: [cn-beijing-a]}",
            "fleet.generate[0].zones: zone 'cn-beijing-a' is not in region cn-hangzhou",
        ),
        (
            "generate:\n  - {count: 1, zones: [cn-hangzhou-h], offline_rate: 2}",
            "fleet.generate[0].offline_rate: must be between 0 and 1",
        ),
        ("time_scale: 0", "fleet.time_scale: must be > 0"),
        ("time_scale: fast", "fleet.time_scale: must be a number"),
        ("regoin: cn-hangzhou", "fleet.regoin: unknown key"),
        ("instances:\n  - {id: i-1}", "fleet.instances[0].zone: is required"),
        ("instances:\n  - {id: x-1, zone: cn-hangzhou-h}", "fleet.instances[0].id: must look like"),
        (
            "instances:\n  - {id: i-1, zone: cn-hangzhou-h}\n  - {id: i-1, zone: cn-hangzhou-h}",
            "fleet.instances: duplicate instance id i-1",
        ),
        (
            "instances:\n  - {id: i-1, zone: cn-hangzhou-h, status: Broken}",
            "fleet.instances[0].status: must be one of",
        ),
        ("agent_mode: remote", "fleet.agent_mode: must be one of simulated, local"),
        (
            "quotas: {max_instances_per_call: 101}",
            "fleet.quotas.max_instances_per_call: must be <= 100",
        ),
        ("keys:\n  - {access_key_id: a}", "fleet.keys[0].access_key_secret: is required"),
        ("behaviour:\n  rules:\n    - {fail_rate: 1}", "fleet.behaviour.rules[0].match: must name"),
        (
            "behaviour:\n  default: {duration: {min: 5, max: 1}}",
            "fleet.behaviour.default.duration.max: must be >= min",
        ),
        (
            "behaviour:\n  default: {exit_code: one}",
            "fleet.behaviour.default.exit_code: must be an integer",
        ),
        ("- a list", "fleet: must be a mapping"),
        ("region: [", "fleet: not valid YAML"),
    ],
)
def test_validation_messages_name_the_field(text: str, message: str) -> None:
    """Each broken rule is reported with the path of the field at fault."""
    with pytest.raises(FleetError) as caught:
        load_fleet(text)
    assert str(caught.value).startswith(message), str(caught.value)


def test_missing_file_is_named() -> None:
    """A string that names no file and is no fleet says so."""
    with pytest.raises(FleetError, match=r"plans/fleets/nope\.yaml: no such fleet file"):
        load_fleet("plans/fleets/nope.yaml")
    with pytest.raises(FleetError, match=r"nope\.yaml: cannot read the fleet file"):
        load_fleet(Path("plans/fleets/nope.yaml"))


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    """An error in a file starts with the file's path."""
    path = tmp_path / "bad.yaml"
    path.write_text("time_scale: -1\n")
    with pytest.raises(FleetError, match=r"bad\.yaml: fleet\.time_scale: must be"):
        load_fleet(path)


# --- sts: roles, OIDC providers, what the metadata service and the URI serve --------


def test_sts_section_is_read():
    fleet = load_fleet(
        """
sts:
  credential_ttl: 5
  roles:
    - {name: a, trusted_keys: [LTAI1], oidc_providers: [gh]}
    - {name: b, trusted_roles: [a]}
  oidc_providers:
    - {name: gh, issuer: "https://gh.example", key: k-never-shown, audience: sts.aliyuncs.com}
  instance_role: a
  uri_role: b
"""
    )
    sts = fleet.sts
    assert sts.credential_ttl == 5
    role = sts.role("a")
    assert role is not None
    assert role.trusted_keys == frozenset({"LTAI1"})
    assert (sts.instance_role, sts.uri_role) == ("a", "b")
    provider = sts.provider("gh")
    assert provider is not None
    assert provider.audience == "sts.aliyuncs.com"
    assert "k-never-shown" not in repr(fleet)


@pytest.mark.parametrize(
    ("sts", "where"),
    [
        ("{credential_ttl: 0}", "credential_ttl"),
        ("{roles: [{trusted_keys: [x]}]}", "name"),
        ("{roles: [{name: a, trusted_roles: [nobody]}]}", "trusted_roles"),
        ("{roles: [{name: a, oidc_providers: [nobody]}]}", "oidc_providers"),
        ("{roles: [{name: a}], instance_role: b}", "instance_role"),
        ("{oidc_providers: [{name: gh, key: k}]}", "issuer"),
        ("{roles: [{name: a}, {name: a}]}", "unique"),
    ],
)
def test_sts_section_errors_name_their_place(sts: str, where: str):
    with pytest.raises(FleetError, match=where):
        load_fleet(f"sts: {sts}\n")
