"""The agent's LangGraph: plan → act → (await_approval) → verify → finish.

- plan: checks the budgets first (steps, tokens, seconds spent in nodes), then asks the
  current planner for the next calls; LLM failures are counted and, after
  `max_failures` in a row, the run switches to the offline planner and the
  audit log says so. A model server that cannot be reached at all opens the
  breaker: this run falls back at once, and runs that start while it is open
  skip the model (the audit log says so and why).
- act: hands each proposed call to `Gate.submit` (the only way a tool runs),
  after checking the audit log for a result already recorded under the step's
  idempotency key. Results go back to the model as ToolMessages; denied and
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
import json
from dataclasses import dataclass
from typing import Any, Callable, Literal

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from opsagent.agent.breaker import Breaker
from opsagent.agent.config import AgentConfig
from opsagent.agent.ledger import call_id, claim_key, recorded_result, result_key
from opsagent.agent.planners import PlanInput, Planner
from opsagent.agent.playbook_view import is_resolved
from opsagent.agent.state import AgentState
from opsagent.approvals import ApprovalError
from opsagent.clock import Clock
from opsagent.model import Approval, AuditEntry, Finding, Snapshot, ToolCall, ToolResult

MAX_TOOL_TEXT = 2000


@dataclass
class Deps:
    """What the graph's nodes may use. The gate is the only thing that can change the cluster."""

    gate: Any
    observe: Callable[[], Snapshot]
    detect_fn: Callable[[Snapshot], list[Finding]]
    playbooks: Any | None
    policy: Any | None
    recorder: Any
    clock: Clock
    config: AgentConfig
    planners: dict[str, Planner]
    settle: Callable[[], None] | None = None
    approvals: Any | None = None      # ApprovalQueue: runs an approved call at most once
    breaker: Breaker | None = None    # skips the LLM for a while after its server could not be reached

    def run_approved(self, approval: Approval, *, approver: str, channel: str = "daemon") -> ToolResult:
        run = lambda a: self.gate.run_approved(_without_call_id(a), approver=approver)  # noqa: E731
        if self.approvals is None or not hasattr(self.approvals, "execute"):
            return run(approval)
        try:
            return self.approvals.execute(approval.id, run=run, actor=approver, channel=channel)
        except ApprovalError as exc:  # already executed, interrupted, not approved: nothing runs again
            return ToolResult(status="error", tool=approval.call.tool, approval_id=approval.id, message=str(exc)[:500])

    def wait(self) -> None:
        """Let the cluster move before re-observing: `settle` if given (the simulator), else the clock."""
        if self.settle is not None:
            self.settle()
        else:
            self.clock.sleep(self.config.verify_interval_seconds)

    def policy_summary(self) -> str:
        summary = getattr(self.policy, "summary", None)
        return str(summary()) if callable(summary) else ""

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
            idempotency_key=full_key or (f"{state.get('run_id')}:run:{key}" if key else None), **fields,
        )
        return self.recorder.record(entry)


def _without_call_id(approval: Approval) -> Approval:
    """The gate keys its audit entries by call id; clear it so the approved run gets its own keys."""
    return approval.model_copy(update={"call": approval.call.model_copy(update={"id": None})})


def _finding(state: AgentState) -> Finding | None:
    raw = state.get("finding")
    return Finding.model_validate(raw) if raw else None


def tool_text(result: ToolResult) -> str:
    """What the model reads back: status, message and a little data, as compact JSON."""
    payload: dict[str, Any] = {"status": result.status, "message": result.message}
    if result.data:
        payload["data"] = result.data
    text = json.dumps(payload, default=str, separators=(",", ":"))
    return text if len(text) <= MAX_TOOL_TEXT else text[: MAX_TOOL_TEXT - 20] + "…(truncated)"


def result_row(step: int, tool: str, args: dict[str, Any], result: ToolResult, *, key: str, reused: bool) -> dict[str, Any]:
    retry_at = result.decision.retry_at if result.decision is not None else None
    return {"step": step, "tool": tool, "args": args, "status": result.status, "message": result.message[:500],
            "approval_id": result.approval_id, "audit_id": result.audit_id, "key": key, "reused": reused,
            "retry_at": retry_at.isoformat() if retry_at is not None and result.status == "denied" else None,
            "retryable": result.status == "error" and bool(result.data.get("retryable"))}


def budget_problem(deps: Deps, state: AgentState) -> str | None:
    """Why the run must stop now, or None. Computed before any planning."""
    cfg = deps.config
    if state.get("steps", 0) >= cfg.max_steps:
        return f"step budget exhausted ({cfg.max_steps} rounds)"
    tokens = state.get("prompt_tokens", 0) + state.get("completion_tokens", 0)
    if tokens >= cfg.max_tokens:
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


def build_graph(deps: Deps) -> StateGraph:
    def plan(state: AgentState) -> Command[Literal["act", "verify", "finish", "plan"]]:
        problem = budget_problem(deps, state)
        if problem is not None:
            return Command(goto="finish", update={"status": "budget_exhausted", "report": problem})
        planner = deps.planners[state["planner"]]
        skip = deps.breaker.open_reason(now=deps.clock.now()) if deps.breaker is not None else None
        if skip is not None and planner.name != "offline" and "offline" in deps.planners:
            deps.record_run(state, f"llm skipped: {skip}; planning with the offline planner", outcome="error",
                            key="llm-skipped", data={"from": planner.name, "to": "offline", "reason": skip})
            return Command(goto="plan", update={"planner": "offline", "fell_back": True, "failures": 0})
        snapshot = deps.observe()
        finding = _finding(state)
        result = planner.plan(PlanInput(
            run_id=state["run_id"], kind=state["kind"], actor=state["actor"], finding=finding, message=state.get("message"),
            snapshot=snapshot, playbook=deps.playbook_for(finding, snapshot), results=list(state.get("results", [])),
            messages=list(state.get("messages", [])), policy_summary=deps.policy_summary(),
        ))
        n_calls = state.get("llm_calls", 0) + result.llm_calls
        update: dict[str, Any] = {
            "llm_calls": n_calls,
            "prompt_tokens": state.get("prompt_tokens", 0) + result.prompt_tokens,
            "completion_tokens": state.get("completion_tokens", 0) + result.completion_tokens,
            "messages": list(result.new_messages),
        }
        if result.llm_calls:
            deps.record_run(state, f"llm call {n_calls}" + (f" failed: {result.failure}" if result.failure else ""),
                            outcome="error" if result.failure else "info", key=f"llm{n_calls}", model=result.model,
                            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens)
        if result.failure is not None:
            failures = state.get("failures", 0) + 1
            update["failures"] = failures
            if result.unreachable and deps.breaker is not None:
                deps.breaker.trip(result.failure, now=deps.clock.now())
            if (failures >= deps.config.max_failures or result.unreachable) and "offline" in deps.planners \
                    and state["planner"] != "offline":
                why = (f"planner {planner.name} cannot reach its model ({result.failure})" if result.unreachable else
                       f"planner {planner.name} failed {failures} times in a row ({result.failure})")
                deps.record_run(state, f"{why}; falling back to the offline planner", outcome="error", key=f"fallback{n_calls}",
                                model=result.model, data={"from": planner.name, "to": "offline", "reason": result.failure,
                                                          "unreachable": result.unreachable})
                update.update(planner="offline", fell_back=True, failures=0)
                if not result.calls:
                    return Command(goto="plan", update=update)
                # the calls still pass the gate, so the audit log holds every proposal
            elif not result.calls:
                return Command(goto="plan", update=update)
        else:
            update["failures"] = 0
        if result.done or not result.calls:
            update["report"] = result.text
            update["planner_done"] = True
            return Command(goto="verify" if finding is not None else "finish", update=update)
        tokens = update["prompt_tokens"] + update["completion_tokens"]
        if tokens > deps.config.max_tokens:  # the answer that went over the budget is not acted on
            return Command(goto="finish", update={**update, "status": "budget_exhausted", "report":
                           f"token budget exhausted ({tokens} of {deps.config.max_tokens}); "
                           f"the {len(result.calls)} call(s) of the answer that went over it were not run"})
        step = state.get("steps", 0) + 1
        reply = any(isinstance(m, AIMessage) for m in result.new_messages)
        update["steps"] = step
        update["proposed"] = [{"tool": c.tool, "args": c.args, "llm_id": c.id if reply else None, "id": call_id(step, i),
                               "planner": planner.name}
                              for i, c in enumerate(result.calls)]
        return Command(goto="act", update=update)

    def act(state: AgentState) -> Command[Literal["plan", "verify", "await_approval"]]:
        rows, messages, pending = [], [], None
        finding = _finding(state)
        for item in state.get("proposed", []):
            if pending is not None:
                text = json.dumps({"status": "skipped", "message": f"not run: approval {pending} for an earlier call is pending"})
                if item["llm_id"]:
                    messages.append(ToolMessage(content=text, tool_call_id=item["llm_id"], name=item["tool"], status="error"))
                continue
            call = ToolCall(tool=item["tool"], args=item["args"], actor=state["actor"], channel=state.get("channel", "daemon"),  # type: ignore[arg-type]
                            finding_id=finding.id if finding else None, message=state.get("message"),
                            planner=item.get("planner"), id=item["id"])
            key = result_key(state["run_id"], call)
            earlier = recorded_result(deps.recorder, key, tool=call.tool)
            if earlier is not None:
                result = earlier
            else:  # a claim already stored (the process died mid-call) is not written again; the gate recovers the call
                deps.record_run(state, f"submitting {call.tool} (step {call.id})", full_key=claim_key(key),
                                tool=call.tool, args=call.args)
                result = deps.gate.submit(call, run_id=state["run_id"])
            rows.append(result_row(state.get("steps", 0), call.tool, call.args, result, key=key, reused=earlier is not None))
            if item["llm_id"]:
                messages.append(ToolMessage(content=tool_text(result), tool_call_id=item["llm_id"], name=call.tool,
                                            status="success" if result.ok else "error"))
            if result.status == "pending_approval":
                pending = result.approval_id
        update: dict[str, Any] = {"results": rows, "messages": messages, "proposed": [], "pending_approval": pending}
        if pending is not None:
            update["status"] = "waiting_approval"
            return Command(goto="await_approval", update=update)
        return Command(goto="verify" if finding is not None else "plan", update=update)

    def await_approval(state: AgentState) -> Command[Literal["plan", "verify"]]:
        approval_id = state["pending_approval"]
        asked = next((r for r in reversed(state.get("results", [])) if r.get("approval_id") == approval_id), {})
        answer = interrupt({"run_id": state["run_id"], "approval_id": approval_id, "tool": asked.get("tool"),
                            "args": asked.get("args"), "message": asked.get("message")})
        # Everything below runs once, after a person decided: the node restarts from the top on resume.
        decided, approver = str(answer.get("decided_state")), str(answer.get("approver") or "")
        tool = str(asked.get("tool") or "")
        if decided == "approved" and answer.get("approval"):
            approval = Approval.model_validate(answer["approval"])
            key = result_key(approval.thread_id or "adhoc", _without_call_id(approval).call, nonce=f"approval{approval.id}")
            earlier = recorded_result(deps.recorder, key, tool=approval.call.tool)
            result = earlier if earlier is not None else \
                deps.run_approved(approval, approver=approver, channel=str(answer.get("channel") or "daemon"))
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

    def verify(state: AgentState) -> Command[Literal["plan", "verify", "finish"]]:
        finding = _finding(state)
        assert finding is not None
        deps.wait()
        snapshot = deps.observe()
        still_open = any(f.id == finding.id for f in deps.detect_fn(snapshot))
        playbook = deps.playbook_for(finding, snapshot)
        resolved = is_resolved(playbook, finding, snapshot, finding_open=still_open)
        if resolved:
            return Command(goto="finish", update={"resolved": True})
        if state.get("planner_done"):
            waits = state.get("verify_waits", 0)
            if waits < deps.config.verify_retries:  # changes take time to show (rollouts, cold starts)
                return Command(goto="verify", update={"resolved": False, "verify_waits": waits + 1})
            return Command(goto="finish", update={"resolved": False})
        return Command(goto="plan", update={"resolved": False})

    def finish(state: AgentState) -> dict[str, Any]:
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
        model = next((p.model_name for p in deps.planners.values() if hasattr(p, "model_name")), None)
        deps.record_run(state, f"run {status}: {report}", outcome="ok" if status == "done" else "error", key="finished",
                        model=model if state.get("llm_calls") else None,
                        prompt_tokens=state.get("prompt_tokens", 0), completion_tokens=state.get("completion_tokens", 0),
                        data={"llm_calls": state.get("llm_calls", 0), "steps": state.get("steps", 0), "planner": state.get("planner"),
                              "fell_back": state.get("fell_back", False), "resolved": state.get("resolved")})
        return {"status": status, "report": report, "finished_at": deps.clock.now().isoformat()}

    graph = StateGraph(AgentState)
    for node in (plan, act, await_approval, verify, finish):
        graph.add_node(node.__name__, timed(deps, node))
    graph.add_edge(START, "plan")
    graph.add_edge("finish", END)
    return graph
