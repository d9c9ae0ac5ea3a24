"""A fake Slack Web API on loopback, for tests and local demos of the Slack app.

`FakeSlack()` starts a threaded stdlib HTTP server on 127.0.0.1 that answers
the Web API methods the app uses (`auth.test`, `chat.postMessage`,
`chat.postEphemeral`, `chat.update`, `views.open`, ...) with Slack's
`{"ok": true, ...}` shapes and records every call (method, parameters) in
order. Point a `WebClient(base_url=fake.api_url)` at it. Posts to
`fake.response_url(...)` (what Slack's `response_url` would be) are recorded too.
It must never be used against real Slack and stores no token it receives.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

BOT_USER = "U06OPSBOT1"
BOT_ID = "B06OPSBOT01"
TEAM = "T0123ABCDEF"


@dataclass
class SlackCall:
    method: str
    params: dict[str, Any]
    ts: str = ""


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[SlackCall] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype and raw:
                    params = json.loads(raw)
                else:
                    params = {k: v[0] for k, v in parse_qs(raw).items()}
                authorized = (self.headers.get("Authorization") or "").startswith("Bearer ")
                method = self.path.split("?")[0].rsplit("/", 1)[-1] if self.path.startswith("/api/") else "response_url"
                body = fake._answer(method, params, authorized)
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-slack", daemon=True,
                                       kwargs={"poll_interval": 0.02})
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/response/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FakeSlack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what tests read ---------------------------------------------------------
    def calls_to(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c.params for c in self.calls if c.method == method]

    def texts(self, method: str = "chat.postMessage") -> list[str]:
        out = []
        for params in self.calls_to(method):
            text = str(params.get("text") or "")
            blocks = params.get("blocks")
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            for block in blocks or []:
                if isinstance(block.get("text"), dict):
                    text += "\n" + block["text"].get("text", "")
            out.append(text)
        return out

    # --- answers -------------------------------------------------------------------
    def _answer(self, method: str, params: dict[str, Any], authorized: bool) -> dict[str, Any]:
        with self._lock:
            ts = f"1748856200.{next(self._ts):06d}"
            self.calls.append(SlackCall(method=method, params=params, ts=ts))
        if method == "auth.test":
            if not authorized:
                return {"ok": False, "error": "not_authed"}
            return {"ok": True, "url": "https://acme-ml.slack.com/", "team": "acme-ml", "user": "opsagent",
                    "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False}
        if method == "chat.postMessage":
            return {"ok": True, "channel": params.get("channel"), "ts": ts,
                    "message": {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": params.get("text", ""), "ts": ts}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "chat.update":
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts"), "text": params.get("text", "")}
        if method.startswith("views."):
            return {"ok": True, "view": {"id": "V0FAKE", "type": "modal"}}
        return {"ok": True}
