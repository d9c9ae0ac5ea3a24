"""The one chokepoint between opsagent and the Kubernetes API.

What it is for: building an `ApiClient` from kubeconfig or in-cluster config,
running every API call through `Chokepoint.call` (which counts requests,
retries what is worth retrying, sleeping on the injected Clock) and turning the
client's exceptions into the port's `ClusterError` hierarchy.

What it must not do: decide anything about workloads, build snapshots or
patches. Nothing outside `opsagent.cluster.kube` imports `kubernetes`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from opsagent.clock import Clock, RealClock
from opsagent.cluster.port import ClusterError, Conflict, Forbidden, Invalid, NotFound, Unavailable

T = TypeVar("T")

# "... User \"x\" cannot patch resource \"deployments/scale\" in API group \"apps\" ..."
_FORBIDDEN = re.compile(
    r'cannot (?P<verb>[a-z]+) resource "(?P<resource>[^"]+)"(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]*)")?'
)


class ConfigError(ClusterError):
    """No usable kubeconfig or in-cluster config: a person must fix the set-up."""


def build_api_client(
    *, context: str | None = None, kubeconfig: str | Path | None = None, in_cluster: bool | None = None,
    timeout: float = 30.0,
) -> k8s.ApiClient:
    """An ApiClient from in-cluster config (in a pod) or a kubeconfig file and context.

    `in_cluster=None` tries in-cluster config first and falls back to kubeconfig. Without `kubeconfig`,
    $KUBECONFIG is read now (the client library reads it once, at import), else ~/.kube/config.
    """
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
    configuration = k8s.Configuration()
    try:
        if in_cluster or in_cluster is None:
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except ConfigException:
                if in_cluster:
                    raise
                configuration = k8s.Configuration()
                k8s_config.load_kube_config(
                    config_file=str(kubeconfig) if kubeconfig else None, context=context,
                    client_configuration=configuration,
                )
        else:
            k8s_config.load_kube_config(
                config_file=str(kubeconfig) if kubeconfig else None, context=context,
                client_configuration=configuration,
            )
    except (ConfigException, OSError, TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:
        # a kubeconfig that is binary (ValueError), not a mapping (AttributeError) or not YAML at all
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "the default kubeconfig (~/.kube/config or $KUBECONFIG)"
        raise ConfigError(f"cannot load cluster config from {where}" + (f" context {context!r}" if context else "")
                          + f": {exc}") from exc
    return api_client_for(configuration, timeout=timeout)


def api_client_for(configuration: k8s.Configuration, *, timeout: float = 30.0) -> k8s.ApiClient:
    """Wrap a configuration; our chokepoint does the retrying, so urllib3 does none."""
    configuration.retries = 0
    api = k8s.ApiClient(configuration)
    api.user_agent = "opsagent"
    api.opsagent_timeout = timeout  # type: ignore[attr-defined]
    return api


def api_client_for_url(url: str, *, token: str | None = None, timeout: float = 30.0) -> k8s.ApiClient:
    """An ApiClient for a plain URL (tests, emulators, `kubectl proxy`)."""
    configuration = k8s.Configuration()
    configuration.host = url.rstrip("/")
    if token:
        configuration.api_key = {"authorization": f"Bearer {token}"}
    return api_client_for(configuration, timeout=timeout)


def parse_forbidden(message: str) -> tuple[str, str]:
    """(verb, resource) from an RBAC refusal message; resource is 'plural[/sub][.group]'."""
    match = _FORBIDDEN.search(message or "")
    if not match:
        return "", ""
    resource = match["resource"]
    if match["group"]:
        resource = f"{resource}.{match['group']}"
    return match["verb"], resource


def _status_message(exc: ApiException) -> tuple[str, str]:
    """(message, reason) from a Status body, or the HTTP reason when the body is not JSON."""
    try:
        body = json.loads(exc.body or b"{}")
    except (ValueError, TypeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    return str(body.get("message") or exc.reason or "no message"), str(body.get("reason") or "")


def translate(exc: Exception, *, what: str) -> ClusterError:
    """Map a client exception to the port's error classified by what the caller should do."""
    if isinstance(exc, ClusterError):
        return exc
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        message, reason = _status_message(exc)
        text = f"{what}: {message}"
        if status == 404:
            return NotFound(text, status=404)
        if status == 403:
            verb, resource = parse_forbidden(message)
            hint = f" (grant verb {verb!r} on {resource!r} to opsagent's ServiceAccount)" if verb else ""
            return Forbidden(text + hint, verb=verb, resource=resource, status=403)
        if status == 409:
            if reason == "AlreadyExists":
                return Invalid(text, status=409)
            return Conflict(text, status=409)
        if status in (400, 422):
            return Invalid(text, status=status)
        if status == 401:
            return Forbidden(text + " (credentials rejected: check the token or kubeconfig)", status=401)
        if status == 429 or status >= 500 or status == 0:
            return Unavailable(text, status=status or None, delay=_retry_after(exc))
        return ClusterError(text, status=status)
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError, TimeoutError)):
        return Unavailable(f"{what}: API server unreachable or slow ({type(exc).__name__}: {exc})")
    return ClusterError(f"{what}: {type(exc).__name__}: {exc}")


def _retry_after(exc: ApiException) -> float:
    headers = exc.headers or {}
    try:
        return max(0.0, float(headers.get("Retry-After", 1.0)))
    except (TypeError, ValueError):
        return 1.0


@dataclass
class Chokepoint:
    """Every request to the API server goes through `call`.

    Retries `Unavailable` (429, 5xx, timeouts) up to `attempts` times with
    exponential backoff (`base_delay`, doubling, capped at `max_delay`, at
    least the server's Retry-After), sleeping on `clock` so tests run instantly.
    """

    api: k8s.ApiClient
    clock: Clock = field(default_factory=RealClock)
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    requests: int = 0
    retries: int = 0

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        kwargs.setdefault("_request_timeout", getattr(self.api, "opsagent_timeout", 30.0))
        delay = self.base_delay
        for attempt in range(1, self.attempts + 1):
            self.requests += 1
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # translated right here; nothing escapes untyped
                error = translate(exc, what=what)
                if not isinstance(error, Unavailable) or attempt == self.attempts:
                    if isinstance(error, Unavailable):
                        error = Unavailable(f"{error.message} (gave up after {attempt} attempts)",
                                            delay=min(self.max_delay, delay), status=error.status)
                    raise error from exc
                self.retries += 1
                self.clock.sleep(min(self.max_delay, max(delay, error.delay if error.status == 429 else 0.0)))
                delay *= 2
        raise AssertionError("unreachable")

    def read_json(self, what: str, fn: Callable[..., Any], *args: Any,
                  decode: Callable[[bytes], Any] = json.loads, **kwargs: Any) -> Any:
        """Call a list/get method with `_preload_content=False` and parse the JSON ourselves (with `decode`)."""
        response = self.call(what, fn, *args, _preload_content=False, **kwargs)
        try:
            return decode(response.data)
        except ValueError as exc:
            raise ClusterError(f"{what}: the API server sent a body that is not JSON") from exc

    def get_path(self, what: str, path: str) -> Any:
        """GET a bare API path (discovery) with the client's auth, parsed as JSON."""
        def fetch(_request_timeout: float | None = None) -> Any:
            method, url, headers, _, _ = self.api.param_serialize(
                method="GET", resource_path=path, header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"])
            response = self.api.call_api(method, url, header_params=headers, _request_timeout=_request_timeout)
            response.read()
            if not 200 <= response.status < 300:
                raise ApiException(http_resp=response)
            return response

        response = self.call(what, fetch)
        try:
            return json.loads(response.data)
        except ValueError as exc:
            raise ClusterError(f"{what}: the API server sent a body that is not JSON") from exc

