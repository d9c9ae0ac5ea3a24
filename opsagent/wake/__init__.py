"""The wake proxy: hold requests for sleeping workloads while they wake, then forward them."""

from opsagent.wake.activity import ActivityLog, merge_activity
from opsagent.wake.proxy import WakeProxy
from opsagent.wake.routes import Route, RouteTable, load_routes, missing_workloads, served_by_keda
from opsagent.wake.waker import GateWaker, WakeResult, Waker

__all__ = ["ActivityLog", "GateWaker", "Route", "RouteTable", "WakeProxy", "WakeResult", "Waker", "load_routes", "merge_activity",
           "missing_workloads", "served_by_keda"]
