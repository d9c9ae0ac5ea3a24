"""`opsagent get KIND [NAME]`: read what opsagent sees, kubectl style, without writing anything.

Workloads, GPUs and nodes come from one read of the cluster through the
same port the daemon uses; findings are what the detectors make of that read
under the policy's intents; approvals, runs and leases (time-boxed wakes)
come from the audit database.
Workloads and findings are limited to what the policy governs (its scope):
what opsagent may never touch is not its to show. Plain reads are not
audited (see docs/audit.md): they change nothing and would drown the log.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from opsagent.cli.common import DbOpt, fail
from opsagent.cli.output import Column, Format, FormatOpt, NoHeadersOpt, emit


class Kind(str, Enum):
    workloads = "workloads"
    gpus = "gpus"
    nodes = "nodes"
    findings = "findings"
    approvals = "approvals"
    runs = "runs"
    leases = "leases"


LABELLED = (Kind.workloads, Kind.nodes, Kind.findings)   # what -l selects on

ALIASES = {"workload": "workloads", "wl": "workloads", "deploy": "workloads", "deployments": "workloads",
           "gpu": "gpus", "node": "nodes", "no": "nodes", "finding": "findings", "approval": "approvals", "run": "runs",
           "lease": "leases"}


def _kind(text: str) -> Kind:
    name = ALIASES.get(text.lower(), text.lower())
    try:
        return Kind(name)
    except ValueError:
        fail(f"unknown kind {text!r}", hint=f"use one of {', '.join(k.value for k in Kind)}")


_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = rf"(?:[a-z0-9](?:[-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}"   # [prefix/]name, as Kubernetes label keys
_VALUE = rf"(?:{_NAME})?"
_EQUALITY = re.compile(rf"\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*")
_SET = re.compile(rf"\s*({_KEY})\s+(in|notin)\s*\(\s*({_VALUE}(?:\s*,\s*{_VALUE})*)\s*\)\s*")
_EXISTS = re.compile(rf"\s*(!?)\s*({_KEY})\s*")
SELECTOR_HINT = "use key=value, key!=value, key in (a,b), key notin (a,b), key or !key, separated by commas"


def _is_in(key: str, values: frozenset[str], *, negated: bool) -> Callable[[dict[str, str]], bool]:
    """key=v / key in (..); negated: key!=v / key notin (..), which a workload without the key also passes."""
    def test(labels: dict[str, str]) -> bool:
        return (labels.get(key) in values) != negated
    return test


def _has(key: str, *, negated: bool) -> Callable[[dict[str, str]], bool]:
    def test(labels: dict[str, str]) -> bool:
        return (key in labels) != negated
    return test


def selector(text: str | None) -> Callable[[dict[str, str]], bool]:
    """`-l` as kubectl reads it (key=value, key==value, key!=value, key in (a,b), key notin (a,b), key, !key,
    comma separated; keys and values in Kubernetes label syntax) as a label test. A selector that is not one
    stops with a message naming the part it cannot read, rather than silently matching nothing."""
    if not text or not text.strip():
        return lambda labels: True
    tests: list[Callable[[dict[str, str]], bool]] = []
    for part in re.split(r",(?![^()]*\))", text):   # commas inside (a,b) belong to the set
        if m := _EQUALITY.fullmatch(part):
            key, op, value = m.groups()
            tests.append(_is_in(key, frozenset([value]), negated=op == "!="))
        elif m := _SET.fullmatch(part):
            values = frozenset(v.strip() for v in m.group(3).split(","))
            tests.append(_is_in(m.group(1), values, negated=m.group(2) == "notin"))
        elif m := _EXISTS.fullmatch(part):
            tests.append(_has(m.group(2), negated=bool(m.group(1))))
        else:
            fail(f"-l {text!r}: cannot read {part.strip()!r}", hint=SELECTOR_HINT)
    return lambda labels: all(t(labels) for t in tests)


WORKLOAD_COLUMNS = [
    Column("namespace", lambda w: w.ref.namespace), Column("name", lambda w: w.ref.name),
    Column("ready", lambda w: f"{w.ready_replicas}/{w.replicas}"), Column("gpus", lambda w: w.gpus_per_replica * w.replicas),
    Column("req/s", lambda w: "?" if w.request_rate is None else round(w.request_rate, 2)),
    Column("gpu util", lambda w: "?" if w.gpu_utilization is None else f"{w.gpu_utilization:.0f}%"),
    Column("image", lambda w: w.image, wide=True), Column("revision", lambda w: w.revision, wide=True),
    Column("rollout", lambda w: w.rollout.status, wide=True),
]
GPU_COLUMNS = [
    Column("node", lambda d: d.node), Column("id", lambda d: d.id), Column("model", lambda d: d.model),
    Column("link", lambda d: f"x{d.pcie_link_width}"), Column("holder", lambda d: d.holder),
    Column("util", lambda d: f"{d.utilization:.0f}%"),
    Column("memory mib", lambda d: d.memory_mib, wide=True), Column("switch", lambda d: d.switch_group, wide=True),
    Column("held since", lambda d: d.held_since.isoformat() if d.held_since else None, wide=True),
]
NODE_COLUMNS = [
    Column("name", lambda n: n.name), Column("ready", lambda n: n.ready), Column("cordoned", lambda n: n.cordoned),
    Column("gpus", lambda n: len(n.gpus)), Column("gpus free", lambda n: sum(1 for d in n.gpus if d.holder is None)),
    Column("labels", lambda n: ",".join(f"{k}={v}" for k, v in sorted(n.labels.items())), wide=True),
]
FINDING_COLUMNS = [
    Column("id", lambda f: f.id), Column("severity", lambda f: f.severity), Column("summary", lambda f: f.summary),
    Column("seen", lambda f: f.seen_at.isoformat() if f.seen_at else None, wide=True),
]
APPROVAL_COLUMNS = [
    Column("id", lambda a: a.id), Column("state", lambda a: a.state), Column("tool", lambda a: a.call.tool),
    Column("target", lambda a: "/".join(str(a.call.args.get(k, "")) for k in ("namespace", "name")).strip("/") or None),
    Column("requested by", lambda a: a.requested_by), Column("approvers", lambda a: a.approvers),
    Column("args", lambda a: ",".join(f"{k}={v}" for k, v in sorted(a.call.args.items())), wide=True),
    Column("expires", lambda a: a.expires_at.isoformat(), wide=True), Column("decided by", lambda a: a.decided_by, wide=True),
    Column("rule", lambda a: f"{a.rule.file}:{a.rule.name}", wide=True),
]
LEASE_COLUMNS = [
    Column("workload", lambda x: x.workload), Column("state", lambda x: x.state), Column("woken by", lambda x: x.actor),
    Column("started", lambda x: x.started_at.isoformat()), Column("until", lambda x: x.until.isoformat()),
    Column("ended by", lambda x: x.ended_by, wide=True),
    Column("ended", lambda x: x.ended_at.isoformat() if x.ended_at else None, wide=True),
]
RUN_COLUMNS = [
    Column("run", lambda r: r["run_id"]), Column("actor", lambda r: r["actor"]), Column("about", lambda r: r["about"]),
    Column("last event", lambda r: r["last"]), Column("started", lambda r: r["started"]),
    Column("events", lambda r: r["events"], wide=True),
]


def _cluster_rows(kind: Kind, name: str | None, namespace: str | None, labels: Callable[[dict[str, str]], bool],
                  cluster: str | None, policies: Path | None) -> tuple[list[Any], Any]:
    from opsagent.cli.resolve import cluster_spec, folder
    from opsagent.runtime import RuntimeError_, open_cluster, open_policy

    spec = cluster_spec(cluster)
    where = folder(policies, "policies") if kind in (Kind.workloads, Kind.findings) else None   # a bad one exits here
    try:
        port, clock, _ = open_cluster(spec)
        policy = open_policy(where) if where is not None else None
        snap = port.snapshot()
    except RuntimeError_ as exc:
        fail(str(exc), hint=getattr(exc, "hint", None))
    except Exception as exc:  # an API server error: say what failed, in one line
        fail(f"cannot read the cluster: {type(exc).__name__}: {str(exc)[:300]}", hint="check the cluster with: opsagent doctor")
    if kind is Kind.nodes:
        return [n for n in snap.nodes if (name is None or n.name == name) and labels(n.labels)], None
    if kind is Kind.gpus:
        return [d for n in snap.nodes for d in n.gpus if name in (None, d.id, d.node)], None
    assert policy is not None
    governed = [w for w in snap.workloads if policy.in_scope(w.ref.namespace, w.labels)]
    if kind is Kind.workloads:
        ns, _, short = (name or "").rpartition("/")
        ns = ns or namespace
        return [w for w in governed if (ns is None or w.ref.namespace == ns) and (not short or w.ref.name == short)
                and labels(w.labels)], None
    from opsagent.detect import detect

    keys = {w.key for w in governed if (namespace is None or w.ref.namespace == namespace) and labels(w.labels)}
    found = detect(snap, intents=policy.intent_book, now=clock.now())
    return [f for f in found if (f.subject in keys or "/" not in f.subject) and name in (None, f.id)], None


def _db_rows(kind: Kind, name: str | None, namespace: str | None, db: Path) -> list[Any]:
    from opsagent.cli.audit import open_store

    store = open_store(db)
    try:
        if kind is Kind.approvals:
            from opsagent.approvals import ApprovalQueue

            rows = ApprovalQueue(store, clock=None).list()
            if name is not None:
                if not name.isdigit():
                    fail(f"approval {name!r}: an approval id is a whole number", hint="see: opsagent get approvals")
                rows = [a for a in rows if a.id == int(name)]
            return [a for a in rows if namespace is None or a.call.args.get("namespace") == namespace]
        if kind is Kind.leases:
            from opsagent.leases import newest_first, read_leases

            leases = newest_first(read_leases(store))
            matching = [x for x in leases if name in (None, x.workload, x.id)
                        and (namespace is None or x.workload.split("/", 1)[0] == namespace)]
            return matching[:1] if name is not None else matching   # NS/NAME: its newest lease
        from opsagent.audit import AuditFilter

        runs: dict[str, dict[str, Any]] = {}
        for r in sorted(store.list(AuditFilter(kind="run", limit=10_000)), key=lambda r: r.id):
            run = runs.setdefault(r.run_id or "-", {"run_id": r.run_id or "-", "actor": r.actor, "about": r.finding_id or r.message,
                                                    "started": r.time.isoformat(), "events": 0})
            run["last"], run["events"] = (r.summary or r.outcome or "")[:80], run["events"] + 1
        return [r for r in reversed(list(runs.values())) if name in (None, r["run_id"])]
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    @app.command("get")
    def get_command(
        kind: str = typer.Argument(..., metavar="KIND", help="workloads, gpus, nodes, findings, approvals, runs or leases."),
        name: Optional[str] = typer.Argument(None, metavar="NAME", help="One object: NS/NAME or NAME with -n, a node, a GPU id, a finding id, an approval id or a run id."),
        namespace: Optional[str] = typer.Option(None, "--namespace", "-n", envvar="OPSAGENT_NAMESPACE", help="Only this namespace (default: every namespace the policy governs)."),
        label_selector: Optional[str] = typer.Option(None, "--selector", "-l", envvar="OPSAGENT_SELECTOR", help="Label selector, as kubectl: key=value, key!=value, key in (a,b), key notin (a,b), key, !key; comma separated (workloads, nodes, findings)."),
        cluster: Optional[str] = typer.Option(None, "--cluster", envvar="OPSAGENT_CLUSTER", help="sim:SCENARIO, kube or kube:CONTEXT (default: your kubeconfig's current context)."),
        policies: Optional[Path] = typer.Option(None, "--policies", envvar="OPSAGENT_POLICIES", help="Policy folder (default: ./policies, then ~/.config/opsagent/policies, then the shipped ones)."),
        db: Path = DbOpt,
        output: Format = FormatOpt,
        no_headers: bool = NoHeadersOpt,
    ) -> None:
        """List what opsagent sees: workloads, GPUs and nodes from the cluster, the findings the detectors
        raise, and approvals, agent runs and time-boxed wakes (leases) from the audit database. Reads only: nothing is written,
        not even an audit row.

        Exit codes: 0 with the rows (none is not an error when listing); 1 when a NAME was given and
        nothing has it; 2 for bad arguments, no cluster to read, or no database.

        Example: opsagent get workloads -n inference -o wide --cluster sim:demo
        """
        chosen = _kind(kind)
        labels = selector(label_selector)
        if label_selector and label_selector.strip() and chosen not in LABELLED:   # ignoring it would list them all
            fail(f"-l {label_selector!r}: {chosen.value} have no labels to select on",
                 hint=f"-l applies to {', '.join(k.value for k in LABELLED)} (findings by their workload's labels)")
        if chosen in (Kind.approvals, Kind.runs, Kind.leases):
            rows = _db_rows(chosen, name, namespace, db)
        else:
            rows, _ = _cluster_rows(chosen, name, namespace, labels, cluster, policies)
        columns = {Kind.workloads: WORKLOAD_COLUMNS, Kind.gpus: GPU_COLUMNS, Kind.nodes: NODE_COLUMNS,
                   Kind.findings: FINDING_COLUMNS, Kind.approvals: APPROVAL_COLUMNS, Kind.runs: RUN_COLUMNS,
                   Kind.leases: LEASE_COLUMNS}[chosen]
        name_of: Callable[[Any], str] = {
            Kind.workloads: lambda w: w.key, Kind.gpus: lambda d: d.id, Kind.nodes: lambda n: n.name,
            Kind.findings: lambda f: f.id, Kind.approvals: lambda a: str(a.id), Kind.runs: lambda r: r["run_id"],
            Kind.leases: lambda x: x.id,
        }[chosen]
        if name is not None and not rows:
            fail(f"{chosen.value} {name!r} not found", hint=f"list them with: opsagent get {chosen.value}", code=1)
        record_of: Callable[[Any], Any] = (lambda f: {"id": f.id, **f.model_dump(mode="json")}) if chosen is Kind.findings else (lambda r: r)
        emit(rows, columns, output, kind=chosen.value.rstrip("s"), name_of=name_of, record_of=record_of,
             headers=not no_headers, single=name is not None)
