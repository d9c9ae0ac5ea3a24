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


class _AdapterWithMore(TinyCluster):
    """An adapter that grew a write the port does not list, and exposes its raw client, as a real one might."""

    def __init__(self) -> None:
        super().__init__()
        self.patched: list[str] = []
        self.apps = self  # the kube adapter's `apps` / `core` / `chokepoint` are raw API clients

    def patch_labels(self, **kwargs):  # not in ClusterWriter, so not in WRITE_METHODS
        self.patched.append("patch_labels")

    def wait_changed(self, *, ref, timeout):
        return False


@pytest.mark.parametrize("name", ["patch_labels", "apps", "add_workload", "workloads"])
def test_the_utilisation_watch_passes_only_reads_not_whatever_the_adapter_has(name):
    watch = UtilisationWatch(_AdapterWithMore(), lambda workload: None)
    with pytest.raises(AttributeError):
        getattr(watch, name)
    assert callable(watch.wait_changed) and watch.snapshot().workloads == ()


def test_the_runtime_reader_reaches_none_of_the_simulators_mutators(tmp_path):
    from opsagent.runtime import open_runtime

    rt = open_runtime(cluster="sim:demo", policies=ROOT / "policies", db=tmp_path / "ops.db")
    try:
        for name in ("new_revision", "bind", "release", "submit_job", "emit", "arrive"):
            with pytest.raises(AttributeError):
                getattr(rt.cluster, name)
        assert rt.cluster.snapshot().workloads
    finally:
        rt.audit.close()


def test_the_gate_hands_out_a_reader_that_keeps_the_waits(tmp_path):
    from opsagent.cluster.port import WaitsChange
    from opsagent.leases import LeaseService
    from opsagent.runtime import open_runtime

    inner = RecordingCluster(_AdapterWithMore())
    rt = open_runtime(cluster_obj=inner, clock=inner.inner.clock, policies=ROOT / "policies", db=tmp_path / "ops.db")
    try:
        reader = rt.gate.reader
        assert isinstance(reader, WaitsChange) and reader.snapshot() is not None
        for name in WRITE_METHODS:
            with pytest.raises(Forbidden):
                getattr(reader, name)()
        leases = LeaseService.over(rt.gate)
        for name in WRITE_METHODS:
            with pytest.raises(Forbidden):
                getattr(leases.cluster, name)()
        with pytest.raises(AttributeError):
            reader.patch_labels  # noqa: B018
        assert inner.writes == [] and inner.inner.patched == []
    finally:
        rt.audit.close()


def test_nothing_outside_the_gate_reaches_the_gates_writer():
    """`gate.cluster` is the writer: only the gate, and the wiring that builds more gates over it, may name it;
    everyone else takes `gate.reader`."""
    allowed = {"opsagent/gate/core.py", "opsagent/runtime.py", "opsagent/daemon/runner.py"}

    def names_gate(node) -> bool:
        return ast.unparse(node).split(".")[-1].endswith("gate")

    found = []
    for top in ("opsagent", "tools"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in allowed:
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Attribute) and node.attr == "cluster" and names_gate(node.value):
                    found.append((rel, node.lineno))
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                      and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                      and node.args[1].value == "cluster" and names_gate(node.args[0])):
                    found.append((rel, node.lineno))
    assert found == [], f"the gate's writer is reached outside the gate: {found}"


def test_idempotency_keys_are_built_only_in_gate_keys():
    """One key scheme: no other module spells a key's parts (`:result`, `:decision`, `:run:`, `approval:`) itself."""
    parts = (":result", ":decision", ":proposal", ":claim", ":run:", "approval:")
    found = []
    for top in ("opsagent", "tools"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ("opsagent/gate/keys.py", "opsagent/audit/store.py"):  # the store sits below the gate: see keys.FINISHED
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.JoinedStr):
                    text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
                    if any(part in text for part in parts):
                        found.append((rel, node.lineno, ast.unparse(node)))
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                      and node.func.attr in ("endswith", "removesuffix") and node.args
                      and isinstance(node.args[0], ast.Constant) and node.args[0].value in ("claim", ":claim", "result", ":result")):
                    found.append((rel, node.lineno, ast.unparse(node)))
    assert found == [], f"keys built outside opsagent/gate/keys.py: {found}"
