"""The Slack user mapping file, the shipped manifest, and secret handling.

Mapping files with mistakes are refused naming file, line and field; the
example file is not read as policy; secrets come from the environment or a
token file and are masked wherever they would be shown.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from opsagent.chat.secrets import RedactingFilter, SecretsError, SlackSecrets, load_secrets, redact
from opsagent.chat.users import UserMapError, load_user_map
from opsagent.policy import load_policy
from tools import risk_table

REPO = Path(__file__).resolve().parents[1]


def test_example_mapping_loads_and_resolves():
    users = load_user_map(REPO / "policies/actors/slack-users.yaml")
    alice = users.resolve("U0123ABC")
    assert alice.name == "alice" and not alice.read_only
    stranger = users.resolve("U999")
    assert stranger.name == "slack:U999" and stranger.read_only


def test_none_default_gives_unmapped_users_nothing(tmp_path):
    path = tmp_path / "u.yaml"
    path.write_text("users: {U1: alice}\ndefault: none\n")
    assert load_user_map(path).resolve("U2") is None


@pytest.mark.parametrize(("text", "expected"), [
    ("users: {U1: alice}\ndefault: everyone\n", ":2: field 'default'"),
    ("users:\n  U1: alice\nadmins: [U1]\n", ":3: field 'admins'"),
    ("users:\n  U1: alice\n  U2: slack:U2\n", ":3: field 'users.U2'"),
    ("users:\n  U1: alice\n  U9: daemon\n", ":3: field 'users.U9': 'daemon' is opsagent's own machine actor"),
    ("users:\n  U7: wake-proxy\n", ":2: field 'users.U7': 'wake-proxy' is opsagent's own machine actor"),
    ("users: [alice\n", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
])
def test_bad_mapping_files_name_file_line_and_field(tmp_path, text, expected):
    path = tmp_path / "u.yaml"
    path.write_text(text)
    with pytest.raises(UserMapError) as err:
        load_user_map(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_policy_loader_ignores_the_actors_subdirectory(tmp_path):
    (tmp_path / "actors").mkdir()
    (tmp_path / "actors" / "slack-users.yaml").write_text("users: {U1: alice}\ndefault: readonly\n")
    (tmp_path / "p.yaml").write_text("rules:\n  - name: read\n    risk: read\n    effect: allow\n")
    policy = load_policy(tmp_path, tool_risks=risk_table())
    assert [r.ref.name for r in policy.rules] == ["read"]
    assert [Path(f).name for f in policy.files] == ["p.yaml"]
    shipped = load_policy(REPO / "policies", tool_risks=risk_table())  # the shipped policies load with the mapping beside them
    assert not any("actors" in f for f in shipped.files)


def test_manifest_declares_what_the_app_needs():
    manifest = yaml.safe_load((REPO / "deploy/slack/manifest.yaml").read_text())
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/ops"]
    assert set(manifest["oauth_config"]["scopes"]["bot"]) >= {"app_mentions:read", "chat:write", "commands"}
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_mention"]


def test_secrets_from_env_and_token_file(tmp_path):
    env = {"SLACK_BOT_TOKEN": "xoxb-env", "SLACK_SIGNING_SECRET": "s3cr3t-env"}
    assert load_secrets(env=env).bot_token == "xoxb-env"
    f = tmp_path / "tokens"
    f.write_text("# ours\nexport SLACK_BOT_TOKEN='xoxb-file-123'\nSLACK_APP_TOKEN=xapp-1-file\n")
    secrets = load_secrets(env=env, token_file=f)
    assert (secrets.bot_token, secrets.app_token, secrets.signing_secret) == ("xoxb-file-123", "xapp-1-file", "s3cr3t-env")
    assert "xoxb" not in repr(secrets) and "xoxb" not in str(secrets)
    f.write_text("SLACK_PASSWORD=x\n")
    with pytest.raises(SecretsError, match=r"tokens:1"):
        load_secrets(env={}, token_file=f)


def test_redaction_masks_token_shapes_and_known_values():
    assert redact("Bearer xoxb-12-34-abc and xapp-1-A0-99 and xoxp-9") == "Bearer [redacted] and [redacted] and [redacted]"
    assert redact("sig=abcdef123456", ("abcdef123456",)) == "sig=[redacted]"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s secret %s", ("xoxb-1-2-3", "hush-hush-1"), None)
    RedactingFilter(("hush-hush-1",)).filter(record)
    assert record.getMessage() == "token [redacted] secret [redacted]"
    assert SlackSecrets(bot_token="xoxb-a-b").values() == ("xoxb-a-b",)
