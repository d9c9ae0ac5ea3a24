"""`opsagent daemon`: the reconcile loop (observe, detect, agent per finding, approvals).

Thin: parses options, sets up logging, builds `DaemonOptions` and runs the
`Daemon`. Everything it does lives in opsagent.daemon.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Optional

import typer

from opsagent.cli.common import ClusterOpt, DbOpt, PlaybooksOpt, PoliciesOpt, fail
from opsagent.cli.metrics_options import PrometheusOpt, RequestRateQueryOpt
from opsagent.cli.model_options import BaseUrlOpt, model_option
from opsagent.runtime import RuntimeError_


def register(app: typer.Typer) -> None:
    app.command("daemon")(daemon_cmd)


def daemon_cmd(
    cluster: Optional[str] = ClusterOpt,
    context: Optional[str] = typer.Option(None, "--context", envvar="OPSAGENT_CONTEXT", help="kubeconfig context (same as --cluster kube:CONTEXT)."),
    policies: Path = PoliciesOpt,
    playbooks: Path = PlaybooksOpt,
    db: Path = DbOpt,
    model: Optional[str] = model_option("Without it the offline planner runs."),
    base_url: Optional[str] = BaseUrlOpt,
    interval: float = typer.Option(15.0, "--interval", envvar="OPSAGENT_INTERVAL", min=0.01, max=86400, help="Seconds between cycles (virtual seconds on the simulator)."),
    once: bool = typer.Option(False, "--once", envvar="OPSAGENT_ONCE", help="Run one cycle and exit."),
    cycles: Optional[int] = typer.Option(None, "--cycles", envvar="OPSAGENT_CYCLES", min=1, max=10**9, help="Stop after N cycles."),
    sim_speed: float = typer.Option(1.0, "--sim-speed", envvar="OPSAGENT_SIM_SPEED", min=0.0,
                                    help="Simulator only: virtual seconds per wall second (0 = no waiting between cycles)."),
    listen: Optional[str] = typer.Option(None, "--listen", envvar="OPSAGENT_LISTEN", help="HOST:PORT for /healthz, /readyz, /metrics."),
    prometheus: Optional[str] = PrometheusOpt,
    request_rate_query: Optional[str] = RequestRateQueryOpt,
    seed: Optional[int] = typer.Option(None, "--seed", envvar="OPSAGENT_SEED", help="Simulator seed (default: the scenario's)."),
    lease_namespace: Optional[str] = typer.Option(None, "--lease-namespace", envvar=["OPSAGENT_LEASE_NAMESPACE", "POD_NAMESPACE"],
                                                  help="--cluster kube: namespace of the leader-election Lease "
                                                       "(default opsagent; in a pod, its own namespace from POD_NAMESPACE)."),
    lease_name: Optional[str] = typer.Option(None, "--lease-name", envvar="OPSAGENT_LEASE_NAME",
                                             help="--cluster kube: name of the leader-election Lease (default opsagent-daemon)."),
    log_level: str = typer.Option("info", "--log-level", envvar="OPSAGENT_LOG_LEVEL", help="debug, info, warning or error."),
    internal_token_file: Optional[Path] = typer.Option(
        None, "--internal-token-file", envvar="OPSAGENT_INTERNAL_TOKEN_FILE",
        help="With --listen: serve POST /v1/wake and /v1/activity to wake proxies in other pods that present this "
             "bearer token (a mounted Secret, 16+ characters). They may only ask for wakes, as actor wake-proxy."),
) -> None:
    """Run the reconcile loop: each cycle resumes decided approvals, then observes, detects and runs the agent per finding.

    Exit codes: 0 the loop ran (and, with --once or --cycles, every cycle succeeded) or was stopped by
    SIGTERM/SIGINT; 1 a cycle of a --once or --cycles run failed (the log says why); 2 a bad argument or
    file (policy, playbooks, the database); 3 --once did not lead (another daemon holds the lock or
    Lease, or the Lease cannot be used).

    Example: opsagent daemon --cluster sim:demo --interval 300 --sim-speed 0 --cycles 288 --listen 127.0.0.1:8080
    """
    from opsagent.daemon import Daemon, DaemonOptions
    from opsagent.daemon.http import parse_listen

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        fail(f"--log-level {log_level!r} is not a level", hint="use debug, info, warning or error")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if context:
        if cluster is not None and cluster != "kube" and not cluster.startswith("kube"):
            fail("--context needs --cluster kube", hint="e.g. --cluster kube --context prod")
        cluster = f"kube:{context}"
    from opsagent.cli.resolve import session

    cluster, db = session(cluster, db)
    if listen:
        try:
            parse_listen(listen)
        except ValueError as exc:
            fail(str(exc), hint="e.g. --listen 127.0.0.1:8080")
    internal_token = None
    if internal_token_file is not None:
        from opsagent.wake.remote import read_token

        if not listen:
            fail("--internal-token-file needs --listen", hint="e.g. --listen 0.0.0.0:8080")
        try:
            internal_token = read_token(internal_token_file)
        except ValueError as exc:
            fail(str(exc), hint="e.g. head -c 32 /dev/urandom | base64 > token; mount it from a Secret")
    if not policies.is_dir():
        fail(f"--policies {policies}: not a directory", hint="the repository ships policies/")
    if not playbooks.is_dir():
        fail(f"--playbooks {playbooks}: not a directory", hint="the repository ships playbooks/")
    options = DaemonOptions(cluster=cluster, policies=policies, playbooks=playbooks, db=db, model=model, base_url=base_url, interval=interval,
                            once=once, cycles=cycles, sim_speed=sim_speed, listen=listen, prometheus=prometheus,
                            request_rate_query=request_rate_query, seed=seed,
                            lease_namespace=lease_namespace or DaemonOptions.lease_namespace,
                            lease_name=lease_name or DaemonOptions.lease_name, internal_token=internal_token)
    try:
        daemon = Daemon(options)
    except RuntimeError_ as exc:
        fail(str(exc), hint=exc.hint)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    try:
        code = daemon.run()
    except OSError as exc:
        if not listen or exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        # as the wake proxy says it: the --listen that cannot be used, exit 2 (a bad argument here)
        fail(f"--listen {listen}: cannot listen: {exc.strerror or exc}",
             hint="is another process using the port? choose another --listen (ports below 1024 need privileges)")
    raise typer.Exit(code)
