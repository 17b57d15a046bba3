"""The ECS API simulator: the real wire protocol, a simulated fleet.

`serve(fleet)` runs it on a loopback port for tests and the demo; `orchestrator sim`
runs it as a server. It imports nothing of the client (`orchestrator.ecs`) but the API
facts in `orchestrator.ecs.codes`: a bug shared by both sides would be invisible.
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
    "RunningSimulator",
    "Simulation",
    "ThrottleSpec",
    "default_fleet",
    "load_fleet",
    "run_forever",
    "serve",
]
