"""A tool is declared once, in its own module: registering a new one is enough for the
policy's risk table, the generated catalogue, chat rendering and crash recovery to know it."""

from __future__ import annotations

import dataclasses
from textwrap import dedent

import pytest
from pydantic import Field

from opsagent.chat import grammar, render
from opsagent.cluster.sim import SimCluster, builtin_scenario
from opsagent.gate.recovery import observed_effect
from opsagent.model import ToolResult
from opsagent.runtime import RuntimeError_, open_policy
from tools import REGISTRY, Outcome, Tool, register, risk_table
from tools.base import ChatForm, ResultData
from tools.args import WorkloadArgs
from tools.catalogue import render as catalogue
from tools.effects import Observed
from tools.registry import missing_parts


class LabelWorkloadIn(WorkloadArgs):
    colour: str = Field(max_length=20, description="The colour to paint the workload.")


class Painted(ResultData):
    colour: str


def _label(ctx, args: LabelWorkloadIn) -> Outcome:
    return Outcome(message=f"painted {args.namespace}/{args.name}", data={"colour": args.colour})


def _painted(args, before, snapshot) -> Observed:
    w = snapshot.workload(f"{args['namespace']}/{args['name']}")
    seen = w is not None and w.annotations.get("colour") == args["colour"]
    return Observed("in_effect" if seen else "not_in_effect", "looked at the colour annotation")


PAINT = Tool(
    name="paint_workload", risk="architectural", input_model=LabelWorkloadIn, run=_label,
    description="Paint a workload a colour, for a test of how a tool is declared.",
    examples=({"namespace": "inference", "name": "llm", "colour": "teal"},), returns="`colour`.",
    effect=_painted, result_model=Painted,
    show=lambda result: [f"painted {Painted.of(result).colour}"],
    phrase=lambda ref, args: f"paint `{ref}` {render.plain(args.get('colour'), 20)}",
    chat=ChatForm(verb="paint", form="paint NS/NAME COLOUR", pattern=r"^paint\s+{WL}\s+(?P<colour>[a-z]{1,20})$",
                  hint="paint NS/NAME COLOUR, e.g. 'paint inference/llm teal'",
                  build=lambda ref, g: ({"colour": g["colour"].lower()}, f"paint {ref} {g['colour'].lower()}")),
)


@pytest.fixture
def paint():
    register(PAINT)
    try:
        yield PAINT
    finally:
        REGISTRY.pop(PAINT.name, None)


def test_a_registered_tool_reaches_the_risk_table_the_policy_loader_gets(paint, tmp_path):
    assert risk_table()["paint_workload"] == "architectural"
    (tmp_path / "a.yaml").write_text(dedent("""
        rules:
          - {name: paint-freely, tools: [paint_workload], effect: allow}
        """))
    with pytest.raises(RuntimeError_) as refused:
        open_policy(tmp_path)
    assert "architectural changes always need a person" in str(refused.value)


def test_without_the_tool_the_same_rule_names_nothing_the_loader_must_refuse(tmp_path):
    (tmp_path / "a.yaml").write_text("rules:\n  - {name: paint-freely, tools: [paint_workload], effect: allow}\n")
    assert [r.rule.name for r in open_policy(tmp_path).rules] == ["paint-freely"]


def test_a_registered_tool_appears_in_the_generated_catalogue(paint):
    text = catalogue()
    architectural = text.index("### Architectural tools")
    assert text.index("#### `paint_workload`") > architectural
    assert "| `colour` | string (≤20 chars) | yes | The colour to paint the workload. |" in text
    assert "paint_workload" not in catalogue({n: t for n, t in REGISTRY.items() if n != "paint_workload"})


def test_chat_shows_a_registered_tool_by_its_own_rendering(paint):
    result = ToolResult(status="ok", tool="paint_workload", message="painted", data={"colour": "teal"})
    assert render.result_lines(result) == ["painted teal"]
    assert render.call_summary("paint_workload", {"namespace": "inference", "name": "llm", "colour": "te`al"}) \
        == "paint `inference/llm` te'al"
    failed = ToolResult(status="error", tool="paint_workload", message="no such workload")
    assert render.result_lines(failed) == ["no such workload"]


def test_chat_understands_a_registered_tool_by_its_own_form(paint):
    assert "paint NS/NAME COLOUR" in grammar.forms()
    command = grammar.parse("please paint `llm` in inference TEAL?")
    assert command.action == "tool" and command.summary == "paint inference/llm teal"
    assert [(s.tool, s.args) for s in command.steps] == [("paint_workload", {"namespace": "inference", "name": "llm", "colour": "teal"})]
    missed = grammar.parse("paint llm teal")
    assert missed.hint == "use: paint NS/NAME COLOUR, e.g. 'paint inference/llm teal'"
    assert missed.reason.startswith("name the workload")


def test_without_the_tool_chat_does_not_know_its_form():
    assert "paint NS/NAME COLOUR" not in grammar.forms()
    unknown = grammar.parse("paint inference/llm teal")
    assert isinstance(unknown, grammar.NotUnderstood) and "not" in unknown.reason and "chat command" in unknown.reason


def test_recovery_asks_a_registered_tool_for_its_effect_check(paint):
    snapshot = SimCluster(builtin_scenario("demo")).snapshot()
    workload = snapshot.workloads[0]
    args = {"namespace": workload.ref.namespace, "name": workload.ref.name, "colour": "teal"}
    assert observed_effect("paint_workload", args, None, snapshot) == Observed("not_in_effect", "looked at the colour annotation")
    REGISTRY.pop("paint_workload")
    assert observed_effect("paint_workload", args, None, snapshot).verdict == "unknown"


def test_a_name_is_declared_once(paint):
    with pytest.raises(ValueError, match="defined twice"):
        register(PAINT)


@pytest.mark.parametrize("part,risk,named", [
    ("result_model", "read", "result_model"), ("phrase", "read", "phrase"),
    ("effect", "write", "effect"), ("show", "architectural", "show"),
])
def test_a_tool_missing_a_required_part_is_refused_by_name(part, risk, named):
    """Every tool: input model, risk, typed result, phrase; a write also its effect check and its chat rendering."""
    lacking = dataclasses.replace(PAINT, name="half_painted", risk=risk, **{part: None})
    assert any(m.startswith(named) for m in missing_parts(lacking))
    with pytest.raises(ValueError, match=rf"tool 'half_painted' is not declared whole: it lacks {named}"):
        register(lacking)
    assert "half_painted" not in REGISTRY


def test_a_read_needs_no_effect_or_show_and_a_chat_form_is_optional_for_all():
    assert missing_parts(dataclasses.replace(PAINT, risk="read", effect=None, show=None, chat=None)) == []
    assert missing_parts(dataclasses.replace(PAINT, chat=None)) == []
    assert [m.split(" ")[0] for m in missing_parts(dataclasses.replace(PAINT, risk="cosmic"))] == ["risk"]


def test_every_registered_tool_is_declared_whole():
    assert {name: missing_parts(tool) for name, tool in REGISTRY.items() if missing_parts(tool)} == {}
