"""The daemon's internal API: what a wake proxy in another pod asks of the one writer.

Why it exists: the audit log is one SQLite file on a ReadWriteOnce volume, so
only the daemon's pod may write it. A wake proxy that runs elsewhere (several
replicas, no volume) sends its two writes here instead:

  POST /v1/wake      {"namespace": NS, "name": NAME, "message": TEXT}
      runs `wake_workload` through the daemon's gate as actor `wake-proxy` on
      channel `wake-proxy`, waits for readiness as the tool does, and answers
      with the tool result (the same JSON a ToolResult dumps to).
  POST /v1/activity  {"requests": {"NS/NAME": {"last": ISO-8601, "count": N}}}
      merges request times into the activity log the idle detector reads.

Request times are clamped to the daemon's clock, so a report from the future
cannot keep a workload awake forever.

A wake for a workload the cluster does not have is 404 and reaches no gate:
the policy sends wakes it does not allow outright to a person, and without
this check a caller could file one approval request per invented name.
Request times for such workloads are dropped for the same reason (the
activity log would keep every invented name).

Authority: the caller names a workload and nothing else. The tool, the actor
and the channel are fixed here, so a stolen token can ask for wakes (which the
policy still decides) but never for another tool or another identity. Every
request carries `Authorization: Bearer TOKEN`, compared in constant time with
the token the daemon was started with; without one the API is off (404).

What it must not do: answer before authenticating, or accept a body larger
than MAX_BODY bytes. A body that cannot be parsed (not JSON, or JSON nested
deeper than the parser can follow) is a 400, never an exception.
"""

from __future__ import annotations

import hmac
import json
import queue
import threading
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any, Callable, Collection, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opsagent.model import ToolCall, ToolResult, WorkloadRef

T = TypeVar("T")
MAX_BODY = 64 * 1024
_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"   # Kubernetes object names (DNS subdomain)


class WakeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    namespace: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    name: str = Field(pattern=_NAME)
    message: str = Field(default="", max_length=300)


class Seen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    last: datetime
    count: int = Field(ge=0, le=10**9)


class ActivityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    requests: dict[str, Seen] = Field(max_length=50_000)


class Submitter(Protocol):
    def submit(self, call: ToolCall, *, run_id: str | None = None) -> ToolResult: ...


class ActivitySink(Protocol):
    def record(self, seen: dict[str, tuple[datetime, int]]) -> int: ...


Reply = tuple[int, dict]


class InternalApi:
    """Pure request handling: (method, path, headers, body) -> (status, JSON body). No sockets here."""

    def __init__(self, *, token: str, gate: Submitter, activity: ActivitySink | None,
                 leading: Callable[[], bool] = lambda: True, lock: AbstractContextManager[Any] | None = None,
                 now: Callable[[], datetime] | None = None,
                 present: Callable[[Collection[str]], Collection[str] | None] | None = None) -> None:
        """`lock` is held around each gate call; pass the daemon's cycle lock when both share one cluster object
        that is not thread-safe (the simulator), or `nullcontext()` when `gate` is a `GatePool` that keeps
        concurrent calls apart itself. `present(keys)` says which of the NAMESPACE/NAME `keys` name a workload
        the cluster has (read under `lock`, looking at those workloads only; None from it, or no `present`, skips
        the check)."""
        if len(token) < 16:
            raise ValueError("the internal API token must be at least 16 characters")
        self._token = token.encode()
        self._gate = gate
        self._activity = activity
        self._leading = leading
        self._now = now
        self._present = present
        self._lock = lock or threading.Lock()   # one gate call at a time: the gate's store is one connection

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if method != "POST" or path not in ("/v1/wake", "/v1/activity"):
            return 404, {"error": "not found"}
        if not self.authorised(headers):
            return 401, {"error": "missing or wrong bearer token"}
        if len(body) > MAX_BODY:
            return 413, {"error": f"body over {MAX_BODY} bytes"}
        if not self._leading():
            return 503, {"error": "this daemon is on standby; retry against the leader"}
        try:
            payload = json.loads(body or b"{}")
            if path == "/v1/wake":
                return self._wake(WakeRequest.model_validate(payload))
            return self._record(ActivityRequest.model_validate(payload))
        except RecursionError:
            return 400, {"error": "body is nested too deeply"}
        except (ValueError, ValidationError) as exc:
            return 400, {"error": _first_line(exc)}

    def authorised(self, headers: dict[str, str]) -> bool:
        """Whether the request carries the bearer token (constant-time comparison); the HTTP edge asks it before
        reading a body."""
        value = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        scheme, _, token = value.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)

    def _wake(self, req: WakeRequest) -> Reply:
        ref = WorkloadRef(namespace=req.namespace, name=req.name)
        call = ToolCall(tool="wake_workload", args={"namespace": ref.namespace, "name": ref.name},
                        actor="wake-proxy", channel="wake-proxy",
                        message=req.message or f"request waiting for {ref}")
        with self._lock:
            known = self._known([str(ref)])
            if known is not None and str(ref) not in known:
                return 404, {"error": f"no workload {ref} in the cluster"}
            result = self._gate.submit(call)
        return 200, result.model_dump(mode="json")

    def _record(self, req: ActivityRequest) -> Reply:
        if self._activity is None:
            return 200, {"recorded": 0}
        seen = {}
        for key, item in req.requests.items():
            namespace, sep, name = key.partition("/")
            WakeRequest(namespace=namespace, name=name)   # same name rules as a wake; raises on junk
            if not sep:
                raise ValueError(f"{key!r}: expected NAMESPACE/NAME")
            last = item.last if item.last.tzinfo else item.last.replace(tzinfo=timezone.utc)
            if self._now is not None:   # a time in the future would keep a workload "busy" forever
                last = min(last, self._now())
            seen[key] = (last, item.count)
        with self._lock:
            known = self._known(list(seen))
        if known is not None:
            seen = {key: value for key, value in seen.items() if key in known}
        return 200, {"recorded": self._activity.record(seen) if seen else 0}

    def _known(self, keys: Collection[str]) -> Collection[str] | None:
        return self._present(keys) if self._present is not None and keys else None


class GatePool:
    """Up to `size` gates, opened on demand, one per call in flight: cold wakes of different workloads wait for
    readiness side by side instead of queueing behind each other. Each gate has its own database connection
    and cluster client, as separate processes would. `leading` becomes each gate's `leading`: a wake that waited
    for a gate while the daemon lost its leadership writes nothing (the API's own check ran when it arrived)."""

    def __init__(self, open_gate: Callable[[], Any], size: int = 4, *, leading: Callable[[], bool] | None = None) -> None:
        if size < 1:
            raise ValueError("a gate pool needs at least one gate")
        self._open, self._size, self._leading = open_gate, size, leading
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()

    def submit(self, call: ToolCall, *, run_id: str | None = None) -> ToolResult:
        return self.borrow(lambda gate: gate.submit(call, run_id=run_id))

    def borrow(self, use: Callable[[Any], T]) -> T:
        gate = self._take()
        try:
            return use(gate)
        finally:
            self._idle.put(gate)

    def _take(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            opening = self._opened < self._size
            if opening:
                self._opened += 1
        if not opening:
            return self._idle.get()
        try:
            gate = self._open()
            if self._leading is not None:
                gate.leading = self._leading
            return gate
        except BaseException:
            with self._lock:
                self._opened -= 1
            raise


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
