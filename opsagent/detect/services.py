"""Services that route to nothing: the `service_without_endpoints` detector.

It fires for a Service with a selector whose EndpointSlices list no ready endpoint,
in one of two ways (`details.problem`):

- `selector_matches_nothing`: no pod and no workload's pod template carries the
  selector's labels; a typo in a label is the usual cause, and the finding names the
  labels of the pods of the namespace that come closest (those that share a key);
- `no_ready_pods`: pods match, but none is ready (a crash, a probe, a pending pod:
  the other findings about those pods say which).

A Service whose workloads are all at zero replicas (asleep, on purpose or by an
autoscaler) has no endpoints by design and raises nothing: the wake proxy and KEDA
handle those. Neither problem is fixed by a tool: a selector is architecture, and a
person decides.

Pure: no I/O and no clock; `now` is passed in.
"""

from __future__ import annotations

from datetime import datetime

from opsagent.detect.common import make
from opsagent.model import Finding, Service, Snapshot


def _near_misses(service: Service, snapshot: Snapshot) -> list[dict[str, str]]:
    """Label sets of pods in the namespace that share a selector key but not its value (the likely typo)."""
    seen: list[dict[str, str]] = []
    for pod in snapshot.pods:
        if pod.namespace != service.namespace:
            continue
        shared = {k: v for k, v in pod.labels.items() if k in service.selector and k != "pod-template-hash"}
        if shared and shared not in seen:
            seen.append(shared)
    return seen[:5]


def service_without_endpoints(snapshot: Snapshot, now: datetime) -> list[Finding]:
    found = []
    for service in snapshot.services:
        if not service.selector or service.type == "ExternalName" or service.ready_endpoints > 0:
            continue
        workloads = [w for key in service.workloads if (w := snapshot.workload(key)) is not None]
        pods = [p for p in snapshot.pods if p.namespace == service.namespace and service.selects(p.labels)
                and p.phase in ("Pending", "Running")]
        if workloads and all(w.replicas == 0 for w in workloads) and not pods:
            continue   # asleep: no endpoints by design
        selector = ", ".join(f"{k}={v}" for k, v in sorted(service.selector.items()))
        if not pods and not workloads:
            found.append(make(
                "service_without_endpoints", service.key,
                f"Service {service.key} selects {selector}, which no pod or workload carries: it routes to nothing", now,
                service=service.key, namespace=service.namespace, problem="selector_matches_nothing", selector=dict(service.selector),
                near_misses=_near_misses(service, snapshot), ports=[p.port for p in service.ports],
                workloads=[], pods=[]))
            continue
        if not pods:
            continue   # its workloads have no pods yet (scaling up from zero)
        found.append(make(
            "service_without_endpoints", service.key,
            f"Service {service.key} has no ready endpoint: {len(pods)} pod(s) match {selector}, none is ready", now,
            service=service.key, namespace=service.namespace, problem="no_ready_pods", selector=dict(service.selector), near_misses=[],
            ports=[p.port for p in service.ports], workloads=[w.key for w in workloads],
            pods=sorted(p.key for p in pods)))
    return found
