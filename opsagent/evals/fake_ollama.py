"""A fake Ollama server: a real HTTP server on 127.0.0.1 speaking Ollama's wire format.

It serves `POST /api/chat` (streaming NDJSON or one JSON object, with
`tool_calls`, `prompt_eval_count` and `eval_count`) and `GET /api/tags`, so
the real client path (ChatOllama -> ollama client -> httpx) runs in tests.
Each chat request takes the next scripted `Reply`; every request body is kept
in `requests` so a test can count calls and read the prompts that were sent.

Error modes a real server shows: 404 for an unknown model, an `{"error": ...}`
line in the middle of a stream, a slow answer (client timeouts), HTTP 500,
arguments sent as a string instead of an object, and unknown tool names (those
are just names: the fake sends whatever the script says). Garbled modes, as a
proxy, a crashed runner or a broken network shows them: `html` answers 200
with an HTML page, `cut` stops the stream in the middle of a JSON line, and
`raw_tool_calls` sends tool calls exactly as given (any shape a model emits).

Part of the evals: the `garbled` and `hostile-ollama` planners (`opsagent.evals.planners`)
run the real Ollama client against it. It holds no opsagent logic.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Literal

Mode = Literal["ok", "error_midstream", "http_error", "slow", "string_args", "html", "cut"]
HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
             b"<body><h1>Bad Gateway</h1><p>The upstream server returned an invalid response.</p></body></html>\n")

CREATED_AT = "2026-01-05T00:00:00.000000Z"


@dataclass
class Reply:
    """One scripted answer to one `/api/chat` request."""

    content: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    mode: Mode = "ok"
    status: int = 500
    delay: float = 0.0
    prompt_eval_count: int = 120
    eval_count: int = 12
    raw_tool_calls: list[dict[str, Any]] | None = None  # sent as they are, instead of `tool_calls`

    @classmethod
    def call(cls, tool: str, /, **args: Any) -> "Reply":
        return cls(tool_calls=[(tool, args)])

    @classmethod
    def text(cls, content: str) -> "Reply":
        return cls(content=content)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # the client stopped waiting (a timeout): nothing to report
            return
        super().handle_error(request, client_address)


class FakeOllama:
    """Start with `with FakeOllama(replies=[...]) as server:`; point clients at `server.url`.

    When the script runs out, `default` answers (a plain final text by default).
    `responder`, if given, decides each reply from the request body instead.
    """

    def __init__(
        self,
        replies: list[Reply] | None = None,
        *,
        models: tuple[str, ...] = ("llama3.2:latest", "qwen3:8b"),
        default: Reply | None = None,
        responder: Callable[[dict[str, Any]], Reply] | None = None,
    ) -> None:
        self.replies = list(replies or [])
        self.models = models
        self.default = default or Reply.text("Nothing more to do.")
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------

    def start(self) -> "FakeOllama":
        handler = _make_handler(self)
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-ollama", daemon=True,
                                        kwargs={"poll_interval": 0.05})   # stop() returns within this
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeOllama":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r.get("_path") == "/api/chat"]

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    # --- what to answer ----------------------------------------------------

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            if self.responder is not None:
                return self.responder(body)
            return self.replies.pop(0) if self.replies else self.default

    def _record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)

    def _known(self, model: str) -> bool:
        names = set(self.models) | {m.split(":")[0] for m in self.models if m.endswith(":latest")}
        return model in names


def _tool_calls_wire(reply: Reply) -> list[dict[str, Any]]:
    if reply.raw_tool_calls is not None:
        return list(reply.raw_tool_calls)
    calls = []
    for index, (name, args) in enumerate(reply.tool_calls):
        arguments: Any = json.dumps(args) if reply.mode == "string_args" else args
        calls.append({"id": f"call_{index:08d}", "function": {"index": index, "name": name, "arguments": arguments}})
    return calls


def _make_handler(server: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # responses end when the connection closes: simple streaming

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            return

        def _json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            if self.path.rstrip("/") == "/api/tags":
                server._record({"_path": "/api/tags"})
                models = [{"name": m, "model": m, "size": 1, "digest": "0" * 64, "details": {"format": "gguf"}} for m in server.models]
                self._json(200, {"models": models})
            elif self.path.rstrip("/") in ("", "/"):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"Ollama is running")
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._json(400, {"error": "invalid JSON body"})
                return
            if self.path != "/api/chat":
                self._json(404, {"error": f"unknown endpoint {self.path}"})
                return
            body["_path"] = "/api/chat"
            model = str(body.get("model", ""))
            if not server._known(model):
                server._record(body)
                self._json(404, {"error": f"model '{model}' not found"})
                return
            reply = server._next_reply(body)
            if reply.delay and server._stopping.wait(reply.delay):
                return
            if reply.mode == "slow" and not reply.delay:
                server._stopping.wait(30.0)
                return
            if reply.mode == "http_error":
                self._json(reply.status, {"error": "internal server error"})
                return
            if reply.mode == "html":
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(HTML_PAGE)))
                self.end_headers()
                self.wfile.write(HTML_PAGE)
                return
            self._answer(body, reply, model)

        def _answer(self, body: dict[str, Any], reply: Reply, model: str) -> None:
            message: dict[str, Any] = {"role": "assistant", "content": reply.content}
            calls = _tool_calls_wire(reply)
            final = {
                "model": model, "created_at": CREATED_AT,
                "message": {"role": "assistant", "content": ""},
                "done": True, "done_reason": "stop",
                "total_duration": 1000, "load_duration": 10,
                "prompt_eval_count": reply.prompt_eval_count, "prompt_eval_duration": 100,
                "eval_count": reply.eval_count, "eval_duration": 100,
            }
            if body.get("stream", True) is False:
                if calls:
                    message["tool_calls"] = calls
                self._json(200, {**final, "message": message})
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            lines: list[dict[str, Any]] = []
            if reply.content:
                lines.append({"model": model, "created_at": CREATED_AT, "message": {"role": "assistant", "content": reply.content}, "done": False})
            if reply.mode == "error_midstream":
                lines.append({"error": "an error was encountered while running the model"})
            else:
                if calls:
                    lines.append({"model": model, "created_at": CREATED_AT, "message": {"role": "assistant", "content": "", "tool_calls": calls}, "done": False})
                lines.append(final)
            if reply.mode == "cut":  # the connection drops in the middle of a line
                data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
                self.wfile.write(data[: max(1, len(data) // 2)].rstrip(b"\n"))
                self.wfile.flush()
                return
            for line in lines:
                self.wfile.write(json.dumps(line).encode() + b"\n")
                self.wfile.flush()

    return Handler
