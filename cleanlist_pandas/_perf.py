"""Small performance helpers shared by the data layer, the cache and the run.

>>> with gc_paused():
...     pass
>>> thaw_heap(freeze_heap())
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk step (restored afterwards).

    Bulk steps create hundreds of thousands of small objects; with millions of live objects
    (result dicts), each automatic collection rescans them all. Nothing here creates cycles.
    Usable as a context manager or a decorator.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()



_frozen = 0  # runs going on that froze the heap
_frozen_lock = threading.Lock()


def freeze_heap() -> bool:
    """Keep the objects that exist now (the session's heap: pandas, the user's frames,
    IPython's history) out of the cyclic collector's scans until :func:`thaw_heap`.
    Returns whether it did (pass that to :func:`thaw_heap`).

    A run of 5,000 rows decodes ~100,000 result objects; that is what triggers a full
    collection, and a full collection rescans the whole heap: ~100 ms with the loop thread
    stopped, right when the last workflows are read. Frozen, it scans only the run's own
    objects. Nothing is lost: cyclic garbage among the frozen objects is collected after the
    thaw. Runs at the same time share one freeze (the last to end thaws); a heap the process
    froze itself (``gc.freeze()`` before forking) is left as it is.
    """
    global _frozen
    with _frozen_lock:
        if _frozen == 0:
            if gc.get_freeze_count():
                return False  # not ours to thaw
            gc.freeze()
        _frozen += 1
        return True


def thaw_heap(froze: bool) -> None:
    """Undo a :func:`freeze_heap` that returned ``froze`` (the last run to end returns the
    objects to the collector)."""
    global _frozen
    if not froze:
        return
    with _frozen_lock:
        _frozen -= 1
        if _frozen == 0:
            gc.unfreeze()
