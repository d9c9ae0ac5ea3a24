"""The agent: a LangGraph loop that plans tool calls for a finding or a chat message.

Public names: `Agent` (run, resume, list waiting runs), `RunReport`,
`AgentConfig`, `AgentError`, and the planners (`OfflinePlanner`, `LlmPlanner`).
Every call goes through the gate; the agent never holds a writable cluster.
"""

from opsagent.agent.config import AgentConfig
from opsagent.agent.planners.offline import OfflinePlanner
from opsagent.agent.runner import Action, Agent, AgentError, RunReport

__all__ = ["Action", "Agent", "AgentConfig", "AgentError", "OfflinePlanner", "RunReport"]
