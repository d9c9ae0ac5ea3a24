"""`opsagent approvals`: list, show, approve and reject approval requests.

Thin: each command opens the `ApprovalQueue` on the audit database, calls one
method and prints. Who acts comes from --as, OPSAGENT_ACTOR, or the OS user,
and must be a person (never `daemon` or `wake-proxy`). Time is the database's
own clock, so requests made on the simulator expire in simulated time.
`approve` records the decision and says who runs the call and when: with
--cluster (or OPSAGENT_CLUSTER) it runs here, now, once, through the gate on
that cluster; without, the daemon runs it on its next cycle (whichever channel
asked for it). Either way it runs exactly once: the queue's claim decides.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from opsagent.approvals import MACHINE_ACTORS, AlreadyDecided, AlreadyRunning, ApprovalError, ApprovalQueue
from opsagent.cli.common import DbOpt, Output, OutputOpt, PoliciesOpt, choices, console, fail, print_json
from opsagent.model import Approval, ApprovalState

approvals_app = typer.Typer(help="Decide on calls the policy sent to people.\n\nExample: opsagent approvals list",
                            no_args_is_help=True)
ActorOpt = typer.Option(None, "--as", envvar="OPSAGENT_ACTOR", help="Who decides (a person); default: the OS user.")
StateChoice = choices("StateChoice", ApprovalState)


def register(app: typer.Typer) -> None:
    app.add_typer(approvals_app, name="approvals")


def actor_name(value: str | None) -> str:
    """The person deciding. Machine actors never approve or reject from here."""
    name = value or getpass.getuser()
    if name in MACHINE_ACTORS:
        fail(f"--as {name}: {name} is a machine actor; a person approves or rejects",
             hint="pass your own name with --as (or OPSAGENT_ACTOR)")
    return name


def _is_member(policies: Path) -> Any:
    """The policy's `actor_matches` (group:NAME membership). Without the policy nobody's
    membership is known, so stop here, before anything is decided or audited."""
    from opsagent.policy import PolicyError, load_policy

    if not policies.is_dir() and not policies.is_file():
        fail(f"policy directory not found: {policies}",
             hint="point --policies (or OPSAGENT_POLICIES) at the policy directory the daemon uses; "
                  "approvers and group:NAME membership come from it")
    try:
        return load_policy(policies).actor_matches
    except PolicyError as exc:
        fail(f"cannot load the policy: {exc}", hint=f"check the files in {policies} (opsagent policy lint)")


def open_queue(db: Path, *, is_member: Any = None) -> ApprovalQueue:
    """The queue on the database's own clock (see opsagent.audit.clocks)."""
    if not db.exists():
        fail(f"no database at {db}", hint="point --db (or OPSAGENT_DB) at the file the daemon writes")
    return ApprovalQueue(db, clock=None, is_member=is_member)


def _table(approvals: list[Approval], title: str) -> Table:
    table = Table(title=escape(title))
    for col in ("id", "state", "tool", "arguments", "requested by", "approvers", "expires", "decided by"):
        table.add_column(col, overflow="fold")
    for a in approvals:
        args = ", ".join(f"{k}={v}" for k, v in sorted(a.call.args.items()))
        cells = (str(a.id), a.state, a.call.tool, args, a.requested_by, ", ".join(a.approvers),
                 a.expires_at.strftime("%Y-%m-%d %H:%M"), a.decided_by or "")
        table.add_row(*(escape(c) for c in cells))
    return table


@approvals_app.command("list")
def list_cmd(state: StateChoice = typer.Option(None, "--state", help="Only requests in this state."),  # type: ignore[valid-type]
             output: Output = OutputOpt, db: Path = DbOpt) -> None:
    """List approval requests (requests past their expiry are marked expired first).

    Example: opsagent approvals list --state pending
    """
    queue = open_queue(db)
    try:
        queue.expire_due()
        items = queue.list(state=state.value if state is not None else None)
    finally:
        queue.close()
    if output is Output.json:
        print_json(items)
    else:
        console.print(_table(items, "approval requests"))


@approvals_app.command("show")
def show_cmd(approval_id: int = typer.Argument(..., help="Approval id."), output: Output = OutputOpt, db: Path = DbOpt) -> None:
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
    if output is Output.json:
        print_json({**approval.model_dump(mode="json"), "result_summary": summary})
        return
    console.print(_table([approval], f"approval {approval_id}"))
    console.print(f"rule: {approval.rule.file}:{approval.rule.name}\nreason: {approval.reason}\n"
                  f"args hash: {approval.args_hash}\nfinding: {approval.call.finding_id or '-'}"
                  + (f"\ncomment: {approval.comment}" if approval.comment else "")
                  + (f"\nresult: {summary}" if summary else ""), highlight=False, markup=False)


def _execute(queue: ApprovalQueue, approval: Approval, *, by: str, cluster: str, policies: Path, db: Path) -> str:
    """Run the approved call through the gate on `cluster`, once; a waiting agent run then sees it done."""
    from opsagent.runtime import RuntimeError_, open_runtime

    try:
        runtime = open_runtime(cluster=cluster, policies=policies, db=db)
    except RuntimeError_ as exc:
        return f"approved by {by}, but not run here ({exc}); the daemon runs it on its next cycle"
    try:
        result = queue.execute(approval.id, run=lambda a: runtime.gate.run_approved(a, approver=by), actor=by)
    except AlreadyRunning:
        return f"approved by {by}; another process (the daemon, or a run that waited on it) is running it now, once"
    except AlreadyDecided:
        return f"approved by {by}; another process (the daemon, or a run that waited on it) already ran it: " \
               f"{queue.result_summary(approval.id) or 'see opsagent approvals show ' + str(approval.id)}"
    finally:
        runtime.audit.close()
    return f"approved by {by}; ran it now on {cluster}: {result.status}: {result.message}"


@approvals_app.command("approve")
def approve_cmd(
    approval_id: int = typer.Argument(..., help="Approval id."),
    comment: str = typer.Option(None, "--comment", help="Why, for the audit log."),
    actor: str = ActorOpt,
    cluster: str = typer.Option(None, "--cluster", envvar="OPSAGENT_CLUSTER",
                                help="Also run the approved call now, once, through the gate on this cluster "
                                     "(kube, kube:CONTEXT or sim:SCENARIO). Without it the decision is recorded "
                                     "and the daemon runs the call on its next cycle, on the daemon channel, "
                                     "whichever channel asked for it."),
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
) -> None:
    """Approve exactly the call that was requested. It runs once: here and now with --cluster, else on the
    daemon's next cycle (through the gate, audited on the daemon channel with you as the approver).

    Example: opsagent approvals approve 3 --comment "capacity checked" --as alice
    """
    by = actor_name(actor)
    queue = open_queue(db, is_member=_is_member(policies))
    try:
        approval = queue.approve(approval_id, by=by, comment=comment)
        message = _execute(queue, approval, by=by, cluster=cluster, policies=policies, db=db) if cluster else \
            f"approved by {by}; the daemon runs it on its next cycle (or run it now with --cluster)"
    except ApprovalError as exc:
        fail(exc.message, hint="see: opsagent approvals show " + str(approval_id), code=1)
    finally:
        queue.close()
    console.print(f"approval {approval_id} {message}", highlight=False, markup=False)


@approvals_app.command("reject")
def reject_cmd(
    approval_id: int = typer.Argument(..., help="Approval id."),
    reason: str = typer.Option(..., "--reason", help="Why not, for the requester and the audit log."),
    actor: str = ActorOpt,
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
) -> None:
    """Reject a request (approvers), or withdraw your own.

    Example: opsagent approvals reject 3 --reason "use the spare A100 pool instead" --as alice
    """
    by = actor_name(actor)
    queue = open_queue(db, is_member=_is_member(policies))
    try:
        queue.reject(approval_id, by=by, reason=reason)
    except ApprovalError as exc:
        fail(exc.message, hint="see: opsagent approvals show " + str(approval_id), code=1)
    except ValueError as exc:
        fail(f"--reason: {exc}")
    finally:
        queue.close()
    console.print(f"approval {approval_id} rejected by {by}", highlight=False, markup=False)
