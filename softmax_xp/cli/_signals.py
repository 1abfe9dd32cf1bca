"""Ctrl-C, SIGTERM and SIGHUP as one interruption, and a save that no second signal can break.

Batch schedulers stop a job with SIGTERM and a closed terminal sends SIGHUP; inside
:class:`Interruptions` all three raise :class:`Interrupted` (a ``KeyboardInterrupt``), so one
``except KeyboardInterrupt`` saves the completed work for each. From the first signal on (or from
:meth:`Interruptions.defer`), further signals are only noted, so the save that follows always
finishes: no traceback, no half-written file. The exit code is ``128 + signum`` (130 for Ctrl-C,
143 for SIGTERM, 129 for SIGHUP), as a shell reports a process killed by that signal. A signal
ignored when the run starts (``nohup`` ignores SIGHUP) stays ignored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Interrupted", "Interruptions", "exit_code", "signal_name"]

SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def exit_code(signum: int) -> int:
    return 128 + int(signum)


class Interrupted(KeyboardInterrupt):
    """A run was stopped by signal ``signum``."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class Interruptions:
    """While active, SIGINT/SIGTERM/SIGHUP raise :class:`Interrupted` once, then are only noted.

    ``notice`` is called with a message when a signal arrives during the save.
    """

    def __init__(self, notice: Callable[[str], None]):
        self.notice = notice
        self.received: list[int] = []
        self.deferring = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interruptions:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                if signal.getsignal(signum) is signal.SIG_IGN:
                    continue  # ignored on purpose (nohup ignores SIGHUP): keep it so
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        if self.deferring:
            self.notice(
                f"{signal.Signals(signum).name}: still saving, please wait "
                "(the files are written whole or not at all)"
            )
            return
        self.deferring = True
        raise Interrupted(signum)

    def defer(self, error: BaseException | None = None) -> None:
        """From now on only note signals. ``error``: a KeyboardInterrupt raised without a signal
        handler of ours (counted as Ctrl-C)."""
        self.deferring = True
        if isinstance(error, KeyboardInterrupt) and not self.received:
            self.received.append(getattr(error, "signum", signal.SIGINT))

    @property
    def exit_code(self) -> int | None:
        """``128 + signum`` of the first signal received, or None."""
        return exit_code(self.received[0]) if self.received else None


def signal_name(error: BaseException) -> str:
    signum = getattr(error, "signum", signal.SIGINT)
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
