"""Ctrl-C in a plain script ends the process the way Python's own Ctrl-C does.

Python ends a script whose uncaught exception is exactly ``KeyboardInterrupt`` by SIGINT
(the shell sees status 130, and a calling shell script stops too); any other uncaught
exception, a *subclass* of ``KeyboardInterrupt`` included, exits with status 1.
:class:`~cleanlist_pandas.run.job.EnrichmentInterrupted` is such a subclass (so that
``except KeyboardInterrupt`` still catches it). :func:`die_by_sigint_if_uncaught` restores
Python's behaviour for it: an ``sys.excepthook`` that, after the usual report, ends the
process by SIGINT when the exception is an uncaught ``KeyboardInterrupt`` subclass. The hook
is installed only once a run is interrupted, chains to the hook it replaces, and does
nothing for any other exception; IPython and Jupyter do not use ``sys.excepthook`` for a
cell's error, so a kernel is never affected. The command line exits 130 itself.

>>> die_by_sigint_if_uncaught()          # doctest: +SKIP
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import TracebackType

__all__ = ["die_by_sigint_if_uncaught"]

_lock = threading.Lock()


class _Hook:
    """``sys.excepthook`` wrapper: report as before, then die by SIGINT for an uncaught
    KeyboardInterrupt subclass (POSIX; elsewhere the status stays Python's)."""

    def __init__(self, previous: object) -> None:
        self.previous = previous

    def __call__(
        self,
        etype: type[BaseException],
        value: BaseException,
        tb: TracebackType | None,
    ) -> None:
        previous = self.previous if callable(self.previous) else sys.__excepthook__
        previous(etype, value, tb)
        subclass = issubclass(etype, KeyboardInterrupt) and etype is not KeyboardInterrupt
        main = threading.current_thread() is threading.main_thread()
        if subclass and main and os.name == "posix":
            sys.stdout.flush()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)


def die_by_sigint_if_uncaught() -> None:
    """Make an uncaught ``EnrichmentInterrupted`` end the process by SIGINT, as an uncaught
    ``KeyboardInterrupt`` does (status 130 in the shell). Called when a run is interrupted;
    idempotent."""
    with _lock:
        if not isinstance(sys.excepthook, _Hook):
            sys.excepthook = _Hook(sys.excepthook)
