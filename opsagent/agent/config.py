"""The agent's one typed configuration: which model, where Ollama is, timeouts, budgets.

Built from explicit values, or from the environment with `AgentConfig.from_env()`
(OPSAGENT_MODEL, OLLAMA_HOST, OPSAGENT_AGENT_*). Nothing here reads the
environment at import time or talks to the network.
"""

from __future__ import annotations

import os
from typing import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_MODEL = "qwen3:8b"
DEFAULT_HOST = "http://127.0.0.1:11434"


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(default=DEFAULT_MODEL, min_length=1, description="Ollama model name, e.g. qwen3:8b")
    ollama_host: str = Field(default=DEFAULT_HOST, description="Ollama base URL")
    request_timeout_seconds: float = Field(default=60.0, gt=0, description="one LLM request, connect to last byte")
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_steps: int = Field(default=8, ge=1, le=100, description="plan rounds per run")
    max_tokens: int = Field(default=60_000, ge=1, description="prompt + completion tokens per run")
    max_seconds: float = Field(default=600.0, gt=0, description="clock time a run may spend working; waiting for a person or a restart does not count")
    verify_retries: int = Field(default=4, ge=0, le=50, description="extra re-checks after the last step, waiting between them")
    verify_interval_seconds: float = Field(default=15.0, ge=0, description="wait before each re-check (on the run's clock)")
    max_limit_wait_seconds: float = Field(default=1800.0, ge=0, description="a finding held longer than this by a rate "
                                          "limit is escalated to a person (it is still retried when the limit frees up)")
    max_failures: int = Field(default=3, ge=1, le=10, description="LLM failures in a row before falling back to the offline planner")
    llm_cooldown_seconds: float = Field(default=60.0, ge=0, description="after the model server could not be reached, plan "
                                                                         "offline for this long (clock time); 0 asks every run")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> "AgentConfig":
        """Read OPSAGENT_MODEL, OLLAMA_HOST and OPSAGENT_AGENT_{MAX_STEPS,MAX_TOKENS,MAX_SECONDS,TIMEOUT,LLM_COOLDOWN}.

        Explicit `overrides` (e.g. from CLI flags) win; None values are ignored.
        Raises ValueError naming the variable when a value does not parse.
        """
        env = os.environ if env is None else env
        names = {
            "model": "OPSAGENT_MODEL",
            "ollama_host": "OLLAMA_HOST",
            "max_steps": "OPSAGENT_AGENT_MAX_STEPS",
            "max_tokens": "OPSAGENT_AGENT_MAX_TOKENS",
            "max_seconds": "OPSAGENT_AGENT_MAX_SECONDS",
            "request_timeout_seconds": "OPSAGENT_AGENT_TIMEOUT",
            "llm_cooldown_seconds": "OPSAGENT_AGENT_LLM_COOLDOWN",
        }
        values: dict[str, object] = {field: env[var] for field, var in names.items() if env.get(var)}
        if "ollama_host" in values:
            values["ollama_host"] = normalize_host(str(values["ollama_host"]))
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "?"
            source = names.get(field, field)
            raise ValueError(f"{source}: {err['msg']} (got {values.get(field)!r})") from exc


def normalize_host(host: str) -> str:
    """OLLAMA_HOST may be '0.0.0.0:11434' or 'myhost'; turn it into a URL."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    scheme, rest = host.split("://", 1)
    if ":" not in rest:
        rest += ":11434"
    return f"{scheme}://{rest}"
