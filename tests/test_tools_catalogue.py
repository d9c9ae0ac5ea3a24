"""The tool catalogue: every tool is well formed, documented, and matches the policy's table.

docs/tools.md carries a generated catalogue; these tests fail when a tool is
added or changed without regenerating it (`python -m tools.catalogue docs/tools.md`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import REGISTRY, closest_names, get_tool, risk_table, schema_for
from tools.architectural import ARCHITECTURAL_TOOLS
from tools.catalogue import BEGIN, END, render
from tools.read import READ_TOOLS
from tools.write import WRITE_TOOLS

DOCS = Path(__file__).resolve().parent.parent / "docs" / "tools.md"

FAMILIES = {"read": READ_TOOLS, "write": WRITE_TOOLS, "architectural": ARCHITECTURAL_TOOLS}


def test_registry_holds_each_family_under_its_own_risk():
    for risk, family in FAMILIES.items():
        assert family, f"no {risk} tools"
        assert {t.name for t in family} == {n for n, t in REGISTRY.items() if t.risk == risk}
        assert all(REGISTRY[t.name] is t for t in family)
    assert len(REGISTRY) == sum(len(f) for f in FAMILIES.values())
    assert risk_table() == {n: t.risk for n, t in REGISTRY.items()}
    assert get_tool("scale_workload") is REGISTRY["scale_workload"]
    assert get_tool("rm -rf") is None


def test_every_tool_that_writes_declares_how_recovery_checks_its_effect():
    missing = sorted(n for n, t in REGISTRY.items() if t.risk != "read" and t.effect is None)
    assert missing == []   # change_policy's says it cannot be checked from the cluster, and where to look
    assert all(t.effect is None for t in READ_TOOLS)


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


@pytest.mark.parametrize("module", ["tools.read", "tools.write", "tools.architectural"])
def test_each_family_table_names_only_tools_of_its_family(module):
    """A family keeps per-tool parts (returns, effect, chat form, ...) in tables by name; a misspelt name must not drop one."""
    import importlib

    mod = importlib.import_module(module)
    family = next(v for k, v in vars(mod).items() if k.endswith("_TOOLS") and isinstance(v, tuple))
    names = {t.name for t in family}
    tables = {k: v for k, v in vars(mod).items() if k in ("RETURNS", "EFFECTS", "PHRASES", "CHAT", "SHOWS", "RESULTS")}
    assert "RETURNS" in tables
    for table_name, table in tables.items():
        assert set(table) <= names, f"{module}.{table_name} names {sorted(set(table) - names)}"
