"""A fake OpenAI-compatible model server: a real aiohttp server on 127.0.0.1 speaking Chat Completions.

What vLLM, llama.cpp's server, LM Studio and LiteLLM answer, reduced to what
opsagent uses: `GET /v1/models`, and `POST /v1/chat/completions` with
`tools`, answered either as one JSON object (`choices[0].message.tool_calls`
with JSON-string `arguments`, `usage`) or, when `"stream": true`, as SSE
`data:` chunks: a role delta, content deltas, tool-call deltas (id and name
first, the arguments split over several chunks), a `finish_reason` chunk, a
usage chunk when `stream_options.include_usage` is asked for, then
`data: [DONE]`. Each chat request takes the next scripted `Reply` (or the
`responder`'s); request bodies and headers are kept so a test can read the
prompts sent and check the API key.

Error modes: 404 for an unknown model, 401 for a wrong key (when `api_key`
is set), HTTP errors, a slow answer, arguments that are not JSON, and a
server that answers tool requests with plain text (a model started without
tool-call parsing). It must not be imported by product code.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from aiohttp import web

Mode = Literal["ok", "http_error", "slow", "bad_json_args"]
CREATED = 1767571200


@dataclass
class Reply:
    """One scripted answer to one chat-completions request."""

    content: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    mode: Mode = "ok"
    status: int = 500
    delay: float = 0.0
    prompt_tokens: int = 120
    completion_tokens: int = 12

    @classmethod
    def call(cls, tool: str, /, **args: Any) -> "Reply":
        return cls(tool_calls=[(tool, args)])

    @classmethod
    def text(cls, content: str) -> "Reply":
        return cls(content=content)


class FakeOpenAI:
    """`with FakeOpenAI(replies=[...]) as server:`; point clients at `server.url` (it ends in /v1)."""

    def __init__(self, replies: list[Reply] | None = None, *, models: tuple[str, ...] = ("Qwen/Qwen3-8B",),
                 default: Reply | None = None, responder: Callable[[dict[str, Any]], Reply] | None = None,
                 api_key: str | None = None, tools_supported: bool = True) -> None:
        self.replies = list(replies or [])
        self.models = models
        self.default = default or Reply.text("Nothing more to do.")
        self.responder = responder
        self.api_key = api_key
        self.tools_supported = tools_supported
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._stopping: asyncio.Event | None = None

    # --- lifecycle ---------------------------------------------------------

    def start(self) -> "FakeOpenAI":
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start())  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()  # type: ignore[union-attr]

        self._thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _start(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            assert self._stopping is not None and self._runner is not None
            self._stopping.set()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r.get("_path") == "/v1/chat/completions"]

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    # --- handlers ----------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        with self._lock:
            self.headers.append(dict(request.headers))
        return self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def _unauthorized(self) -> web.Response:
        return web.json_response({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                            "code": "invalid_api_key"}}, status=401)

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        with self._lock:
            self.requests.append({"_path": "/v1/models"})
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"} for m in self.models]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._unauthorized()
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": {"message": "invalid JSON body"}}, status=400)
        body["_path"] = "/v1/chat/completions"
        model = str(body.get("model", ""))
        if model not in self.models:
            with self._lock:
                self.requests.append(body)
            return web.json_response({"error": {"message": f"The model `{model}` does not exist.",
                                                "type": "NotFoundError", "code": 404}}, status=404)
        with self._lock:
            self.requests.append(body)
            if self.responder is not None:
                reply = self.responder(body)
            else:
                reply = self.replies.pop(0) if self.replies else self.default
        if not self.tools_supported and reply.tool_calls:
            reply = Reply.text(json.dumps([{"name": n, "arguments": a} for n, a in reply.tool_calls]))
        assert self._stopping is not None
        wait = reply.delay or (30.0 if reply.mode == "slow" else 0.0)
        if wait:
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)
                return web.Response(status=503)
            except asyncio.TimeoutError:
                pass
        if reply.mode == "http_error":
            return web.json_response({"error": {"message": "internal server error"}}, status=reply.status)
        if body.get("stream"):
            return await self._stream(request, body, reply, model)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
        calls = _wire_calls(reply)
        if calls:
            message["tool_calls"] = calls
        return web.json_response({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": CREATED, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": _usage(reply)})

    async def _stream(self, request: web.Request, body: dict[str, Any], reply: Reply, model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": CREATED, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        events: list[dict[str, Any]] = [chunk({"role": "assistant", "content": ""})]
        for i in range(0, len(reply.content), 8):
            events.append(chunk({"content": reply.content[i:i + 8]}))
        for index, call in enumerate(_wire_calls(reply)):
            fn = call["function"]
            events.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                                 "function": {"name": fn["name"], "arguments": ""}}]}))
            args = fn["arguments"]
            for i in range(0, len(args), 7):   # arguments arrive in pieces, as real servers send them
                events.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": args[i:i + 7]}}]}))
        events.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": CREATED, "model": model,
                           "choices": [], "usage": _usage(reply)})
        for event in events:
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _usage(reply: Reply) -> dict[str, int]:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens}


def _wire_calls(reply: Reply) -> list[dict[str, Any]]:
    calls = []
    for index, (name, args) in enumerate(reply.tool_calls):
        arguments = json.dumps(args)
        if reply.mode == "bad_json_args":
            arguments = arguments[: max(1, len(arguments) // 2)]  # cut off mid-object
        calls.append({"id": f"call_{index:04d}", "type": "function", "function": {"name": name, "arguments": arguments}})
    return calls
