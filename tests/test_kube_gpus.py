"""PCIe link width of GPUs, read from a DRA ResourceSlice or a node label.

Spec:
- a DRA device attribute `pcieLinkWidth` (unqualified, or under the
  resource.kubernetes.io/ or gpu.nvidia.com/ prefix) gives that GPU's link
  width; a GPU without one is taken as x16; a value outside 1..32 is ignored;
- device-plugin GPUs take the node label `opsagent.dev/gpu-link-width`
  (x16 without it);
- both reach `GpuDevice.pcie_link_width` in a snapshot read over HTTP from the
  kmock emulator (fixture: dra-resourceslice-gpu-link-width.yaml).
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest
from kube_harness import Emulator, fixture

from opsagent.clock import VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.cluster.kube.gpus import node_gpus, slice_gpus

SLICE = "dra-resourceslice-gpu-link-width.yaml"


def test_slice_attribute_sets_the_width_and_absence_means_x16():
    [gpus] = slice_gpus([fixture(SLICE)]).values()
    assert [(g.id, g.pcie_link_width, g.switch_group, g.numa_node) for g in gpus] == [
        ("gpu-node-1/gpu-0", 8, "pci0000:64", 0), ("gpu-node-1/gpu-1", 16, "pci0000:b2", 1)]


@pytest.mark.parametrize("key,value,width", [
    ("gpu.nvidia.com/pcieLinkWidth", {"int": 4}, 4),
    ("resource.kubernetes.io/pcieLinkWidth", {"int": 2}, 2),
    ("pcieLinkWidth", {"int": 64}, 16),     # not a PCIe width: ignored
])
def test_slice_attribute_prefixes_and_bounds(key, value, width):
    item = fixture(SLICE)
    attrs = item["spec"]["devices"][0]["attributes"]
    del attrs["pcieLinkWidth"]
    attrs[key] = value
    [gpus] = slice_gpus([item]).values()
    assert gpus[0].pcie_link_width == width


def test_node_label_sets_device_plugin_width():
    node = fixture("node-gpu-gfd.json")
    assert [g.pcie_link_width for g in node_gpus(node)] == [16]
    node["metadata"]["labels"]["opsagent.dev/gpu-link-width"] = "8"
    assert [g.pcie_link_width for g in node_gpus(node)] == [8]


def test_snapshot_carries_the_link_widths():
    nori = fixture("node-gpu-gfd.json")
    nori["metadata"]["labels"]["opsagent.dev/gpu-link-width"] = "4"
    dra_node = copy.deepcopy(fixture("node-gpu-gfd.json"))
    dra_node["metadata"].update(name="gpu-node-1", labels={"kubernetes.io/hostname": "gpu-node-1"})
    for section in ("capacity", "allocatable"):
        dra_node["status"][section].pop("nvidia.com/gpu")
    with Emulator() as emu:
        emu.handler.resources["resource.k8s.io/v1/resourceclaims"] = {}   # served, but no claims yet
        for obj in (nori, dra_node, fixture(SLICE)):
            emu.seed(obj)
        snap = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(datetime(2026, 1, 5, tzinfo=timezone.utc))).snapshot()
    widths = {g.id: g.pcie_link_width for g in snap.gpus()}
    assert widths == {"nori/gpu-0": 4, "gpu-node-1/gpu-0": 8, "gpu-node-1/gpu-1": 16}
