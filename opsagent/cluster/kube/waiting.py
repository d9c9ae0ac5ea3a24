"""Wait for one object to reach a state by watching it, not by re-reading the cluster.

`wait_for_object` reads the object once, then opens a watch from its
resourceVersion (with bookmarks) and checks each change it is told about. It
ends when the predicate holds (returning the object) or the timeout passes
(returning None). A watch that the server ends early, a dropped connection or a
410 Gone (the resourceVersion is too old) re-reads the object and watches again
from the new version, after a short backoff on errors. The object's deletion
raises `NotFound`. Nothing here lists the cluster.

`wait_cached` does the same on an informer of the watched cache (informer.py):
it waits on the cache's change events and sends no request at all.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from opsagent.clock import Clock
from opsagent.cluster.kube.client import Chokepoint
from opsagent.cluster.port import ClusterError, NotFound

Predicate = Callable[[dict[str, Any]], bool]


class _Expired(Exception):
    """A watch ended with 410 Gone: its resourceVersion is too old to watch from."""


QUICK_END = 1.0   # seconds: a watch that ends sooner without the awaited change counts as a failed one


def wait_for_object(
    chokepoint: Chokepoint, watch_fn: Callable[..., Any], *, namespace: str, name: str,
    get: Callable[[], dict[str, Any]], predicate: Predicate, timeout: float, clock: Clock,
    max_backoff: float = 2.0,
) -> dict[str, Any] | None:
    deadline = clock.monotonic() + timeout
    obj = get()
    backoff = 0.05
    while True:
        if predicate(obj):
            return obj
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            return None
        opened = clock.monotonic()
        try:
            outcome = _watch_once(chokepoint, watch_fn, namespace=namespace, name=name, obj=obj,
                                  predicate=predicate, seconds=remaining)
        except NotFound:
            raise
        except _Expired:   # 410: the version is too old; read again and watch from there at once, as client-go does
            obj = get()
            continue
        except Exception as exc:  # a dropped connection or a server error: back off, read again
            if clock.monotonic() >= deadline:
                return None
            if isinstance(exc, ClusterError) and not exc.retryable:
                raise
            clock.sleep(min(backoff, max(0.0, deadline - clock.monotonic())))
            backoff = min(max_backoff, backoff * 2)
            obj = get()
            continue
        if outcome is not None and predicate(outcome):
            return outcome
        if clock.monotonic() - opened < QUICK_END:
            # A server or proxy that ends every watch at once would otherwise be read and watched again
            # without a pause, hundreds of times a second: back off as after an error.
            clock.sleep(min(backoff, max(0.0, deadline - clock.monotonic())))
            backoff = min(max_backoff, backoff * 2)
        else:
            backoff = 0.05
        obj = get()   # the watch ended, expired (410) or timed out: start again from a fresh read


def _watch_once(chokepoint: Chokepoint, watch_fn: Callable[..., Any], *, namespace: str, name: str,
                obj: dict[str, Any], predicate: Predicate, seconds: float) -> dict[str, Any] | None:
    """One watch from `obj`'s resourceVersion: the object once the predicate holds, else None."""
    version = (obj.get("metadata") or {}).get("resourceVersion")
    response = chokepoint.call(
        f"watch {namespace}/{name}", watch_fn, namespace, watch=True, field_selector=f"metadata.name={name}",
        resource_version=version, allow_watch_bookmarks=True, timeout_seconds=max(1, math.ceil(seconds)),
        _preload_content=False, _request_timeout=(10.0, seconds))
    try:
        for line in stream_lines(response):
            event = json.loads(line)
            kind, body = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if body.get("code") == 410:
                    raise _Expired()   # too old: the caller reads the object again and watches from there
                raise ClusterError(f"watch {namespace}/{name}: {body.get('message', 'error')}", status=body.get("code"))
            meta = body.get("metadata") or {}
            if kind == "BOOKMARK" or meta.get("name") != name or meta.get("namespace", namespace) != namespace:
                continue
            if kind == "DELETED":
                raise NotFound(f"{namespace}/{name} was deleted while waiting for it", status=404)
            if predicate(body):
                return body
    finally:
        response.release_conn()
    return None


def wait_cached(informer: Any, key: str, predicate: Predicate, timeout: float) -> dict[str, Any] | None:
    """The cached object 'namespace/name' once `predicate` holds, waiting on the informer's change events for at
    most `timeout` real seconds (None when it passes). Raises NotFound when the cache does not have it."""
    deadline = time.monotonic() + timeout
    with informer.changed:
        while True:
            obj = informer.get(key)
            if obj is None:
                raise NotFound(f"{key} is not in the cluster (watched cache)", status=404)
            if predicate(obj):
                return obj
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            informer.changed.wait(remaining)


def version_of(obj: dict[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def at_least(version: str) -> Predicate:
    """An object at `version` or later (resourceVersions compared as numbers when both are, as etcd's are)."""
    def shows(obj: dict[str, Any]) -> bool:
        seen = version_of(obj)
        return seen == version or (seen.isdigit() and version.isdigit() and int(seen) >= int(version))
    return shows


def ready_replicas(obj: dict[str, Any]) -> int:
    """A Deployment's or StatefulSet's ready replicas, from its status."""
    value = (obj.get("status") or {}).get("readyReplicas") or 0
    return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else 0


def stream_lines(response: Any) -> Any:
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
    if pending.strip():
        yield pending
