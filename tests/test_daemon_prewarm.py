"""Pre-warm windows from intents are honoured by the daemon.

Spec: inference/llm (shipped gpu-fleet policy: prewarm weekdays 08:00 UTC for
10h, idle after 1h) sits at zero replicas with no traffic at all. The daemon
wakes it when the window opens, not before, keeps it warm through the idle
window while the window is open, and lets the idle rule sleep it after the
window closes. No request ever arrives: the schedule alone drives it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from opsagent.audit import AuditFilter
from opsagent.daemon.runner import Daemon, DaemonOptions

REPO = Path(__file__).resolve().parents[1]

QUIET_LLM = """
name: quiet-llm
start: 2026-01-05T07:00:00Z
duration: 14h
nodes:
  - name: gpu-a
    gpus:
      - {model: NVIDIA-A100-SXM4-80GB, memory_mib: 81920, count: 2, link: 16, switch: "0", numa: 0}
workloads:
  - namespace: inference
    name: llm
    image: registry.internal/inference/vllm-llama:0.9.2
    replicas: 0
    gpus: 2
    tensor_parallel: true
    cold_start: {image_pull: 60s, model_load: 120s}
    traffic:
      points: {"00:00": 0}
"""


def _writes(daemon: Daemon, tool: str) -> list:
    records = daemon.runtime.audit.list(AuditFilter(kind="result", tool=tool, limit=1000))
    return sorted((r for r in records if r.outcome == "ok"), key=lambda r: r.time)


def test_prewarm_window_wakes_then_idle_rule_sleeps_after_it_closes(tmp_path: Path) -> None:
    scenario = tmp_path / "quiet.yaml"
    scenario.write_text(QUIET_LLM)
    daemon = Daemon(DaemonOptions(cluster=f"sim:{scenario}", policies=REPO / "policies", playbooks=REPO / "playbooks",
                                  db=tmp_path / "ops.db", interval=300, sim_speed=0, cycles=12 * 14))
    daemon.run(install_signals=False)

    wakes = _writes(daemon, "wake_workload")
    assert len(wakes) == 1 and wakes[0].actor == "daemon"
    woke_at = wakes[0].time
    assert datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc) <= woke_at <= datetime(2026, 1, 5, 8, 15, tzinfo=timezone.utc)

    sleeps = _writes(daemon, "sleep_workload")
    assert len(sleeps) == 1, "slept inside the pre-warm window, or never after it"
    # not while the window (08:00-18:00) is open, even though no request ever came
    assert sleeps[0].time >= datetime(2026, 1, 5, 18, 0, tzinfo=timezone.utc)
    assert daemon.runtime.observe().workload("inference/llm").replicas == 0
