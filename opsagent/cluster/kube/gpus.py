"""GPU devices and GPU assignments from raw Kubernetes JSON. Pure functions, no I/O.

What it is for: turning Nodes (capacity / allocatable `nvidia.com/gpu` and the
GPU Feature Discovery labels), DRA ResourceSlices (per-device attributes such
as productName, pcieRoot, numaNode, a PCIe link width when the driver
publishes one) and DRA ResourceClaims (allocation results) into `GpuDevice`s
and a pod -> device ids map.

What it must not do: call the API, or guess a device-to-pod binding that the
API does not show beyond the stated rule (device-plugin GPUs are handed out to
a node's GPU pods in a stable order, since the API has no per-device binding).
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

from opsagent.model import GpuDevice
from opsagent.model.text import one_line

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_LINK_WIDTH = 16

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value: Any) -> float:
    """A Kubernetes quantity ('40Gi', '4864Mi', '500m', '2', 3) as a plain number; ValueError when it is none,
    or too large for a float ('1e400' would be infinity, of which no count or size can be made)."""
    if isinstance(value, (int, float)):
        number = float(value)
    elif type(value) is str and value.isascii() and value.isdigit():  # the common plain count ('1', '8'): no regex
        number = float(value)
    else:
        match = _QUANTITY.match(str(value).strip())
        if not match:
            raise ValueError(f"not a Kubernetes quantity: {value!r}")
        number, suffix = float(match[1]), match[2]
        if suffix in _BINARY:
            number *= _BINARY[suffix]
        elif suffix in _DECIMAL:
            number *= _DECIMAL[suffix]
        else:
            raise ValueError(f"unknown quantity suffix in {value!r}")
    if not math.isfinite(number):
        raise ValueError(f"quantity out of range: {str(value)[:40]!r}")
    return number


def mib(value: Any) -> int:
    return int(round(parse_quantity(value) / 2**20))


def container_gpus(container: dict[str, Any]) -> int:
    """GPUs one container asks for: limits win (extended resources need limits), else requests.

    ValueError, naming the container, when the count is not a whole number of GPUs (negative, fractional,
    past a float, not a number) or the resources around it are not mappings: the API server refuses such
    a spec, so one seen here is broken or hostile, and the caller decides what to read instead."""
    resources = container.get("resources")
    if not resources:
        return 0
    if not isinstance(resources, dict):
        raise ValueError(f"container {_name(container)}: resources is not a mapping")
    amount = None
    for field in ("limits", "requests"):
        values = resources.get(field)
        if values and not isinstance(values, dict):
            raise ValueError(f"container {_name(container)}: resources.{field} is not a mapping")
        amount = values.get(GPU_RESOURCE) if values else None
        if amount is not None:
            break
    if amount is None:
        return 0
    try:
        count = parse_quantity(amount) if not isinstance(amount, (bool, dict, list)) else math.nan
    except ValueError:
        count = math.nan
    if not (math.isfinite(count) and count >= 0 and count == int(count)):
        raise ValueError(f"container {_name(container)}: {GPU_RESOURCE} {str(amount)[:40]!r} is not a whole number of GPUs")
    return int(count)


def _name(container: dict[str, Any]) -> str:
    return repr(str(container.get("name") or "")[:63])


def pod_spec_gpus(spec: dict[str, Any]) -> int:
    """GPUs a pod spec (or a pod template's spec) asks for, over all its containers; ValueError as
    `container_gpus` when one count does not read (see `readable_gpus` for a reader that goes on)."""
    total = 0
    for container in spec.get("containers") or ():
        if not isinstance(container, dict):
            raise ValueError(f"a container that is not a mapping: {str(container)[:40]!r}")
        total += container_gpus(container)
    return total


def readable_gpus(spec: dict[str, Any], where: str, unreadable: dict[str, str]) -> int:
    """`pod_spec_gpus`, or 0 when a count does not read, recording why under `where` (an object's
    'Kind ns/name') in `unreadable`: one broken or hostile object must not fail a whole snapshot."""
    try:
        return pod_spec_gpus(spec)
    except ValueError as exc:
        unreadable.setdefault(where, str(exc))
        return 0


def unreadable_note(unreadable: dict[str, str]) -> str | None:
    """One snapshot note for the objects `readable_gpus` read as 0 GPUs, however many there are."""
    if not unreadable:
        return None
    where, why = next(iter(unreadable.items()))
    count = len(unreadable)
    first = one_line(f"{where}: {why}", 320)  # names and values come from the cluster: one inert line
    return f"GPU count unreadable in {count} object{'s' if count != 1 else ''} (first: {first}); read as 0 GPUs"


def node_gpus(node: dict[str, Any]) -> list[GpuDevice]:
    """Device-plugin GPUs of one node, named `<node>/gpu-<i>`, from allocatable and GFD labels."""
    return [GpuDevice(**fields) for fields in node_gpu_fields(node)]


def node_gpu_fields(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The `GpuDevice` fields of `node_gpus`, for a caller that adds more (a holder) before building them."""
    meta = node.get("metadata") or {}
    name = meta.get("name", "")
    labels = meta.get("labels") or {}
    status = node.get("status") or {}
    count_text = (status.get("allocatable") or {}).get(GPU_RESOURCE) or (status.get("capacity") or {}).get(GPU_RESOURCE)
    if count_text is None:
        count_text = labels.get("nvidia.com/gpu.count", "0")
    try:
        count = int(parse_quantity(count_text))
    except ValueError:
        count = 0
    model = labels.get("nvidia.com/gpu.product", "unknown")
    try:
        memory = int(labels.get("nvidia.com/gpu.memory", "0"))
    except ValueError:
        memory = 0
    width = _int(labels.get("opsagent.dev/gpu-link-width")) or DEFAULT_LINK_WIDTH
    return [{"id": f"{name}/gpu-{i}", "node": name, "model": model, "memory_mib": memory, "pcie_link_width": width}
            for i in range(count)]


def _attr(attributes: dict[str, Any], *names: str) -> Any:
    """A DRA device attribute value ({'string': x} / {'int': n} / {'version': v} / {'bool': b})."""
    for name in names:
        for key in (name, f"resource.kubernetes.io/{name}", f"gpu.nvidia.com/{name}"):
            entry = attributes.get(key)
            if isinstance(entry, dict) and entry:
                return next(iter(entry.values()))
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _memory_mib(value: Any) -> int:
    """A device's memory in MiB; 0 (unknown) when absent, not a quantity, negative or past a float."""
    if value is None:
        return 0
    try:
        return max(0, mib(value))
    except ValueError:
        return 0


def slice_gpus(resource_slices: Iterable[dict[str, Any]]) -> dict[str, list[GpuDevice]]:
    """Whole GPUs published by DRA ResourceSlices, by node. MIG slices are left out
    (they are parts of a GPU already listed). Device ids are `<node>/<device name>`."""
    return {node: [GpuDevice(**fields) for fields in devices] for node, devices in slice_gpu_fields(resource_slices).items()}


def slice_gpu_fields(resource_slices: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The `GpuDevice` fields of `slice_gpus`, for a caller that adds more (a holder) before building them."""
    out: dict[str, list[dict[str, Any]]] = {}
    for item in resource_slices:
        spec = item.get("spec") or {}
        node = spec.get("nodeName")
        if not node:
            continue
        for device in spec.get("devices") or []:
            attributes = device.get("attributes") or (device.get("basic") or {}).get("attributes") or {}
            capacity = device.get("capacity") or (device.get("basic") or {}).get("capacity") or {}
            kind = _attr(attributes, "type")
            if kind not in (None, "gpu") or _attr(attributes, "parentUUID"):
                continue
            memory = capacity.get("memory")
            memory_value = memory.get("value") if isinstance(memory, dict) else memory
            width = _int(_attr(attributes, "pcieLinkWidth", "pcie_link_width", "linkWidth"))
            out.setdefault(node, []).append({
                "id": f"{node}/{device.get('name', '')}",
                "node": node,
                "model": str(_attr(attributes, "productName") or "unknown"),
                "memory_mib": _memory_mib(memory_value),
                "pcie_link_width": width if width and 1 <= width <= 32 else DEFAULT_LINK_WIDTH,
                "switch_group": str(_attr(attributes, "pcieRoot") or "0"),
                "numa_node": _int(_attr(attributes, "numaNode")) or 0,
            })
    return out


def claim_assignments(resource_claims: Iterable[dict[str, Any]], slices: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """{'ns/pod': [device ids]} from allocated ResourceClaims reserved for pods."""
    pool_node = {}
    for item in slices:
        spec = item.get("spec") or {}
        pool = (spec.get("pool") or {}).get("name")
        if pool and spec.get("nodeName"):
            pool_node[(spec.get("driver"), pool)] = spec["nodeName"]
    out: dict[str, list[str]] = {}
    for claim in resource_claims:
        namespace = (claim.get("metadata") or {}).get("namespace", "")
        status = claim.get("status") or {}
        results = ((status.get("allocation") or {}).get("devices") or {}).get("results") or []
        devices = []
        for result in results:
            node = pool_node.get((result.get("driver"), result.get("pool")), result.get("pool", ""))
            devices.append(f"{node}/{result.get('device', '')}")
        for consumer in status.get("reservedFor") or []:
            if consumer.get("resource", "pods") == "pods" and consumer.get("name"):
                out.setdefault(f"{namespace}/{consumer['name']}", []).extend(devices)
    return out


def assign_plugin_gpus(nodes: dict[str, list[str]], pods: list[tuple[str, str | None, int]]) -> dict[str, list[str]]:
    """Hand each node's device-plugin GPUs (their ids, in device order) to the pods on it that request them.

    `pods` is (key, node, gpus requested) for pods that hold devices (scheduled,
    not finished). The API does not say which device a pod got, so devices go
    out in pod-key order: counts per node are exact, device identity is not.
    """
    free = dict(nodes)
    out: dict[str, list[str]] = {}
    for key, node, count in sorted(pods):
        if not node or count <= 0:
            continue
        pool = free.get(node, [])
        take, free[node] = pool[:count], pool[count:]
        if take:
            out[key] = take
    return out
