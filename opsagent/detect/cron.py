"""The prewarm cron matcher, for the detectors.

The parser lives in `opsagent.policy.cron` so the policy loader can reject a
bad cron when the policy loads; detectors read the same functions from here.
"""

from opsagent.policy.cron import Cron, CronError, latest_match, parse_cron, window_open

__all__ = ["Cron", "CronError", "latest_match", "parse_cron", "window_open"]
