"""A small simulated cluster for one agent run, under the shipped policy and playbooks.

`stage(tmp_path, scenario, minutes=..., history=...)` builds the simulator from
a scenario written in code, lets `minutes` of simulated time pass, and wires
the real gate, audit store and approval queue (from `sim_world`) over a
cluster that records every write that reaches it. Findings are detected as
the daemon detects them, with `history` standing in for what the daemon
remembers from the audit log (how often a finding was already acted on).

The scenario helpers keep cases short: `node`, `workload`, `rollout_to`,
`failing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from opsagent.agent import Agent, AgentConfig
from opsagent.cluster.sim import Scenario, SimCluster
from opsagent.detect import Attempts, detect
from opsagent.gate import Gate
from opsagent.model import Finding, Snapshot
from doubles.agent_world import SimWorld, sim_world
from doubles.cluster import RecordingCluster

A100 = "NVIDIA-A100-SXM4-80GB"
SETTLE_SECONDS = 120  # simulated time the agent lets pass before each re-check


def node(*groups: tuple[int, int, str], name: str = "gpu-a") -> dict[str, Any]:
    """A node with GPU groups of (count, PCIe link width, switch group), in device order."""
    return {"name": name, "gpus": [{"model": A100, "count": c, "link": link, "switch": s} for c, link, s in groups]}


def image(ref: str, tag: str) -> str:
    namespace, name = ref.split("/")
    return f"registry.internal/{namespace}/{name}:{tag}"


def workload(ref: str, *, tag: str = "1.0", **fields: Any) -> dict[str, Any]:
    namespace, name = ref.split("/")
    return {"namespace": namespace, "name": name, "image": image(ref, tag),
            "cold_start": {"image_pull": "30s", "model_load": "60s"}, **fields}


def rollout_to(ref: str, tag: str, *, at: str = "+1m") -> dict[str, Any]:
    return {"at": at, "rollout": {"workload": ref, "image": image(ref, tag)}}


def failing(ref: str, tag: str, mode: str) -> list[dict[str, Any]]:
    """A failure rule: every revision of `ref` with image `tag` fails in `mode`."""
    return [{"image": image(ref, tag), "mode": mode}]


@dataclass
class Stage:
    world: SimWorld
    cluster: RecordingCluster
    gate: Gate
    history: dict[str, Attempts]

    @property
    def sim(self) -> SimCluster:
        return self.world.sim

    def detect(self, snapshot: Snapshot) -> list[Finding]:
        return detect(snapshot, intents=self.world.policy.intent_book, now=self.sim.clock.now(), history=self.history)

    def finding(self, finding_id: str) -> Finding | None:
        """The finding with this id as detected now, or None when it is gone."""
        return next((f for f in self.detect(self.sim.snapshot()) if f.id == finding_id), None)

    def agent(self, planner: Any, *, config: AgentConfig | None = None) -> Agent:
        w = self.world
        return Agent(gate=self.gate, policy=w.policy, playbooks=w.playbooks, observe=self.sim.snapshot,
                     detect_fn=self.detect, planner=planner, checkpoint_path=w.tmp / "checkpoints.db",
                     recorder=w.store, clock=self.sim.clock, config=config, approvals=w.queue,
                     settle=lambda: self.sim.advance(SETTLE_SECONDS))

    def writes(self) -> list[tuple[str, dict[str, Any]]]:
        """Writes that reached the cluster (dry runs change nothing and are left out)."""
        return [(method, kwargs) for method, kwargs in self.cluster.writes if not kwargs.get("dry_run")]

    def close(self) -> None:
        self.world.close()


def stage(tmp_path: Path, scenario: dict[str, Any], *, minutes: float = 5,
          history: dict[str, Attempts] | None = None,
          prepare: Callable[[SimCluster], None] | None = None) -> Stage:
    """The cluster `minutes` into `scenario`, after `prepare` (if given) adjusted it."""
    world = sim_world(tmp_path, scenario=Scenario.model_validate({"name": "stage", "seed": 7, **scenario}))
    world.sim.advance(minutes * 60)
    if prepare is not None:
        prepare(world.sim)
    cluster = RecordingCluster(world.sim)
    gate = Gate(policy=world.policy, cluster=cluster, clock=world.sim.clock, recorder=world.store,
                approvals=world.queue, wait=world.sim.advance)
    return Stage(world=world, cluster=cluster, gate=gate, history=dict(history or {}))
