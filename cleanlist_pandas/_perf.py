"""Small performance helpers shared by the data layer and the cache.

>>> with gc_paused():
...     pass
"""

from __future__ import annotations

import contextlib
import gc
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
