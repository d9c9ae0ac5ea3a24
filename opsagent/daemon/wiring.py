"""Build the daemon's agent and observe function from an opened `Runtime`.

The runtime (opsagent.runtime.open_runtime) opens cluster, policy, audit,
approvals and gate; this module only adds what the daemon needs on top: the
agent (checkpoints in the same SQLite file as the audit log), the wake
proxy's activity merged into snapshots on a real cluster, and a quick Ollama
probe. It decides nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import httpx

from opsagent.agent import Agent, AgentConfig
from opsagent.audit.query import AuditFilter
from opsagent.detect import Attempts, detect
from opsagent.model import Finding, Snapshot
from opsagent.runtime import Runtime


def activity_path_for(db: Path) -> Path:
    """Where the wake proxy writes last-request times: `opsagent.db` -> `opsagent.activity.db`."""
    return db.with_suffix(".activity.db")


def make_observe(runtime: Runtime, *, db: Path) -> Callable[[], Snapshot]:
    """Snapshot the cluster; on a real cluster, merge the wake proxy's last-request times."""
    if runtime.sim is not None:
        return runtime.observe
    path = activity_path_for(db)

    def observe() -> Snapshot:
        snapshot = runtime.observe()
        if not path.exists():
            return snapshot
        from opsagent.wake.activity import ActivityLog, merge_activity

        return merge_activity(snapshot, ActivityLog(path, clock=runtime.clock).last_requests())

    return observe


def make_detect(runtime: Runtime, *, window: timedelta = timedelta(days=2)) -> Callable[[Snapshot], list[Finding]]:
    """Detect with history: how often each finding was already acted on (ok writes in the audit log).

    The detectors use it for bounded retries with backoff (e.g. restart a failed
    rollout three times, then roll back); without it every retry looks like the first.
    """

    def findings(snapshot: Snapshot) -> list[Finding]:
        now = runtime.clock.now()
        return detect(snapshot, intents=runtime.policy.intents, now=now, history=action_history(runtime, since=now - window))

    return findings


def action_history(runtime: Runtime, *, since: datetime) -> dict[str, Attempts]:
    """finding id -> Attempts(attempts = ok write results, last_action_at) from the audit log."""
    from tools import get_tool

    seen: dict[str, tuple[int, datetime]] = {}
    for record in runtime.audit.list(AuditFilter(kind="result", outcome="ok", since=since, limit=100_000)):
        tool = get_tool(record.tool or "")
        if not record.finding_id or tool is None or tool.risk == "read":
            continue
        count, last = seen.get(record.finding_id, (0, record.time))
        seen[record.finding_id] = (count + 1, max(last, record.time))
    return {fid: Attempts(attempts=n, last_action_at=at) for fid, (n, at) in seen.items()}


def ollama_available(host: str, *, timeout: float = 1.0) -> bool:
    """True when GET {host}/api/tags answers 200 within `timeout` seconds."""
    try:
        return httpx.get(host.rstrip("/") + "/api/tags", timeout=timeout).status_code == 200
    except (httpx.HTTPError, OSError, ValueError):
        return False


def build_agent(runtime: Runtime, *, db: Path, playbooks: Path | None, model: str | None,
                observe: Callable[[], Snapshot] | None = None,
                detect_fn: Callable[[Snapshot], list[Finding]] | None = None, config: AgentConfig | None = None,
                planner: Any = None) -> Agent:
    """The agent the daemon runs: LLM planner when `model` is set (offline fallback built in), else offline."""
    loaded = None
    if playbooks is not None:
        from opsagent.playbooks import load_playbooks

        loaded = load_playbooks(Path(playbooks))
    if config is None:
        config = AgentConfig.from_env(model=model) if model else AgentConfig.from_env()
    settle = None
    if runtime.sim is not None:
        sim = runtime.sim
        settle = lambda: sim.advance(config.verify_interval_seconds)  # type: ignore[attr-defined]  # noqa: E731
    watch = observe or runtime.observe
    return Agent(gate=runtime.gate, policy=runtime.policy, playbooks=loaded, observe=watch,
                 detect_fn=detect_fn or make_detect(runtime), planner=planner or ("llm" if model else "offline"),
                 checkpoint_path=db, recorder=runtime.audit, clock=runtime.clock, config=config,
                 approvals=runtime.approvals, settle=settle)
