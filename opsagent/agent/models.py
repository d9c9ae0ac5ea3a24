"""The model factory: the one module that imports langchain_ollama and ollama.

`make_chat_model(config)` builds the ChatOllama client; `classify_error(exc)`
turns what the client raises into a short reason the planner records (or None
when the exception is not a model failure and should propagate). The
.importlinter contract keeps every other module away from these libraries.
This module must not decide anything about tools or policy.
"""

from __future__ import annotations

import json

import httpx
import ollama
from langchain_core.language_models import BaseChatModel
from langchain_ollama import ChatOllama
from pydantic import ValidationError

from opsagent.agent.config import AgentConfig


def make_chat_model(config: AgentConfig) -> BaseChatModel:
    """A ChatOllama client for `config.model` at `config.ollama_host`. No network I/O here."""
    return ChatOllama(
        model=config.model,
        base_url=config.ollama_host,
        temperature=config.temperature,
        client_kwargs={"timeout": config.request_timeout_seconds},
    )


def classify_error(exc: BaseException) -> str | None:
    """Why an LLM call failed, in a few words; None if `exc` is not a model-side failure."""
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
