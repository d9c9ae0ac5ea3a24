"""The model options, declared once for every command that can plan with a language model.

`--model` (OPSAGENT_MODEL) names the model and the kind of server:
`ollama:NAME` or a bare NAME for Ollama (at OLLAMA_HOST), `openai:NAME` for
any server speaking OpenAI's Chat Completions (vLLM, llama.cpp's server, LM
Studio, LiteLLM) at `--base-url` (OPSAGENT_BASE_URL). The API key, when the
server wants one, comes only from the OPENAI_API_KEY environment variable,
never from a flag (flags show up in process lists and shell history).
Declarations only: commands pass the values to `opsagent.runtime.build_agent`.
"""

from __future__ import annotations

import typer

MODEL_HELP = ("Model to plan with: ollama:NAME or NAME (Ollama at OLLAMA_HOST), or openai:NAME (an OpenAI-compatible "
              "server such as vLLM, llama.cpp, LM Studio or LiteLLM at --base-url; key from OPENAI_API_KEY).")


def model_option(extra: str = "") -> object:
    """`--model`, with a sentence on what the command does without one."""
    return typer.Option(None, "--model", envvar="OPSAGENT_MODEL", help=MODEL_HELP + (" " + extra if extra else ""))


BaseUrlOpt = typer.Option(
    None, "--base-url", envvar="OPSAGENT_BASE_URL",
    help="The model server's URL: for openai: models the one ending in /v1 (e.g. http://127.0.0.1:8000/v1 for vLLM); "
         "for Ollama models it replaces OLLAMA_HOST.")
