"""Questions asked of a model server before a run: does it answer, does it have the model, can the model call tools.

Both kinds are covered. Ollama: `GET /api/tags` lists the models, `POST
/api/show` lists a model's capabilities (`tools` among them on Ollama 0.6
and later). OpenAI-compatible servers (vLLM, llama.cpp's server, LM Studio,
LiteLLM): `GET {base}/models` lists the models, and a one-token tool-call
probe (`POST {base}/chat/completions` with one tiny tool and `tool_choice`
naming it) shows whether tool calls come back, since few servers describe
that in their model card. Used by `opsagent doctor`, and by the daemon,
`demo` and `eval` to decide whether the model can be asked at all.

It reads only; the probe asks the model for one short answer and runs
nothing. The API key goes in the Authorization header and nowhere else:
no answer text or error message here repeats it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from opsagent.agent.config import AgentConfig

ToolSupport = Literal["yes", "no", "unknown"]
PROBE_TOOL = {"type": "function", "function": {
    "name": "ping", "description": "Answer the ping.",
    "parameters": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}}}


class ServerError(Exception):
    """The model server did not answer as it should (unreachable, HTTP error, not JSON)."""


@dataclass(frozen=True)
class ServerInfo:
    url: str
    models: tuple[str, ...]


def shown_url(url: str | None) -> str:
    """`url` without a user name or password in it, for messages and logs."""
    if not url:
        return "(no URL)"
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, "***@" + netloc, parts.path, parts.query, parts.fragment))


def redact(text: str, config: AgentConfig) -> str:
    """`text` with the API key and the URL's credentials taken out (server error text may echo them)."""
    secrets = [config.api_key.get_secret_value()] if config.api_key is not None else []
    url = config.server_url or ""
    parts = urlsplit(url)
    secrets += [p for p in (parts.password, parts.username) if p]
    if url and url != shown_url(url):
        text = text.replace(url, shown_url(url))
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _headers(config: AgentConfig) -> dict[str, str]:
    if config.provider == "openai" and config.api_key is not None:
        return {"Authorization": f"Bearer {config.api_key.get_secret_value()}"}
    return {}


def _request(config: AgentConfig, method: str, path: str, *, timeout: float, body: Any = None) -> Any:
    url = (config.server_url or "").rstrip("/")
    if not url:
        raise ServerError(f"no URL for model {config.model!r}: set --base-url or OPSAGENT_BASE_URL")
    shown = shown_url(url)
    try:
        response = httpx.request(method, url + path, json=body, headers=_headers(config), timeout=timeout)
    except (httpx.HTTPError, OSError) as exc:
        raise ServerError(redact(f"{shown} does not answer {method} {path}: {type(exc).__name__}: {exc}", config)) from None
    if response.status_code >= 400:
        raise ServerError(redact(f"{shown} answered {method} {path} with HTTP {response.status_code}: "
                                 f"{_error_text(response)}", config))
    try:
        return response.json()
    except ValueError:
        raise ServerError(f"{shown} answered {method} {path} with something that is not JSON") from None


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        err = err.get("message")
    return str(err or body)[:200]


def list_models(config: AgentConfig, *, timeout: float) -> ServerInfo:
    """The models the server offers (raises ServerError when it does not answer)."""
    if config.provider == "openai":
        body = _request(config, "GET", "/models", timeout=timeout)
        names = [str(m.get("id", "")) for m in (body.get("data") or []) if isinstance(m, dict)]
    else:
        body = _request(config, "GET", "/api/tags", timeout=timeout)
        names = [str(m.get("name", "")) for m in (body.get("models") or []) if isinstance(m, dict)]
    return ServerInfo(url=shown_url(config.server_url), models=tuple(n for n in names if n))


def has_model(info: ServerInfo, config: AgentConfig) -> bool:
    name = config.model_name
    return name in info.models or (config.provider == "ollama" and f"{name}:latest" in info.models)


def tool_support(config: AgentConfig, *, timeout: float) -> tuple[ToolSupport, str]:
    """Whether the model can call tools, and how that was found out."""
    if config.provider == "ollama":
        try:
            body = _request(config, "POST", "/api/show", timeout=timeout, body={"model": config.model_name})
        except ServerError as exc:
            return "unknown", f"/api/show did not say: {exc}"
        capabilities = body.get("capabilities")
        if not isinstance(capabilities, list):
            return "unknown", "this Ollama does not list model capabilities (upgrade to 0.6 or later to check)"
        if "tools" in capabilities:
            return "yes", "/api/show lists the tools capability"
        return "no", f"/api/show lists {', '.join(map(str, capabilities)) or 'no capabilities'}, not tools"
    probe = {"model": config.model_name, "max_tokens": 16, "temperature": 0, "stream": False,
             "messages": [{"role": "user", "content": "Call the ping tool with ok=true."}],
             "tools": [PROBE_TOOL], "tool_choice": {"type": "function", "function": {"name": "ping"}}}
    try:
        body = _request(config, "POST", "/chat/completions", timeout=timeout, body=probe)
    except ServerError as exc:
        if "HTTP 400" in str(exc) or "HTTP 422" in str(exc):
            return "no", f"a tool-call request was refused: {exc}"
        return "unknown", f"the tool-call probe failed: {exc}"
    choices = body.get("choices") or [{}]
    message = (choices[0] or {}).get("message") or {}
    calls = message.get("tool_calls") or []
    if any(((c or {}).get("function") or {}).get("name") == "ping" for c in calls):
        return "yes", "a one-token probe came back as a tool call"
    return "no", "a probe that asked for a tool call came back as plain text (start vLLM with " \
                 "--enable-auto-tool-choice and a --tool-call-parser, llama.cpp's server with --jinja)"


def server_problem(config: AgentConfig, *, timeout: float = 1.0) -> str | None:
    """Why the model cannot be asked (the server does not answer, refuses the key, lacks the model), or None."""
    try:
        info = list_models(config, timeout=timeout)
    except ServerError as exc:
        return str(exc)
    if not has_model(info, config):
        return f"{info.url} answers but does not list the model {config.model_name!r}"
    return None
