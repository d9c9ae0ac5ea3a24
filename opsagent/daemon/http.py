"""/healthz, /readyz and /metrics over the standard library's HTTP server, on a thread.

Health answers from the daemon's `Status` (written by the loop, read here);
it must not touch the cluster, the agent or the audit log.
/healthz: 200 while the process runs and the last cycle is not stuck.
/readyz: 200 when this process leads, its last cycle went well and the cluster
cache's watches are not stale (`cache_health`, on a watched kube cluster); its body
also lists the last snapshot's notes (what the cluster adapter could not see).
/metrics: the Prometheus text format.
POST /v1/...: the internal API (internal.py), only when the daemon was given a token. The token is checked
before the body is read; chunked bodies are refused (411), and a body must arrive whole within
`request_seconds` (408), so a slow or endless sender cannot hold a thread. The same bound holds for the
request line and headers together: a client that trickles them (a byte now and then, each read within
the socket's timeout) is dropped once `request_seconds` have passed, before anything is authenticated.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from opsagent.daemon.internal import MAX_BODY, InternalApi
from opsagent.daemon.metrics import Metrics

STOP_POLL = 0.05   # seconds: how often the serving loop looks for stop(), so stopping takes at most this long


@dataclass
class Status:
    """What the loop tells the endpoints. Times are monotonic seconds (process-local, not domain time)."""

    leader: bool = False
    standby_reason: str = ""
    cycles: int = 0
    last_ok: bool | None = None
    last_error: str = ""
    cycle_started: float | None = None   # set while a cycle runs
    stuck_after: float = 300.0
    notes: tuple[str, ...] = ()          # the last snapshot's notes
    cache_health: Callable[[], tuple[bool, str]] | None = None   # the watched cache's (ok, detail), when there is one
    lock: threading.Lock = field(default_factory=threading.Lock)

    def health(self, now: float) -> tuple[bool, str]:
        with self.lock:
            started = self.cycle_started
        if started is not None and now - started > self.stuck_after:
            return False, f"cycle running for {now - started:.0f}s (limit {self.stuck_after:.0f}s)"
        return True, "alive"

    def ready(self) -> tuple[bool, str]:
        with self.lock:
            if not self.leader:
                return False, self.standby_reason or "standby: another daemon holds the lock"
            if self.last_ok is None:
                return False, "leader; first cycle not finished"
            if not self.last_ok:
                return False, f"last cycle failed: {self.last_error}"
            cache_health, cycles = self.cache_health, self.cycles
        if cache_health is not None:
            ok, why = cache_health()
            if not ok:
                return False, f"cluster cache: {why}"
        return True, f"leader; {cycles} cycle(s) ok"


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:8080' or ':8080' -> (host, port). Raises ValueError with a readable message."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host or "127.0.0.1", int(port)


class HealthServer:
    def __init__(self, listen: str, *, status: Status, metrics: Metrics,
                 monotonic: Callable[[], float] = time.monotonic, internal: InternalApi | None = None,
                 request_seconds: float = 10.0) -> None:
        """`request_seconds` bounds each read of a request line or header, and the whole of a body."""
        host, port = parse_listen(listen)
        status_, metrics_, mono, api, body_seconds = status, metrics, monotonic, internal, request_seconds

        class Handler(BaseHTTPRequestHandler):
            timeout = request_seconds   # a client that stops sending mid-request is dropped, not waited for

            def handle_one_request(self) -> None:
                """The request line and headers must arrive within `request_seconds` in all, or the connection is
                shut (each read's own timeout alone lets a byte now and then hold a thread for ever)."""
                timer = threading.Timer(body_seconds, self._drop)
                timer.daemon = True
                self._headers_timer = timer
                timer.start()
                try:
                    super().handle_one_request()
                finally:
                    timer.cancel()

            def parse_request(self) -> bool:
                parsed = super().parse_request()   # reads the headers
                self._headers_timer.cancel()       # they are in: from here the body's own deadline applies
                if getattr(self, "_dropped", False):
                    self.close_connection = True   # cut off mid-headers: what arrived is not a request
                    return False
                return parsed

            def _drop(self) -> None:
                self._dropped = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def do_GET(self) -> None:  # noqa: N802 (stdlib name)
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    ok, why = status_.health(mono())
                    self._send(200 if ok else 503, json.dumps({"ok": ok, "detail": why}), "application/json")
                elif path == "/readyz":
                    ok, why = status_.ready()
                    with status_.lock:
                        notes = list(status_.notes)
                    self._send(200 if ok else 503, json.dumps({"ok": ok, "detail": why, "notes": notes}), "application/json")
                elif path == "/metrics":
                    self._send(200, metrics_.render(), "text/plain; version=0.0.4; charset=utf-8")
                else:
                    self._send(404, json.dumps({"ok": False, "detail": "try /healthz, /readyz or /metrics"}), "application/json")

            def do_POST(self) -> None:  # noqa: N802 (stdlib name)
                if api is None:
                    self._send(404, json.dumps({"error": "no internal API: start the daemon with --internal-token-file"}),
                               "application/json")
                    return
                headers = dict(self.headers.items())
                if not api.authorised(headers):   # before anything about the body is looked at or read
                    self.close_connection = True
                    self._send(401, json.dumps({"error": "missing or wrong bearer token"}), "application/json")
                    return
                if self.headers.get("Transfer-Encoding"):
                    self.close_connection = True
                    self._send(411, json.dumps({"error": "send the body with a Content-Length, not chunked"}),
                               "application/json")
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY:
                    self.close_connection = True
                    self._send(413, json.dumps({"error": f"Content-Length must be 0..{MAX_BODY}"}), "application/json")
                    return
                body = self._read_body(length)
                if body is None:
                    self.close_connection = True
                    self._send(408, json.dumps({"error": f"the body did not arrive within {body_seconds:g}s"}),
                               "application/json")
                    return
                code, reply = api.handle("POST", self.path.split("?", 1)[0], headers, body)
                self._send(code, json.dumps(reply), "application/json")

            def _read_body(self, length: int) -> bytes | None:
                """`length` bytes within `body_seconds` in all (a body trickled byte by byte cannot hold a thread
                for long), or None when they did not come."""
                deadline = time.monotonic() + body_seconds
                chunks, remaining = [], length
                try:
                    while remaining:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return None
                        self.connection.settimeout(left)
                        chunk = self.rfile.read1(remaining)
                        if not chunk:
                            return None
                        chunks.append(chunk)
                        remaining -= len(chunk)
                except OSError:   # includes the socket's timeout
                    return None
                return b"".join(chunks)

            def _send(self, code: int, body: str, ctype: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # keep probes out of the daemon's log
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.address = f"{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="opsagent-http", daemon=True,
                                        kwargs={"poll_interval": STOP_POLL})

    def start(self) -> "HealthServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
