"""Slack secrets: read them from the environment or files, and keep them out of logs.

`load_secrets` takes tokens only from environment variables or a token file
(one `NAME=value` per line); never from command-line arguments, where they
would show in `ps`. `RedactingFilter` rewrites any log record that contains a
Slack token (`xoxb-`, `xoxp-`, `xapp-`, ...) or one of the known secret values.
`redact` is the same rule for any string about to be stored or shown.
This module must not print, log or store a secret itself.
"""

from __future__ import annotations

import logging
import os
import re
from enum import Enum
from pathlib import Path

from pydantic import Field

from opsagent.model import Frozen
from opsagent.yamlfile import unreadable

TOKEN_RE = re.compile(r"\bx(?:ox[abposer]|app)-[A-Za-z0-9-]+")
MASK = "[redacted]"
NAMES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")
_installed: list["RedactingFilter"] = []  # the one filter install_redaction() put in place, if any


class SlackSecrets(Frozen):
    bot_token: str | None = Field(default=None, repr=False)
    app_token: str | None = Field(default=None, repr=False)
    signing_secret: str | None = Field(default=None, repr=False)

    def values(self) -> tuple[str, ...]:
        return tuple(v for v in (self.bot_token, self.app_token, self.signing_secret) if v)

    def __str__(self) -> str:  # never show the values
        have = [n for n, v in zip(NAMES, (self.bot_token, self.app_token, self.signing_secret)) if v]
        return f"SlackSecrets({', '.join(have) or 'none'})"


class SlackMode(str, Enum):
    """How the Slack app connects: Socket Mode, signed HTTP events, or auto (socket when an app token is set)."""

    auto = "auto"
    socket = "socket"
    http = "http"


def uses_socket_mode(mode: "SlackMode | str", secrets: SlackSecrets) -> bool:
    """The one rule `opsagent slack` runs by and `opsagent doctor` checks by."""
    value = mode.value if isinstance(mode, SlackMode) else str(mode)
    return value == "socket" or (value == "auto" and bool(secrets.app_token))


class SecretsError(ValueError):
    pass


def _read_token_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsError(f"{path}: cannot read the token file ({unreadable(exc)})") from exc
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip().removeprefix("export ").strip()
        if not sep or name not in NAMES:
            raise SecretsError(f"{path}:{number}: expected NAME=value with NAME one of {', '.join(NAMES)}")
        found[name] = value.strip().strip("'\"")
    return found


def load_secrets(*, env: dict[str, str] | None = None, token_file: Path | None = None) -> SlackSecrets:
    """Secrets from the token file (if given), falling back to the environment."""
    env = dict(os.environ if env is None else env)
    values = {n: env.get(n) or None for n in NAMES}
    if token_file is not None:
        values.update(_read_token_file(Path(token_file)))
    return SlackSecrets(bot_token=values["SLACK_BOT_TOKEN"], app_token=values["SLACK_APP_TOKEN"],
                        signing_secret=values["SLACK_SIGNING_SECRET"])


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask token-shaped strings, the given secret values, and those known to the installed filter."""
    out = TOKEN_RE.sub(MASK, text)
    known = _installed[0].secrets if _installed else ()
    for value in (*secrets, *known):
        if value and len(value) >= 6:
            out = out.replace(value, MASK)
    return out


class RedactingFilter(logging.Filter):
    """A logging filter that masks Slack tokens and known secret values in every record."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error path
            return True
        clean = redact(message, self.secrets)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_redaction(secrets: tuple[str, ...] = ()) -> RedactingFilter:
    """Redact every log record from now on, whichever logger or handler it goes through.

    A filter on a logger does not see its children's records, and handlers come
    and go, so redaction sits in the log record factory (every record is made
    there) and, for records built elsewhere, on the root logger's handlers.
    Calling it again adds the new secret values to the same filter.
    """
    if _installed:
        flt = _installed[0]
        flt.secrets = tuple(dict.fromkeys((*flt.secrets, *(s for s in secrets if s))))
    else:
        flt = RedactingFilter(secrets)
        _installed.append(flt)
        previous = logging.getLogRecordFactory()

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            flt.filter(record)
            return record

        logging.setLogRecordFactory(factory)
    for handler in logging.getLogger().handlers:
        if flt not in handler.filters:
            handler.addFilter(flt)
    return flt
