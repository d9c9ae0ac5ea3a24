"""The agent's one typed configuration: which model on which server, timeouts, budgets.

A model is named `ollama:NAME` (Ollama's /api/chat), `openai:NAME` (any
server speaking OpenAI's Chat Completions: vLLM, llama.cpp's server, LM
Studio, a LiteLLM gateway) or a bare `NAME`, which means Ollama, as it always
has. Built from explicit values, or from the environment with
`AgentConfig.from_env()` (OPSAGENT_MODEL, OPSAGENT_BASE_URL, OLLAMA_HOST,
OPENAI_API_KEY, OPSAGENT_AGENT_*). The API key is a secret: it never appears
in a repr, a log line or the audit log. Nothing here reads the environment at
import time or talks to the network.
"""

from __future__ import annotations

import os
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

DEFAULT_MODEL = "qwen3:8b"
DEFAULT_HOST = "http://127.0.0.1:11434"
PROVIDERS = ("ollama", "openai")
Provider = Literal["ollama", "openai"]


def split_model(spec: str) -> tuple[Provider, str]:
    """(provider, name the server knows) from `ollama:NAME`, `openai:NAME` or a bare NAME (Ollama).

    Only these two prefixes are read: Ollama names have colons of their own (`qwen3:8b`).
    """
    for provider in PROVIDERS:
        if spec.startswith(provider + ":"):
            return provider, spec[len(provider) + 1:]  # type: ignore[return-value]
    return "ollama", spec


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(default=DEFAULT_MODEL, min_length=1,
                       description="ollama:NAME, openai:NAME, or a bare NAME (Ollama), e.g. qwen3:8b or openai:Qwen/Qwen3-8B")
    ollama_host: str = Field(default=DEFAULT_HOST, description="Ollama base URL")
    base_url: str | None = Field(default=None, description="the model server's URL; for openai: models the URL that ends "
                                                           "in /v1 (required); for Ollama it overrides ollama_host")
    api_key: SecretStr | None = Field(default=None, description="bearer token for an OpenAI-compatible server (never logged)")
    stream: bool = Field(default=False, description="openai: models: stream answers (SSE) instead of one JSON reply")
    request_timeout_seconds: float = Field(default=60.0, gt=0, description="one LLM request, connect to last byte")
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_steps: int = Field(default=8, ge=1, le=100, description="plan rounds per run")
    max_tokens: int = Field(default=60_000, ge=1, description="prompt + completion tokens per run")
    max_seconds: float = Field(default=600.0, gt=0, description="clock time a run may spend working; waiting for a person or a restart does not count")
    verify_retries: int = Field(default=4, ge=0, le=50, description="extra re-checks after the last step, waiting between them")
    verify_interval_seconds: float = Field(default=15.0, ge=0, description="longest wait before a re-check (on the run's clock); a watch event ends it sooner")
    max_limit_wait_seconds: float = Field(default=1800.0, ge=0, description="a finding held longer than this by a rate "
                                          "limit is escalated to a person (it is still retried when the limit frees up)")
    max_failures: int = Field(default=3, ge=1, le=10, description="unusable model turns in a row (unparseable answers, "
                              "server errors, refused calls) before a run falls back to the offline planner")
    checkpoint_retention_seconds: float = Field(default=3600.0, ge=0, description="clock time a finished run's "
                                                "checkpoints are kept before the daemon prunes them to one small record "
                                                "of the outcome (the audit log keeps the whole story)")
    llm_cooldown_seconds: float = Field(default=60.0, ge=0, description="after the model server could not be reached, or a "
                                        "run fell back because of the model's answers, plan offline for this long (clock "
                                        "time, doubled on each repeat); 0 asks every run")

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        value = value.strip()
        if not split_model(value)[1].strip():
            raise ValueError(f"model {value!r} names no model after the prefix (e.g. openai:Qwen/Qwen3-8B)")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base URL {value!r} must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _openai_needs_url(self) -> "AgentConfig":
        if self.provider == "openai" and not self.base_url:
            raise ValueError(f"model {self.model!r} needs its server's URL: set --base-url or OPSAGENT_BASE_URL "
                             "(e.g. http://127.0.0.1:8000/v1)")
        return self

    @property
    def provider(self) -> Provider:
        return split_model(self.model)[0]

    @property
    def model_name(self) -> str:
        """The name the server knows the model by (the spec without its provider prefix)."""
        return split_model(self.model)[1]

    @property
    def server_url(self) -> str | None:
        """Where the model server answers: base_url, else (Ollama) ollama_host; None for openai without a URL."""
        if self.base_url:
            return self.base_url
        return self.ollama_host if self.provider == "ollama" else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> "AgentConfig":
        """Read OPSAGENT_MODEL, OPSAGENT_BASE_URL, OLLAMA_HOST, OPENAI_API_KEY and
        OPSAGENT_AGENT_{MAX_STEPS,MAX_TOKENS,MAX_SECONDS,TIMEOUT,LLM_COOLDOWN,STREAM,CHECKPOINT_RETENTION,MAX_FAILURES}.

        Explicit `overrides` (e.g. from CLI flags) win; None values are ignored.
        Raises ValueError naming the variable when a value does not parse.
        """
        env = os.environ if env is None else env
        names = {
            "model": "OPSAGENT_MODEL",
            "ollama_host": "OLLAMA_HOST",
            "base_url": "OPSAGENT_BASE_URL",
            "api_key": "OPENAI_API_KEY",
            "stream": "OPSAGENT_AGENT_STREAM",
            "max_steps": "OPSAGENT_AGENT_MAX_STEPS",
            "max_tokens": "OPSAGENT_AGENT_MAX_TOKENS",
            "max_seconds": "OPSAGENT_AGENT_MAX_SECONDS",
            "request_timeout_seconds": "OPSAGENT_AGENT_TIMEOUT",
            "llm_cooldown_seconds": "OPSAGENT_AGENT_LLM_COOLDOWN",
            "checkpoint_retention_seconds": "OPSAGENT_AGENT_CHECKPOINT_RETENTION",
            "max_failures": "OPSAGENT_AGENT_MAX_FAILURES",
        }
        values: dict[str, object] = {field: env[var] for field, var in names.items() if env.get(var)}
        if "ollama_host" in values:
            values["ollama_host"] = normalize_host(str(values["ollama_host"]))
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "model"
            source = names.get(field, field)
            shown = "(hidden)" if field == "api_key" else repr(values.get(field))
            message = str(err["msg"]).removeprefix("Value error, ")
            raise ValueError(f"{source}: {message} (got {shown})") from exc


def normalize_host(host: str) -> str:
    """OLLAMA_HOST may be '0.0.0.0:11434' or 'myhost'; turn it into a URL."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    scheme, rest = host.split("://", 1)
    if ":" not in rest:
        rest += ":11434"
    return f"{scheme}://{rest}"
