"""cleanlist-pandas: Cleanlist contact enrichment for pandas and Jupyter.

>>> import cleanlist_pandas as clp
>>> clp.__version__
'0.1.0'

Public names are imported lazily, so ``import cleanlist_pandas`` stays cheap; importing the
package registers the ``df.cleanlist`` accessor once the engine exists.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it
_LAZY: dict[str, str] = {
    "Sandbox": "cleanlist_pandas.sandbox",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cleanlist_pandas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
