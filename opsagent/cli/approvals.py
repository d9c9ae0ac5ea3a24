"""`opsagent approvals`: list, show, approve and reject approval requests.

Thin: each command opens the `ApprovalQueue` on the audit database, calls one
method and prints. Who acts comes from --as, OPSAGENT_ACTOR, or the OS user.
`approve` also runs the approved call through the gate when a runtime (policy +
cluster) can be opened here; otherwise the daemon or agent waiting on it runs it.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from opsagent.approvals import ApprovalError, ApprovalQueue
from opsagent.cli.common import DbOpt, Output, OutputOpt, PoliciesOpt, console, fail, print_json
from opsagent.clock import RealClock
from opsagent.model import Approval

approvals_app = typer.Typer(help="Decide on calls the policy sent to people.\n\nExample: opsagent approvals list",
                            no_args_is_help=True)
ActorOpt = typer.Option(None, "--as", envvar="OPSAGENT_ACTOR", help="Who decides; default: the OS user.")


def register(app: typer.Typer) -> None:
    app.add_typer(approvals_app, name="approvals")


def actor_name(value: str | None) -> str:
    return value or getpass.getuser()


def _is_member(policies: Path) -> Any:
    """The policy's `actor_matches` (group:NAME membership), if the policy loads; else exact names."""
    try:
        from opsagent.policy import PolicyError, load_policy
    except ImportError:
        return None
    if not policies.exists():
        return None
    try:
        return load_policy(policies).actor_matches
    except PolicyError as exc:
        fail(f"cannot load the policy: {exc}", hint=f"check the files in {policies} (opsagent policy lint)")


def open_queue(db: Path, *, is_member: Any = None) -> ApprovalQueue:
    if not db.exists():
        fail(f"no database at {db}", hint="point --db (or OPSAGENT_DB) at the file the daemon writes")
    return ApprovalQueue(db, clock=RealClock(), is_member=is_member)


def _table(approvals: list[Approval], title: str) -> Table:
    table = Table(title=title)
    for col in ("id", "state", "tool", "arguments", "requested by", "approvers", "expires", "decided by"):
        table.add_column(col, overflow="fold")
    for a in approvals:
        args = ", ".join(f"{k}={v}" for k, v in sorted(a.call.args.items()))
        table.add_row(str(a.id), a.state, a.call.tool, args, a.requested_by, ", ".join(a.approvers),
                      a.expires_at.strftime("%Y-%m-%d %H:%M"), a.decided_by or "")
    return table


@approvals_app.command("list")
def list_cmd(state: str = typer.Option(None, "--state", help="pending, approved, rejected, expired, executed, failed."),
             output: Output = OutputOpt, db: Path = DbOpt) -> None:
    """List approval requests (requests past their expiry are marked expired first).

    Example: opsagent approvals list --state pending
    """
    queue = open_queue(db)
    try:
        queue.expire_due()
        items = queue.list(state=state)
    finally:
        queue.close()
    if output is Output.json:
        print_json(items)
    else:
        console.print(_table(items, "approval requests"))


@approvals_app.command("show")
def show_cmd(approval_id: int = typer.Argument(..., help="Approval id."), output: Output = OutputOpt, db: Path = DbOpt) -> None:
    """Show one approval request: the exact call, its arguments hash, the rule and the reason.

    Example: opsagent approvals show 3 -o json
    """
    queue = open_queue(db)
    try:
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
                  + (f"\nresult: {summary}" if summary else ""), highlight=False)


def _execute(queue: ApprovalQueue, approval: Approval, *, by: str, cluster: str, policies: Path, db: Path) -> str:
    """Run the approved call through the gate, once; a waiting agent run then sees it done."""
    from opsagent.runtime import RuntimeError_, open_runtime

    try:
        runtime = open_runtime(cluster=cluster, policies=policies, db=db)
    except RuntimeError_ as exc:
        return f"approved, but not run here ({exc}); the daemon or agent run waiting on it will execute it"
    result = queue.execute(approval.id, run=lambda a: runtime.gate.run_approved(a, approver=by), actor=by)
    return f"executed: {result.status}: {result.message}"


@approvals_app.command("approve")
def approve_cmd(
    approval_id: int = typer.Argument(..., help="Approval id."),
    comment: str = typer.Option(None, "--comment", help="Why, for the audit log."),
    actor: str = ActorOpt,
    execute: bool = typer.Option(True, "--execute/--no-execute", help="Run the call now through the gate, or leave it to the daemon."),
    cluster: str = typer.Option("sim:demo", "--cluster", envvar="OPSAGENT_CLUSTER", help="kube, kube:CONTEXT, or sim:SCENARIO."),
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
) -> None:
    """Approve exactly the call that was requested, then run it once through the gate.

    Example: opsagent approvals approve 3 --comment "capacity checked" --as alice
    """
    by = actor_name(actor)
    queue = open_queue(db, is_member=_is_member(policies))
    try:
        approval = queue.approve(approval_id, by=by, comment=comment)
        message = _execute(queue, approval, by=by, cluster=cluster, policies=policies, db=db) if execute else \
            "approved; the daemon or agent run waiting on it will execute it"
    except ApprovalError as exc:
        fail(exc.message, hint="see: opsagent approvals show " + str(approval_id), code=1)
    finally:
        queue.close()
    console.print(f"approval {approval_id} {message}", highlight=False)


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
    console.print(f"approval {approval_id} rejected by {by}", highlight=False)
