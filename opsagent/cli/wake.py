"""`opsagent wake NS/NAME --for 2h [--extend | --cancel]`: time-boxed wakes.

Thin: who asks is established by `opsagent.identity` (as `approvals` does);
the lease itself is `opsagent.leases.LeaseService`: the wake runs through the
gate as you, the lease is a chained audit record, the policy's `max_wake`
caps it, and the daemon puts the workload back to sleep when it expires.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Optional

import typer

from opsagent.cli.common import ClusterOpt, DbOpt, PoliciesOpt, fail
from opsagent.cli.output import Format, FormatOpt, NoHeadersOpt, emit
from opsagent.cli.whoami import ActorOpt, AsGroupOpt, identify
from opsagent.clock import parse_duration
from opsagent.leases import LeaseRefused, line
from opsagent.model import WorkloadRef


def register(app: typer.Typer) -> None:
    app.command("wake")(wake_cmd)


def _span(text: str | None) -> timedelta:
    try:
        span = parse_duration(text or "")
    except ValueError:
        fail(f"--for {text!r} is not a duration", hint="use e.g. 30m, 2h or 1h30m")
    if span <= timedelta(0):
        fail(f"--for {text!r} must be longer than zero", hint="use e.g. 30m, 2h or 1h30m")
    return span


def wake_cmd(
    workload: str = typer.Argument(..., help="The workload to keep up, NAMESPACE/NAME."),
    span: Optional[str] = typer.Option(None, "--for", envvar="OPSAGENT_WAKE_FOR",
                                       help="How long to keep it up, e.g. 2h (with --extend: from now). "
                                            "The policy's max_wake caps it, counted from the lease's start."),
    extend: bool = typer.Option(False, "--extend", help="Extend the active lease to --for from now."),
    cancel: bool = typer.Option(False, "--cancel", help="End the active lease now; the idle rule applies again."),
    actor: str = ActorOpt,
    as_group: str = AsGroupOpt,
    cluster: Optional[str] = ClusterOpt,
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
    output: Format = FormatOpt,
    no_headers: bool = NoHeadersOpt,
) -> None:
    """Wake a workload for a fixed time, then let the daemon put it back to sleep.

    The wake goes through the gate as you; the lease is recorded in the audit log (so it survives
    restarts) and keeps the workload up whatever its idle rule says. Scaling the workload by hand
    (scale_workload) ends the lease. List leases with `opsagent get leases`.

    Prints the lease as `opsagent get leases` does (a row, `-o wide` adds who ended it and when, `-o name`
    prints `lease/ID`), then what happened in one sentence.

    Example: opsagent wake inference/llm --for 2h --cluster sim:demo --as erin
    """
    from opsagent.cli.resolve import session
    from opsagent.runtime import RuntimeError_, open_runtime

    if extend and cancel:
        fail("--extend and --cancel cannot be used together", hint="pick one")
    if not cancel and span is None:
        fail("--for is required to wake or extend", hint="e.g. opsagent wake inference/llm --for 2h")
    try:
        ref = WorkloadRef.parse(workload)
    except ValueError as exc:
        fail(str(exc), hint="use NAMESPACE/NAME, e.g. inference/llm")
    duration = None if cancel else _span(span)
    spec, db = session(cluster, db)
    try:
        runtime = open_runtime(cluster=spec, policies=policies, db=db)
    except RuntimeError_ as exc:
        fail(str(exc), hint=exc.hint)
    try:
        who = identify(cluster_spec=spec, cluster=runtime.cluster, as_user=actor, as_group=as_group,
                       on_error=runtime.audit.close)
        service = runtime.leases()
        if cancel:
            lease = service.cancel(ref, actor=who.name, actor_groups=who.groups)
        elif extend:
            assert duration is not None
            lease = service.extend(ref, duration, actor=who.name, actor_groups=who.groups)
        else:
            assert duration is not None
            lease, _ = service.start(ref, duration, actor=who.name, actor_groups=who.groups)
    except LeaseRefused as exc:
        fail(str(exc), hint="see: opsagent get leases; opsagent policy explain", code=1)
    finally:
        runtime.audit.close()
    from opsagent.cli.get import LEASE_COLUMNS

    emit([lease], LEASE_COLUMNS, output, kind="lease", name_of=lambda x: x.id, headers=not no_headers, single=True,
         notes=[line(lease)])
