"""`opsagent doctor`: check what a new install needs and say how to fix what is missing.

What it is for: one command an operator runs after installing, which reports
ok / missing / failed / skipped per check with a fix hint: the cluster answers,
each RBAC verb of the adapter's table is granted (SelfSubjectAccessReview),
Ollama answers and has the model, Prometheus answers, the Slack token is valid.
A check that is not configured is `skipped`, not a failure.

What it must not do: change anything anywhere. Every check is a read (or an
access review, which the API server answers without side effects).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Literal

import httpx
import typer

from opsagent.cli.common import Output, OutputOpt, console, print_json

Status = Literal["ok", "missing", "failed", "skipped"]


@dataclass
class Check:
    name: str
    status: Status
    detail: str = ""
    fix: str = ""
    required: bool = True


def check_cluster(*, kubeconfig: str | None, context: str | None, in_cluster: bool | None, timeout: float) -> list[Check]:
    from opsagent.cluster.kube import PERMISSIONS, KubeCluster
    from opsagent.cluster.port import ClusterError

    try:
        kube = KubeCluster.from_config(kubeconfig=kubeconfig, context=context, in_cluster=in_cluster, timeout=timeout)
        kube.chokepoint.attempts = 1
        version = kube.server_version()
    except ClusterError as exc:
        return [Check("cluster", "failed", exc.message,
                      "point KUBECONFIG (or --kubeconfig/--context) at the cluster, or run inside it; "
                      "check `kubectl version` works with the same config")]
    checks = [Check("cluster", "ok", f"API server {version}")]
    namespace = os.environ.get("POD_NAMESPACE", "opsagent")
    for perm in PERMISSIONS:
        scope_ns = namespace if perm.scope == "own-namespace" else None
        try:
            allowed, reason = kube.can_i(verb=perm.verb, group=perm.group, resource=perm.resource,
                                         subresource=perm.subresource, namespace=scope_ns)
        except ClusterError as exc:
            checks.append(Check(f"rbac: {perm.label}", "failed", exc.message, "check the API server allows "
                                "SelfSubjectAccessReview (system:basic-user)", required=not perm.optional))
            continue
        if allowed:
            checks.append(Check(f"rbac: {perm.label}", "ok", perm.why, required=not perm.optional))
        else:
            where = f" in namespace {namespace} (Role)" if scope_ns else " (ClusterRole)"
            checks.append(Check(
                f"rbac: {perm.label}", "missing", f"needed for {perm.why}" + (f"; {reason}" if reason else ""),
                f"grant verb {perm.verb!r} on {perm.label.split(' ', 1)[1]!r}{where}: kubectl apply -k deploy/manifests",
                required=not perm.optional))
    return checks


def check_ollama(*, host: str | None, model: str | None, timeout: float) -> Check:
    if not host:
        return Check("ollama", "skipped", "OLLAMA_HOST not set: the offline planner (playbook steps) will plan",
                     "set OLLAMA_HOST to use an LLM planner", required=False)
    try:
        response = httpx.get(host.rstrip("/") + "/api/tags", timeout=timeout)
        response.raise_for_status()
        names = {m.get("name", "") for m in response.json().get("models") or []}
    except (httpx.HTTPError, ValueError) as exc:
        return Check("ollama", "failed", f"{host} did not answer GET /api/tags: {exc}",
                     "start Ollama (`ollama serve`) or fix OLLAMA_HOST")
    if not model:
        return Check("ollama", "ok", f"{host} answers; {len(names)} models; no --model / OPSAGENT_MODEL to check")
    if model in names or f"{model}:latest" in names:
        return Check("ollama", "ok", f"{host} has {model}")
    return Check("ollama", "missing", f"{host} answers but has no model {model!r} (has: {', '.join(sorted(names)) or 'none'})",
                 f"ollama pull {model}")


def check_prometheus(*, url: str | None, timeout: float) -> Check:
    if not url:
        return Check("prometheus", "skipped", "no Prometheus: idle rules fall back to what the API shows",
                     "set --prometheus / OPSAGENT_PROMETHEUS for GPU utilisation and request rates", required=False)
    from opsagent.metrics import MetricsError, PrometheusClient

    try:
        series = PrometheusClient(url, timeout=timeout).ping()
    except MetricsError as exc:
        return Check("prometheus", "failed", str(exc), "fix the URL, or check the Prometheus service is up")
    return Check("prometheus", "ok", f"{url} answers ({series} `up` series)")


def check_slack(*, token: str | None, api_url: str, timeout: float) -> Check:
    if not token:
        return Check("slack", "skipped", "SLACK_BOT_TOKEN not set: no Slack chat-ops", required=False)
    try:
        response = httpx.post(api_url.rstrip("/") + "/auth.test", headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return Check("slack", "failed", f"{api_url} did not answer auth.test: {exc}", "check network access to Slack")
    if body.get("ok"):
        return Check("slack", "ok", f"token valid for team {body.get('team', '?')} as {body.get('user', '?')}")
    return Check("slack", "failed", f"auth.test refused the token: {body.get('error', 'unknown error')}",
                 "create a new bot token (xoxb-...) in the Slack app settings and set SLACK_BOT_TOKEN")


def run_checks(
    *, kubeconfig: str | None = None, context: str | None = None, in_cluster: bool | None = None,
    skip_cluster: bool = False, ollama_host: str | None = None, model: str | None = None, prometheus: str | None = None,
    slack_token: str | None = None, slack_api_url: str = "https://slack.com/api", timeout: float = 5.0,
) -> list[Check]:
    checks = [Check("cluster", "skipped", "--skip-cluster given", required=False)] if skip_cluster else \
        check_cluster(kubeconfig=kubeconfig, context=context, in_cluster=in_cluster, timeout=timeout)
    checks.append(check_ollama(host=ollama_host, model=model, timeout=timeout))
    checks.append(check_prometheus(url=prometheus, timeout=timeout))
    checks.append(check_slack(token=slack_token, api_url=slack_api_url, timeout=timeout))
    return checks


_STYLE = {"ok": "green", "missing": "yellow", "failed": "red", "skipped": "dim"}


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(
        kubeconfig: str = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG", help="Kubeconfig file."),
        context: str = typer.Option(None, "--context", envvar="OPSAGENT_CONTEXT", help="Kubeconfig context."),
        skip_cluster: bool = typer.Option(False, "--skip-cluster", help="Do not check the cluster and RBAC."),
        ollama_host: str = typer.Option(None, "--ollama-host", envvar="OLLAMA_HOST", help="Ollama URL; unset skips."),
        model: str = typer.Option(None, "--model", envvar="OPSAGENT_MODEL", help="Model that must be pulled in Ollama."),
        prometheus: str = typer.Option(None, "--prometheus", envvar="OPSAGENT_PROMETHEUS", help="Prometheus URL; unset skips."),
        skip_slack: bool = typer.Option(False, "--skip-slack", help="Do not check Slack even if SLACK_BOT_TOKEN is set."),
        timeout: float = typer.Option(5.0, "--timeout", min=0.1, help="Seconds per network call."),
        output: Output = OutputOpt,
    ) -> None:
        """Check what a new install needs (cluster, RBAC, Ollama, Prometheus, Slack) and say how to fix gaps.

        Exit code 1 when a required check is missing or failed; unconfigured checks are skipped.

        Example: opsagent doctor --context prod --model qwen3:8b --prometheus http://prometheus:9090
        """
        checks = run_checks(
            kubeconfig=kubeconfig, context=context, skip_cluster=skip_cluster, ollama_host=ollama_host, model=model,
            prometheus=prometheus, slack_token=None if skip_slack else os.environ.get("SLACK_BOT_TOKEN"),
            slack_api_url=os.environ.get("SLACK_API_URL", "https://slack.com/api"), timeout=timeout,
        )
        bad = [c for c in checks if c.required and c.status in ("missing", "failed")]
        if output == Output.json:
            print_json({"ok": not bad, "checks": [asdict(c) for c in checks]})
        else:
            for c in checks:
                console.print(f"[{_STYLE[c.status]}]{c.status:>8}[/]  {c.name}: {c.detail}", highlight=False)
                if c.fix and c.status != "ok":
                    console.print(f"{'':>10}fix: {c.fix}", style="dim", highlight=False)
            console.print(f"\n{len(bad)} required check(s) need attention." if bad else "\nAll required checks pass.")
        if bad:
            raise typer.Exit(1)
