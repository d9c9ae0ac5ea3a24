"""What deploy/ ships runs the repository's own policies and playbooks, and serves its probes.

Spec:
- deploy/manifests/policies-playbooks.yaml is exactly what
  deploy/render_configmaps.py renders from policies/*.yaml and playbooks/*.yaml
  now (it fails when someone changes a policy or playbook and forgets
  `make deploy-config`), each ConfigMap key holds its file byte for byte, and
  the files written out of the ConfigMaps load as a policy and as playbooks;
- `--check` exits 1 on a stale file;
- the image copies policies/ and playbooks/ to the folders its command reads,
  and its command serves /healthz and /readyz on the port it exposes;
- the Deployment's arguments parse with the real `opsagent daemon` command and
  listen on the port its probes call.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml

from opsagent.cli import app
from opsagent.playbooks import load_playbooks
from opsagent.policy.loader import load_policy
from tools import risk_table

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "deploy" / "manifests"


def renderer():
    spec = importlib.util.spec_from_file_location("render_configmaps", REPO / "deploy" / "render_configmaps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shipped() -> dict[str, dict[str, str]]:
    docs = yaml.safe_load_all((MANIFESTS / "policies-playbooks.yaml").read_text(encoding="utf-8"))
    return {d["metadata"]["name"]: d["data"] for d in docs if d}


def test_checked_in_configmaps_are_the_rendered_shipped_files():
    text = (MANIFESTS / "policies-playbooks.yaml").read_text(encoding="utf-8")
    assert text == renderer().render(), "deploy/manifests/policies-playbooks.yaml is stale: run `make deploy-config`"


@pytest.mark.parametrize("name,folder", [("opsagent-policies", "policies"), ("opsagent-playbooks", "playbooks"),
                                         ("opsagent-actors", "policies/actors")])
def test_each_key_is_its_file_byte_for_byte(name, folder):
    files = {p.name: p.read_text(encoding="utf-8") for p in (REPO / folder).glob("*.yaml")}
    assert files and shipped()[name] == files


def test_the_configmaps_load_as_policy_and_playbooks(tmp_path):
    data = shipped()
    for name, folder in (("opsagent-policies", "policies"), ("opsagent-playbooks", "playbooks"),
                         ("opsagent-actors", "policies/actors")):
        (tmp_path / folder).mkdir()
        for key, text in data[name].items():
            (tmp_path / folder / key).write_text(text, encoding="utf-8")
    policy = load_policy(tmp_path / "policies", tool_risks=risk_table())
    playbooks = load_playbooks(tmp_path / "playbooks")
    assert policy.intents and playbooks.for_kind("idle_gpu")
    from opsagent.chat.users import load_user_map

    assert load_user_map(tmp_path / "policies" / "actors" / "slack-users.yaml").users


def test_check_fails_on_a_stale_file(tmp_path, capsys):
    import shutil

    for folder in ("policies", "playbooks", "deploy"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    module = renderer()
    assert module.main(["--check"], repo=tmp_path) == 0
    policy = tmp_path / "policies" / "default.yaml"
    policy.write_text(policy.read_text().replace("priority: 900", "priority: 901"), encoding="utf-8")
    assert module.main(["--check"], repo=tmp_path) == 1
    assert "policies-playbooks.yaml: out of date" in capsys.readouterr().err
    module.main([], repo=tmp_path)
    assert module.main(["--check"], repo=tmp_path) == 0


def test_check_names_a_stale_role(tmp_path, capsys):
    """A namespace added to the policy's scope is a Role the checked-in RBAC lacks."""
    import shutil

    for folder in ("policies", "playbooks", "deploy"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    fleet = tmp_path / "policies" / "gpu-fleet.yaml"
    fleet.write_text(fleet.read_text().replace("namespaces: [render, inference, training, chat]",
                                               "namespaces: [render, inference, training, chat, batch]"), encoding="utf-8")
    module = renderer()
    assert module.main(["--check"], repo=tmp_path) == 1
    assert "deploy/manifests/rbac.yaml: out of date" in capsys.readouterr().err
    module.main([], repo=tmp_path)
    roles = [d for d in yaml.safe_load_all((tmp_path / "deploy/manifests/rbac.yaml").read_text()) if d["kind"] == "Role"]
    assert "batch" in {r["metadata"]["namespace"] for r in roles if r["metadata"]["name"] == "opsagent-write"}


def parse_daemon(args: list[str]) -> dict:
    """The options `opsagent daemon` would run with, parsed by the real command (nothing runs)."""
    assert args[0] == "daemon"
    root = typer.main.get_command(app)
    command = root.get_command(None, "daemon")
    return command.make_context("daemon", list(args[1:])).params


def test_the_image_ships_the_defaults_and_serves_its_probes():
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    copies = dict(re.findall(r"^COPY (policies|playbooks) (\S+)$", dockerfile, re.M))
    cmd = yaml.safe_load(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))  # a JSON array is YAML
    params = parse_daemon(cmd)
    assert copies == {"policies": str(params["policies"]), "playbooks": str(params["playbooks"])}
    exposed = re.search(r"^EXPOSE (\d+)$", dockerfile, re.M).group(1)
    assert params["listen"] == f"0.0.0.0:{exposed}", shlex.join(cmd)


def test_the_deployment_listens_where_its_probes_look():
    [dep] = [d for d in yaml.safe_load_all((MANIFESTS / "deployment.yaml").read_text()) if d and d["kind"] == "Deployment"]
    [container] = dep["spec"]["template"]["spec"]["containers"]
    params = parse_daemon(container["args"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert params["listen"] == f"0.0.0.0:{ports['http']}"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", ports["http"])
