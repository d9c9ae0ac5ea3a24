"""The reconcile daemon: observe, detect, run the agent per finding, resume decided approvals.

Public names: `Reconciler` (one cycle), `Daemon` (the loop with leader
election, signals and HTTP endpoints), `DaemonOptions`, `Metrics`.
Nothing here decides policy or writes to the cluster directly: the agent
proposes, the gate decides and executes.
"""

from opsagent.daemon.loop import CycleReport, Reconciler
from opsagent.daemon.metrics import Metrics
from opsagent.daemon.runner import Daemon, DaemonOptions

__all__ = ["CycleReport", "Daemon", "DaemonOptions", "Metrics", "Reconciler"]
