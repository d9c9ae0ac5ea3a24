"""Playbook files: loading, exact error places, CEL checks, choosing a playbook for a finding."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from detect_sample import NOW, troubled

from opsagent.detect import detect
from opsagent.model import Finding
from opsagent.playbooks import PlaybookError, lint_playbooks, load_playbooks, verify

GOOD = """\
playbooks:
  - name: sleep-idle
    on: idle_gpu
    when: 'target.replicas > 0'
    guidance: sleep it
    steps:
      - tool: sleep_workload
        args: {namespace: "{{ target.namespace }}", name: "{{ target.name }}"}
    verify: 'target.replicas == 0'
    retry: {max_attempts: 2, backoff: 90s}
  - name: idle-fallback
    on: idle_gpu
    guidance: look only
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    (tmp_path / name).write_text(textwrap.dedent(text))
    return tmp_path


def errors_of(directory: Path) -> list[str]:
    with pytest.raises(PlaybookError) as info:
        load_playbooks(directory)
    return [str(i) for i in info.value.issues]


def test_good_file_loads_with_source_and_parsed_retry(tmp_path):
    loaded = load_playbooks(write(tmp_path, GOOD))
    assert [p.name for p in loaded] == ["sleep-idle", "idle-fallback"]
    first = loaded.get("sleep-idle")
    assert first.on == "idle_gpu"  # `on` is a string key, not YAML 1.1's boolean
    assert first.retry.backoff.total_seconds() == 90
    assert first.source == f"{tmp_path / 'p.yaml'}:2"


@pytest.mark.parametrize("text, where, message", [
    ("playbooks:\n  - name: a\n    on: idle_gpu\n    guidance: g\n    colour: red\n", ":5:5: [playbooks[0].colour]",
     "unknown field 'colour'"),
    ("playbooks:\n  - name: a\n    on: idle_gpus\n    guidance: g\n", ":3:5: [playbooks[0].on]", "idle_gpu"),
    ("playbooks:\n  - name: a\n    on: idle_gpu\n", ":2:5: [playbooks[0].guidance]", "Field required"),
    ("playbooks:\n  - name: a\n    on: idle_gpu\n    guidance: g\n    retry: {backoff: soon}\n",
     ":5:13: [playbooks[0].retry.backoff]", "bad duration"),
    ("playbooks:\n  - name: a\n    on: idle_gpu\n    guidance: g\n    when: 'targt.replicas > 0'\n",
     ":5:5: [playbooks[0].when]", "unknown variable(s) targt"),
    ("playbooks:\n  - name: a\n    on: idle_gpu\n    guidance: g\n    verify: 'target.replicas =='\n",
     ":5:5: [playbooks[0].verify]", "CEL"),
    ("playbooks:\n  - name: a\n    on: idle_gpu\n    guidance: g\n    steps:\n      - tool: sleep_workload\n"
     "        args: {name: '{{ target.name | upper }}'}\n", ":7:9: [playbooks[0].steps[0].args]", "only lookups"),
    ("playbooks:\n  - name: a\n    on: idle_gpu\n    guidance: g\n    steps:\n      - tool: sleep_workload\n"
     "        args: {name: '{{ os.environ }}'}\n", ":7:9: [playbooks[0].steps[0].args]", "unknown name 'os'"),
    ("playbooks:\n  - name: a\n    on: idle_gpu\n    guidance: g\n    wait: true\n    steps:\n      - tool: sleep_workload\n"
     "        args: {name: x}\n", ":2:5: [playbooks[0]]", "cannot have `steps`"),
    ("playbooks:\n  - name: a\n    name: b\n", ":3:5:", "duplicate key"),
    ("playbooks: [\n", ":2:1:", "invalid YAML"),
    ("playbooks: []\n", ":1:1: [playbooks]", "at least one playbook"),
    ("- name: a\n", ":1:1:", "expected a mapping"),
])
def test_errors_name_file_line_column_and_field(tmp_path, text, where, message):
    problems = errors_of(write(tmp_path, text))
    assert any(where in p and message in p and p.startswith(str(tmp_path / "p.yaml")) for p in problems), problems


def test_unknown_tool_and_argument_fail_at_load_when_tools_exist(tmp_path):
    pytest.importorskip("tools")
    text = GOOD.replace("sleep_workload", "nap_workload")
    problems = errors_of(write(tmp_path, text))
    assert any(":7:9: [playbooks[0].steps[0].tool]" in p and "unknown tool 'nap_workload'" in p for p in problems)
    text = GOOD.replace('name: "{{ target.name }}"', 'nam: "{{ target.name }}"')
    problems = errors_of(write(tmp_path, text))
    assert any("has no argument 'nam'" in p for p in problems)
    assert any("needs argument(s) name" in p for p in problems)


def test_duplicate_names_across_files(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD.replace("idle-fallback", "other"), "b.yaml")
    problems = errors_of(tmp_path)
    assert any("b.yaml:2:" in p and "already used at" in p for p in problems)


def test_for_finding_picks_first_matching_when(tmp_path):
    loaded = load_playbooks(write(tmp_path, GOOD))
    snap, intents = troubled()
    idle = next(f for f in detect(snap, intents=intents, now=NOW) if f.kind == "idle_gpu")
    assert loaded.for_finding(idle, snap).name == "sleep-idle"
    slept = snap.model_copy(update={"workloads": tuple(
        w.model_copy(update={"replicas": 0}) if w.key == idle.subject else w for w in snap.workloads)})
    assert loaded.for_finding(idle, slept).name == "idle-fallback"
    other = Finding(kind="crashloop", subject="a/b", summary="x")
    assert loaded.for_finding(other, snap) is None
    # no snapshot: target is {}, so the `when` cannot hold and the fallback answers
    assert loaded.for_finding(idle, None).name == "idle-fallback"


def test_verify_uses_re_observed_target_and_finding_open(tmp_path):
    loaded = load_playbooks(write(tmp_path, GOOD))
    finding = Finding(kind="idle_gpu", subject="render/ui", summary="x")
    assert verify(loaded.get("sleep-idle"), finding=finding, target={"replicas": 0}, finding_open=True)
    assert not verify(loaded.get("sleep-idle"), finding=finding, target={"replicas": 1}, finding_open=False)
    assert not verify(loaded.get("idle-fallback"), finding=finding, target={}, finding_open=True)
    assert verify(loaded.get("idle-fallback"), finding=finding, target={}, finding_open=False)


def test_lint_reports_unknown_detail_keys_and_missing_kinds(tmp_path):
    text = GOOD.replace("'target.replicas > 0'", "'finding.details.gpus_hled > 0'")
    text += ("  - name: bad-detail\n    on: jobs_waiting\n    guidance: g\n    steps:\n      - tool: sleep_workload\n"
             "        for_each: details.idle_holderz\n        args: {namespace: '{{ item.namespace }}', name: 'x'}\n")
    issues = lint_playbooks(write(tmp_path, text))
    text_of = [str(i) for i in issues]
    assert any("warning" in t and "no detail 'gpus_hled'" in t and ":4:5:" in t for t in text_of), text_of
    assert any("error" in t and "no detail 'idle_holderz'" in t for t in text_of), text_of
    assert any("no playbook answers 'crashloop'" in t for t in text_of)
