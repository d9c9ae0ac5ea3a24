"""Benchmark: how long one policy decision takes against the shipped policies.

Draws 100,000 random tool calls (any tool of the catalogue, any actor, in- and
out-of-scope namespaces, idle and busy targets), decides each against
policies/ and prints the median and p99 time per decision and the effects
seen. Goal: median < 50 us, p99 < 500 us.

Run: .venv/bin/python evals/bench/policy.py [--calls 100000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from opsagent.model import RolloutState, Snapshot, ToolCall, Workload, WorkloadRef
from opsagent.policy import Counts, decide, load_policy
from tools import REGISTRY, risk_table
from tools.base import Target

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc)
ACTORS = ("daemon", "daemon", "daemon", "wake-proxy", "alice", "carol", "erin", "mallory")
CHANNELS = {"daemon": "daemon", "wake-proxy": "wake-proxy"}
NAMES = {
    "render": ("render-ui", "render-batch"), "inference": ("llm", "embedder"), "chat": ("chat-ui",),
    "training": ("finetune-7",), "kube-system": ("coredns",), "apps": ("web",),
}


class FixedCounts(Counts):
    """A recorder that always reports a few recent calls (what limits cost, not what SQLite costs)."""

    def count(self, *, limit_name, tools, namespace, actor, since) -> int:
        return 3

    def run_workloads(self) -> frozenset[str]:
        return frozenset({"render/render-ui", "inference/embedder"})


def snapshot(rng: random.Random) -> Snapshot:
    workloads = []
    for ns, names in NAMES.items():
        for name in names:
            idle = rng.choice([2, 45, 120, None])
            workloads.append(Workload(
                ref=WorkloadRef(namespace=ns, name=name), replicas=rng.choice([0, 1, 2]), gpus_per_replica=rng.choice([0, 1, 2]),
                labels={"app": name, "team": ns}, request_rate=rng.choice([0.0, 1.5, None]), gpu_utilization=rng.choice([0.5, 60.0, None]),
                last_request_at=None if idle is None else NOW - timedelta(minutes=idle),
                rollout=RolloutState(status=rng.choice(["complete", "failed", "progressing"])),
            ))
    return Snapshot(time=NOW, workloads=tuple(workloads))


def random_call(rng: random.Random) -> tuple[ToolCall, str, Target]:
    tool = rng.choice(sorted(REGISTRY))
    ns = rng.choice(sorted(NAMES))
    name = rng.choice(NAMES[ns])
    actor = rng.choice(ACTORS)
    args: dict = {"namespace": ns, "name": name}
    if tool == "scale_workload":
        args["replicas"] = rng.randint(0, 5)
    if tool in ("cordon_node", "uncordon_node"):
        args = {"node": "gpu-a"}
        target = Target(node="gpu-a")
    elif tool in ("gpu_inventory", "list_findings"):
        args, target = {}, Target()
    else:
        target = Target(namespace=ns, workload=WorkloadRef(namespace=ns, name=name))
    call = ToolCall(tool=tool, args=args, actor=actor, channel=CHANNELS.get(actor, rng.choice(["cli", "slack"])))
    return call, REGISTRY[tool].risk, target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policies", type=Path, default=ROOT / "policies")
    opts = parser.parse_args()

    rng = random.Random(opts.seed)
    policy = load_policy(opts.policies, tool_risks=risk_table())
    snaps = [snapshot(rng) for _ in range(20)]
    calls = [(*random_call(rng), rng.choice(snaps)) for _ in range(opts.calls)]
    counts = FixedCounts()
    times: list[int] = []
    effects: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    clock = time.perf_counter_ns
    for call, risk, target, snap in calls:
        start = clock()
        decision = decide(policy, call=call, risk=risk, target=target, snapshot=snap, now=NOW, counts=counts)
        times.append(clock() - start)
        effects[decision.effect] += 1
        rules[decision.rule.name] += 1
    times.sort()
    us = [t / 1000 for t in times]
    p99 = us[int(len(us) * 0.99) - 1]
    print(f"policy decisions: {len(us)} random calls against {', '.join(Path(f).name for f in policy.files)} "
          f"({len(policy.rules)} rules, {len(policy.intents)} intents, {len(policy.limits)} limits)")
    print(f"median {statistics.median(us):.1f} us   p99 {p99:.1f} us   mean {statistics.fmean(us):.1f} us   max {us[-1]:.0f} us")
    print(f"goal: median < 50 us ({'met' if statistics.median(us) < 50 else 'MISSED'}), p99 < 500 us ({'met' if p99 < 500 else 'MISSED'})")
    print("effects: " + ", ".join(f"{k} {v}" for k, v in effects.most_common()))
    print("deciding rules: " + ", ".join(f"{k} {v}" for k, v in rules.most_common(8)))


if __name__ == "__main__":
    main()
