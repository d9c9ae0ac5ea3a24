"""Benchmark: how long the policy decisions the daemon makes take, rule by rule.

Draws random tool calls against the shipped policies/ on a snapshot of
--workloads workloads: half are the daemon's own routine (sleep, wake, scale,
restart/undo, delete a crash-looping pod, on workloads whose intents allow or
refuse them), half any tool of the catalogue from any actor. Every call is
decided --repeats times over; each repeat yields a median per deciding rule,
and the figure is the median of those medians with their range. Prints one
line for the daemon's rule mix (calls by daemon or wake-proxy that a CEL rule
decides), one per shipped rule, and the first decision on a new snapshot
(which builds the snapshot's lookup index). Goal: the daemon's rules under
50 us median each; everything under 50 us median, p99 < 500 us.

Run: .venv/bin/python evals/bench/policy.py [--calls 20000] [--repeats 5] [--workloads 1000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _result import emit, median_range

from opsagent.model import Pod, RolloutState, Snapshot, ToolCall, Workload, WorkloadRef
from opsagent.policy import Counts, decide, load_policy
from tools import REGISTRY, risk_table
from tools.base import Target

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
ACTORS = ("daemon", "wake-proxy", "alice", "carol", "erin", "mallory")
CHANNELS = {"daemon": "daemon", "wake-proxy": "wake-proxy"}
NAMES = {
    "render": ("render-ui", "render-batch"), "inference": ("llm", "embedder"), "chat": ("chat-ui",),
    "training": ("finetune-7",), "kube-system": ("coredns",), "apps": ("web",), "team-a": ("svc",),
}
DAEMON_TOOLS = ("sleep_workload", "wake_workload", "scale_workload", "restart_rollout", "undo_rollout", "delete_pod")
DAEMON_RULES = ("daemon-sleeps-idle-workloads", "wake-on-demand", "daemon-scales-within-bounds",
                "daemon-retries-failed-rollouts", "daemon-deletes-crashlooping-pods")


class FixedCounts(Counts):
    """A recorder that always reports two recent calls: under every shipped limit and retry budget (what limits cost, not SQLite)."""

    def count(self, *, limit_name, tools, namespace, actor, since) -> int:
        return 2

    def run_workloads(self) -> frozenset[str]:
        return frozenset({"render/render-ui", "inference/embedder"})


def workload(rng: random.Random, ns: str, name: str) -> Workload:
    idle = rng.choice([2, 45, 120, None])
    return Workload(
        ref=WorkloadRef(namespace=ns, name=name), replicas=rng.choice([0, 1, 2]), gpus_per_replica=rng.choice([0, 1, 2]),
        labels={"app": name, "team": ns}, request_rate=rng.choice([0.0, 1.5, None]), gpu_utilization=rng.choice([0.5, 60.0, None]),
        last_request_at=None if idle is None else NOW - timedelta(minutes=idle),
        low_gpu_since=rng.choice([None, NOW - timedelta(minutes=50)]),
        rollout=RolloutState(status=rng.choice(["complete", "failed", "progressing"])),
    )


def snapshot(rng: random.Random, size: int) -> Snapshot:
    workloads = [workload(rng, ns, name) for ns, names in NAMES.items() for name in names]
    spaces = sorted(NAMES)
    while len(workloads) < size:
        workloads.append(workload(rng, rng.choice(spaces), f"filler-{len(workloads)}"))
    pods = [Pod(namespace=w.ref.namespace, name=f"{w.ref.name}-0", workload=w.ref, phase="Running",
                reason=rng.choice([None, "CrashLoopBackOff"]), restarts=rng.choice([0, 5]))
            for w in workloads[:len(NAMES) * 2]]
    return Snapshot(time=NOW, workloads=tuple(workloads), pods=tuple(pods))


def random_call(rng: random.Random) -> tuple[ToolCall, str, Target]:
    daemon = rng.random() < 0.5
    tool = rng.choice(DAEMON_TOOLS) if daemon else rng.choice(sorted(REGISTRY))
    actor = rng.choice(("daemon", "daemon", "daemon", "wake-proxy")) if daemon else rng.choice(ACTORS)
    ns = rng.choice(sorted(NAMES))
    name = rng.choice(NAMES[ns])
    args: dict = {"namespace": ns, "name": name}
    target = Target(namespace=ns, workload=WorkloadRef(namespace=ns, name=name))
    if tool in ("scale_workload", "wake_workload") and (tool == "scale_workload" or rng.random() < 0.3):
        args["replicas"] = rng.randint(0, 5)
    if tool == "delete_pod":
        args["name"] = f"{name}-0"
        target = Target(namespace=ns)
    if tool in ("cordon_node", "uncordon_node"):
        args, target = {"node": "gpu-a"}, Target(node="gpu-a")
    elif tool in ("gpu_inventory", "list_findings"):
        args, target = {}, Target()
    call = ToolCall(tool=tool, args=args, actor=actor, channel=CHANNELS.get(actor, rng.choice(["cli", "slack"])))
    return call, REGISTRY[tool].risk, target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workloads", type=int, default=1_000, help="workloads in each snapshot")
    parser.add_argument("--index-sizes", default="1000,10000,50000", help="snapshot sizes for the first-decision figure")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policies", type=Path, default=ROOT / "policies")
    opts = parser.parse_args()

    rng = random.Random(opts.seed)
    policy = load_policy(opts.policies, tool_risks=risk_table())
    snaps = [snapshot(rng, opts.workloads) for _ in range(12)]
    calls = [(*random_call(rng), rng.choice(snaps)) for _ in range(opts.calls)]
    counts = FixedCounts()
    clock = time.perf_counter_ns
    for call, risk, target, snap in calls[:len(snaps) * 50]:  # build each snapshot's index before timing
        decide(policy, call=call, risk=risk, target=target, snapshot=snap, now=NOW, counts=counts)

    per_repeat: list[dict[str, list[float]]] = []
    effects: dict[str, str] = {}
    for _ in range(opts.repeats):
        times: dict[str, list[float]] = defaultdict(list)
        for call, risk, target, snap in calls:
            start = clock()
            decision = decide(policy, call=call, risk=risk, target=target, snapshot=snap, now=NOW, counts=counts)
            us = (clock() - start) / 1000
            name = decision.rule.name
            times[name].append(us)
            times["*all"].append(us)
            if name in DAEMON_RULES and call.actor in ("daemon", "wake-proxy"):
                times["*daemon"].append(us)
            effects[name] = decision.effect
        per_repeat.append(times)

    def medians(key: str) -> list[float]:
        return [statistics.median(t[key]) for t in per_repeat if t.get(key)]

    def p99(key: str) -> float:
        xs = sorted(per_repeat[-1][key])
        return xs[max(0, int(len(xs) * 0.99) - 1)]

    print(f"policy decisions: {opts.calls} random calls x {opts.repeats} repeats on {opts.workloads}-workload snapshots, "
          f"against {', '.join(Path(f).name for f in policy.files)} ({len(policy.rules)} rules, {len(policy.intents)} intents)")
    print(f"{'deciding rule':40} {'calls':>6} {'effect':>16}  median us (range over repeats)   p99 us")
    keys = ["*daemon", "*all"] + sorted(k for k in per_repeat[0] if not k.startswith("*"))
    for key in keys:
        if not medians(key):
            continue
        print(f"{key:40} {len(per_repeat[0][key]):6} {effects.get(key, ''):>16}  {median_range(medians(key)):30} {p99(key):8.1f}")
    mix = medians("*daemon")
    emit("policy decision, daemon's own rule mix (sleep, wake, scale, retry, delete pod)",
         median_range(mix, unit=" us"), value=statistics.median(mix), target=50.0)
    every = medians("*all")
    emit("policy decision, any call of the catalogue", median_range(every, unit=" us") + f", p99 {p99('*all'):.0f} us",
         value=statistics.median(every), target=50.0)
    for key in keys[2:]:
        ms = medians(key)
        goal = 50.0 if key in DAEMON_RULES else None
        emit(f"policy rule `{key}` ({effects[key]})", median_range(ms, unit=" us"), value=statistics.median(ms), target=goal)

    for size in (int(s) for s in opts.index_sizes.split(",") if s):
        snap = snapshot(random.Random(size), size)
        call, risk, target = random_call(random.Random(1))
        firsts = []
        for _ in range(3):
            fresh = snap.model_copy()  # a new snapshot: its index is built on the first decision
            start = clock()
            decide(policy, call=call, risk=risk, target=target, snapshot=fresh, now=NOW, counts=counts)
            firsts.append((clock() - start) / 1e6)
        print(f"first decision on a new {size:,}-workload snapshot: {median_range(firsts, unit=' ms')}")
        emit(f"first policy decision on a new snapshot, {size:,} workloads", median_range(firsts, unit=" ms"),
             value=statistics.median(firsts))


if __name__ == "__main__":
    main()
