"""Every deploy/ overlay renders to valid Kubernetes objects, and each part runs the way its probes expect.

Spec:
- each overlay (daemon, daemon-slack, everything) renders, and every object validates against the Kubernetes
  OpenAPI schema (kubernetes-validate, offline);
- in "everything": the daemon, the Slack app and the wake proxy each have liveness and readiness probes on a
  port they listen on, serve /metrics on a named port a Service exposes, and have a memory limit; their
  arguments parse with the real commands;
- the wake proxy runs more than one replica, with a PodDisruptionBudget, a rolling update that never drops
  below its replica count, no volume of its own state and a read-only account; it sends wakes to the daemon's
  Service with the token the daemon reads (one Secret mounted by both);
- the Slack app shares the daemon's pod (one ReadWriteOnce volume) and reads its tokens from a Secret;
- nothing grants create or delete of Deployments cluster-wide;
- the Makefile builds the image from a base pinned to an exact version.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from kustomize_lite import render
from opsagent.cli import app

REPO = Path(__file__).resolve().parents[1]
OVERLAYS = REPO / "deploy" / "overlays"
K8S_VERSION = "1.33"


def objects(overlay: str) -> list[dict]:
    return render(OVERLAYS / overlay)


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def parse(args: list[str]) -> dict:
    """The options the real command would run with (nothing runs)."""
    root = typer.main.get_command(app)
    command = root.get_command(None, args[0])
    return command.make_context(args[0], list(args[1:])).params


@pytest.mark.parametrize("overlay", ["daemon", "daemon-slack", "everything"])
def test_every_object_is_valid_kubernetes(overlay):
    import kubernetes_validate

    docs = objects(overlay)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    names = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), "an object is defined twice"


def test_overlays_add_parts_without_changing_the_daemon():
    daemon = by_kind(objects("daemon"), "Deployment")
    slack = by_kind(objects("daemon-slack"), "Deployment")
    every = by_kind(objects("everything"), "Deployment")
    assert list(daemon) == ["opsagent"] and list(slack) == ["opsagent"]
    assert sorted(every) == ["opsagent", "opsagent-wake-proxy"]
    assert [c["name"] for c in slack["opsagent"]["spec"]["template"]["spec"]["containers"]] == ["opsagent", "slack"]


def _containers(docs: list[dict]) -> dict[str, tuple[dict, dict]]:
    out = {}
    for dep in by_kind(docs, "Deployment").values():
        for container in dep["spec"]["template"]["spec"]["containers"]:
            out[container["name"]] = (container, dep)
    return out


def _listen_port(params: dict, key: str) -> int:
    return int(str(params[key]).rpartition(":")[2])


@pytest.mark.parametrize("part,listen_key", [("opsagent", "listen"), ("slack", "listen"), ("wake-proxy", "admin_listen")])
def test_each_part_has_probes_metrics_and_limits(part, listen_key):
    docs = objects("everything")
    container, dep = _containers(docs)[part]
    params = parse(container["args"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    health = _listen_port(params, listen_key)
    assert health in ports.values()
    for probe in ("livenessProbe", "readinessProbe"):
        port = container[probe]["httpGet"]["port"]
        assert ports.get(port, port) == health, (part, probe)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    [port_name] = [n for n, number in ports.items() if number == health]
    selector = dep["spec"]["selector"]["matchLabels"]
    services = [s for s in by_kind(docs, "Service").values() if s["spec"]["selector"].items() <= selector.items()]
    assert any(p["targetPort"] in (port_name, health) for s in services for p in s["spec"]["ports"]), \
        f"{part}: no Service exposes its /metrics port"
    limits = container["resources"]["limits"]
    assert re.fullmatch(r"\d+(Mi|Gi)", limits["memory"]) and container["resources"]["requests"]["memory"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_wake_proxy_is_highly_available_and_stateless():
    docs = objects("everything")
    proxy = by_kind(docs, "Deployment")["opsagent-wake-proxy"]
    spec = proxy["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    [pdb] = by_kind(docs, "PodDisruptionBudget").values()
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] == spec["replicas"] - 1      # a drain takes one proxy at a time, never the last
    volumes = spec["template"]["spec"]["volumes"]
    assert not [v for v in volumes if "persistentVolumeClaim" in v], "the proxy keeps no state of its own"
    assert spec["template"]["spec"]["serviceAccountName"] == "opsagent-wake-proxy"


def test_the_proxy_and_the_daemon_share_one_token_and_one_address():
    docs = objects("everything")
    containers = _containers(docs)
    proxy, proxy_dep = containers["wake-proxy"]
    daemon, daemon_dep = containers["opsagent"]
    p, d = parse(proxy["args"]), parse(daemon["args"])

    def secret_at(dep: dict, container: dict, path: Path) -> str:
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        [name] = [n for n, at in mounts.items() if path.parent == Path(at)]
        return volumes[name]["secret"]["secretName"]

    assert secret_at(proxy_dep, proxy, Path(p["wake_token_file"])) == secret_at(daemon_dep, daemon, Path(d["internal_token_file"]))
    service = by_kind(docs, "Service")["opsagent"]
    host, _, port = p["wake_via"].removeprefix("http://").partition(":")
    assert host == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert int(port) in [x["port"] for x in service["spec"]["ports"]] and int(port) == _listen_port(d, "listen")


def test_the_slack_app_shares_the_daemons_volume_and_reads_tokens_from_a_secret():
    docs = objects("everything")
    containers = _containers(docs)
    slack, dep = containers["slack"]
    daemon, _ = containers["opsagent"]
    assert parse(slack["args"])["db"] == parse(daemon["args"])["db"]
    assert {"secretRef": {"name": "opsagent-slack"}} in slack["envFrom"]
    users = parse(slack["args"])["users"]
    mounts = {m["mountPath"]: m["name"] for m in slack["volumeMounts"]}
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts[str(Path(users).parent)]]["configMap"]["name"] == "opsagent-actors"
    assert "SLACK_BOT_TOKEN" not in str(daemon.get("env")), "the daemon never reads Slack tokens"


def test_no_cluster_wide_create_or_delete_of_workloads():
    for overlay in ("daemon", "daemon-slack", "everything"):
        for role in by_kind(objects(overlay), "ClusterRole").values():
            for rule in role["rules"]:
                if {"deployments", "statefulsets", "pods"} & set(rule["resources"]):
                    assert not {"create", "delete", "patch"} & set(rule["verbs"]), (overlay, role["metadata"]["name"], rule)


def test_make_image_builds_from_a_pinned_base():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^image:", makefile, re.M)
    assert "deploy/Dockerfile" in makefile
    base = re.search(r"^FROM (\S+)", (REPO / "deploy" / "Dockerfile").read_text(), re.M).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
