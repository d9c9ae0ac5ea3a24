"""The tool catalogue: every tool is well formed, documented, and matches the policy's table.

docs/tools.md carries a generated catalogue; these tests fail when a tool is
added or changed without regenerating it (`python -m tools.catalogue docs/tools.md`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import REGISTRY, closest_names, get_tool, schema_for
from tools.catalogue import BEGIN, END, render

DOCS = Path(__file__).resolve().parent.parent / "docs" / "tools.md"

AGREED = {
    "read": {"list_workloads", "get_workload", "list_pods", "describe_pod", "gpu_inventory", "list_findings", "get_job",
             "get_rollout_history"},
    "write": {"scale_workload", "wake_workload", "sleep_workload", "restart_rollout", "undo_rollout", "cordon_node", "uncordon_node", "delete_pod"},
    "architectural": {"set_resources", "set_gpu_placement", "set_replica_bounds", "create_workload", "delete_workload", "change_policy"},
}


def test_registry_holds_exactly_the_agreed_tools_with_their_risks():
    for risk, names in AGREED.items():
        assert {n for n, t in REGISTRY.items() if t.risk == risk} == names
    assert get_tool("scale_workload") is REGISTRY["scale_workload"]
    assert get_tool("rm -rf") is None


def test_policy_risk_table_agrees_with_the_registry():
    toolrisk = pytest.importorskip("opsagent.policy.toolrisk")
    assert dict(toolrisk.KNOWN_TOOL_RISKS) == {n: t.risk for n, t in REGISTRY.items()}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_each_tool_is_described_and_its_examples_validate(name):
    tool = REGISTRY[name]
    assert tool.name == name
    assert len(tool.description) > 20 and tool.returns
    assert tool.examples, "a model learns the call shape from an example"
    for example in tool.examples:
        tool.input_model.model_validate(example)
    schema = schema_for(tool)
    json.dumps(schema)
    assert schema["parameters"].get("additionalProperties") is False
    for field, spec in schema["parameters"].get("properties", {}).items():
        text = spec.get("description") or next((s.get("description") for s in spec.get("anyOf", []) if s.get("description")), None)
        assert text, f"{name}.{field} has no description for the model to read"


def test_workload_tools_take_namespace_and_name():
    for tool in REGISTRY.values():
        props = tool.input_model.model_json_schema().get("properties", {})
        if "name" in props and tool.name not in ("change_policy",):
            assert "namespace" in props, tool.name


def test_docs_catalogue_is_generated_from_the_registry():
    text = DOCS.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == render(), "docs/tools.md is stale: run python -m tools.catalogue docs/tools.md"
    for name in REGISTRY:
        assert f"#### `{name}`" in text


def test_closest_names_suggests_real_tools():
    assert closest_names("scale_workloads")[0] == "scale_workload"
    assert closest_names("wake") == [] or all(n in REGISTRY for n in closest_names("wake"))
