"""A wake proxy that writes nothing itself: wakes and request times go to the daemon's internal API.

Used when the proxy runs as its own Deployment (several replicas, no volume):
`opsagent wake-proxy --wake-via http://opsagent.opsagent.svc:8080 --wake-token-file F`.
`DaemonSubmitter` stands where the gate stands in `GateWaker` (it has the same
`submit`), but only a `wake_workload` call can be sent and the daemon fixes the
actor; `DaemonActivity` notes requests in memory and posts them every few
seconds. A daemon that cannot be reached is an error result, never a hang past
the request's own timeout. See opsagent/daemon/internal.py for the other side.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from opsagent.clock import Clock
from opsagent.model import ToolCall, ToolResult, WorkloadRef
from opsagent.wake.activity import Tally


def read_token(path: Path) -> str:
    """The bearer token from a file (a mounted Secret); raises ValueError with the file's name."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the token: {exc.strerror}") from exc
    if len(token) < 16:
        raise ValueError(f"{path}: the token must be at least 16 characters")
    return token


class _Final(OSError):
    """An answer that asking again will not change (4xx)."""


class _Client:
    def __init__(self, base_url: str, token: str, *, timeout: float) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"--wake-via {base_url!r}: expected http://HOST:PORT")
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def post(self, path: str, payload: dict, *, timeout: float | None = None) -> dict:
        request = urllib.request.Request(
            self._base + path, data=json.dumps(payload).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout or self._timeout) as response:  # noqa: S310 (scheme checked)
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = _error_of(exc.read())
            error = _Final if 400 <= exc.code < 500 else OSError
            raise error(f"daemon answered {exc.code}: {detail}") from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OSError(f"cannot reach the daemon at {self._base}: {reason}") from exc


class DaemonSubmitter:
    """`submit(call)` for wake calls, answered by the daemon's gate.

    A daemon that is restarting (connection refused, 503 from a standby) is asked again every `retry_every`
    seconds for up to `retry_for` seconds, so a cold request arriving during a daemon rollout waits rather
    than failing; a 4xx answer (bad token, refused body) is final at once.
    """

    def __init__(self, base_url: str, token: str, *, timeout: float = 330.0, retry_for: float = 60.0,
                 retry_every: float = 1.0, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = _Client(base_url, token, timeout=timeout)
        self._retry_for, self._retry_every = retry_for, retry_every
        self._monotonic, self._sleep = monotonic, sleep

    def submit(self, call: ToolCall, *, run_id: str | None = None) -> ToolResult:
        if call.tool != "wake_workload":
            return ToolResult(status="error", tool=call.tool, message="the daemon's internal API only wakes workloads")
        payload = {"namespace": call.args.get("namespace"), "name": call.args.get("name"), "message": (call.message or "")[:300]}
        deadline = self._monotonic() + self._retry_for
        while True:
            try:
                return ToolResult.model_validate(self._client.post("/v1/wake", payload))
            except _Final as exc:
                return ToolResult(status="error", tool=call.tool, message=str(exc))
            except (OSError, ValueError) as exc:
                if self._monotonic() + self._retry_every > deadline:
                    return ToolResult(status="error", tool=call.tool, message=str(exc))
                self._sleep(self._retry_every)


class DaemonActivity:
    """Request times for the idle detector, posted to the daemon instead of written to a file."""

    def __init__(self, base_url: str, token: str, *, clock: Clock, timeout: float = 10.0) -> None:
        self._client = _Client(base_url, token, timeout=timeout)
        self._tally = Tally(clock)

    def note(self, ref: WorkloadRef) -> None:
        self._tally.note(ref)

    def flush(self) -> int:
        """Post what was noted; on failure the times are noted again, so the next flush carries them."""
        seen = self._tally.take()
        if not seen:
            return 0
        payload = {"requests": {key: {"last": at.isoformat(), "count": count} for key, (at, count) in seen.items()}}
        try:
            return int(self._client.post("/v1/activity", payload).get("recorded", 0))
        except OSError:
            self._tally.restore(seen)
            raise


def _error_of(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", ""))[:300] or "no detail"
    except (ValueError, AttributeError):
        return body[:300].decode(errors="replace") or "no detail"


__all__ = ["DaemonActivity", "DaemonSubmitter", "read_token"]
