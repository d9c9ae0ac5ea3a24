"""`ChatService`: one chat message in, one `ChatReply` out, as the person who asked.

Grammar commands become tool calls submitted through the gate with the
person's actor name and channel ('cli' or 'slack'), so chat uses the same tools,
policy and audit log as the daemon. `approve` / `reject` go through the
approval queue, which decides who may; an approved call then runs once through
`gate.run_approved` (the queue's `execute` guarantees at most once). Anything
the grammar does not know goes to the agent when one is configured.

Read-only actors (unmapped Slack users) may only read: a write or an approval
from them is refused here, before the gate, and that refusal is audited.
This module never touches the cluster or Slack directly.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

from pydantic import BaseModel, Field

from opsagent.agent.conversation import PROPOSED
from opsagent.agent.prompts import named_workloads
from opsagent.approvals import MACHINE_ACTORS, ApprovalError
from opsagent.audit import AuditStore
from opsagent.chat import render
from opsagent.chat.confirmations import DEFAULT_TTL_SECONDS, ConfirmationRefused, ConfirmationStore
from opsagent.chat.grammar import Command, NotUnderstood, Step, forms, parse
from opsagent.chat.secrets import redact
from opsagent.chat.users import Actor
from opsagent.model.actor import ActorNameError, actor_refusal, normalize_actor
from opsagent.clock import Clock, parse_duration
from opsagent.leases import LeaseRefused, LeaseService, active_for
from opsagent.model import Approval, AuditEntry, ToolCall, ToolResult, WorkloadRef
from tools import get_tool
from tools.read import FindingList, JobDetail, PodList, WorkloadDetail

READ_ONLY_RULE = "<builtin>:chat-read-only"
MACHINE_ACTOR_RULE = "<builtin>:chat-machine-actor"
MAX_DESCRIBED_PODS = 3
MAX_PROPOSALS = 5  # writes one message may leave waiting for the asker's yes; a model that proposes more is cut off


def _not_found(result: ToolResult) -> bool:
    return result.status == "error" and result.data.get("error") == "NotFound"


class DoneItem(BaseModel):
    tool: str
    summary: str
    status: str
    message: str = ""
    audit_id: int | None = None
    approval_id: int | None = None
    shown: list[str] = Field(default_factory=list)  # the tool's own rendering of its ok result (Tool.show), when it has one


class Refusal(BaseModel):
    tool: str
    summary: str
    rule: str = Field(description="policy file:rule name, or <builtin>:NAME, or approvals:ERROR")
    reason: str
    approval_id: int | None = None


class PendingItem(BaseModel):
    approval_id: int
    tool: str
    summary: str
    approvers: list[str] = Field(default_factory=list)
    expires_at: str | None = None


class ProposedItem(BaseModel):
    """A write that waits for the yes of the person who asked: `confirm N` (or the Confirm button) runs it."""

    confirmation_id: int
    tool: str
    summary: str
    why: str
    expires_at: str
    named: bool = Field(default=True, description="the person's message named what it changes")


class ChatReply(BaseModel):
    """What a person gets back. `text` is the rendered whole; the lists are the parts."""

    text: str
    actor: str
    channel: str
    understood: bool = True
    command: str | None = None
    done: list[DoneItem] = Field(default_factory=list)
    failed: list[DoneItem] = Field(default_factory=list)
    refused: list[Refusal] = Field(default_factory=list)
    pending: list[PendingItem] = Field(default_factory=list)
    proposed: list[ProposedItem] = Field(default_factory=list, description="writes waiting for the asker's confirmation")
    data: dict[str, Any] = Field(default_factory=dict)
    approvals: list[Approval] = Field(default_factory=list, description="approval requests created by this message")
    run_id: str | None = None


ActorResolver = Callable[[str], Actor | None]


def cli_actor(name: str) -> Actor | None:
    """The simulator's resolver: the (normalised) name given is the actor, with the rights the policy grants.
    `handle` refuses a name that cannot be a person's."""
    try:
        return Actor(name=normalize_actor(name), source="cli")
    except ActorNameError:
        return Actor(name=name, source="cli")  # refused by `handle`, with the reason


class ChatService:
    def __init__(self, *, gate: Any, approvals: Any, agent: Any = None, actor_resolver: ActorResolver = cli_actor,
                 clock: Clock, recorder: Any = None, confirmations: ConfirmationStore | None = None) -> None:
        self.gate, self.approvals, self.agent, self.resolve, self.clock = gate, approvals, agent, actor_resolver, clock
        self.recorder = recorder if recorder is not None else getattr(gate, "recorder", None)
        if confirmations is None and isinstance(self.recorder, AuditStore):
            ttl = getattr(getattr(gate, "policy", None), "confirmation_ttl_seconds", None)
            confirmations = ConfirmationStore(self.recorder, clock=clock,
                                              ttl_seconds=ttl if isinstance(ttl, int) and ttl > 0 else DEFAULT_TTL_SECONDS)
        self.confirmations = confirmations  # None: nothing proposed in conversation can run

    # --- entry point -----------------------------------------------------------
    def handle(self, text: str, *, actor: str, channel: str) -> ChatReply:
        if self.confirmations is not None:
            self.confirmations.expire_due()  # proposals past their time are marked (and audited) as expired
        who = self.resolve(actor)
        if who is None:
            self._audit_refusal(actor, channel, text, tool=None, summary="not a mapped user; unmapped users get no answers here")
            return self._reply(ChatReply(text="", actor=actor, channel=channel, understood=False,
                                         refused=[Refusal(tool="-", summary="this request", rule="<builtin>:chat-unmapped-user",
                                                          reason="you are not mapped to an opsagent actor")]))
        if who.name in MACHINE_ACTORS or actor_refusal(who.name) is not None:
            reason = f"{who.name!r} is opsagent's own machine actor; people cannot chat as it" \
                if who.name in MACHINE_ACTORS else str(actor_refusal(who.name))
            self._audit_refusal(who.name, channel, text, tool=None, summary=reason, rule=MACHINE_ACTOR_RULE)
            return self._reply(ChatReply(text="", actor=who.name, channel=channel, understood=False,
                                         refused=[Refusal(tool="-", summary="this request", rule=MACHINE_ACTOR_RULE,
                                                          reason=reason)]))
        command = parse(text)
        if isinstance(command, NotUnderstood):
            return self._not_understood(command, who, channel, text, identity=actor)
        reply = ChatReply(text="", actor=who.name, channel=channel, command=command.summary)
        if command.action == "help":
            shown = forms()
            reply.data["forms"] = list(shown)
            return self._reply(reply, body=["Commands I understand:", *(f"  {f}" for f in shown)])
        if command.action == "show_approvals":
            return self._show_approvals(reply)
        if command.action == "show_proposals":
            return self._show_proposals(reply, who, actor, channel)
        if command.action in ("approve", "reject"):
            return self._decide(command, who, channel, reply, text)
        if command.action in ("confirm", "refuse"):
            return self._answer(command, who, actor, channel, reply, text)
        if command.action == "lease":
            return self._lease(command, who, channel, reply, text)
        return self._run(command, who, channel, reply, text, identity=actor)

    def handle_decision(self, command: Command, *, actor: str, channel: str) -> ChatReply:
        """An approve/reject that did not come as text (a Slack button): same checks as `approve N`."""
        who = self.resolve(actor)
        text = f"{command.summary} (button)"
        if who is None:
            self._audit_refusal(actor, channel, text, tool=None, summary="not a mapped user", approval_id=command.approval_id, kind="approval")
            return self._reply(ChatReply(text="", actor=actor, channel=channel, command=command.summary,
                                         refused=[Refusal(tool="-", summary=command.summary, rule="<builtin>:chat-unmapped-user",
                                                          reason="you are not mapped to an opsagent actor")]))
        reply = ChatReply(text="", actor=who.name, channel=channel, command=command.summary)
        return self._decide(command, who, channel, reply, text)

    def handle_confirmation(self, command: Command, *, actor: str, channel: str) -> ChatReply:
        """A confirm/refuse that did not come as text (a Slack button): same checks as `confirm N`."""
        who = self.resolve(actor)
        text = f"{command.summary} (button)"
        if who is None:
            self._audit_refusal(actor, channel, text, tool=None, summary="not a mapped user", kind="confirmation")
            return self._reply(ChatReply(text="", actor=actor, channel=channel, command=command.summary,
                                         refused=[Refusal(tool="-", summary=command.summary, rule="<builtin>:chat-unmapped-user",
                                                          reason="you are not mapped to an opsagent actor")]))
        reply = ChatReply(text="", actor=who.name, channel=channel, command=command.summary)
        return self._answer(command, who, actor, channel, reply, text)

    # --- grammar commands --------------------------------------------------------
    def _run(self, command: Command, who: Actor, channel: str, reply: ChatReply, text: str, *, identity: str) -> ChatReply:
        run_id = f"chat-{uuid.uuid4().hex[:12]}"
        reply.run_id = run_id
        body: list[str] = []
        results: list[ToolResult] = []
        if command.action == "why":
            body = self._explain(command, who, channel, text, run_id, reply, results)
            reply.data["results"] = [r.model_dump(mode="json", exclude={"decision"}) for r in results]
            return self._reply(reply, body=body)
        for step in command.steps:
            result = self._submit(step.tool, step.args, who, channel, text, run_id, reply, command.summary, identity=identity)
            if result is not None:
                results.append(result)
                if get_tool(step.tool) is not None and get_tool(step.tool).risk == "read":  # type: ignore[union-attr]
                    body.extend(render.result_lines(result) if result.status in ("ok", "no_data") else [])
        reply.data["results"] = [r.model_dump(mode="json", exclude={"decision"}) for r in results]
        return self._reply(reply, body=body)

    def _submit(self, tool: str, args: dict[str, Any], who: Actor, channel: str, text: str, run_id: str,
                reply: ChatReply, summary: str, *, collect: bool = True, identity: str | None = None) -> ToolResult | None:
        spec = get_tool(tool)
        shown = render.call_summary(tool, args)
        if who.read_only and (spec is None or spec.risk != "read"):
            reason = "you are not mapped to an opsagent actor, so you may only read; ask an operator to add you"
            self._audit_refusal(who.name, channel, text, tool=tool, args=args, summary=reason,
                                risk=spec.risk if spec else None, run_id=run_id)
            reply.refused.append(Refusal(tool=tool, summary=shown, rule=READ_ONLY_RULE, reason=reason))
            return None
        call = ToolCall(tool=tool, args=args, actor=who.name, actor_groups=who.groups, channel="slack" if channel == "slack" else "cli",
                        message=redact(text)[:500], planner="chat-grammar")
        if spec is not None and spec.risk != "read":
            decision = self._preview(call)
            if decision is not None and decision.confirm and decision.effect != "deny":
                why = f"rule {decision.rule.file}:{decision.rule.name} asks you to confirm this write"
                self._propose(call, identity=identity or who.name, channel=channel, why=why, run_id=run_id, reply=reply)
                return None
        result = self.gate.submit(call, run_id=run_id)
        if collect:
            self._collect(result, reply, shown)
        return result

    def _lease(self, command: Command, who: Actor, channel: str, reply: ChatReply, text: str) -> ChatReply:
        """`wake NS/NAME for 2h`: the wake runs through the gate as the person, then the lease is recorded
        (opsagent.leases). A wake the policy wants confirmed is not leased from chat: it would run later."""
        step = command.steps[0]
        call = ToolCall(tool=step.tool, args=step.args, actor=who.name, actor_groups=who.groups,
                        channel="slack" if channel == "slack" else "cli", message=redact(text)[:500],
                        planner="chat-grammar")
        decision = None if who.read_only else self._preview(call)
        reason = ("you are not mapped to an opsagent actor, so you may only read" if who.read_only else
                  "the policy asks you to confirm this wake; a time-boxed wake cannot wait for a yes (use "
                  "`opsagent wake NS/NAME --for 2h`)" if decision is not None and decision.confirm else None)
        if reason is not None:
            rule = READ_ONLY_RULE if who.read_only else "<builtin>:lease"
            self._audit_refusal(who.name, channel, text, tool=step.tool, args=step.args, summary=reason, rule=rule)
            reply.refused.append(Refusal(tool=step.tool, summary=command.summary, rule=rule, reason=reason))
            return self._reply(reply)
        service, ref = LeaseService.over(self.gate), WorkloadRef(namespace=step.args["namespace"], name=step.args["name"])
        span = parse_duration(command.span or "")
        try:
            if active_for(service.leases(), f"{ref.namespace}/{ref.name}") is not None:   # already leased: 'for 3h' now means 3h from now
                lease = service.extend(ref, span, actor=who.name, channel=call.channel, actor_groups=who.groups)
                return self._reply(reply, body=[f"{lease.workload} lease extended: it stays up until "
                                                f"{lease.until:%Y-%m-%d %H:%M} UTC"])
            lease, result = service.start(ref, span, actor=who.name, channel=call.channel, actor_groups=who.groups)
        except LeaseRefused as exc:
            reply.refused.append(Refusal(tool=step.tool, summary=command.summary, rule="<builtin>:lease", reason=str(exc)))
            return self._reply(reply)
        self._collect(result, reply, render.call_summary(step.tool, step.args))
        reply.data["lease"] = lease.model_dump(mode="json")
        return self._reply(reply, body=[f"{lease.workload} stays up until {lease.until:%Y-%m-%d %H:%M} UTC, "
                                        "then goes back to sleep"])

    def _collect(self, result: ToolResult, reply: ChatReply, shown: str) -> None:
        spec = get_tool(result.tool)
        if result.status == "denied":
            rule = f"{result.decision.rule.file}:{result.decision.rule.name}" if result.decision else "<builtin>:unknown"
            reason = result.decision.reason if result.decision else result.message
            reply.refused.append(Refusal(tool=result.tool, summary=shown, rule=rule, reason=reason))
        elif result.status == "pending_approval" and result.approval_id is not None:
            approvers = list(result.data.get("approvers") or (result.decision.approvers if result.decision else ()))
            reply.pending.append(PendingItem(approval_id=result.approval_id, tool=result.tool, summary=shown,
                                             approvers=approvers, expires_at=result.data.get("expires_at")))
            approval = self.approvals.get(result.approval_id) if self.approvals is not None else None
            if approval is not None:
                reply.approvals.append(approval)
        elif result.status in ("error", "invalid"):
            reply.failed.append(DoneItem(tool=result.tool, summary=shown, status=result.status, message=result.message,
                                         audit_id=result.audit_id))
        elif spec is not None and spec.risk != "read":
            reply.done.append(DoneItem(tool=result.tool, summary=shown, status=result.status, message=result.message, shown=render.done_lines(result),
                                       audit_id=result.audit_id))

    def _explain(self, command: Command, who: Actor, channel: str, text: str, run_id: str, reply: ChatReply,
                 results: list[ToolResult]) -> list[str]:
        """`why is NS/NAME pending?`: a workload (its pods, described when not running, and its findings)
        or, when no workload has that name, a GPU job (its state and what blocks it)."""
        def submit(step: Step, *, collect: bool = True) -> ToolResult | None:
            return self._submit(step.tool, step.args, who, channel, text, run_id, reply, command.summary, collect=collect)

        first, *rest = command.steps
        workload = submit(first, collect=False)
        if workload is not None and _not_found(workload) and command.fallback:
            job = submit(command.fallback[0], collect=False)
            if job is not None and not _not_found(job):
                self._collect(job, reply, render.call_summary(job.tool, command.fallback[0].args))
                results.append(job)
                return self._explain_job(job)
            reply.failed.append(DoneItem(tool=first.tool, summary=command.summary, status="error",
                                         message=f"no workload or GPU job {command.workload} ("
                                                 + "; ".join(r.message.split(" failed: ", 1)[-1] for r in (workload, job) if r is not None)
                                                 + ")",
                                         audit_id=workload.audit_id))
            return []
        if workload is None:
            return []
        self._collect(workload, reply, render.call_summary(first.tool, first.args))
        results.append(workload)
        if not workload.ok:
            return []
        for step in rest:
            result = submit(step)
            if result is not None:
                results.append(result)
        by_tool = {r.tool: r for r in results}
        body: list[str] = []
        body.extend(render.result_lines(workload))
        pods = by_tool.get("list_pods")
        rows = PodList.of(pods).pods if pods is not None and pods.ok else []
        body.extend(render.result_lines(pods) if pods is not None and rows else ["  no pods: the workload is scaled to zero or none were created"])
        troubled = [p for p in rows if p.phase != "Running" or not p.ready][:MAX_DESCRIBED_PODS]
        for p in troubled:
            ns, _, name = p.pod.partition("/")
            described = self._submit("describe_pod", {"namespace": ns, "name": name}, who, channel, text, run_id, reply, command.summary)
            if described is not None and described.ok:
                results.append(described)
                body.extend(render.result_lines(described)[1:])
        findings = by_tool.get("list_findings")
        found = FindingList.of(findings).findings if findings is not None else []
        if found:
            body.extend(render.result_lines(findings))
        reason = WorkloadDetail.of(workload).rollout_reason
        if not troubled and not reason and not found:
            body.append("nothing looks wrong right now: all pods are running and ready")
        return body

    @staticmethod
    def _explain_job(job: ToolResult) -> list[str]:
        body = render.result_lines(job)
        detail = JobDetail.of(job) if job.ok else None
        if detail is not None and detail.state == "queued" and not detail.fits_now and not detail.idle_holders:
            body.append("  no workload is reported idle on GPUs now: the job starts when running work frees them")
        return body

    # --- confirmations: writes waiting for the asker's yes -------------------------
    def _preview(self, call: ToolCall) -> Any:
        preview = getattr(self.gate, "preview", None)
        return preview(call) if callable(preview) else None

    def _propose(self, call: ToolCall, *, identity: str, channel: str, why: str, run_id: str | None, reply: ChatReply,
                 named: bool = True) -> None:
        """Hold `call` until the person who asked confirms it; the reply shows its number."""
        shown = render.call_summary(call.tool, call.args)
        if self.confirmations is None:
            reply.refused.append(Refusal(tool=call.tool, summary=shown, rule="<builtin>:chat-no-confirmations",
                                         reason="this chat keeps no confirmations, so a write that needs your yes cannot run here"))
            return
        if len(reply.proposed) >= MAX_PROPOSALS:
            reply.refused.append(Refusal(tool=call.tool, summary=shown, rule="<builtin>:chat-too-many-proposals",
                                         reason=f"one message may leave at most {MAX_PROPOSALS} writes waiting for your yes"))
            return
        made = self.confirmations.propose(call=call, identity=identity, channel=channel, why=why, run_id=run_id)
        if any(p.confirmation_id == made.id for p in reply.proposed):
            return
        reply.proposed.append(ProposedItem(confirmation_id=made.id, tool=call.tool, summary=shown, why=why,
                                           expires_at=made.expires_at.isoformat(), named=named))

    def _show_proposals(self, reply: ChatReply, who: Actor, identity: str, channel: str) -> ChatReply:
        """The person's own writes still waiting for their yes on this channel."""
        if self.confirmations is None:
            return self._reply(reply, body=["this chat keeps no confirmations"])
        self.confirmations.expire_due()
        mine = [c for c in self.confirmations.waiting(actor=who.name, channel=channel) if c.identity == identity]
        for c in mine:
            reply.proposed.append(ProposedItem(confirmation_id=c.id, tool=c.call.tool, summary=render.call_summary(c.call.tool, c.call.args),
                                               why=c.why, expires_at=c.expires_at.isoformat()))
        return self._reply(reply, body=[] if mine else ["no writes are waiting for your yes"])

    def _answer(self, command: Command, who: Actor, identity: str, channel: str, reply: ChatReply, text: str) -> ChatReply:
        """`confirm N` runs the waiting call through the gate as the person; `refuse N` drops it."""
        number = command.confirmation_id
        assert number is not None
        reply.data["confirmation_id"] = number
        if self.confirmations is None:
            return self._reply(reply, body=["this chat keeps no confirmations"])
        found = self.confirmations.get(number)
        shown = render.call_summary(found.call.tool, found.call.args) if found else f"confirmation #{number}"
        tool = found.call.tool if found else "-"
        if who.read_only:  # someone else's waiting call is not shown to them
            reason = "you are not mapped to an opsagent actor, so you cannot confirm or refuse writes"
            self._audit_refusal(who.name, channel, text, tool=tool if found else None, summary=reason, kind="confirmation")
            reply.refused.append(Refusal(tool="-", summary=f"confirmation #{number}", rule=READ_ONLY_RULE, reason=reason))
            return self._reply(reply)
        answer = self.confirmations.confirm if command.action == "confirm" else self.confirmations.refuse
        try:
            done = answer(number, actor=who.name, identity=identity, channel=channel)
        except ConfirmationRefused as exc:
            if exc.code in ("not_yours", "other_channel"):  # someone else's call is not shown to them
                tool, shown = "-", f"confirmation #{number}"
            reply.refused.append(Refusal(tool=tool, summary=shown, rule=f"confirmations:{exc.code}", reason=exc.message))
            return self._reply(reply)
        if done.state == "refused":
            return self._reply(reply, body=[f"dropped #{number} ({shown}): it will not run"])
        run_id = f"chat-{uuid.uuid4().hex[:12]}"
        reply.run_id = run_id
        result = self.gate.submit(done.call.model_copy(update={"id": None}), run_id=run_id, confirmation=done.id)
        reply.data["result"] = result.model_dump(mode="json", exclude={"decision"})
        self._collect(result, reply, shown)
        return self._reply(reply, body=[f"confirmed #{number} ({shown})"])

    # --- approvals ---------------------------------------------------------------
    def _show_approvals(self, reply: ChatReply) -> ChatReply:
        if self.approvals is None:
            return self._reply(reply, body=["no approval queue is configured"])
        expire = getattr(self.approvals, "expire_due", None)
        if callable(expire):
            expire()
        waiting = self.approvals.list("pending")
        reply.data["approvals"] = [a.model_dump(mode="json") for a in waiting]
        body = [f"{len(waiting)} approval(s) waiting:"] + [f"  {render.approval_line(a)}" for a in waiting] if waiting else ["no approvals waiting"]
        return self._reply(reply, body=body)

    def _decide(self, command: Command, who: Actor, channel: str, reply: ChatReply, text: str) -> ChatReply:
        approval_id = command.approval_id
        assert approval_id is not None
        reply.data["approval_id"] = approval_id
        if self.approvals is None:
            return self._reply(reply, body=["no approval queue is configured"])
        existing = self.approvals.get(approval_id)
        shown = render.call_summary(existing.call.tool, existing.call.args) if existing else f"approval #{approval_id}"
        tool = existing.call.tool if existing else "-"
        if who.read_only:
            reason = "you are not mapped to an opsagent actor, so you cannot approve or reject"
            self._audit_refusal(who.name, channel, text, tool=tool if existing else None, summary=reason,
                                approval_id=approval_id, kind="approval")
            reply.refused.append(Refusal(tool=tool, summary=shown, rule=READ_ONLY_RULE, reason=reason, approval_id=approval_id))
            return self._reply(reply)
        return self._reply(reply, body=self.decide_approval(approval_id, actor=who.name, channel=channel,
                                                            approve=command.action == "approve", note=command.note, reply=reply))

    def decide_approval(self, approval_id: int, *, actor: str, channel: str, approve: bool, note: str | None,
                        reply: ChatReply) -> list[str]:
        """Approve (and run) or reject one request as `actor`; fills `reply`, returns body lines.

        Shared by the `approve N` command and Slack's buttons, so both follow the same rules.
        """
        existing = self.approvals.get(approval_id)
        shown = render.call_summary(existing.call.tool, existing.call.args) if existing else f"approval #{approval_id}"
        tool = existing.call.tool if existing else "-"
        note = redact(note) if note else note
        try:
            if approve:
                approval = self.approvals.approve(approval_id, by=actor, comment=note, channel=channel)
            else:
                approval = self.approvals.reject(approval_id, by=actor, reason=note or "", channel=channel)
        except ApprovalError as exc:
            reply.refused.append(Refusal(tool=tool, summary=shown, rule=f"approvals:{type(exc).__name__}",
                                         reason=exc.message, approval_id=approval_id))
            return []
        except ValueError as exc:
            reply.refused.append(Refusal(tool=tool, summary=shown, rule="approvals:invalid", reason=str(exc), approval_id=approval_id))
            return []
        reply.data["approval"] = approval.model_dump(mode="json")
        if not approve:
            report = self._resume(approval, decided_state="rejected", actor=actor, channel=channel)
            if report is not None:
                reply.run_id = report.run_id
            return [f"rejected #{approval_id} ({shown}): {note}"]
        lines = [f"approved #{approval_id} ({shown})"]
        result = self._execute_approved(approval, actor=actor, reply=reply, channel=channel)
        if result is None:
            return lines
        reply.data["result"] = result.model_dump(mode="json", exclude={"decision"})
        self._collect_approved(result, reply, shown, approval_id)
        return lines

    def _execute_approved(self, approval: Approval, *, actor: str, reply: ChatReply, channel: str) -> ToolResult | None:
        """Run an approved call once: resume the agent run waiting on it, or run it through the gate."""
        report = self._resume(approval, decided_state="approved", actor=actor, channel=channel)
        if report is not None:
            reply.run_id = report.run_id
            reply.data["run"] = report.model_dump(mode="json") if isinstance(report, BaseModel) else {}
            for action in reversed(list(getattr(report, "actions", ()))):
                if action.approval_id == approval.id and action.status != "pending_approval":
                    return ToolResult(status=action.status, tool=action.tool, message=action.message, approval_id=approval.id)
            return None
        try:
            return self.approvals.execute(approval.id, run=lambda a: self.gate.run_approved(a, approver=actor), actor=actor,
                                          channel=channel)
        except ApprovalError as exc:
            return ToolResult(status="denied", tool=approval.call.tool, message=exc.message, approval_id=approval.id)

    def _resume(self, approval: Approval, *, decided_state: str, actor: str, channel: str) -> Any:
        """The agent run waiting on this approval, resumed; None when no run waits for it."""
        resume = getattr(self.agent, "resume", None)
        if not approval.thread_id or not callable(resume):
            return None
        state = getattr(self.agent, "state", None)
        current = state(approval.thread_id) if callable(state) else None
        if current is None or approval.id not in (getattr(current, "pending_approvals", None) or ()):
            return None
        return resume(approval.thread_id, approval_id=approval.id, decided_state=decided_state, approver=actor,
                      approval=approval, channel=channel)

    def _collect_approved(self, result: ToolResult, reply: ChatReply, shown: str, approval_id: int) -> None:
        if result.status == "denied":
            rule = f"{result.decision.rule.file}:{result.decision.rule.name}" if result.decision else "approvals:execute"
            reply.refused.append(Refusal(tool=result.tool, summary=shown, rule=rule,
                                         reason=result.decision.reason if result.decision else result.message, approval_id=approval_id))
        elif result.status in ("ok", "no_data"):
            reply.done.append(DoneItem(tool=result.tool, summary=shown, status=result.status, message=result.message, shown=render.done_lines(result),
                                       audit_id=result.audit_id, approval_id=approval_id))
        else:
            reply.failed.append(DoneItem(tool=result.tool, summary=shown, status=result.status, message=result.message,
                                         audit_id=result.audit_id, approval_id=approval_id))

    # --- free text -----------------------------------------------------------------
    def _not_understood(self, nu: NotUnderstood, who: Actor, channel: str, text: str, *, identity: str) -> ChatReply:
        if self.understands_free_text and not who.read_only and nu.reason != "the message is empty":
            groups = {"actor_groups": who.groups} if who.groups else {}  # deny rules on cluster groups apply here too
            report = self.agent.handle_message(text, actor=who.name, channel=channel, **groups)
            return self._from_report(report, who, channel, text=text, identity=identity)
        reply = ChatReply(text="", actor=who.name, channel=channel, understood=False,
                          data={"reason": nu.reason, "hint": nu.hint, "forms": list(nu.forms)})
        body = [f"I did not understand that: {nu.reason}."]
        if nu.hint:
            body.append(nu.hint)
        body += ["Commands that work:", *(f"  {f}" for f in nu.forms)]
        if not self.understands_free_text:
            body.append("(free-form questions need a model: pass --model, an Ollama model or openai:NAME with --base-url)")
        return self._reply(reply, body=body)

    @property
    def understands_free_text(self) -> bool:
        """Free text goes to the agent only when it plans with an LLM (not the offline planner)."""
        return callable(getattr(self.agent, "handle_message", None)) and getattr(self.agent, "planner_name", "llm") != "offline"

    def _from_report(self, report: Any, who: Actor, channel: str, *, text: str, identity: str) -> ChatReply:
        """Turn the agent's run report into a reply: its actions sorted into done/failed/refused/pending,
        and the writes the model proposed held as confirmations for the person who asked."""
        reply = ChatReply(text="", actor=who.name, channel=channel, command="agent", run_id=getattr(report, "run_id", None))
        named = set(named_workloads(text.lower()))
        for action in getattr(report, "actions", None) or ():
            shown = render.call_summary(action.tool, action.args)
            spec = get_tool(action.tool)
            if action.status == PROPOSED:
                # the person's cluster groups travel with the held call: a deny rule on them must still hold at `confirm`
                call = ToolCall(tool=action.tool, args=dict(action.args), actor=who.name, actor_groups=who.groups,
                                channel="slack" if channel == "slack" else "cli", message=redact(text)[:500],
                                planner=getattr(report, "planner", None) or "llm")
                self._propose(call, identity=identity, channel=channel, why="the model proposed it in answer to your message",
                              run_id=reply.run_id, reply=reply, named=_target_named(action.args, named, text))
            elif action.status == "denied":
                rule, _, reason = action.message.removeprefix("denied by ").partition(": ")
                reply.refused.append(Refusal(tool=action.tool, summary=shown, rule=rule if reason else "policy", reason=reason or action.message))
            elif action.status == "pending_approval" and action.approval_id is not None:
                approval = self.approvals.get(action.approval_id) if self.approvals is not None else None
                reply.pending.append(PendingItem(approval_id=action.approval_id, tool=action.tool, summary=shown,
                                                 approvers=list(approval.approvers) if approval else [],
                                                 expires_at=approval.expires_at.isoformat() if approval else None))
                if approval is not None:
                    reply.approvals.append(approval)
            elif action.status in ("error", "invalid"):
                reply.failed.append(DoneItem(tool=action.tool, summary=shown, status=action.status, message=action.message))
            elif spec is not None and spec.risk != "read":
                reply.done.append(DoneItem(tool=action.tool, summary=shown, status=action.status, message=action.message,
                                           approval_id=action.approval_id))
        summary = getattr(report, "summary", "") or ""
        reply.data["report"] = report.model_dump(mode="json") if isinstance(report, BaseModel) else {"summary": str(summary)}
        # The model's words are quoted, so nothing it writes can pass for what opsagent did or proposed.
        return self._reply(reply, body=[f"> {render.plain(line, 1000)}" for line in str(summary).splitlines() if line.strip()])

    # --- helpers -------------------------------------------------------------------
    def _reply(self, reply: ChatReply, *, body: list[str] | None = None) -> ChatReply:
        reply.text = render.reply_text(reply, body=body)
        return reply

    def _audit_refusal(self, actor: str, channel: str, text: str, *, tool: str | None, summary: str,
                       args: dict[str, Any] | None = None, risk: str | None = None, run_id: str | None = None,
                       approval_id: int | None = None, kind: str = "decision", rule: str = READ_ONLY_RULE) -> None:
        if self.recorder is None:
            return
        rule_file, _, rule_name = rule.partition(":")
        self.recorder.record(AuditEntry(
            time=self.clock.now(), kind=kind, actor=actor, channel=channel, run_id=run_id, message=redact(text)[:500],
            tool=tool, args=args, risk=risk, decision="deny", rule_file=rule_file, rule_name=rule_name,  # type: ignore[arg-type]
            approval_id=approval_id, outcome="denied", summary=summary,
        ))


def _target_named(args: dict[str, Any], named: set[str], text: str) -> bool:
    """Whether the person's message names what a proposed call changes (its workload, or its node)."""
    ns, name = args.get("namespace"), args.get("name")
    if isinstance(ns, str) and isinstance(name, str):
        return f"{ns}/{name}" in named
    node = args.get("node")
    return isinstance(node, str) and bool(node) and node in text.lower().replace(",", " ").split()
