"""ConfigMaps and Secrets (names only) and PersistentVolumeClaims from their list calls. Pure, no I/O.

What it is for: the Accept headers that make the API server send ConfigMaps and
Secrets as metadata only (`PartialObjectMetadataList` for a list,
`PartialObjectMetadata` for each watch event, as client-go's metadata client asks),
turning those into `ConfigObject`s (kind, namespace, name), and turning PVCs into
`VolumeClaim`s.

A Secret's data never leaves the API server in a metadata response, and the
Accept header names no plain-JSON fallback: a server that cannot send metadata
only answers 406 rather than sending whole objects. Should a server send whole
objects anyway, `decode_names` drops `data`, `binaryData` and `stringData`
before anything is kept, and nothing here reads anything but metadata.

What it must not do: talk to the API server, or read any field of a ConfigMap
or Secret other than its namespace and name.
"""

from __future__ import annotations

import json
from typing import Any

from opsagent.cluster.kube.timestamps import parse_time
from opsagent.model import ConfigKind, ConfigObject, VolumeClaim

METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
CONTENTS = frozenset({"data", "binaryData", "stringData"})   # what a ConfigMap or Secret holds: never kept


def metadata_headers(kwargs: dict[str, Any]) -> dict[str, str]:
    """The Accept header for one list or watch call (the informer passes `watch=True` for a watch)."""
    return {"Accept": METADATA_WATCH if kwargs.get("watch") else METADATA_LIST}


_KEPT_META = ("namespace", "name", "resourceVersion")


def _names_only(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or obj.get("kind") == "Status":   # a watch ERROR's Status keeps its code
        return obj
    if "items" in obj:   # the list itself: its resourceVersion, its continue token and the items, already cut down
        return {"metadata": {k: meta[k] for k in ("resourceVersion", "continue") if k in meta}, "items": obj["items"]}
    kept = {k: meta[k] for k in _KEPT_META if k in meta}
    return {"metadata": kept}


def decode_names(body: bytes | str) -> Any:
    """A ConfigMap or Secret list (or one watch event) keeping each object's namespace, name and
    resourceVersion only.

    Labels and annotations go too, not only `data`: `kubectl apply` keeps a Secret's whole
    manifest, data included, in its `last-applied-configuration` annotation, and a metadata-only
    response still carries annotations.
    """
    return json.loads(body, object_hook=_names_only)


def config_objects(kind: ConfigKind, items: list[dict[str, Any]]) -> list[ConfigObject]:
    out = []
    for item in items:
        meta = item.get("metadata") or {}
        namespace, name = meta.get("namespace"), meta.get("name")
        if namespace and name:
            out.append(ConfigObject(kind=kind, namespace=str(namespace), name=str(name)))
    return out


def all_config(config_maps: list[dict[str, Any]], secrets: list[dict[str, Any]]) -> tuple[ConfigObject, ...]:
    found = config_objects("ConfigMap", config_maps) + config_objects("Secret", secrets)
    return tuple(sorted(found, key=lambda o: (o.namespace, o.name, o.kind)))


def volume_claim(item: dict[str, Any]) -> VolumeClaim | None:
    meta, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
    if not meta.get("namespace") or not meta.get("name"):
        return None
    phase = status.get("phase")
    requested = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    return VolumeClaim(
        namespace=meta["namespace"], name=meta["name"],
        phase=phase if phase in ("Pending", "Bound", "Lost") else "Pending",
        storage_class=spec.get("storageClassName") or None, volume=spec.get("volumeName") or None,
        requested=str(requested)[:40] if requested is not None else None,
        created_at=parse_time(meta.get("creationTimestamp")))


def volume_claims(items: list[dict[str, Any]]) -> tuple[VolumeClaim, ...]:
    found = [c for c in map(volume_claim, items) if c is not None]
    return tuple(sorted(found, key=lambda c: (c.namespace, c.name)))
