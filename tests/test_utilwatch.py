"""The runtime watches GPU utilisation across snapshots, so 'under X% for N minutes' means all N minutes."""

from __future__ import annotations

from pathlib import Path

from opsagent.runtime import open_runtime

ROOT = Path(__file__).resolve().parent.parent


def test_runtime_snapshots_carry_how_long_utilisation_has_been_low(tmp_path):
    rt = open_runtime(cluster="sim:demo", policies=ROOT / "policies", db=tmp_path / "ops.db")
    try:
        first = rt.observe()
        ui = first.workload("render/render-ui")
        assert ui is not None and ui.gpu_utilization is not None and ui.gpu_utilization < 2  # the demo starts at night
        assert first.gpus_held_by(ui.ref) > 0 and ui.low_gpu_since == first.time
        rt.sim.advance(600)
        later = rt.observe()
        assert later.workload("render/render-ui").low_gpu_since == first.time  # still counting from the first low reading
        chat = later.workload("chat/chat-ui")
        assert chat is not None and chat.low_gpu_since is None  # no gpu_util_below in its intent: nothing to count
        # the gate reads the cluster through the same watch, so the policy sees the same count
        assert rt.gate.cluster.snapshot().workload("render/render-ui").low_gpu_since == first.time
    finally:
        rt.audit.close()
