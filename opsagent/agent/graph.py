"""The agent's LangGraph: plan → act → (await_approval) → verify → finish.

- plan: checks the budgets first (steps, tokens, seconds spent in nodes; the actor's daily
  spend cap from the policy before any model call), then asks the
  current planner for the next calls; LLM failures are counted and, after
  `max_failures` in a row, the run switches to the offline planner and the
  audit log says so. A model server that cannot be reached at all opens the
  breaker: this run falls back at once, and runs that start while it is open
  skip the model (the audit log says so and why).
- act: hands each proposed call to `Gate.submit` (the only way a tool runs),
  after checking the audit log for a result already recorded under the step's
  idempotency key. In a run started by a person's message, writes are held for
  that person's confirmation instead (`conversation.py`): they never reach the
  gate from here. Results go back to the model as ToolMessages; denied and
  invalid calls are data the model can correct.
- await_approval: `interrupt()` first, mutation after: on resume it calls
  `Gate.run_approved` exactly once and feeds the result back.
- verify: re-observes and re-detects; a finding no longer reported (and a
  playbook verify check that passes) ends the run.
- finish: records the run's totals (calls, tokens, model) as a `run` entry.

Nodes are small and return `Command`s so the next steps are in their
signatures. The graph holds no cluster reference: only the gate writes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from opsagent.agent.breaker import Breaker
from opsagent.agent.config import AgentConfig
from opsagent.agent.conversation import PROPOSED, hold, is_held, model_text
from opsagent.agent.planners import PlanInput, Planner
from opsagent.agent.playbook_view import is_resolved, render_steps
from opsagent.agent.prompts import tool_result_text
from opsagent.agent.spend import spend_of
from opsagent.agent.state import AgentState
from opsagent.agent.turns import REFUSED, call_key, dropped, judge_turn, offered_tools, refusal, scope_of
from opsagent.approvals import ApprovalError
from opsagent.clock import Clock
from opsagent.detect import workload_subject
from opsagent.cluster.port import WaitsChange
from opsagent.gate.keys import executed_key, run_key
from opsagent.gate.ledger import call_id, claim_key, recorded_result, result_key
from opsagent.model import Approval, AuditEntry, Finding, Snapshot, ToolCall, ToolResult, WorkloadRef, bounded_json
from opsagent.playbooks import TemplateError

if TYPE_CHECKING:
    from opsagent.approvals import ApprovalQueue
    from opsagent.gate import Gate
    from opsagent.gate.ledger import Journal
    from opsagent.playbooks import PlaybookSet
    from opsagent.policy import Policy


@dataclass
class Deps:
    """What the graph's nodes may use. The gate is the only thing that can change the cluster."""

    gate: Gate
    observe: Callable[[], Snapshot]
    detect_fn: Callable[[Snapshot], list[Finding]]
    playbooks: PlaybookSet | None
    policy: Policy | None
    recorder: Journal
    clock: Clock
    config: AgentConfig
    planners: dict[str, Planner]
    settle: Callable[[], None] | None = None
    approvals: ApprovalQueue | None = None  # runs an approved call at most once
    breaker: Breaker | None = None    # skips the LLM for a while after it was unreachable or unusable
    tools: dict[str, Any] | None = None  # the tool registry: risk classes for judging a model's turns
    # The cluster narrowed to some workloads (`ReadsWorkloads`); None: every look reads the whole cluster.
    observe_of: Callable[[Sequence[WorkloadRef]], Snapshot] | None = None

    def look(self, finding: Finding | None) -> Snapshot:
        """The cluster as a step about `finding` needs it: narrowed to its workload when the finding is one its
        workload's own facts decide (`detect.WORKLOAD_KINDS`: detection, playbook and prompt read the same
        there), else the whole cluster."""
        ref = workload_subject(finding)
        if ref is not None and self.observe_of is not None:
            return self.observe_of([ref])
        return self.observe()

    def run_approved(self, approval: Approval, *, approver: str, channel: str = "daemon") -> ToolResult:
        run = lambda a: self.gate.run_approved(_without_call_id(a), approver=approver)  # noqa: E731
        if self.approvals is None:
            return run(approval)
        try:
            return self.approvals.execute(approval.id, run=run, actor=approver, channel=channel)
        except ApprovalError as exc:  # already executed, interrupted, not approved: nothing runs again
            return ToolResult(status="error", tool=approval.call.tool, approval_id=approval.id, message=str(exc)[:500])

    def wait(self, state: AgentState) -> None:
        """Let the cluster move before re-observing.

        The simulator settles (its virtual clock moves). On a real cluster the first
        check after a write reads at once; a re-check waits until the workload the run
        changed last changes again (a watch event), at most `verify_interval_seconds`."""
        if self.settle is not None:
            self.settle()
            return
        if not state.get("verify_waits"):
            return
        cluster = getattr(self.gate, "reader", None)
        refs = changed_workloads(state.get("results", []))
        if isinstance(cluster, WaitsChange) and refs:
            cluster.wait_changed(ref=refs[-1], timeout=self.config.verify_interval_seconds)
        else:
            self.clock.sleep(self.config.verify_interval_seconds)

    def policy_summary(self) -> str:
        summary = getattr(self.policy, "summary", None)
        return str(summary()) if callable(summary) else ""

    def spend_problem(self, actor: str) -> str | None:
        """Why `actor` may not ask the model again today (its daily spend cap), or None."""
        caps = getattr(self.policy, "spend_caps", None)
        if caps is None:
            return None   # no caps: no query
        spend = spend_of(self.recorder, caps, actor=actor, now=self.clock.now())
        return spend.problem() if spend is not None else None

    def playbook_for(self, finding: Finding | None, snapshot: Snapshot) -> Any | None:
        if finding is None or self.playbooks is None:
            return None
        return self.playbooks.for_finding(finding, snapshot)

    def record_run(self, state: AgentState, summary: str, *, outcome: str = "info", key: str | None = None,
                   full_key: str | None = None, **fields: Any) -> int:
        finding = state.get("finding") or {}
        entry = AuditEntry(
            time=self.clock.now(), kind="run", actor=state.get("actor", "daemon"), channel=state.get("channel", "daemon"),
            run_id=state.get("run_id"), finding_id=f"{finding['kind']}:{finding['subject']}" if finding else None,
            message=state.get("message"), outcome=outcome, summary=summary[:1000],  # type: ignore[arg-type]
            idempotency_key=full_key or (run_key(state.get("run_id"), key) if key else None), **fields,
        )
        return self.recorder.record(entry)


def _without_call_id(approval: Approval) -> Approval:
    """The gate keys its audit entries by call id; clear it so the approved run gets its own keys."""
    return approval.model_copy(update={"call": approval.call.model_copy(update={"id": None})})


def _screen(finding: Finding | None, snapshot: Snapshot, playbook: Any | None, tools: dict[str, Any],
            state: AgentState) -> Callable[[str, dict[str, Any]], str | None]:
    """The check a model's proposals pass before the gate in this round (see `opsagent.agent.turns`)."""
    refused = {call_key(r["tool"], r.get("args") or {}) for r in state.get("results", []) if r.get("status") in REFUSED}
    offered = scope = None
    if finding is not None:
        offered = offered_tools(finding=finding, playbook=playbook, tools=tools)
        try:
            steps = render_steps(playbook, finding, snapshot) if playbook is not None else []
        except TemplateError:
            steps = []
        scope = scope_of(finding, snapshot, steps)
    return lambda tool, args: refusal(tool, args, tools=tools, offered=offered, scope=scope, refused=refused)


def _playbook_writes(playbook: Any | None, finding: Finding, snapshot: Snapshot, tools: dict[str, Any]) -> bool:
    """Whether the playbook's steps would change something (a read-only playbook hands off: stopping is right)."""
    if playbook is None:
        return False
    try:
        steps = render_steps(playbook, finding, snapshot)
    except TemplateError:
        return False
    return any(getattr(tools.get(tool), "risk", "read") != "read" for tool, _ in steps)


def _finding(state: AgentState) -> Finding | None:
    raw = state.get("finding")
    return Finding.model_validate(raw) if raw else None


def tool_text(result: ToolResult) -> str:
    """What the model reads back: the result fenced as data, like the finding (see `prompts.tool_result_text`)."""
    return tool_result_text(tool=result.tool, status=result.status, message=result.message, data=result.data)


def changed_workloads(results: list[dict[str, Any]]) -> list[WorkloadRef]:
    """The workloads that the run's successful calls named, in order, once each."""
    refs: list[WorkloadRef] = []
    for row in results:
        args = row.get("args")
        if row.get("status") != "ok" or not isinstance(args, dict):
            continue
        namespace, name = args.get("namespace"), args.get("name")
        if isinstance(namespace, str) and isinstance(name, str):
            ref = WorkloadRef(namespace=namespace, name=name)
            if ref not in refs:
                refs.append(ref)
    return refs


def result_row(step: int, tool: str, args: dict[str, Any], result: ToolResult, *, key: str, reused: bool) -> dict[str, Any]:
    retry_at = result.decision.retry_at if result.decision is not None else None
    return {"step": step, "tool": tool, "args": bounded_json(args), "status": result.status, "message": result.message[:500],
            "approval_id": result.approval_id, "audit_id": result.audit_id, "key": key, "reused": reused,
            "retry_at": retry_at.isoformat() if retry_at is not None and result.status == "denied" else None,
            "retryable": result.status == "error" and bool(result.data.get("retryable"))}


def budget_problem(deps: Deps, state: AgentState) -> str | None:
    """Why the run must stop now, or None. Computed before any planning.

    Plan rounds count from the current planner's start (`step_base`): a run that
    fell back gives the offline planner a full allowance. Tokens are a limit on
    the model's spend, so the offline planner (which spends none) is not held by them.
    """
    cfg = deps.config
    if state.get("steps", 0) - state.get("step_base", 0) >= cfg.max_steps:
        return f"step budget exhausted ({cfg.max_steps} rounds)"
    tokens = state.get("prompt_tokens", 0) + state.get("completion_tokens", 0)
    if tokens >= cfg.max_tokens and state.get("planner") != "offline":
        return f"token budget exhausted ({tokens} of {cfg.max_tokens})"
    elapsed = state.get("spent_seconds", 0.0)
    if elapsed > cfg.max_seconds:
        return f"time budget exhausted ({elapsed:.0f}s of {cfg.max_seconds:.0f}s)"
    return None


def timed(deps: Deps, node: Callable[[AgentState], Any]) -> Callable[[AgentState], Any]:
    """`node`, adding the clock time it took to the run's `spent_seconds`.

    The time budget counts only time spent inside nodes: a person deciding an
    approval (the run is paused between nodes) and a process that was down
    (the run continues from its last checkpoint) cost the run nothing.
    """
    @functools.wraps(node)
    def run(state: AgentState) -> Any:
        started = deps.clock.now()
        out = node(state)
        spent = state.get("spent_seconds", 0.0) + max(0.0, (deps.clock.now() - started).total_seconds())
        if isinstance(out, Command):
            return Command(goto=out.goto, update={**(out.update or {}), "spent_seconds": spent})
        return {**out, "spent_seconds": spent}
    return run


class Nodes:
    """The graph's five nodes (plan, act, await_approval, verify, finish) and their helpers, over one `Deps`."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.tools: dict[str, Any] = deps.tools or {}

    def can_fall_back(self, state: AgentState) -> bool:
        return state.get("planner") != "offline" and "offline" in self.deps.planners

    def fall_back(self, state: AgentState, why: str, reason: str, update: dict[str, Any], *,
                  unreachable: bool = False, model: str | None = None) -> dict[str, Any]:
        """Switch the run to the offline planner: audited with the reason, and the breaker opens."""
        streak = list(update.get("streak", state.get("streak", [])))
        n = update.get("llm_calls", state.get("llm_calls", 0))
        steps = update.get("steps", state.get("steps", 0))
        self.deps.record_run(state, f"{why}; falling back to the offline planner", outcome="error", key=f"fallback{n}-{steps}",
                        model=model, data={"from": state.get("planner"), "to": "offline", "reason": reason[:300],
                                           "unreachable": unreachable, "streak": [r[:200] for r in streak]})
        if self.deps.breaker is not None:
            self.deps.breaker.trip(reason[:300], now=self.deps.clock.now(), unreachable=unreachable)
        return {**update, "planner": "offline", "fell_back": True, "failures": 0, "streak": [], "step_base": steps,
                "planner_done": False, "verify_waits": 0}

    def plan(self, state: AgentState) -> Command[Literal["act", "verify", "finish", "plan"]]:
        problem = budget_problem(self.deps, state)
        if problem is not None and self.can_fall_back(state) and not problem.startswith("time"):
            return Command(goto="plan", update=self.fall_back(
                state, f"planner {state['planner']} made no progress within its budget ({problem})", problem, {}))
        if problem is not None:
            return Command(goto="finish", update={"status": "budget_exhausted", "report": problem})
        planner = self.deps.planners[state["planner"]]
        skip = self.deps.breaker.open_reason(now=self.deps.clock.now()) if self.deps.breaker is not None else None
        if skip is not None and planner.name != "offline" and "offline" in self.deps.planners:
            self.deps.record_run(state, f"llm skipped: {skip}; planning with the offline planner", outcome="error",
                            key="llm-skipped", data={"from": planner.name, "to": "offline", "reason": skip})
            return Command(goto="plan", update={"planner": "offline", "fell_back": True, "failures": 0, "streak": [],
                                                "step_base": state.get("steps", 0)})
        over = self.deps.spend_problem(state["actor"]) if planner.name != "offline" else None
        if over is not None:
            if state.get("finding") and "offline" in self.deps.planners:
                self.deps.record_run(state, f"llm not asked: {over}; planning with the offline planner", outcome="denied",
                                key="spend-cap", data={"from": planner.name, "to": "offline", "reason": over})
                return Command(goto="plan", update={"planner": "offline", "failures": 0, "streak": [],
                                                    "step_base": state.get("steps", 0)})
            self.deps.record_run(state, f"llm not asked: {over}", outcome="denied", key="spend-cap",
                            data={"from": planner.name, "reason": over})
            return Command(goto="finish", update={"report": f"Not answered: {over}. Older calls stop counting 24 hours "
                                                            "after they were made; chat commands still work meanwhile."})
        finding = _finding(state)
        snapshot = self.deps.look(finding)
        playbook = self.deps.playbook_for(finding, snapshot)
        result = planner.plan(PlanInput(
            run_id=state["run_id"], kind=state["kind"], actor=state["actor"], finding=finding, message=state.get("message"),
            snapshot=snapshot, playbook=playbook, results=list(state.get("results", [])),
            messages=list(state.get("messages", [])), policy_summary=self.deps.policy_summary(),
        ))
        n_calls = state.get("llm_calls", 0) + result.llm_calls
        update: dict[str, Any] = {
            "llm_calls": n_calls,
            "prompt_tokens": state.get("prompt_tokens", 0) + result.prompt_tokens,
            "completion_tokens": state.get("completion_tokens", 0) + result.completion_tokens,
            "messages": list(result.new_messages),
        }
        if result.llm_calls:
            self.deps.record_run(state, f"llm call {n_calls}" + (f" failed: {result.failure}" if result.failure else ""),
                            outcome="error" if result.failure else "info", key=f"llm{n_calls}", model=result.model,
                            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens)
        if result.failure is not None and not result.calls:  # nothing usable in the answer: one more in the streak
            streak = list(state.get("streak", [])) + [result.failure]
            update.update(failures=len(streak), streak=streak)
            if self.can_fall_back(state) and (result.unreachable or len(streak) >= self.deps.config.max_failures):
                why = (f"planner {planner.name} cannot reach its model ({result.failure})" if result.unreachable else
                       f"planner {planner.name} gave {len(streak)} unusable turns in a row ({result.failure})")
                update = self.fall_back(state, why, result.failure, update, unreachable=result.unreachable, model=result.model)
            return Command(goto="plan", update=update)
        # calls (even from an answer flagged as faulty) go on: act judges the turn by what the gate said
        if result.done or not result.calls:
            update["report"] = result.text
            update["planner_done"] = True
            return Command(goto="verify" if finding is not None else "finish", update=update)
        tokens = update["prompt_tokens"] + update["completion_tokens"]
        if tokens > self.deps.config.max_tokens:  # the answer that went over the budget is not acted on
            why = (f"token budget exhausted ({tokens} of {self.deps.config.max_tokens}); "
                   f"the {len(result.calls)} call(s) of the answer that went over it were not run")
            if self.can_fall_back(state):
                return Command(goto="plan", update=self.fall_back(state, f"planner {planner.name}: {why}", why, update,
                                                             model=result.model))
            return Command(goto="finish", update={**update, "status": "budget_exhausted", "report": why})
        step = state.get("steps", 0) + 1
        reply = any(isinstance(m, AIMessage) for m in result.new_messages)
        update["steps"] = step
        # arguments over the gate's limit are kept as their stand-in (size, digest, prefix): the gate refuses them
        # as too large all the same, and the checkpoints never hold them whole
        update["proposed"] = [{"tool": c.tool, "args": bounded_json(c.args), "llm_id": c.id if reply else None,
                               "id": call_id(step, i), "planner": planner.name, "refused": None}
                              for i, c in enumerate(result.calls)]
        if planner.name != "offline":  # a model's proposals are screened before the gate; a playbook's are not
            screen = _screen(finding, snapshot, playbook, self.tools, state)
            for index, item in enumerate(update["proposed"]):
                item["dropped"] = dropped(index)
                item["refused"] = None if item["dropped"] else screen(item["tool"], item["args"])
        return Command(goto="act", update=update)

    def act(self, state: AgentState) -> Command[Literal["plan", "verify", "await_approval"]]:
        rows, messages, pending = [], [], None
        finding = _finding(state)
        for item in state.get("proposed", []):
            if pending is not None or item.get("dropped"):  # not run, and no verdict on the call: no result row
                why = item.get("dropped") or f"approval {pending} for an earlier call is pending"
                if item.get("dropped"):
                    self.deps.record_run(state, f"not run: {why}", outcome="denied", key=f"dropped-{item['id']}",
                                    tool=item["tool"], args=item["args"])
                text = tool_result_text(tool=item["tool"], status="skipped", message=f"not run: {why}")
                if item["llm_id"]:
                    messages.append(ToolMessage(content=text, tool_call_id=item["llm_id"], name=item["tool"], status="error"))
                continue
            call = ToolCall(tool=item["tool"], args=item["args"], actor=state["actor"], channel=state.get("channel", "daemon"),  # type: ignore[arg-type]
                            actor_groups=tuple(state.get("actor_groups") or ()),
                            finding_id=finding.id if finding else None, message=state.get("message"),
                            planner=item.get("planner"), id=item["id"])
            key = result_key(state["run_id"], call)
            if is_held(self.deps.gate, call, kind=state["kind"]):  # the model only proposes writes in conversation
                status, text = hold(self.deps.gate, call)
                self.deps.record_run(state, f"{call.tool} held for {call.actor}'s confirmation (step {call.id}): {text}"[:1000]
                                if status == PROPOSED else f"{call.tool} not proposed (step {call.id}): {text}"[:1000],
                                key=f"held:{call.id}", tool=call.tool, args=call.args,
                                outcome="pending" if status == PROPOSED else "denied")
                rows.append({"step": state.get("steps", 0), "tool": call.tool, "args": call.args, "status": status,
                             "message": text[:500], "approval_id": None, "audit_id": None, "key": key, "reused": False})
                if item["llm_id"]:
                    messages.append(ToolMessage(content=model_text(status, text), tool_call_id=item["llm_id"], name=call.tool,
                                                status="error" if status != PROPOSED else "success"))
                continue
            earlier = recorded_result(self.deps.recorder, key, tool=call.tool)
            if earlier is not None:
                result = earlier
            elif item.get("refused"):  # refused before the gate: audited under the call's result key, never run
                result = ToolResult(status="denied", tool=call.tool, message=f"refused before the gate: {item['refused']}")
                self.deps.record_run(state, result.message, outcome="denied", full_key=key, tool=call.tool, args=call.args)
            else:  # a claim already stored (the process died mid-call) is not written again; the gate recovers the call
                self.deps.record_run(state, f"submitting {call.tool} (step {call.id})", full_key=claim_key(key),
                                tool=call.tool, args=call.args)
                result = self.deps.gate.submit(call, run_id=state["run_id"])
            rows.append(result_row(state.get("steps", 0), call.tool, call.args, result, key=key, reused=earlier is not None))
            if item["llm_id"]:
                messages.append(ToolMessage(content=tool_text(result), tool_call_id=item["llm_id"], name=call.tool,
                                            status="success" if result.ok else "error"))
            if result.status == "pending_approval":
                pending = result.approval_id
        update: dict[str, Any] = {"results": rows, "messages": messages, "proposed": [], "pending_approval": pending}
        if self.can_fall_back(state):
            update = self.judged(state, rows, update)
        if pending is not None:
            update["status"] = "waiting_approval"
            return Command(goto="await_approval", update=update)
        return Command(goto="verify" if finding is not None else "plan", update=update)

    def judged(self, state: AgentState, rows: list[dict[str, Any]], update: dict[str, Any]) -> dict[str, Any]:
        """`update`, with the model's streak of unusable turns carried on or reset (and a fallback at the limit)."""
        verdict, why = judge_turn(rows, tools=self.tools)
        if verdict == "usable":
            if self.deps.breaker is not None:
                self.deps.breaker.reset()
            return {**update, "failures": 0, "streak": []}
        if verdict == "neutral" or why is None:
            return update
        streak = list(state.get("streak", [])) + [why]
        update = {**update, "failures": len(streak), "streak": streak}
        if len(streak) < self.deps.config.max_failures:
            return update
        return self.fall_back(state, f"planner {state['planner']} gave {len(streak)} unusable turns in a row ({why})", why, update)

    def await_approval(self, state: AgentState) -> Command[Literal["plan", "verify"]]:
        approval_id = state["pending_approval"]
        asked = next((r for r in reversed(state.get("results", [])) if r.get("approval_id") == approval_id), {})
        answer = interrupt({"run_id": state["run_id"], "approval_id": approval_id, "tool": asked.get("tool"),
                            "args": asked.get("args"), "message": asked.get("message")})
        # Everything below runs once, after a person decided: the node restarts from the top on resume.
        decided, approver = str(answer.get("decided_state")), str(answer.get("approver") or "")
        tool = str(asked.get("tool") or "")
        if decided == "approved" and answer.get("approval"):
            approval = Approval.model_validate(answer["approval"])
            key = executed_key(approval.id)  # the gate's one result row per approval
            earlier = recorded_result(self.deps.recorder, key, tool=approval.call.tool)
            result = earlier if earlier is not None else \
                self.deps.run_approved(approval, approver=approver, channel=str(answer.get("channel") or "daemon"))
            row = result_row(state.get("steps", 0), approval.call.tool, approval.call.args, result, key=key, reused=earlier is not None)
        elif decided == "executed":  # approved and already run elsewhere (another run, or `approvals approve`)
            result = ToolResult(status="ok", tool=tool, approval_id=approval_id,
                                message=f"approval {approval_id} was already executed")
            row = result_row(state.get("steps", 0), tool, asked.get("args") or {}, result, key="", reused=True)
        else:
            result = ToolResult(status="denied", tool=tool, approval_id=approval_id,
                                message=f"approval {approval_id} was {decided}" + (f" by {approver}" if approver else ""))
            row = result_row(state.get("steps", 0), tool, asked.get("args") or {}, result, key="", reused=False)
        row["approval_id"] = approval_id
        update: dict[str, Any] = {"results": [row], "pending_approval": None, "status": "running"}
        if any(isinstance(m, AIMessage) for m in state.get("messages", [])):
            update["messages"] = [HumanMessage(f"Approval {approval_id} for {tool} was {decided}. Result: {tool_text(result)}")]
        return Command(goto="verify" if state.get("finding") else "plan", update=update)

    def verify(self, state: AgentState) -> Command[Literal["plan", "verify", "finish"]]:
        finding = _finding(state)
        assert finding is not None
        self.deps.wait(state)
        snapshot = self.deps.look(finding)
        still_open = any(f.id == finding.id for f in self.deps.detect_fn(snapshot))
        playbook = self.deps.playbook_for(finding, snapshot)
        resolved = is_resolved(playbook, finding, snapshot, finding_open=still_open)
        if resolved:
            return Command(goto="finish", update={"resolved": True})
        if state.get("planner_done"):
            waits = state.get("verify_waits", 0)
            if waits < self.deps.config.verify_retries:  # changes take time to show (rollouts, cold starts)
                return Command(goto="verify", update={"resolved": False, "verify_waits": waits + 1})
            if self.can_fall_back(state) and judge_turn(state.get("results", []), tools=self.tools)[0] != "usable" \
                    and _playbook_writes(playbook, finding, snapshot, self.tools):
                why = "stopped with the finding still open and no change made or proposed to a person"
                return Command(goto="plan", update=self.fall_back(state, f"planner {state['planner']} {why}", why,
                                                             {"resolved": False}))
            return Command(goto="finish", update={"resolved": False})
        return Command(goto="plan", update={"resolved": False})

    def finish(self, state: AgentState) -> dict[str, Any]:
        status = state.get("status")
        status = status if status in ("budget_exhausted", "failed") else "done"
        report = state.get("report") or ""
        if state.get("resolved") is True:
            report = (f"Resolved {state['finding']['kind']}:{state['finding']['subject']}. " + report).strip()
        elif state.get("resolved") is False and status == "done":
            finding = state.get("finding") or {}
            still = f"Finding {finding.get('kind')}:{finding.get('subject')} still open" if finding else "Finding still open"
            why = f" ({finding['summary']})" if finding.get("summary") else ""
            report = (f"{still}{why}. " + report).strip()
        model = next((p.model_name for p in self.deps.planners.values() if hasattr(p, "model_name")), None)
        self.deps.record_run(state, f"run {status}: {report}", outcome="ok" if status == "done" else "error", key="finished",
                        model=model if state.get("llm_calls") else None,
                        prompt_tokens=state.get("prompt_tokens", 0), completion_tokens=state.get("completion_tokens", 0),
                        data={"llm_calls": state.get("llm_calls", 0), "steps": state.get("steps", 0), "planner": state.get("planner"),
                              "fell_back": state.get("fell_back", False), "resolved": state.get("resolved")})
        return {"status": status, "report": report, "finished_at": self.deps.clock.now().isoformat()}


def build_graph(deps: Deps) -> StateGraph:
    nodes = Nodes(deps)
    graph = StateGraph(AgentState)
    for node in (nodes.plan, nodes.act, nodes.await_approval, nodes.verify, nodes.finish):
        graph.add_node(node.__name__, timed(deps, node))
    graph.add_edge(START, "plan")
    graph.add_edge("finish", END)
    return graph
