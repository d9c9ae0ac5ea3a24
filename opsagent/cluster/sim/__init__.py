"""The simulated GPU cluster: scenarios in, a `Cluster` on a virtual clock out.

    from opsagent.cluster.sim import SimCluster, builtin_scenario
    sim = SimCluster(builtin_scenario("demo"))
    sim.advance(3600)
    snapshot = sim.snapshot()
"""

from opsagent.cluster.sim.engine import SimCluster
from opsagent.cluster.sim.scenario import (
    Scenario,
    ScenarioError,
    builtin_names,
    builtin_scenario,
    load_scenario,
    parse_scenario,
)
from opsagent.cluster.sim.view import SimStats

__all__ = [
    "Scenario", "ScenarioError", "SimCluster", "SimStats",
    "builtin_names", "builtin_scenario", "load_scenario", "parse_scenario",
]
