"""Chat-ops: the command grammar, the chat service, reply rendering and the Slack app.

People talk to opsagent here (`opsagent ask`, `opsagent chat`, Slack). Every
request runs as the person who asked, through the same gate, tools and audit as
the daemon. Nothing in this package writes to the cluster except through the gate.
"""

from opsagent.chat.grammar import Command, NotUnderstood, Step, forms, parse

__all__ = ["Command", "NotUnderstood", "Step", "forms", "parse"]
