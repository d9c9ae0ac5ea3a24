"""Templating and rendering: lookups only, types kept, and every shipped playbook renders valid tool calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from detect_sample import NOW, troubled

from opsagent.detect import Attempts, detect
from opsagent.model import FINDING_KINDS
from opsagent.playbooks import TemplateError, lint_playbooks, load_playbooks, render_steps
from opsagent.playbooks.template import check, render

SHIPPED = Path(__file__).resolve().parent.parent / "playbooks"
CONTEXT = {"target": {"name": "llm", "replicas": 2, "labels": {"a": "b"}}, "details": {"pods": ["p0", "p1"],
                                                                                       "ok": True, "none": None}}


@pytest.mark.parametrize("template, expected", [
    ("{{ target.replicas }}", 2),
    ("  {{target.replicas}} ", 2),
    ("{{ details.ok }}", True),
    ("{{ details.none }}", None),
    ("{{ details.pods }}", ["p0", "p1"]),
    ("{{ details.pods.1 }}", "p1"),
    ("{{ target.labels }}", {"a": "b"}),
    ("x-{{ target.name }}-{{ target.replicas }}", "x-llm-2"),
    ("plain", "plain"),
    (7, 7),
    ({"n": ["{{ target.replicas }}", "{{ target.name }}"]}, {"n": [2, "llm"]}),
])
def test_render_keeps_types_for_whole_placeholders(template, expected):
    assert render(template, CONTEXT) == expected


@pytest.mark.parametrize("template", [
    "{{ target.name.__class__ }}x",  # dunder segments are plain names: lookup fails, nothing runs
    "{{ target.missing }}",
    "{{ details.pods.5 }}",
])
def test_lookup_of_nothing_is_an_error(template):
    with pytest.raises(TemplateError, match="nothing at"):
        render(template, CONTEXT)


@pytest.mark.parametrize("template", [
    "{{ target.replicas + 1 }}",
    "{{ target.name | upper }}",
    "{{ __import__('os').system('id') }}",
    "{{ target['name'] }}",
    "{{ }}",
    "{{ target.name",
    "target.name }}",
    "{% if x %}",  # not a placeholder, but not braces either: stays text
])
def test_anything_but_a_lookup_is_refused(template):
    if template.startswith("{%"):
        assert render(template, CONTEXT) == template
        return
    with pytest.raises(TemplateError):
        check(template)


def test_shipped_playbooks_lint_clean():
    issues = lint_playbooks(SHIPPED)
    assert [str(i) for i in issues if i.level == "error"] == []
    assert not any("no playbook answers" in i.message for i in issues)


def test_every_shipped_playbook_renders_valid_tool_calls_for_its_finding():
    tools = pytest.importorskip("tools")
    loaded = load_playbooks(SHIPPED)
    assert loaded.kinds() == set(FINDING_KINDS)
    snap, intents = troubled()
    findings = detect(snap, intents=intents, now=NOW)
    chosen = {}
    for finding in findings:
        playbook = loaded.for_finding(finding, snap)
        assert playbook is not None, finding.id
        chosen[finding.kind] = playbook.name
        for call in render_steps(playbook, finding, snap):
            tool = tools.REGISTRY[call["tool"]]
            tool.input_model.model_validate(call["args"])  # arguments are what the tool accepts
            assert call["finding_id"] == finding.id
    assert chosen == {
        "idle_gpu": "idle-gpu-sleep", "wake_requested": "wake-on-request", "rollout_failed": "rollout-retry",
        "drift": "drift-replicas", "unschedulable_gpu": "unschedulable-diagnose", "crashloop": "crashloop-delete-once",
        "topology_mismatch": "topology-coherent-placement", "jobs_waiting": "jobs-waiting-free-idle",
        "spec_conflict": "spec-conflict-report", "node_unhealthy": "node-unhealthy-cordon",
        "node_left_cordoned": "node-left-cordoned-uncordon", "autoscaler_stuck": "autoscaler-stuck-hand-over",
        "image_pull_failed": "image-pull-roll-back",
        "node_needs_drain": "node-maintenance-drain", "out_of_memory": "oom-propose-memory-limit",
        "not_ready": "not-ready-propose-probe",
        "config_missing": "config-missing-hand-over",
        "volume_pending": "volume-pending-hand-over", "quota_exceeded": "quota-exceeded-hand-over",
        "service_without_endpoints": "service-without-endpoints-hand-over",
    }


def test_rendered_steps_carry_the_finding_numbers():
    loaded = load_playbooks(SHIPPED)
    snap, intents = troubled()
    found = {f.kind: f for f in detect(snap, intents=intents, now=NOW)}
    drift = render_steps(loaded.for_finding(found["drift"], snap), found["drift"], snap)
    assert drift[0]["args"] == {"namespace": "web", "name": "api", "replicas": 4}
    jobs = render_steps(loaded.for_finding(found["jobs_waiting"], snap), found["jobs_waiting"], snap)
    assert [c["args"] for c in jobs] == [{"namespace": "render", "name": "ui"}]
    topo = render_steps(loaded.for_finding(found["topology_mismatch"], snap), found["topology_mismatch"], snap)
    assert topo[0]["tool"] == "set_gpu_placement" and topo[0]["args"]["min_link_width"] == 16


def test_rollout_playbooks_follow_the_retry_plan():
    loaded = load_playbooks(SHIPPED)
    snap, intents = troubled()
    fid = "rollout_failed:inference/embedder"

    def chosen(history):
        finding = next(f for f in detect(snap, intents=intents, now=NOW, history=history) if f.id == fid)
        playbook = loaded.for_finding(finding, snap)
        return playbook.name, render_steps(playbook, finding, snap)

    assert chosen(None)[0] == "rollout-retry"
    assert chosen({fid: Attempts(attempts=1, last_action_at=NOW)}) == ("rollout-wait", [])
    name, steps = chosen({fid: Attempts(attempts=3, last_action_at=NOW)})
    assert name == "rollout-rollback"
    assert steps[0]["args"] == {"namespace": "inference", "name": "embedder", "to_revision": 2}
    protected = [i.model_copy(update={"protected": True}) if i.name == "embedder" else i for i in intents]
    finding = next(f for f in detect(snap, intents=protected, now=NOW) if f.id == fid)
    assert loaded.for_finding(finding, snap).name == "rollout-protected"
