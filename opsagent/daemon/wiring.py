"""What the daemon adds on top of an opened `Runtime`.

The runtime (opsagent.runtime) opens cluster, policy, audit, approvals and
gate, and builds the agent; this module only adds the wake proxy's activity
merged into snapshots on a real cluster, and a quick Ollama probe. It
decides nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from opsagent.model import Snapshot
from opsagent.wake.activity import activity_path_for
from opsagent.runtime import Runtime


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


def ollama_available(host: str, *, timeout: float = 1.0) -> bool:
    """True when Ollama at `host` lists its models within `timeout` seconds (see opsagent.agent.server)."""
    from opsagent.agent.config import AgentConfig
    from opsagent.agent.server import ServerError, list_models

    try:
        list_models(AgentConfig(ollama_host=host.rstrip("/")), timeout=timeout)
    except ServerError:
        return False
    return True
