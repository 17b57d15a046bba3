"""The ECS API simulator: the real wire protocol, a simulated fleet.

`serve(fleet)` runs it on a loopback port for tests and the demo; `orchestrator sim`
runs it as a server. It imports nothing of the client (`orchestrator.ecs`), only the API facts
(`orchestrator.api`): a bug shared by both sides would be invisible.
"""

from orchestrator.sim._faults import FaultKind, Faults
from orchestrator.sim._fleet import FleetSpec, default_fleet, load_fleet
from orchestrator.sim._fleet_node import FleetError
from orchestrator.sim._server import RunningSimulator, run_forever, serve
from orchestrator.sim._simulation import Simulation
from orchestrator.sim._spec import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    FaultSpec,
    HistorySpec,
    KeySpec,
    ThrottleSpec,
)
from orchestrator.sim._sts import StsService, oidc_provider_arn, oidc_token, role_arn
from orchestrator.sim._sts_fleet import OidcProviderSpec, RoleSpec, StsSpec

__all__ = [
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_ACCESS_KEY_SECRET",
    "FaultKind",
    "FaultSpec",
    "Faults",
    "FleetError",
    "FleetSpec",
    "HistorySpec",
    "KeySpec",
    "OidcProviderSpec",
    "RoleSpec",
    "RunningSimulator",
    "Simulation",
    "StsService",
    "StsSpec",
    "ThrottleSpec",
    "default_fleet",
    "load_fleet",
    "oidc_provider_arn",
    "oidc_token",
    "role_arn",
    "run_forever",
    "serve",
]
