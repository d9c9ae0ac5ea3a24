"""The gate under attack: "at most once" when two processes drive the same call.

Two processes can hold the same agent run at once (a person approves in Slack, and the Slack app resumes
the run while the daemon's cycle resumes it too): they then submit the same calls under the same run id
and call ids. The gate's audit keys are unique, but a second insert of a key is silently skipped, so
"nobody recorded a result yet" is no claim: both could decide and both could write. Real gate, policy,
audit log and simulator; the second process is played by a second submit arriving while the first is
between its proposal and its decision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsagent.model import ToolCall

REPO = Path(__file__).resolve().parents[1]


class Interleaving:
    """The gate's cluster, counting restarts; `between` runs once, when the first submit reads the cluster
    to decide (after its proposal row, before its decision row)."""

    def __init__(self, inner: Any) -> None:
        self._inner, self.restarts, self.between = inner, 0, None

    def _step(self) -> None:
        step, self.between = self.between, None
        if step is not None:
            step()

    def snapshot(self):
        self._step()
        return self._inner.snapshot()

    def snapshot_of(self, refs):   # the gate's narrowed read of the workloads a call names
        self._step()
        return self._inner.snapshot_of(refs)

    def restart_rollout(self, **kw):
        self.restarts += 1
        return self._inner.restart_rollout(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_the_same_call_from_two_processes_at_once_runs_once(tmp_path: Path) -> None:
    from opsagent.runtime import open_runtime

    rt = open_runtime(cluster="sim:demo", policies=REPO / "policies", db=tmp_path / "ops.db")
    gate = rt.gate
    cluster = Interleaving(gate.cluster)
    gate.cluster = cluster
    call = ToolCall(tool="restart_rollout", args={"namespace": "render", "name": "render-ui"}, actor="erin",
                    id="s3c0")
    seen: dict = {}
    cluster.between = lambda: seen.setdefault("second", gate.submit(call, run_id="finding:x"))
    first = gate.submit(call, run_id="finding:x")
    assert cluster.restarts == 1, (first, seen["second"])
    assert sorted([first.status, seen["second"].status]) == ["error", "ok"]
    loser = first if first.status == "error" else seen["second"]
    assert "another process" in loser.message and loser.data.get("retryable") is False
    again = gate.submit(call, run_id="finding:x")             # afterwards: the one recorded result, replayed
    assert again.data.get("replayed") and again.status == "ok" and cluster.restarts == 1
