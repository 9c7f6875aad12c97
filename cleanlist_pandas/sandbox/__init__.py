"""The sandbox: a local, stateful emulator of the Cleanlist Public API v1.

>>> from cleanlist_pandas.sandbox import Sandbox, SandboxConfig
>>> with Sandbox(credits=100, time_scale=0.01) as sb:  # doctest: +SKIP
...     print(sb.base_url, sb.api_key)

From a shell: ``python -m cleanlist_pandas.sandbox`` or ``cleanlist-pandas sandbox``.
Without a server (a simulator on a virtual clock): :class:`SandboxState` with ``clock=``.
"""

from __future__ import annotations

from cleanlist_pandas.sandbox.config import SandboxConfig
from cleanlist_pandas.sandbox.oracle import contact_fingerprint
from cleanlist_pandas.sandbox.server import Sandbox
from cleanlist_pandas.sandbox.state import ApiError, SandboxState

__all__ = ["ApiError", "Sandbox", "SandboxConfig", "SandboxState", "contact_fingerprint"]
