"""Only the gate writes: the port's write list is the one list, and write calls live in tools/ alone.

Imports cannot show a method call, so this reads the source: every call of a
port write method in opsagent/ and tools/ sits in a tool module, every
`ToolContext` (which carries the writable cluster) is built by the gate, and
every view handed to the rest refuses the writes named in `WRITE_METHODS`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from opsagent.cluster.port import WRITE_METHODS, ClusterWriter, Forbidden, ReadOnlyCluster, read_only
from opsagent.cluster.utilwatch import UtilisationWatch
from opsagent.evals.runner import WriteTap
from doubles.cluster import RecordingCluster, TinyCluster

ROOT = Path(__file__).resolve().parent.parent
WRITE_TOOL_MODULES = {"tools/write.py", "tools/architectural.py", "tools/images.py"}


def _calls(name_test) -> list[tuple[str, int, str]]:
    found = []
    for top in ("opsagent", "tools"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Call) and name_test(node.func):
                    found.append((path.relative_to(ROOT).as_posix(), node.lineno, ast.unparse(node.func)))
    return found


def test_write_method_names_come_from_the_writer_protocol():
    declared = [n for n, v in vars(ClusterWriter).items() if callable(v) and not n.startswith("_")]
    assert list(WRITE_METHODS) == declared and "scale" in WRITE_METHODS and "snapshot" not in WRITE_METHODS


def test_port_writes_are_called_only_from_the_write_tools():
    calls = _calls(lambda f: isinstance(f, ast.Attribute) and f.attr in WRITE_METHODS)
    assert calls, "the scan found no write call at all: it no longer sees the tools"
    outside = [c for c in calls if c[0] not in WRITE_TOOL_MODULES]
    assert outside == [], f"port writes called outside the write tools: {outside}"


def test_only_the_gate_builds_a_tool_context():
    built = _calls(lambda f: (isinstance(f, ast.Name) and f.id == "ToolContext")
                   or (isinstance(f, ast.Attribute) and f.attr == "ToolContext"))
    assert built and {path for path, _, _ in built} == {"opsagent/gate/core.py"}


@pytest.mark.parametrize("name", WRITE_METHODS)
def test_the_read_only_view_refuses_every_port_write(name):
    cluster = RecordingCluster(TinyCluster())
    view = read_only(cluster)
    with pytest.raises(Forbidden):
        getattr(view, name)()
    assert cluster.writes == [] and read_only(view) is view and isinstance(view, ReadOnlyCluster)


@pytest.mark.parametrize("name", WRITE_METHODS)
def test_the_utilisation_watch_passes_no_write_but_its_writer_does(name):
    inner = RecordingCluster(TinyCluster())
    watch = UtilisationWatch(inner, lambda workload: None)
    with pytest.raises(AttributeError):
        getattr(watch, name)
    assert getattr(watch.writer(), name) is not None


def test_the_write_tap_refuses_what_it_does_not_know():
    from opsagent.cluster.sim import SimCluster, builtin_scenario

    tap = WriteTap(SimCluster(builtin_scenario("demo"), seed=1))
    assert tap.snapshot().workloads
    with pytest.raises(AttributeError, match="write tap"):
        tap.some_new_write  # noqa: B018
    for name in WRITE_METHODS:
        assert callable(getattr(tap, name))


def test_the_recording_cluster_records_every_port_write():
    cluster = RecordingCluster(TinyCluster())
    for name in WRITE_METHODS:
        try:
            getattr(cluster, name)()  # wrong arguments: recorded as it arrived, then refused by the cluster
        except TypeError:
            pass
    assert [name for name, _ in cluster.writes] == list(WRITE_METHODS)
