"""Assemble a `ChatService` from settings: cluster, policy, audit store, approvals, gate.

Used by `opsagent ask`, `opsagent chat` and `opsagent slack`, so every chat
front end runs with the same parts the daemon uses. Opening files and building
clients happens here (an edge of the system); errors come back as
`WiringError` with a message that names what to fix. It must not parse chat
text or talk to Slack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from opsagent.approvals import ApprovalQueue
from opsagent.audit import AuditStore
from opsagent.chat.service import ActorResolver, ChatService, cli_actor
from opsagent.clock import Clock, RealClock
from opsagent.gate import Gate
from opsagent.policy import PolicyError, load_policy


class WiringError(Exception):
    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass
class ChatRuntime:
    service: ChatService
    gate: Gate
    approvals: ApprovalQueue
    store: AuditStore
    cluster: Any
    policy: Any
    clock: Clock
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def open_cluster(spec: str) -> tuple[Any, Clock, Callable[[float], None] | None]:
    """`sim:SCENARIO` (a builtin name or a scenario file) or `kube` (kubeconfig / in-cluster)."""
    if spec.startswith("sim:") or spec == "sim":
        from opsagent.cluster.sim import ScenarioError, SimCluster, builtin_names, builtin_scenario, load_scenario

        name = spec.partition(":")[2] or "demo"
        try:
            scenario = builtin_scenario(name) if name in builtin_names() else load_scenario(Path(name))
        except ScenarioError as exc:
            raise WiringError(f"--cluster {spec}: {exc}", hint=f"builtin scenarios: {', '.join(builtin_names())}") from exc
        sim = SimCluster(scenario)
        return sim, sim.clock, sim.advance
    if spec == "kube" or spec.startswith("kube:"):
        from opsagent.cluster.kube import ConfigError, KubeCluster

        context = spec.partition(":")[2] or None
        clock = RealClock()
        try:
            return KubeCluster.from_config(context=context, clock=clock), clock, None
        except ConfigError as exc:
            raise WiringError(f"--cluster {spec}: {exc}", hint="set KUBECONFIG or run inside the cluster") from exc
    raise WiringError(f"--cluster {spec!r} is not a cluster", hint="use sim:demo, sim:PATH.yaml, kube or kube:CONTEXT")


def build_runtime(*, cluster: str, policies: Path, db: Path, model: str | None = None, playbooks: Path | None = None,
                  actor_resolver: ActorResolver = cli_actor, agent_factory: Callable[..., Any] | None = None) -> ChatRuntime:
    """Open everything a chat front end needs. The caller closes it with `.close()`."""
    try:
        policy = load_policy(Path(policies))
    except PolicyError as exc:
        raise WiringError(f"cannot load the policy from {policies}:\n{exc}", hint="check the files with: opsagent policy lint") from exc
    target, clock, wait = open_cluster(cluster)
    store = AuditStore(db)
    approvals = ApprovalQueue(store, clock=clock, is_member=policy.actor_matches,
                              default_ttl_seconds=int(getattr(policy, "approval_ttl_seconds", 3600) or 3600))

    def findings() -> list:
        from opsagent.detect import detect

        return detect(target.snapshot(), intents=policy.intents, now=clock.now())

    gate = Gate(policy=policy, cluster=target, clock=clock, recorder=store, approvals=approvals, findings=findings, wait=wait)
    closers: list[Callable[[], None]] = [store.close]
    factory = agent_factory or _default_agent_factory
    agent = factory(model=model, gate=gate, approvals=approvals, store=store, policy=policy, cluster=target, clock=clock,
                    db=db, playbooks=playbooks)
    if callable(getattr(agent, "close", None)):
        closers.insert(1, agent.close)
    service = ChatService(gate=gate, approvals=approvals, agent=agent, actor_resolver=actor_resolver, clock=clock, recorder=store)
    return ChatRuntime(service=service, gate=gate, approvals=approvals, store=store, cluster=target, policy=policy,
                       clock=clock, closers=closers)


def _default_agent_factory(*, model: str | None, gate: Gate, approvals: ApprovalQueue, store: AuditStore, policy: Any,
                           cluster: Any, clock: Clock, db: Path, playbooks: Path | None) -> Any:
    """The agent: plans with the LLM when `model` is set, else offline (it then only resumes waiting runs)."""
    from opsagent.agent import Agent, AgentConfig
    from opsagent.detect import detect

    loaded = None
    if playbooks is not None and Path(playbooks).is_dir():
        from opsagent.playbooks import load_playbooks

        loaded = load_playbooks(Path(playbooks))
    try:
        config = AgentConfig.from_env(model=model) if model else AgentConfig.from_env()
    except ValueError as exc:
        raise WiringError(f"agent settings: {exc}") from exc
    return Agent(gate=gate, policy=policy, playbooks=loaded, observe=cluster.snapshot,
                 detect_fn=lambda snap: detect(snap, intents=policy.intents, now=clock.now()),
                 planner="llm" if model else "offline", checkpoint_path=db, recorder=store, clock=clock,
                 config=config, approvals=approvals)
