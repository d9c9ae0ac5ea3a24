"""Workload annotations, Prometheus request rates and GPU Jobs, end to end on the kube adapter.

Spec: the runtime opened on `--cluster kube` (a kubeconfig pointing at kmock's
emulator) with `--prometheus` and `--request-rate-query ingress-nginx` (a fake
Prometheus on loopback) sees:
- a Deployment that declares its intent only through `opsagent.dev/*`
  annotations, in a namespace a policy file opts in (`annotation_intents`),
  gets an idle_gpu finding from that intent, and the policy lets the daemon
  put it to sleep (the gate runs the scale to zero);
- under the shipped policies, which opt no namespace in, the same annotations
  are reported and not obeyed: no finding, and the daemon's sleep goes to a person;
- a GPU Job queued behind it (pods owned by a batch/v1 Job) is a jobs_waiting
  finding naming the idle holder;
- a policy intent that matches the same workload wins over its annotations,
  for the detectors, the GPU-utilisation watch and the gate's CEL `intent` alike.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from kube_harness import Emulator
from kube_samples import queued_job_pod, seed_annotated
from test_kube_metrics import FakePrometheus

from opsagent.metrics import INGRESS_NGINX_QUERY
from opsagent.model import ToolCall
from opsagent.runtime import idle_threshold, open_runtime

POLICIES = Path(__file__).resolve().parent.parent / "policies"
VLLM = "llm/vllm-llama"
RATES = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"exported_namespace": "llm", "workload": "vllm-llama"}, "value": [1, "0"]},
]}}
UTIL = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"namespace": "llm", "pod": "vllm-llama-5c7f9d8b6d-r7k4m", "gpu": "0"}, "value": [1, "1"]},
]}}


@pytest.fixture()
def kube_env(tmp_path, monkeypatch):
    with Emulator() as emu, FakePrometheus({INGRESS_NGINX_QUERY.replace("{window}", "5m"): (200, RATES),
                                            "DCGM_FI_DEV_GPU_UTIL": (200, UTIL)}) as prom:
        seed_annotated(emu)
        emu.seed(queued_job_pod())
        config = tmp_path / "kubeconfig"
        config.write_text(textwrap.dedent(f"""
            apiVersion: v1
            kind: Config
            clusters: [{{name: emu, cluster: {{server: "{emu.url}"}}}}]
            users: [{{name: tester, user: {{token: t}}}}]
            contexts: [{{name: emu, context: {{cluster: emu, user: tester}}}}]
            current-context: emu
            """))
        monkeypatch.setenv("KUBECONFIG", str(config))
        # the client reads $KUBECONFIG once, when it is imported
        monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(config))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield emu, prom, tmp_path


def open_kube(tmp_path: Path, policies: Path, prom_url: str):
    return open_runtime(cluster="kube", policies=policies, db=tmp_path / "audit.db", prometheus=prom_url,
                        request_rate_query="ingress-nginx")


def sleep_call() -> ToolCall:
    return ToolCall(tool="sleep_workload", args={"namespace": "llm", "name": "vllm-llama"}, actor="daemon", channel="daemon")


def opted_in(tmp_path: Path) -> Path:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    (policies / "llm.yaml").write_text(textwrap.dedent("""
        priority: 50
        annotation_intents:
          - namespaces: [llm]
            max_replicas: 2
            min_idle_after: 15m
        """))
    return policies


def test_annotation_intent_in_an_opted_in_namespace_drives_the_finding_and_lets_the_daemon_sleep_it(kube_env):
    emu, prom, tmp_path = kube_env
    runtime = open_kube(tmp_path, opted_in(tmp_path), prom.url)
    snap = runtime.observe()
    assert snap.workload(VLLM).request_rate == 0.0  # from the ingress-nginx preset's query
    findings = {f.id: f for f in runtime.findings(snap)}
    idle = findings[f"idle_gpu:{VLLM}"]
    assert idle.details["intent"] == f"annotations:{VLLM}" and idle.details["idle_after_minutes"] == 30.0
    waiting = findings["jobs_waiting:cluster"]
    assert waiting.details["jobs"] == ["ml/finetune"] and waiting.details["idle_holder_ids"] == [f"idle_gpu:{VLLM}"]
    assert idle_threshold(runtime.policy)(snap.workload(VLLM)) == 5.0  # the utilisation watch reads the same intent

    result = runtime.gate.submit(sleep_call())
    assert result.decision.effect == "allow" and result.decision.rule.name == "daemon-sleeps-idle-workloads"
    assert result.ok, result.message
    scaled = [r for r in emu.requests() if r["method"] == "PATCH" and r["path"].endswith("/deployments/vllm-llama/scale")]
    assert [r["body"] for r in scaled] == [{"spec": {"replicas": 0}}]


def test_without_an_opt_in_the_shipped_policy_reports_the_annotations_and_obeys_none(kube_env):
    emu, prom, tmp_path = kube_env
    runtime = open_kube(tmp_path, POLICIES, prom.url)
    snap = runtime.observe()
    assert not [f for f in runtime.findings(snap) if f.subject == VLLM and f.kind == "idle_gpu"]
    assert idle_threshold(runtime.policy)(snap.workload(VLLM)) is None
    resolved = runtime.policy.resolve(snap.workload(VLLM))
    assert resolved.intent is None
    assert any("opsagent.dev/idle-after='30m'" in line and "annotation_intents" in line for line in resolved.ignored)
    result = runtime.gate.submit(sleep_call())
    assert result.decision.effect == "require_approval"
    assert not [r for r in emu.requests() if r["method"] == "PATCH"]


def test_a_policy_intent_for_the_workload_overrides_its_annotations(kube_env):
    emu, prom, tmp_path = kube_env
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    (policies / "llm.yaml").write_text(textwrap.dedent("""
        priority: 50
        intents:
          - name: vllm-stays-up
            selector: {namespace: llm, names: [vllm-llama]}
            replicas: {min: 1, max: 2}
        """))
    runtime = open_kube(tmp_path, policies, prom.url)
    snap = runtime.observe()
    assert not [f for f in runtime.findings(snap) if f.kind == "idle_gpu"]
    assert idle_threshold(runtime.policy)(snap.workload(VLLM)) is None
    assert runtime.policy.intent_dict_for(snap.workload(VLLM))["name"] == "vllm-stays-up"
    result = runtime.gate.submit(sleep_call())
    assert result.decision.effect == "require_approval"  # the daemon's own sleep rule no longer matches
    assert not [r for r in emu.requests() if r["method"] == "PATCH"]


def test_a_request_rate_query_needs_prometheus_and_a_known_preset(tmp_path):
    from opsagent.runtime import RuntimeError_

    with pytest.raises(RuntimeError_, match="needs --prometheus"):
        open_runtime(cluster="kube", policies=POLICIES, db=tmp_path / "a.db", request_rate_query="keda-http")
    with pytest.raises(RuntimeError_, match="'ingres-nginx' is not a preset"):
        open_runtime(cluster="kube", policies=POLICIES, db=tmp_path / "a.db", prometheus="http://127.0.0.1:9",
                     request_rate_query="ingres-nginx")
