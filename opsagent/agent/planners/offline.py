"""The offline planner: a playbook's steps, in order, one per round, with no model.

It is the embedded default and the fallback when the LLM is unavailable. Each
round it renders the playbook's steps against the current snapshot, skips the
steps that already succeeded in this run (same tool, same arguments), and
proposes the next one. A step that was already tried and did not succeed
(denied, invalid, error, rejected) ends the run: a fixed procedure cannot
correct itself, so it says why and stops. The graph's verify step ends the run
earlier when the playbook's verify condition passes.
It never runs tools itself and never talks to the network.
"""

from __future__ import annotations

from opsagent.agent.planners import Plan, PlanInput, ProposedCall
from opsagent.agent.playbook_view import render_steps
from opsagent.agent.turns import call_key as _key
from opsagent.playbooks import TemplateError


class OfflinePlanner:
    name = "offline"

    def plan(self, inp: PlanInput) -> Plan:
        if inp.finding is None:
            return Plan(done=True, text="The offline planner only works on findings; it cannot act on a chat message.")
        if inp.playbook is None:
            return Plan(done=True, text=f"No playbook handles findings of kind {inp.finding.kind}; nothing done.")
        try:
            steps = render_steps(inp.playbook, inp.finding, inp.snapshot)
        except TemplateError as exc:
            return Plan(done=True, text=f"Playbook {inp.playbook.name} cannot be applied: {exc}")
        succeeded = {_key(r["tool"], r.get("args") or {}) for r in inp.results if r.get("status") == "ok"}
        tried = {_key(r["tool"], r.get("args") or {}): r for r in inp.results}
        for index, (tool, args) in enumerate(steps):
            key = _key(tool, args)
            if key in succeeded:
                continue
            if key in tried:
                last = tried[key]
                return Plan(done=True, text=f"Stopped at step {index + 1} ({tool}): {last.get('status')}: {last.get('message', '')}")
            return Plan(calls=(ProposedCall(tool=tool, args=args, id=f"offline-{index}"),))
        return Plan(done=True, text=f"Playbook {inp.playbook.name}: all {len(steps)} steps done.")
