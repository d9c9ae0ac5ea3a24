"""Policy: intents, rules, limits and the pure decision function.

Public names: `load_policy`, `read_policy`, `Policy`, `PolicyError`, `Problem`,
`decide`, `explain`, `lint`, `Counts`, `NO_COUNTS`, `counts_from_recorder`,
`Intent`. Pure apart from the loader, which reads the policy files.
"""

from opsagent.policy.decide import decide
from opsagent.policy.errors import PolicyError, Problem
from opsagent.policy.intents import Intent
from opsagent.policy.limits import NO_COUNTS, Counts, EntryCounts, RecorderCounts, counts_from_recorder
from opsagent.policy.loader import load_policy, read_policy
from opsagent.policy.policy import Policy

__all__ = [
    "NO_COUNTS", "Counts", "EntryCounts", "Intent", "Policy", "PolicyError", "Problem", "RecorderCounts",
    "counts_from_recorder", "decide", "load_policy", "read_policy",
]
