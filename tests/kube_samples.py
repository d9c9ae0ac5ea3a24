"""Cluster objects for the kube end-to-end tests: real shapes from tests/fixtures/kube, adapted."""

from __future__ import annotations

import copy

from kube_harness import Emulator, fixture
from test_kube_read import seed_cluster, vllm_objects


def seed_annotated(emu: Emulator) -> None:
    """The shared test cluster, with llm/vllm-llama declaring its intent through annotations only."""
    seed_cluster(emu)
    dep = vllm_objects()[0]
    dep["metadata"]["annotations"].update({"opsagent.dev/idle-after": "30m", "opsagent.dev/idle-gpu-below": "5",
                                           "opsagent.dev/min-replicas": "0", "opsagent.dev/max-replicas": "2"})
    emu.seed(dep)


def job_pod(job: str, pod_name: str, *, namespace: str = "ml") -> dict:
    """The Unschedulable GPU pod fixture (2 GPUs), owned by the batch/v1 Job `job` instead of a ReplicaSet."""
    pod = fixture("pod-pending-unschedulable-gpu-assembled.yaml")
    pod["metadata"].update(name=pod_name, namespace=namespace, generateName=f"{job}-",
                           labels={"batch.kubernetes.io/job-name": job, "job-name": job})
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": job,
                                           "uid": f"uid-{job}", "controller": True, "blockOwnerDeletion": True}]
    pod["spec"]["restartPolicy"] = "Never"
    return pod


def queued_job_pod() -> dict:
    return job_pod("finetune", "finetune-x7k2p")


def finished_job_pod(job: str, pod_name: str, phase: str) -> dict:
    pod = copy.deepcopy(job_pod(job, pod_name))
    pod["spec"]["nodeName"] = "nori"
    pod["status"] = {"phase": phase, "startTime": "2026-01-05T08:00:00Z", "conditions": [
        {"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"name": "vllm", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
                               "state": {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1,
                                                        "reason": "Completed" if phase == "Succeeded" else "Error",
                                                        "startedAt": "2026-01-05T08:00:05Z",
                                                        "finishedAt": "2026-01-05T09:30:00Z"}}}]}
    return pod
