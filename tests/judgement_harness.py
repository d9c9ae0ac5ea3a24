"""The real daemon path over a simulated cluster, for the judgement tests.

`Daemonish` opens the runtime (shipped policies, an SQLite audit file, the
approval queue, the gate) over a SimCluster and the offline agent with the
shipped playbooks, and runs reconcile cycles of five simulated minutes: the
same parts and history (`runtime.action_history`) the daemon uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsagent.agent import RunReport
from opsagent.audit import AuditFilter
from opsagent.cluster.sim import Scenario, SimCluster
from opsagent.model import ToolCall
from opsagent.runtime import build_agent, open_runtime

REPO = Path(__file__).resolve().parents[1]
A100 = "NVIDIA-A100-SXM4-80GB"


class Daemonish:
    def __init__(self, tmp: Path, scenario: dict[str, Any], *, config: Any = None) -> None:
        self.sim = SimCluster(Scenario.model_validate({"name": "judgement", "seed": 5, **scenario}))
        db = tmp / "ops.db"
        self.runtime = open_runtime(policies=REPO / "policies", db=db, cluster_obj=self.sim, clock=self.sim.clock)
        self.agent = build_agent(self.runtime, db=db, playbooks=REPO / "playbooks", model=None, config=config)
        self.reports: list[RunReport] = []

    def cycles(self, minutes: float) -> list[RunReport]:
        out = []
        for _ in range(int(minutes // 5)):
            self.sim.advance(300)
            out.extend(self.agent.reconcile_once())
        self.reports.extend(out)
        return out

    def person(self, tool: str, args: dict[str, Any], *, actor: str) -> Any:
        return self.runtime.gate.submit(ToolCall(tool=tool, args=args, actor=actor, channel="cli"))

    def results(self, tool: str | None = None) -> list[Any]:
        rows = self.runtime.audit.list(AuditFilter(kind="result", tool=tool, limit=10_000))
        return sorted(rows, key=lambda r: r.id)

    def runs(self, text: str) -> list[Any]:
        return [r for r in self.runtime.audit.list(AuditFilter(kind="run", limit=10_000)) if text in (r.summary or "")]

    def close(self) -> None:
        self.agent.close()


def gpu_node(name: str = "gpu-a", count: int = 2, *, link: int = 16, switch: str = "0", **rest: Any) -> dict[str, Any]:
    return {"name": name, "gpus": [{"model": A100, "count": count, "link": link, "switch": switch}], **rest}


def image(ref: str, tag: str) -> str:
    return f"registry.internal/{ref}:{tag}"
