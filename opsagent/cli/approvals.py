"""`opsagent approvals`: list, show, approve and reject approval requests.

Thin: each command opens the `ApprovalQueue` on the audit database, calls one
method and prints. Who decides is established by `opsagent.identity`: with
`--cluster kube[:CONTEXT]` the user of your kube credentials (or whom they
may impersonate with --as); on a simulator's database --as, OPSAGENT_ACTOR or
the OS user (for demos). A database that records a real cluster's actions
takes no unverified names: it needs --cluster kube. The decider must be a
person (never `daemon`, `wake-proxy` or a look-alike). Time is the database's
own clock, so requests made on the simulator expire in simulated time.
`approve` records the decision and says who runs the call and when: with
--cluster (or OPSAGENT_CLUSTER) it runs here, now, once, through the gate on
that cluster; without, the daemon runs it on its next cycle (whichever channel
asked for it). Either way it runs exactly once: the queue's claim decides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from opsagent.approvals import AlreadyDecided, AlreadyRunning, ApprovalError, ApprovalQueue
from opsagent.cli.common import DbOpt, PoliciesOpt, choices, console, fail
from opsagent.cli.get import APPROVAL_COLUMNS
from opsagent.cli.output import Format, FormatOpt, NoHeadersOpt, emit
from opsagent.cli.common import id_argument
from opsagent.model import Approval, ApprovalState
from opsagent.audit import AuditStore
from opsagent.cli.whoami import ActorOpt, AsGroupOpt, identify, is_kube, member_check
from opsagent.identity import IdentityError, demo_actor
from opsagent.model.actor import Actor

approvals_app = typer.Typer(help="Decide on calls the policy sent to people.\n\nExample: opsagent approvals list",
                            no_args_is_help=True)
StateChoice = choices("StateChoice", ApprovalState)


def register(app: typer.Typer) -> None:
    app.add_typer(approvals_app, name="approvals")


def demo_decider(actor: str | None, as_group: str | None, db: Path) -> Actor:
    """The decider on a simulator's database: --as / OPSAGENT_ACTOR / the OS user, normalised.
    A database a real cluster's runtime wrote to takes no unverified name."""
    if db.exists():
        store = AuditStore(db)
        try:
            real = store.clock_kind() == "real"
        finally:
            store.close()
        if real:
            fail(f"{db} records a real cluster's actions; who decides there must be established by the cluster",
                 hint="pass --cluster kube (or kube:CONTEXT, or OPSAGENT_CLUSTER): your kube credentials say who you are")
    try:
        return demo_actor(actor, as_groups=(as_group,) if as_group else ())
    except IdentityError as exc:
        fail(f"{exc.message}; a person approves or rejects", hint="pass your own name with --as (or OPSAGENT_ACTOR)")


def _policy(policies: Path) -> Any:
    """The policy (approvers, group:NAME membership). Without the policy nobody's
    membership is known, so stop here, before anything is decided or audited."""
    from opsagent.policy import PolicyError, load_policy

    if not policies.is_dir() and not policies.is_file():
        fail(f"policy directory not found: {policies}",
             hint="point --policies (or OPSAGENT_POLICIES) at the policy directory the daemon uses; "
                  "approvers and group:NAME membership come from it")
    try:
        from tools.registry import risk_table

        return load_policy(policies, tool_risks=risk_table())
    except PolicyError as exc:
        fail(f"cannot load the policy: {exc}", hint=f"check the files in {policies} (opsagent policy lint)")


def open_queue(db: Path, *, is_member: Any = None) -> ApprovalQueue:
    """The queue on the database's own clock (see opsagent.audit.clocks)."""
    if not db.exists():
        fail(f"no database at {db}", hint="point --db (or OPSAGENT_DB) at the file the daemon writes")
    return ApprovalQueue(db, clock=None, is_member=is_member)


@approvals_app.command("list")
def list_cmd(state: StateChoice = typer.Option(None, "--state", help="Only requests in this state."),  # type: ignore[valid-type]
             output: Format = FormatOpt, no_headers: bool = NoHeadersOpt, db: Path = DbOpt) -> None:
    """List approval requests (requests past their expiry are marked expired first). The same rows and
    columns as `opsagent get approvals`: `-o wide` adds the expiry, who decided and the rule; `-o name`
    prints `approval/ID` lines.

    Example: opsagent approvals list --state pending
    """
    queue = open_queue(db)
    try:
        queue.expire_due()
        items = queue.list(state=state.value if state is not None else None)
    finally:
        queue.close()
    emit(items, APPROVAL_COLUMNS, output, kind="approval", name_of=lambda a: str(a.id), headers=not no_headers)


@approvals_app.command("show")
def show_cmd(approval_id: int = id_argument("Approval"), output: Format = FormatOpt, no_headers: bool = NoHeadersOpt,
             db: Path = DbOpt) -> None:
    """Show one approval request: the exact call, its arguments hash, the rule and the reason
    (a request past its expiry is marked expired first).

    Example: opsagent approvals show 3 -o json
    """
    queue = open_queue(db)
    try:
        queue.expire_due()
        approval = queue.get(approval_id)
        summary = queue.result_summary(approval_id)
    finally:
        queue.close()
    if approval is None:
        fail(f"no approval {approval_id}", hint="see: opsagent approvals list")
    details = [f"rule: {approval.rule.file}:{approval.rule.name}", f"reason: {approval.reason}",
               f"args hash: {approval.args_hash}", f"finding: {approval.call.finding_id or '-'}",
               *([f"comment: {approval.comment}"] if approval.comment else []), *([f"result: {summary}"] if summary else [])]
    emit([approval], APPROVAL_COLUMNS, output, kind="approval", name_of=lambda a: str(a.id), headers=not no_headers,
         single=True, record_of=lambda a: {**a.model_dump(mode="json"), "result_summary": summary}, notes=details)


def _open(cluster: str, policies: Path, db: Path) -> Any:
    from opsagent.runtime import RuntimeError_, open_runtime

    try:
        return open_runtime(cluster=cluster, policies=policies, db=db)
    except RuntimeError_ as exc:
        return exc


def _execute(queue: ApprovalQueue, approval: Approval, *, by: str, cluster: str, policies: Path, db: Path,
             runtime: Any = None) -> tuple[str, bool]:
    """Run the approved call through the gate on `cluster`, once; a waiting agent run then sees it done.
    Returns what happened and whether the call ran successfully here."""
    runtime = runtime if runtime is not None else _open(cluster, policies, db)
    if isinstance(runtime, Exception):
        return f"approved by {by}, but not run here ({runtime}); the daemon runs it on its next cycle", False
    try:
        result = queue.execute(approval.id, run=lambda a: runtime.gate.run_approved(a, approver=by), actor=by)
    except AlreadyRunning:
        return f"approved by {by}; another process (the daemon, or a run that waited on it) is running it now, once", True
    except AlreadyDecided:
        return (f"approved by {by}; another process (the daemon, or a run that waited on it) already ran it: "
                f"{queue.result_summary(approval.id) or 'see opsagent approvals show ' + str(approval.id)}"), True
    finally:
        runtime.audit.close()
    return f"approved by {by}; ran it now on {cluster}: {result.status}: {result.message}", result.ok


@approvals_app.command("approve")
def approve_cmd(
    approval_id: int = id_argument("Approval"),
    comment: str = typer.Option(None, "--comment", help="Why, for the audit log."),
    actor: str = ActorOpt,
    as_group: str = AsGroupOpt,
    cluster: str = typer.Option(None, "--cluster", envvar="OPSAGENT_CLUSTER",
                                help="Also run the approved call now, once, through the gate on this cluster "
                                     "(kube, kube:CONTEXT or sim:SCENARIO); on kube your kube credentials also say "
                                     "who approves. Without it the decision is recorded and the daemon runs the call "
                                     "on its next cycle, on the daemon channel, whichever channel asked for it."),
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
) -> None:
    """Approve exactly the call that was requested. It runs once: here and now with --cluster, else on the
    daemon's next cycle (through the gate, audited on the daemon channel with you as the approver).

    Exit codes: 0 approved (and, with --cluster, the call ran and succeeded); 1 the approval was
    refused, or with --cluster the call did not succeed here (the policy in force denied it, it
    failed, or the cluster could not be opened; the approval itself stays recorded); 2 a bad
    argument or file.

    Example: opsagent approvals approve 3 --comment "capacity checked" --as alice
    """
    policy = _policy(policies)
    runtime = None
    if is_kube(cluster):
        if not db.exists():
            fail(f"no database at {db}", hint="point --db (or OPSAGENT_DB) at the file the daemon writes")
        runtime = _open(cluster, policies, db)
        if isinstance(runtime, Exception):
            fail(str(runtime), hint=getattr(runtime, "hint", None))
        who = identify(cluster_spec=cluster, cluster=runtime.cluster, as_user=actor, as_group=as_group,
                       on_error=runtime.audit.close)
    else:
        who = demo_decider(actor, as_group, db)
    by = who.name
    queue = open_queue(db, is_member=member_check(policy, who))
    try:
        approval = queue.approve(approval_id, by=by, comment=comment)
        message, ran = _execute(queue, approval, by=by, cluster=cluster, policies=policies, db=db, runtime=runtime) \
            if cluster else (f"approved by {by}; the daemon runs it on its next cycle (or run it now with --cluster)", True)
    except ApprovalError as exc:
        if runtime is not None:
            runtime.audit.close()
        fail(exc.message, hint="see: opsagent approvals show " + str(approval_id), code=1)
    finally:
        queue.close()
    console.print(f"approval {approval_id} {message}", highlight=False, markup=False)
    if not ran:
        raise typer.Exit(1)


@approvals_app.command("reject")
def reject_cmd(
    approval_id: int = id_argument("Approval"),
    reason: str = typer.Option(..., "--reason", help="Why not, for the requester and the audit log."),
    actor: str = ActorOpt,
    as_group: str = AsGroupOpt,
    cluster: str = typer.Option(None, "--cluster", envvar="OPSAGENT_CLUSTER",
                                help="kube or kube:CONTEXT: your kube credentials say who rejects (needed for a "
                                     "database a real cluster's daemon writes). Nothing runs."),
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
) -> None:
    """Reject a request (approvers), or withdraw your own.

    Example: opsagent approvals reject 3 --reason "use the spare A100 pool instead" --as alice
    """
    policy = _policy(policies)
    if is_kube(cluster):
        from opsagent.runtime import RuntimeError_, open_cluster

        try:
            kube, _, _ = open_cluster(cluster)
        except RuntimeError_ as exc:
            fail(str(exc), hint=exc.hint)
        who = identify(cluster_spec=cluster, cluster=kube, as_user=actor, as_group=as_group)
    else:
        who = demo_decider(actor, as_group, db)
    by = who.name
    queue = open_queue(db, is_member=member_check(policy, who))
    try:
        queue.reject(approval_id, by=by, reason=reason)
    except ApprovalError as exc:
        fail(exc.message, hint="see: opsagent approvals show " + str(approval_id), code=1)
    except ValueError as exc:
        fail(f"--reason: {exc}")
    finally:
        queue.close()
    console.print(f"approval {approval_id} rejected by {by}", highlight=False, markup=False)
