"""SIGTERM/SIGINT handling: ask the loop to stop after the step in progress.

The handler only sets an event; the loop checks it between agent runs and
while it waits for the next cycle. It must not exit the process itself.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable


class StopFlag:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None

    def set(self, reason: str = "stop") -> None:
        self.signal_name = self.signal_name or reason
        self.event.set()

    @property
    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        return self.event.wait(max(0.0, seconds))


def install(stop: StopFlag, *, on_signal: Callable[[str], None] | None = None) -> None:
    """Route SIGTERM and SIGINT to `stop` (main thread only; elsewhere this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if on_signal is not None:
            on_signal(name)
        stop.set(name)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
