"""What a pod needs besides a node: configuration, storage and a Service in front of it.

Pure pydantic v2 types with no I/O, built by both adapters and read by the
detectors (opsagent/detect/config.py, opsagent/detect/services.py).

- `ConfigObject`: a ConfigMap or Secret that exists. Only its kind, namespace and
  name: there is deliberately no field for data, so nothing a Secret or a
  ConfigMap holds can ever reach a snapshot, a prompt or the audit log.
- `VolumeClaim`: a PersistentVolumeClaim, its phase and StorageClass.
- `Service`: its selector, ports and cluster address, with the ready and
  not-ready endpoints its EndpointSlices list, and the workloads whose pod
  template its selector matches.

What it must not do: hold Secret or ConfigMap contents, or decide anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from opsagent.model.cluster import Frozen

ConfigKind = Literal["ConfigMap", "Secret"]


class ConfigObject(Frozen):
    """A ConfigMap or Secret that exists: its name, never its contents."""

    kind: ConfigKind
    namespace: str = Field(min_length=1, max_length=253)
    name: str = Field(min_length=1, max_length=253)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.key}"


class VolumeClaim(Frozen):
    """A PersistentVolumeClaim. `storage_class` is None when the claim names none (the default class applies)."""

    namespace: str = Field(min_length=1, max_length=253)
    name: str = Field(min_length=1, max_length=253)
    phase: Literal["Pending", "Bound", "Lost"] = "Pending"
    storage_class: str | None = None
    volume: str | None = Field(default=None, description="the PersistentVolume it is bound to")
    requested: str | None = Field(default=None, description="spec.resources.requests.storage, as written")
    created_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class ServicePort(Frozen):
    name: str = ""
    port: int = Field(ge=1, le=65535)
    target_port: int | str | None = None
    protocol: str = "TCP"


class Service(Frozen):
    """A Service and what its EndpointSlices say.

    `ready_endpoints` / `not_ready_endpoints` count the addresses of its slices by their
    `ready` condition; `workloads` are the Deployments and StatefulSets (NS/NAME) whose pod
    template carries every label of `selector`. A Service without a selector (endpoints kept
    by hand) or of type ExternalName has `selector` empty.
    """

    namespace: str = Field(min_length=1, max_length=253)
    name: str = Field(min_length=1, max_length=253)
    type: str = "ClusterIP"
    cluster_ip: str | None = None
    selector: dict[str, str] = Field(default_factory=dict)
    ports: tuple[ServicePort, ...] = ()
    ready_endpoints: int = Field(default=0, ge=0)
    not_ready_endpoints: int = Field(default=0, ge=0)
    workloads: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, labels: dict[str, str]) -> bool:
        return bool(self.selector) and all(labels.get(k) == v for k, v in self.selector.items())

    @property
    def headless(self) -> bool:
        return self.cluster_ip in (None, "", "None")
