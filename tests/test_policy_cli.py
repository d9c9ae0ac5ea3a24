"""`opsagent policy lint / show / explain` through the real command: exit codes,
messages that name file:line, JSON output, and target state from a scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsagent.cli import app

POLICIES = str(Path(__file__).resolve().parent.parent / "policies")
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_lint_passes_on_the_shipped_policies():
    result = run("policy", "lint", POLICIES)
    assert result.exit_code == 0, result.output
    assert "ok: 2 file(s)" in result.output and "0 warning(s)" in result.output


def test_lint_fails_with_file_line_and_hint(tmp_path):
    (tmp_path / "arch.yaml").write_text("rules:\n  - name: x\n    effect: allow\n    tools: [set_resources]\n")
    (tmp_path / "typo.yaml").write_text("rules:\n  - name: y\n    effcet: deny\n")
    result = run("policy", "lint", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path / 'arch.yaml'}:3:13" in result.output and "architectural" in result.output
    assert "risk: [read, write]" in result.output  # hints keep their brackets
    assert f"{tmp_path / 'typo.yaml'}:3:5" in result.output and "unknown field 'effcet'" in result.output
    data = json.loads(run("policy", "lint", str(tmp_path), "-o", "json").output)
    assert data["ok"] is False and data["errors"] == 3  # plus the missing effect of rule y
    assert {p["line"] for p in data["problems"]} >= {3}


def test_lint_strict_fails_on_warnings(tmp_path):
    (tmp_path / "p.yaml").write_text("scope: {namespaces: [apps]}\nrules:\n  - {name: r, tools: [no_such_tool], effect: deny}\n")
    assert run("policy", "lint", str(tmp_path)).exit_code == 0
    result = run("policy", "lint", str(tmp_path), "--strict")
    assert result.exit_code == 1 and "unknown tool 'no_such_tool'" in result.output


def test_explain_the_three_stories():
    idle = run("policy", "explain", "--policies", POLICIES, "--tool", "sleep_workload", "--args", '{"namespace":"render","name":"render-ui"}',
               "--actor", "daemon", "--channel", "daemon", "--target-state", '{"replicas":1,"gpus_per_replica":1,"idle_minutes":45}')
    assert idle.exit_code == 0, idle.output
    assert "decision: allow" in idle.output and "daemon-sleeps-idle-workloads" in idle.output
    assert "earlier rules that did not match" in idle.output

    place = run("policy", "explain", "--policies", POLICIES, "--tool", "set_gpu_placement",
                "--args", '{"namespace":"inference","name":"llm","min_link_width":16}', "--actor", "daemon", "-o", "json")
    assert place.exit_code == 0, place.output
    data = json.loads(place.output)
    assert data["decision"]["effect"] == "require_approval" and data["decision"]["approvers"] == ["group:platform-leads"]

    system = run("policy", "explain", "--policies", POLICIES, "--tool", "delete_pod", "--args", '{"namespace":"kube-system","name":"coredns-1"}',
                 "--actor", "carol")
    assert system.exit_code == 0 and "decision: deny" in system.output and "out-of-scope" in system.output


def test_explain_reads_target_state_from_a_scenario():
    # In the demo scenario the render UI is busy in the morning and idle after lunch.
    morning = run("policy", "explain", "--policies", POLICIES, "--tool", "sleep_workload", "--args", '{"namespace":"render","name":"render-ui"}',
                  "--actor", "daemon", "--channel", "daemon", "--scenario", "demo", "--at", "10:00", "-o", "json")
    evening = run("policy", "explain", "--policies", POLICIES, "--tool", "sleep_workload", "--args", '{"namespace":"render","name":"render-ui"}',
                  "--actor", "daemon", "--channel", "daemon", "--scenario", "demo", "--at", "16:00", "-o", "json")
    assert morning.exit_code == 0 and evening.exit_code == 0, morning.output + evening.output
    m, e = json.loads(morning.output), json.loads(evening.output)
    assert m["decision"]["effect"] == "require_approval"
    assert e["decision"]["effect"] == "allow" and e["now"].startswith("2026-01-05T16:00")
    assert e["target"]["namespace"] == "render" and e["intent"]["idle"]["after"] == 1800.0


def test_explain_bad_input_fails_clearly():
    bad_json = run("policy", "explain", "--policies", POLICIES, "--tool", "get_workload", "--args", "{nope", "--actor", "x")
    assert bad_json.exit_code == 2 and "--args is not JSON" in bad_json.output
    unknown = run("policy", "explain", "--policies", POLICIES, "--tool", "rm_rf", "--actor", "x")
    assert unknown.exit_code == 2 and "unknown tool 'rm_rf'" in unknown.output
    bad_args = run("policy", "explain", "--policies", POLICIES, "--tool", "scale_workload", "--args", '{"namespace":"render"}', "--actor", "x")
    assert bad_args.exit_code == 2 and "bad arguments for scale_workload" in bad_args.output
    missing = run("policy", "explain", "--policies", "/nonexistent", "--tool", "get_workload", "--actor", "x")
    assert missing.exit_code == 2 and "no such policy directory" in missing.output


def test_show_prints_the_summary():
    result = run("policy", "show", "--policies", POLICIES)
    assert result.exit_code == 0 and "You may do alone" in result.output
    data = json.loads(run("policy", "show", "--policies", POLICIES, "-o", "json").output)
    assert data["mode"] == "enforce" and len(data["rules"]) == 16 and data["max_workloads_per_run"] == 10


def test_every_policy_command_has_help_with_an_example():
    for command in ("lint", "show", "explain"):
        result = run("policy", command, "--help")
        assert result.exit_code == 0 and "Example: opsagent policy" in result.output


SLEEP = ("policy", "explain", "--policies", POLICIES, "--tool", "sleep_workload", "--actor", "daemon", "--channel", "daemon",
         "--args", '{"namespace":"render","name":"render-ui"}')


def test_explain_refuses_a_target_that_disagrees_with_the_arguments():
    other = run(*SLEEP, "--target", "render/render-batch")
    assert other.exit_code == 2
    assert "--target render/render-batch disagrees with --args, which names render/render-ui" in " ".join(other.output.split())
    namespace = run("policy", "explain", "--policies", POLICIES, "--tool", "delete_pod", "--actor", "daemon",
                    "--args", '{"namespace":"render","name":"render-ui-0"}', "--target", "chat/chat-ui")
    assert namespace.exit_code == 2 and "whose namespace is render" in " ".join(namespace.output.split())
    same = run(*SLEEP, "--target", "render/render-ui", "--target-state", '{"replicas":1,"idle_minutes":45}')
    assert same.exit_code == 0 and "decision: allow" in same.output


@pytest.mark.parametrize(("state", "message"), [
    ('{"ref": {"namespace": "x", "name": "y"}}', "field 'ref' cannot be set here"),
    ('{"replicas": "many"}', "field 'replicas': Input should be a valid integer"),
    ('{"colour": "blue"}', "field 'colour': unknown field"),
    ('{"idle_minutes": "lots"}', "field 'idle_minutes' must be a number of minutes"),
    ('[1, 2]', "must be a JSON object"),
    ('{"replicas": 1', "--target-state is not JSON"),
])
def test_explain_names_the_bad_field_of_target_state(state, message):
    result = run(*SLEEP, "--target-state", state)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert message in " ".join(result.output.split()), result.output


def test_explain_a_pod_deletion_reads_pod_state():
    base = ("policy", "explain", "--policies", POLICIES, "--tool", "delete_pod", "--actor", "daemon", "--channel", "daemon",
            "--args", '{"namespace":"inference","name":"embedder-7d9f-abcde"}', "-o", "json", "--target-state")
    looping = run(*base, '{"phase": "Running", "reason": "CrashLoopBackOff", "restarts": 4, '
                         '"workload": {"namespace": "inference", "name": "embedder"}}')
    assert looping.exit_code == 0, looping.output
    data = json.loads(looping.output)
    assert data["decision"]["effect"] == "allow" and data["decision"]["rule"]["name"] == "daemon-deletes-crashlooping-pods"
    assert data["target"]["pod"]["restarts"] == 4 and data["intent"]["name"] == "embedder-rollouts"
    young = json.loads(run(*base, '{"phase": "Running", "reason": "CrashLoopBackOff", "restarts": 1}').output)
    assert young["decision"]["effect"] == "require_approval"
    healthy = json.loads(run(*base, '{"phase": "Running", "ready": true}').output)
    assert healthy["decision"]["rule"]["name"] == "other-writes-need-oncall"
    bad = run(*base, '{"name": "other"}')
    assert bad.exit_code == 2 and "field 'name' cannot be set here" in " ".join(bad.output.split())
