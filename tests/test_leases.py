"""Time-boxed wakes over the real gate, policy, audit log and simulator.

A lease wakes the workload as the person, keeps the idle detector off it, and
at expiry the daemon's part sleeps it through the gate as `daemon`; extension
past `max_wake` (counted from the start) is refused naming the cap; a person's
scale_workload ends the lease; the state is folded from the audit log, so a
new process sees the same leases.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from opsagent.leases import LeaseRefused
from opsagent.model import ToolCall, WorkloadRef
from opsagent.policy.intents import Intent
from opsagent.runtime import open_runtime

REPO = Path(__file__).resolve().parents[1]
RENDER = WorkloadRef(namespace="render", name="render-ui")


def _runtime(tmp_path: Path):
    return open_runtime(cluster="sim:demo", policies=REPO / "policies", db=tmp_path / "ops.db")


def _replicas(rt) -> int:
    return rt.cluster.snapshot().workload(RENDER).replicas


def test_lease_expires_and_the_daemon_sleeps_the_workload(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    service = rt.leases()
    lease, wake = service.start(RENDER, timedelta(hours=2), actor="erin")
    assert wake.status == "ok" and lease.state == "active" and lease.actor == "erin"
    assert service.held() == {"render/render-ui"}
    assert service.close_due() == []                      # not yet due
    rt.sim.advance(timedelta(hours=2, minutes=1))
    assert service.held() == frozenset()
    [(closed, result)] = service.close_due()
    assert closed.id == lease.id and result is not None and result.status == "ok", result
    assert _replicas(rt) == 0
    ended = rt.leases().leases()[lease.id]
    assert ended.state == "expired" and ended.ended_by == "daemon"
    sleeps = [r for r in rt.audit.list(kind="result", tool="sleep_workload", limit=None)]
    assert [s.actor for s in sleeps] == ["daemon"]
    assert rt.audit.verify().ok
    assert service.close_due() == []                      # closed once


def test_extension_past_the_cap_is_refused_naming_it(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    service = rt.leases()
    with pytest.raises(LeaseRefused, match="max_wake 4h00m of intent render-ui-scales-to-zero"):
        service.start(RENDER, timedelta(hours=5), actor="erin")
    lease, _ = service.start(RENDER, timedelta(hours=2), actor="erin")
    rt.sim.advance(timedelta(hours=1))
    extended = service.extend(RENDER, timedelta(hours=3), actor="erin")     # start + 4h: at the cap
    assert extended.until - lease.started_at == timedelta(hours=4)
    with pytest.raises(LeaseRefused, match="max_wake"):
        service.extend(RENDER, timedelta(hours=3, minutes=1), actor="erin")
    assert rt.leases().leases()[lease.id].until == extended.until           # a new process sees the same


def test_a_person_scaling_by_hand_ends_the_lease(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    service = rt.leases()
    lease, _ = service.start(RENDER, timedelta(hours=2), actor="erin")
    done = rt.gate.submit(ToolCall(tool="scale_workload", args={"namespace": "render", "name": "render-ui", "replicas": 2},
                                   actor="erin"))
    assert done.status == "ok", done
    assert service.held() == frozenset()
    [(closed, result)] = service.close_due()
    assert result is None
    ended = service.leases()[lease.id]
    assert ended.state == "ended" and ended.scaled_by_hand == done.audit_id
    assert _replicas(rt) == 2                               # the person's choice stands


def test_cancel_and_refusals(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    service = rt.leases()
    with pytest.raises(LeaseRefused, match="no active lease"):
        service.cancel(RENDER, actor="erin")
    with pytest.raises(LeaseRefused, match="sets no max_wake"):
        service.start(WorkloadRef(namespace="chat", name="chat-ui"), timedelta(hours=1), actor="erin")
    service.start(RENDER, timedelta(hours=1), actor="erin")
    with pytest.raises(LeaseRefused, match="already has an active lease"):
        service.start(RENDER, timedelta(hours=1), actor="erin")
    assert service.cancel(RENDER, actor="erin").state == "cancelled"
    assert service.held() == frozenset()


def test_max_wake_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_wake must be longer than zero"):
        Intent.model_validate({"name": "x", "selector": {}, "max_wake": "0s"})
    assert Intent.model_validate({"name": "x", "selector": {}, "max_wake": "2h"}).max_wake == timedelta(hours=2)


def test_the_idle_detector_skips_a_leased_workload(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    rt.sim.advance(timedelta(hours=14))               # render-ui had no requests since 12:30
    idle = lambda: {f.subject for f in rt.findings() if f.kind == "idle_gpu"}  # noqa: E731
    assert "render/render-ui" in idle()
    rt.leases().start(RENDER, timedelta(hours=1), actor="erin")
    assert "render/render-ui" not in idle()
    rt.sim.advance(timedelta(hours=1, minutes=1))     # expired: the idle rule applies again
    assert "render/render-ui" in idle()


def test_cli_wake_extend_list_cancel(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from opsagent.cli import app

    db = str(tmp_path / "ops.db")
    common = ["--cluster", "sim:demo", "--as", "erin", "--db", db]
    run = CliRunner().invoke
    woke = run(app, ["wake", "render/render-ui", "--for", "2h", *common, "-o", "json"])
    assert woke.exit_code == 0, woke.output
    assert json.loads(woke.output)["state"] == "active"
    refused = run(app, ["wake", "render/render-ui", "--for", "5h", "--extend", *common])
    assert refused.exit_code == 1 and "max_wake 4h00m" in refused.output
    listed = run(app, ["get", "leases", "--db", db, "-o", "json"])
    assert listed.exit_code == 0, listed.output
    [lease] = json.loads(listed.output)
    assert (lease["workload"], lease["actor"], lease["state"]) == ("render/render-ui", "erin", "active")
    cancelled = run(app, ["wake", "render/render-ui", "--cancel", *common])
    assert cancelled.exit_code == 0 and "cancelled by erin" in cancelled.output
    bad = run(app, ["wake", "render/render-ui", *common])
    assert bad.exit_code == 2 and "--for is required" in bad.output


def test_chat_form_wake_for_records_a_lease(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from opsagent.chat.grammar import parse
    from opsagent.cli import app

    command = parse("wake render/render-ui for 2h")
    assert (command.action, command.span, command.summary) == ("lease", "2h", "wake render/render-ui for 2h")
    assert parse("wake render/render-ui").action == "tool"          # a bare wake stays a bare call
    db = str(tmp_path / "ops.db")
    run = CliRunner().invoke
    said = run(app, ["ask", "wake render/render-ui for 2h", "--cluster", "sim:demo", "--as", "erin", "--db", db])
    assert said.exit_code == 0 and "stays up until" in said.output, said.output
    over = run(app, ["ask", "wake inference/llm for 9h", "--cluster", "sim:demo", "--as", "carol", "--db", db])
    assert "past max_wake 8h00m of intent llm-coherent-x16" in over.output
    [lease] = json.loads(run(app, ["get", "leases", "--db", db, "-o", "json"]).output)
    assert (lease["workload"], lease["actor"]) == ("render/render-ui", "erin")


def test_only_the_lease_channel_lets_the_daemon_sleep_a_busy_workload(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)   # render-ui is busy at the start of the demo day: its idle rule does not allow a sleep
    call = ToolCall(tool="sleep_workload", args={"namespace": "render", "name": "render-ui"}, actor="daemon",
                    channel="daemon")
    assert rt.gate.preview(call).effect != "allow"
    allowed = rt.gate.preview(call.model_copy(update={"channel": "lease"}))
    assert allowed.effect == "allow" and allowed.rule.name == "daemon-ends-time-boxed-wakes"


def test_cli_refuses_ending_or_stretching_someone_elses_lease_without_the_policy(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from opsagent.cli import app

    db = str(tmp_path / "ops.db")
    run = CliRunner().invoke

    def wake(who: str, *extra: str):
        return run(app, ["wake", "render/render-ui", *extra, "--cluster", "sim:demo", "--as", who, "--db", db])
    assert wake("erin", "--for", "1h").exit_code == 0
    cancel = wake("mallory", "--cancel")
    assert cancel.exit_code == 1 and "cancelling erin's lease needs the policy to let mallory call sleep_workload" \
        in " ".join(cancel.output.split()), cancel.output
    stretch = wake("mallory", "--for", "2h", "--extend")
    assert stretch.exit_code == 1 and "wake_workload" in stretch.output
    zero = wake("erin", "--for", "0s", "--extend")
    assert zero.exit_code == 2 and "longer than zero" in zero.output
    assert wake("frank", "--cancel").exit_code == 0          # render-team may sleep it, so may end erin's lease
