"""Scenario declarations for what pods need: ConfigMaps and Secrets, claims, quotas, Services.

Parsed by scenario.py (see docs/simulator.md, "What pods need"); simulated by needs.py.
This module only validates. It must not simulate anything or read a clock.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigObjectDecl(_Strict):
    """A ConfigMap or Secret that exists from the start (names only: the simulator holds no contents)."""

    kind: Literal["ConfigMap", "Secret"]
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)


ClaimFailure = Literal["storage_class_missing", "no_provisioner"]


class VolumeClaimDecl(_Strict):
    """A PersistentVolumeClaim: Bound from the start, or Pending the way `failure` says."""

    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    storage_class: str | None = None
    size: str = "100Gi"
    failure: ClaimFailure | None = None


class QuotaDecl(_Strict):
    """A ResourceQuota on GPUs (`requests.nvidia.com/gpu`) and/or pods in one namespace."""

    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    gpus: int | None = Field(default=None, ge=0)
    pods: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _something(self) -> "QuotaDecl":
        if self.gpus is None and self.pods is None:
            raise ValueError("give gpus, pods or both")
        return self


class ServicePortDecl(_Strict):
    port: int = Field(ge=1, le=65535)
    target_port: int | str | None = None
    name: str = ""


class ServiceDecl(_Strict):
    """A Service: its endpoints are the pods of `namespace` whose labels include `selector`."""

    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    selector: dict[str, str] = Field(default_factory=dict)
    ports: tuple[ServicePortDecl, ...] = ()
    cluster_ip: str | None = Field(default=None, description="default: one made from its position in the list")


class NeedsDecl(_Strict):
    """What one workload's pods need: ConfigMaps, Secrets and claims of its namespace, by name."""

    config_maps: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    volume_claims: tuple[str, ...] = ()


class ConfigAction(_Strict):
    """A ConfigMap or Secret created (or deleted) at this point of the timeline."""

    kind: Literal["ConfigMap", "Secret"]
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    delete: bool = False
