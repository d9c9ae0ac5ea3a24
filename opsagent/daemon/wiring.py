"""What the daemon adds on top of an opened `Runtime`.

The runtime (opsagent.runtime) opens cluster, policy, audit, approvals and
gate, and builds the agent; this module only adds the wake proxy's activity
merged into snapshots on a real cluster, and a quick Ollama probe. It
decides nothing.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence
from typing import Callable, ParamSpec

from opsagent.model import Snapshot, WorkloadRef
from opsagent.wake.activity import activity_path_for
from opsagent.runtime import Runtime

P = ParamSpec("P")


def make_observe(runtime: Runtime, *, db: Path) -> Callable[[], Snapshot]:
    """Snapshot the cluster; on a real cluster, merge the wake proxy's last-request times."""
    if runtime.sim is None:
        return with_activity(runtime, runtime.observe, db=db)
    return runtime.observe


def make_observe_of(runtime: Runtime, *, db: Path) -> Callable[[Sequence[WorkloadRef]], Snapshot]:
    """`make_observe` narrowed to some workloads (`Runtime.observe_of`), with the same request times merged."""
    if runtime.sim is None:
        return with_activity(runtime, runtime.observe_of, db=db)
    return runtime.observe_of


def with_activity(runtime: Runtime, read: Callable[P, Snapshot], *, db: Path) -> Callable[P, Snapshot]:
    """`read`, its snapshot merged with the wake proxy's last-request times (when the proxy has written any)."""
    path = activity_path_for(db)

    def observe(*args: P.args, **kwargs: P.kwargs) -> Snapshot:
        snapshot = read(*args, **kwargs)
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
