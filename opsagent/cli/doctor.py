"""`opsagent doctor`: check what a new install needs and say how to fix what is missing.

What it is for: one command an operator runs after installing, which reports
ok / missing / failed / skipped per check with a fix hint: the cluster answers,
who the kube credentials belong to (SelfSubjectReview: user, groups) and
whether they may impersonate (for --as), each RBAC verb of the adapter's table is granted (SelfSubjectAccessReview),
the model server (Ollama or OpenAI-compatible) answers, has the model and the
model can call tools, Prometheus answers, and when Slack is
configured: the bot token passes auth.test and, in Socket Mode, the app token
passes apps.connections.open, or in HTTP mode the signing secret is set.
A check that is not configured is `skipped`, not a failure.

What it must not do: change anything anywhere. Every check is a read (or an
access review, which the API server answers without side effects).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Optional

import httpx
import typer
from opsagent.chat.secrets import SecretsError, SlackMode, SlackSecrets, load_secrets, redact, uses_socket_mode
from opsagent.cli.common import PoliciesOpt, fail
from opsagent.cli.output import Column, Format, FormatOpt, NoHeadersOpt, Section, emit_sections
from opsagent.cli.metrics_options import RequestRateQueryOpt

Status = Literal["ok", "missing", "failed", "skipped"]


@dataclass
class Check:
    name: str
    status: Status
    detail: str = ""
    fix: str = ""
    required: bool = True


def check_identity(kube: object, *, as_user: str | None = None) -> list[Check]:
    """Who these credentials are, as the API server says, and whether they may impersonate (kubectl --as)."""
    from opsagent.cluster.port import ClusterError
    from opsagent.identity import IdentityError, actor_from

    try:
        me = kube.whoami()  # type: ignore[attr-defined]
        actor = actor_from(me.username, me.groups, source="kube credentials")
    except ClusterError as exc:
        return [Check("identity", "failed", f"SelfSubjectReview: {exc.message}",
                      "use credentials the API server authenticates (`kubectl auth whoami`); opsagent ask, chat and "
                      "approvals on this cluster act as that user", required=False)]
    except IdentityError as exc:
        return [Check("identity", "failed", exc.message, exc.hint or "", required=False)]
    groups = ", ".join(me.groups) or "none"
    checks = [Check("identity", "ok", f"user {me.username} (actor {actor.name}); groups: {groups}; "
                    "source: kube credentials (SelfSubjectReview)", required=False)]
    try:
        if as_user:
            why_not = kube.impersonation_refusal(user=as_user)  # type: ignore[attr-defined]
            checks.append(Check("impersonate", "ok" if why_not is None else "missing",
                                f"--as {as_user}: " + ("allowed" if why_not is None else why_not),
                                "" if why_not is None else "a cluster admin grants verb 'impersonate' on users "
                                "(resourceNames: the user) to you; or act as yourself without --as", required=False))
        else:
            anyone, _ = kube.can_i(verb="impersonate", group="", resource="users")  # type: ignore[attr-defined]
            checks.append(Check("impersonate", "ok", "may impersonate any user (--as NAME works)" if anyone else
                                "may not impersonate every user: --as NAME is refused unless the cluster allows that "
                                "name (check one with --as NAME)", required=False))
    except ClusterError as exc:
        checks.append(Check("impersonate", "failed", exc.message, "check the API server allows "
                            "SelfSubjectAccessReview (system:basic-user)", required=False))
    return checks


def check_cluster(*, kubeconfig: str | None, context: str | None, in_cluster: bool | None, timeout: float,
                  lease_namespace: str = "opsagent", as_user: str | None = None,
                  write_namespaces: tuple[str, ...] = ()) -> list[Check]:
    """Writes to namespaced kinds are checked in each of `write_namespaces` (the namespaces the policy names, where
    deploy/ grants them by a Role); with none, cluster-wide."""
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
    checks = [Check("cluster", "ok", f"API server {version}"), *check_identity(kube, as_user=as_user)]
    for perm, scope_ns in _where(PERMISSIONS, lease_namespace, write_namespaces):
        try:
            allowed, reason = kube.can_i(verb=perm.verb, group=perm.group, resource=perm.resource,
                                         subresource=perm.subresource, namespace=scope_ns)
        except ClusterError as exc:
            checks.append(Check(f"rbac: {perm.label}", "failed", exc.message, "check the API server allows "
                                "SelfSubjectAccessReview (system:basic-user)", required=not perm.optional))
            continue
        name = f"rbac: {perm.label}" + (f" in {scope_ns}" if scope_ns else "")
        if allowed:
            checks.append(Check(name, "ok", perm.why, required=not perm.optional))
        else:
            where = f" in namespace {scope_ns} (Role)" if scope_ns else " (ClusterRole)"
            checks.append(Check(
                name, "missing", f"needed for {perm.why}" + (f"; {reason}" if reason else ""),
                f"grant verb {perm.verb!r} on {perm.label.split(' ', 1)[1]!r}{where}: kubectl apply -k deploy/manifests",
                required=not perm.optional))
    return checks


def check_ollama(*, host: str | None, model: str | None, timeout: float) -> Check:
    """Ollama answers at `host` and has `model` (kept for callers that know only Ollama)."""
    return check_model_server(model=model, base_url=None, ollama_host=host, timeout=timeout)[0]


def check_model_server(*, model: str | None, base_url: str | None, ollama_host: str | None, timeout: float) -> list[Check]:
    """The model server answers, lists the model, and the model can call tools (Ollama or OpenAI-compatible)."""
    from opsagent.agent.config import AgentConfig, split_model
    from opsagent.agent.server import ServerError, has_model, list_models, tool_support

    provider = split_model(model or "")[0] if model else "ollama"
    name = "ollama" if provider == "ollama" else "openai-compatible server"
    if provider == "ollama" and not (base_url or ollama_host):
        return [Check("ollama", "skipped", "OLLAMA_HOST not set: the offline planner (playbook steps) will plan",
                      "set OLLAMA_HOST (Ollama) or --model openai:NAME with --base-url to use an LLM planner", required=False)]
    try:
        config = AgentConfig.from_env(**{"model": model, "base_url": base_url,
                                         "ollama_host": ollama_host.rstrip("/") if ollama_host else None})
    except ValueError as exc:
        return [Check(name, "failed", str(exc), "e.g. --model openai:Qwen/Qwen3-8B --base-url http://127.0.0.1:8000/v1")]
    url = config.server_url
    try:
        info = list_models(config, timeout=timeout)
    except ServerError as exc:
        fix = "start Ollama (`ollama serve`) or fix OLLAMA_HOST" if provider == "ollama" else \
            "start the server (vLLM, llama.cpp, LM Studio, LiteLLM) or fix --base-url / OPSAGENT_BASE_URL; " \
            "a 401 means OPENAI_API_KEY is missing or wrong"
        return [Check(name, "failed", str(exc), fix)]
    if not model:
        return [Check(name, "ok", f"{url} answers; {len(info.models)} models; no --model / OPSAGENT_MODEL to check")]
    if not has_model(info, config):
        fix = f"ollama pull {config.model_name}" if provider == "ollama" else \
            f"serve {config.model_name!r} there, or use one of the names the server lists"
        return [Check(name, "missing", f"{url} answers but has no model {config.model_name!r} "
                      f"(has: {', '.join(sorted(info.models)) or 'none'})", fix)]
    checks = [Check(name, "ok", f"{url} has {config.model_name}")]
    support, how = tool_support(config, timeout=timeout)
    if support == "yes":
        checks.append(Check("model tool calls", "ok", f"{config.model_name} calls tools: {how}"))
    elif support == "no":
        checks.append(Check("model tool calls", "missing", f"{config.model_name} does not call tools: {how}",
                            "pick a model that supports tool calling (e.g. qwen3, llama3.1+), or enable the server's "
                            "tool-call parser"))
    else:
        checks.append(Check("model tool calls", "skipped", how, required=False))
    return checks


def check_prometheus(*, url: str | None, timeout: float, request_rate_query: str | None = None) -> Check:
    if not url:
        return Check("prometheus", "skipped", "no Prometheus: idle rules fall back to what the API shows",
                     "set --prometheus / OPSAGENT_PROMETHEUS for GPU utilisation and request rates", required=False)
    from opsagent.metrics import MetricsError, PrometheusClient
    from opsagent.metrics import request_rate_query as resolve

    try:
        query = resolve(request_rate_query)
    except ValueError as exc:
        return Check("prometheus", "failed", str(exc), "use --request-rate-query ingress-nginx, keda-http or PromQL")
    client = PrometheusClient(url, timeout=timeout, request_rate_query=query)
    try:
        series = client.ping()
        rates = client.request_rates() if query else None
    except MetricsError as exc:
        return Check("prometheus", "failed", str(exc), "fix the URL or the request-rate query, or check the Prometheus service is up")
    if query is None:
        return Check("prometheus", "ok", f"{url} answers ({series} `up` series); no request-rate query, so request rates "
                     "stay unknown", "set --request-rate-query (ingress-nginx, keda-http or PromQL)")
    return Check("prometheus", "ok", f"{url} answers ({series} `up` series); the request-rate query returns "
                 f"{len(rates or {})} workload(s)")


def _slack_call(api_url: str, method: str, token: str, timeout: float) -> dict:
    """POST one Web API method with a token; the answer's JSON (raises httpx.HTTPError / ValueError)."""
    response = httpx.post(api_url.rstrip("/") + "/" + method, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError(f"{method} answered {type(body).__name__}, not a JSON object")
    return body


def check_slack(*, secrets: SlackSecrets, mode: str = "auto", api_url: str, timeout: float) -> list[Check]:
    """Bot token (auth.test), then the mode's own secret: app token (apps.connections.open) or signing secret.

    Tokens go only into the Authorization header; no detail or fix ever contains one.
    """
    if not secrets.values():
        return [Check("slack", "skipped", "no SLACK_BOT_TOKEN, SLACK_APP_TOKEN or SLACK_SIGNING_SECRET: no Slack chat-ops",
                      required=False)]
    checks = [_check_bot_token(secrets.bot_token, api_url=api_url, timeout=timeout)]
    if uses_socket_mode(mode, secrets):
        checks.append(_check_app_token(secrets.app_token, api_url=api_url, timeout=timeout))
    elif secrets.signing_secret:
        checks.append(Check("slack signing secret", "ok", "HTTP mode: SLACK_SIGNING_SECRET is set (Slack cannot check it "
                            "from here; a wrong one makes every request from Slack fail with 401)"))
    else:
        checks.append(Check("slack signing secret", "missing", "HTTP mode needs SLACK_SIGNING_SECRET to verify Slack's requests",
                            "copy the Signing Secret from the app's Basic Information page into SLACK_SIGNING_SECRET, "
                            "or use Socket Mode with an app token (SLACK_APP_TOKEN=xapp-...)"))
    return checks


def _check_bot_token(token: str | None, *, api_url: str, timeout: float) -> Check:
    if not token:
        return Check("slack", "missing", "Slack is configured but SLACK_BOT_TOKEN is not set",
                     "install the app to the workspace and set SLACK_BOT_TOKEN to its bot token (xoxb-...)")
    try:
        body = _slack_call(api_url, "auth.test", token, timeout)
    except (httpx.HTTPError, ValueError) as exc:
        return Check("slack", "failed", f"{api_url} did not answer auth.test: {redact(str(exc), (token,))}",
                     "check network access to Slack")
    if body.get("ok"):
        return Check("slack", "ok", f"token valid for team {body.get('team', '?')} as {body.get('user', '?')}")
    return Check("slack", "failed", f"auth.test refused the token: {body.get('error', 'unknown error')}",
                 "create a new bot token (xoxb-...) in the Slack app settings and set SLACK_BOT_TOKEN")


def _check_app_token(token: str | None, *, api_url: str, timeout: float) -> Check:
    if not token:
        return Check("slack app token", "missing", "Socket Mode needs SLACK_APP_TOKEN",
                     "create an app-level token with connections:write (xapp-...) and set SLACK_APP_TOKEN, "
                     "or run in HTTP mode with SLACK_SIGNING_SECRET")
    try:
        body = _slack_call(api_url, "apps.connections.open", token, timeout)
    except (httpx.HTTPError, ValueError) as exc:
        return Check("slack app token", "failed", f"{api_url} did not answer apps.connections.open: "
                     f"{redact(str(exc), (token,))}", "check network access to Slack")
    if body.get("ok"):
        return Check("slack app token", "ok", "Socket Mode: apps.connections.open accepts the app token")
    return Check("slack app token", "failed", f"apps.connections.open refused the app token: {body.get('error', 'unknown error')}",
                 "create an app-level token with the connections:write scope (xapp-...) and set SLACK_APP_TOKEN; "
                 "Socket Mode must be enabled in the app settings")


def _where(perms: tuple, lease_namespace: str, write_namespaces: tuple[str, ...]) -> list[tuple]:
    """(permission, namespace or None) pairs to ask about."""
    out = []
    for perm in perms:
        if perm.scope == "own-namespace":
            out.append((perm, lease_namespace))
        elif perm.scope == "governed" and write_namespaces:
            out.extend((perm, ns) for ns in write_namespaces)
        else:
            out.append((perm, None))
    return out


def run_checks(
    *, kubeconfig: str | None = None, context: str | None = None, in_cluster: bool | None = None,
    skip_cluster: bool = False, lease_namespace: str = "opsagent", as_user: str | None = None,
    write_namespaces: tuple[str, ...] = (), ollama_host: str | None = None, model: str | None = None, base_url: str | None = None, prometheus: str | None = None,
    request_rate_query: str | None = None, slack: SlackSecrets | None = None, slack_mode: str = "auto", slack_api_url: str = "https://slack.com/api",
    timeout: float = 5.0,
) -> list[Check]:
    checks = [Check("cluster", "skipped", "--skip-cluster given", required=False)] if skip_cluster else \
        check_cluster(kubeconfig=kubeconfig, context=context, in_cluster=in_cluster, timeout=timeout,
                      lease_namespace=lease_namespace, as_user=as_user, write_namespaces=write_namespaces)
    checks.extend(check_model_server(model=model, base_url=base_url, ollama_host=ollama_host, timeout=timeout))
    checks.append(check_prometheus(url=prometheus, timeout=timeout, request_rate_query=request_rate_query))
    checks.extend(check_slack(secrets=slack or SlackSecrets(), mode=slack_mode, api_url=slack_api_url, timeout=timeout))
    return checks


def _policy_namespaces(policies: Path) -> tuple[str, ...]:
    """The namespaces the policy names exactly; none (check cluster-wide) when it cannot be loaded here."""
    from opsagent.policy.loader import load_policy
    from tools.registry import risk_table

    try:
        return load_policy(policies, tool_risks=risk_table()).named_namespaces()[0]
    except Exception:  # doctor reports what it can; `opsagent policy lint` is where a bad policy is explained
        return ()


CHECK_COLUMNS = [
    Column("status", lambda c: c.status), Column("check", lambda c: c.name), Column("detail", lambda c: c.detail),
    Column("required", lambda c: c.required, wide=True), Column("fix", lambda c: c.fix if c.status != "ok" else None, wide=True),
]


def advice(checks: list[Check]) -> list[str]:
    """The fixes for what is not ok, each once, naming the checks it fixes: one failure (the access review
    itself, say) can fail many checks, and the same advice nineteen times hides the one that matters."""
    fixes: dict[str, list[str]] = {}
    for c in checks:
        if c.fix and c.status != "ok":
            fixes.setdefault(c.fix, []).append(c.name)
    return [f"fix ({names[0]}" + (f" and {len(names) - 1} more" if len(names) > 1 else "") + f"): {fix}"
            for fix, names in fixes.items()]


def check_name(check: Check) -> str:
    """`rbac: get deployments in ml` -> `rbac.get-deployments-in-ml`: one word for `-o name`."""
    return "-".join(check.name.replace(": ", ".").split())


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(
        kubeconfig: str = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG", help="Kubeconfig file."),
        context: str = typer.Option(None, "--context", envvar="OPSAGENT_CONTEXT", help="Kubeconfig context."),
        skip_cluster: bool = typer.Option(False, "--skip-cluster", help="Do not check the cluster and RBAC."),
        as_user: Optional[str] = typer.Option(None, "--as", envvar="OPSAGENT_ACTOR",
                                              help="Also check whether your kube credentials may impersonate this user "
                                                   "(what `opsagent ask --as` needs on a real cluster)."),
        lease_namespace: str = typer.Option("opsagent", "--lease-namespace", envvar=["OPSAGENT_LEASE_NAMESPACE", "POD_NAMESPACE"],
                                            help="Namespace of the daemon's leader-election Lease (as `opsagent daemon`)."),
        ollama_host: str = typer.Option(None, "--ollama-host", envvar="OLLAMA_HOST", help="Ollama URL; unset skips."),
        model: str = typer.Option(None, "--model", envvar="OPSAGENT_MODEL",
                                  help="Model that must be served and able to call tools: ollama:NAME or NAME (Ollama), "
                                       "openai:NAME (OpenAI-compatible server at --base-url)."),
        base_url: str = typer.Option(None, "--base-url", envvar="OPSAGENT_BASE_URL",
                                     help="OpenAI-compatible server URL ending in /v1 (key from OPENAI_API_KEY)."),
        prometheus: str = typer.Option(None, "--prometheus", envvar="OPSAGENT_PROMETHEUS", help="Prometheus URL; unset skips."),
        request_rate_query: Optional[str] = RequestRateQueryOpt,
        skip_slack: bool = typer.Option(False, "--skip-slack", help="Do not check Slack even if its secrets are set."),
        slack_mode: SlackMode = typer.Option(SlackMode.auto, "--slack-mode", envvar="OPSAGENT_SLACK_MODE",
                                             help="As for `opsagent slack`: socket checks SLACK_APP_TOKEN, http checks "
                                                  "SLACK_SIGNING_SECRET, auto is socket when an app token is set."),
        slack_token_file: Optional[Path] = typer.Option(None, "--slack-token-file", envvar="OPSAGENT_SLACK_TOKEN_FILE",
                                              help="File with SLACK_BOT_TOKEN=..., SLACK_APP_TOKEN=..., "
                                                   "SLACK_SIGNING_SECRET=... lines (as `opsagent slack --token-file`)."),
        timeout: float = typer.Option(5.0, "--timeout", min=0.1, max=300, help="Seconds per network call."),
        write_namespace: list[str] = typer.Option([], "--write-namespace", envvar="OPSAGENT_WRITE_NAMESPACES",
                                                  help="Check write permissions in this namespace (repeatable); "
                                                       "default: the namespaces the policy's scopes name."),
        policies: Path = PoliciesOpt,
        output: Format = FormatOpt,
        no_headers: bool = NoHeadersOpt,
    ) -> None:
        """Check what a new install needs (cluster, RBAC, model server, Prometheus, Slack) and say how to fix gaps.

        It also says who you are on the cluster (user, groups, and that the kube credentials are the source:
        opsagent ask, chat and approvals act as that user) and whether you may impersonate (--as).

        Slack secrets come from the environment or --slack-token-file, never from flags, and are never printed.
        The Lease permissions are checked in --lease-namespace's namespace (POD_NAMESPACE in a pod); writes to
        workloads and pods in each namespace the policy names (deploy/ grants them there by a Role).

        One row per check; each fix is said once after the table, naming the checks it fixes. `-o wide` adds
        whether a check is required and its own fix; `-o name` prints `check/NAME` lines (e.g.
        `check/rbac.get-deployments`).

        Exit code 1 when a required check is missing or failed; unconfigured checks are skipped.

        Example: opsagent doctor --context prod --model qwen3:8b --prometheus http://prometheus:9090
        """
        slack = SlackSecrets()
        if not skip_slack:
            try:
                slack = load_secrets(token_file=slack_token_file)
            except SecretsError as exc:
                fail(str(exc), hint="one NAME=value per line; names: SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_SIGNING_SECRET")
        api_url = os.environ.get("OPSAGENT_SLACK_API_URL") or os.environ.get("SLACK_API_URL") or "https://slack.com/api"
        checks = run_checks(
            kubeconfig=kubeconfig, context=context, skip_cluster=skip_cluster, lease_namespace=lease_namespace,
            write_namespaces=tuple(write_namespace) or _policy_namespaces(policies),
            as_user=as_user, ollama_host=ollama_host, model=model, base_url=base_url, prometheus=prometheus,
            request_rate_query=request_rate_query,
            slack=slack, slack_mode=slack_mode.value, slack_api_url=api_url, timeout=timeout,
        )
        bad = [c for c in checks if c.required and c.status in ("missing", "failed")]
        summary = f"{len(bad)} required check(s) need attention." if bad else "All required checks pass."
        emit_sections([Section(checks, CHECK_COLUMNS, "check", check_name)], output, headers=not no_headers,
                      notes=[*advice(checks), summary], record={"ok": not bad, "checks": [asdict(c) for c in checks]})
        if bad:
            raise typer.Exit(1)
