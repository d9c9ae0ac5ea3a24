"""The model factory: the one module that imports the model clients (langchain_ollama,
ollama, langchain_openai, openai).

`make_chat_model(config)` builds ChatOllama for `ollama:` (and bare) model
names and ChatOpenAI for `openai:` names, so Ollama and every server that
speaks OpenAI's Chat Completions (vLLM, llama.cpp's server, LM Studio,
LiteLLM) run through the same planner: same tool binding, same accounting
(usage_metadata from either wire format), same fallback. `classify_error(exc)`
turns what either client raises into a short reason the planner records (or
None when the exception is not a model failure and should propagate). The
.importlinter contract keeps every other module away from these libraries.
This module must not decide anything about tools or policy, and never puts
the API key in a reason.
"""

from __future__ import annotations

import json

import httpx
import ollama
import openai
from langchain_core.language_models import BaseChatModel
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI
from pydantic import ValidationError

from typing import Callable

from opsagent.agent.breaker import causes
from opsagent.agent.config import AgentConfig

NO_KEY = "no-key"   # local servers (vLLM, llama.cpp, LM Studio) ignore the key, but the client insists on one


class ModelConfigError(ValueError):
    """The model settings cannot work (e.g. an openai: model without a base URL): say so before any run."""


def make_chat_model(config: AgentConfig) -> BaseChatModel:
    """The chat client for `config.model` (see `AgentConfig.provider`). No network I/O here."""
    if config.provider == "openai":
        if not config.base_url:
            raise ModelConfigError(f"model {config.model!r} needs the server's URL: --base-url or OPSAGENT_BASE_URL "
                                   "(e.g. http://127.0.0.1:8000/v1 for vLLM)")
        key = config.api_key.get_secret_value() if config.api_key is not None else NO_KEY
        return ChatOpenAI(
            model=config.model_name, base_url=config.base_url, api_key=key,  # type: ignore[arg-type]
            temperature=config.temperature, timeout=config.request_timeout_seconds,
            max_retries=0,               # a failure is counted and falls back; the client must not retry behind our back
            streaming=config.stream, stream_usage=True,   # token counts come back when streaming too
        )
    return ChatOllama(
        model=config.model_name,
        base_url=config.server_url,
        temperature=config.temperature,
        client_kwargs={"timeout": config.request_timeout_seconds},
    )


def classifier_for(config: AgentConfig) -> "Callable[[BaseException], str | None]":
    """`classify_error`, with the API key and URL credentials taken out of every reason it gives."""
    from opsagent.agent.server import redact

    def classify(exc: BaseException) -> str | None:
        reason = classify_error(exc)
        return redact(reason, config) if reason is not None else None

    return classify


def _openai_reason(exc: openai.OpenAIError) -> str | None:
    if isinstance(exc, openai.APITimeoutError):
        return "timeout talking to the model server"
    if isinstance(exc, openai.APIConnectionError):
        root = causes(exc)[-1]
        return f"cannot reach the model server: {root if root is not exc else exc.message}"
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        detail = str(exc.message)[:200]
        if code == 404:
            return f"model not found: {detail}"
        if code in (401, 403):
            return f"the model server refused the API key ({code})"
        return f"model server error {code}: {detail}"
    if isinstance(exc, openai.APIResponseValidationError):
        return f"malformed answer from the model server: {str(exc)[:200]}"
    if isinstance(exc, openai.APIError):
        return f"model server error: {str(exc)[:200]}"
    return None


def classify_error(exc: BaseException) -> str | None:
    """Why an LLM call failed, in a few words; None if `exc` is not a model-side failure."""
    if isinstance(exc, openai.OpenAIError):
        return _openai_reason(exc)
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout talking to Ollama ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot reach Ollama: {exc}"
    if isinstance(exc, httpx.HTTPError):
        return f"HTTP error from Ollama: {exc}"
    if isinstance(exc, ollama.ResponseError):
        code = getattr(exc, "status_code", None)
        if code == 404:
            return f"model not found: {exc.error}"
        if code == -1:
            return f"model failed mid-answer: {exc.error}"
        return f"Ollama error {code}: {exc.error}"
    if isinstance(exc, ValidationError):
        return f"malformed model output: {exc.errors()[0].get('msg', exc)} at {'.'.join(str(p) for p in exc.errors()[0].get('loc', ()))}"
    if isinstance(exc, json.JSONDecodeError):  # an HTML page, a proxy's error text, a stream cut mid-line
        return f"garbled answer from the model server (not JSON: {exc.msg} at char {exc.pos})"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return f"connection problem: {exc}"
    return None
