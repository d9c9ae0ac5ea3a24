"""opsagent: an agentic cluster-ops controller held inside human-written policy.

The agent does the toil (reconcile, wake, sleep idle GPUs, retry rollouts);
people own the architecture (they approve what the agent may only propose).
"""

__version__ = "0.1.0"
