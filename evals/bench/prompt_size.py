"""How big is the LLM prompt for one finding as the cluster grows? Goal: flat, under 4,000 tokens.

Builds synthetic snapshots of 100 / 1,000 / 10,000 GPU workloads (each with
pods, GPUs and events, some carrying long annotations), then the full prompt
the LLM planner sends for one idle-GPU finding: the system prompt (shipped
policy summary + the matching playbook's guidance) and the task turn with
the fenced cluster data, plus the schemas of the tools offered for that
finding (they go to the model in the same request). Prints estimated tokens
(characters / 4) and the growth from the smallest cluster.

    .venv/bin/python evals/bench/prompt_size.py
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from opsagent.agent.playbook_view import guidance_of  # noqa: E402
from opsagent.agent.prompts import estimate_tokens, system_prompt, task_prompt  # noqa: E402
from opsagent.model import Event, Finding, GpuDevice, Node, Pod, Snapshot, Workload, WorkloadRef  # noqa: E402
from opsagent.playbooks import load_playbooks  # noqa: E402
from opsagent.policy import load_policy  # noqa: E402
from tools.registry import risk_table  # noqa: E402

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
LONG = "deployed by the release pipeline; see the runbook for details. " * 20


def synthetic(n: int) -> Snapshot:
    nodes, workloads, pods, events = [], [], [], []
    for i in range(0, n, 8):
        name = f"gpu-{i // 8:05d}"
        nodes.append(Node(name=name, gpus=tuple(
            GpuDevice(id=f"{name}-{k}", node=name, model="NVIDIA-A100-SXM4-80GB", memory_mib=81920, pcie_link_width=16,
                      holder=f"ns-{(i + k) % 50}/w-{i + k:05d}-0", utilization=0.0 if (i + k) == 7 else 60.0)
            for k in range(8))))
    for i in range(n):
        ref = WorkloadRef(namespace=f"ns-{i % 50}", name=f"w-{i:05d}")
        workloads.append(Workload(ref=ref, replicas=1, ready_replicas=1, gpus_per_replica=1, image=f"registry/img:{i}",
                                  request_rate=0.0 if i == 7 else 3.0, labels={"app": ref.name, "team": f"t{i % 9}"},
                                  annotations={"note": LONG}))
        node = f"gpu-{i // 8:05d}"
        pods.append(Pod(namespace=ref.namespace, name=f"{ref.name}-0", workload=ref, phase="Running", ready=True,
                        node=node, gpu_ids=(f"{node}-{i % 8}",), annotations={"note": LONG}))
        events.append(Event(time=T0 - timedelta(minutes=i % 60), namespace=ref.namespace, kind="Pod", name=f"{ref.name}-0",
                            reason="Pulled", message="Successfully pulled image " + "x" * 200))
    return Snapshot(time=T0, workloads=tuple(workloads), pods=tuple(pods), nodes=tuple(nodes), events=tuple(events))


def main() -> None:
    policy = load_policy(ROOT / "policies", tool_risks=risk_table())
    playbooks = load_playbooks(ROOT / "playbooks")
    finding = Finding(kind="idle_gpu", subject="ns-7/w-00007", summary="ns-7/w-00007 holds 1 GPU with no traffic for 45m",
                      details={"gpus_held": 1, "idle_minutes": 45, "gpu_hours_wasted_so_far": 0.75})
    from opsagent.agent.planners import PlanInput
    from opsagent.agent.planners.llm import offered_tools, tool_specs
    from tools import REGISTRY

    print(f"{'workloads':>10} {'snapshot build':>15} {'prompt build':>13} {'chars':>8} {'~tokens':>8} "
          f"{'+ tools':>8} {'total':>7} {'growth':>7}")
    base = None
    for n in (100, 1_000, 10_000):
        t = time.perf_counter()
        snapshot = synthetic(n)
        built = time.perf_counter() - t
        t = time.perf_counter()
        playbook = playbooks.for_finding(finding, snapshot)
        text = system_prompt(policy_summary=policy.summary(), guidance=guidance_of(playbook)) + "\n\n" + \
            task_prompt(snapshot, finding=finding, message=None, actor="daemon")
        took = time.perf_counter() - t
        tokens = estimate_tokens(text)
        inp = PlanInput(run_id="bench", kind="finding", actor="daemon", finding=finding, message=None,
                        snapshot=snapshot, playbook=playbook, results=[], messages=[])
        offered = offered_tools(inp, REGISTRY)
        schema_tokens = estimate_tokens(json.dumps(tool_specs(offered)))
        total = tokens + schema_tokens
        base = base or total
        print(f"{n:>10,} {built * 1000:>13.0f}ms {took * 1000:>11.1f}ms {len(text):>8,} {tokens:>8,} "
              f"{schema_tokens:>8,} {total:>7,} {total / base:>6.2f}x")
    print(f"goal: flat growth (1.00x) and under 4,000 tokens in all; offered tools: {len(offered)} of {len(REGISTRY)} "
          f"({', '.join(sorted(n for n, t in offered.items() if t.risk != 'read'))} and the read tools)")
    everything = estimate_tokens(json.dumps(tool_specs(REGISTRY)))
    print(f"a chat message is offered all {len(REGISTRY)} tools: ~{everything:,} tokens of schemas")


if __name__ == "__main__":
    main()
