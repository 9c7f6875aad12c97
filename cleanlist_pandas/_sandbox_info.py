"""What a local sandbox says of itself, so a client pointed at one needs no plumbing.

A :class:`~cleanlist_pandas.sandbox.Sandbox` (or ``cleanlist-pandas sandbox`` in another
shell) answers ``GET /_sandbox/info`` on its loopback port with its clock (``time_scale``),
its rate window and the scratch directory it keeps for its clients' cache, journal and spend
ledger. :func:`probe` reads that — only for a loopback host, so the real API
(``https://api.cleanlist.ai``) is never asked — and the package uses it to:

* pace a client to the sandbox's own window (``60 s × time_scale``) and read its workflows
  at the sandbox's speed, unless ``rate=``/``per=``/``poll=`` were given;
* keep the sandbox's invented results out of the user's real cache: a run against a
  sandbox uses its scratch directory unless a cache directory was chosen
  (``clp.configure(cache_dir=...)``, ``CLEANLIST_CACHE_DIR``, ``--cache-dir``).

This module knows nothing of the sandbox's code (the sandbox shares only ``_constants``
with the client): it reads a documented JSON shape, tolerantly, and anything else — a
refused connection, a 404, a body without ``time_scale`` — means "not a sandbox".

>>> probe("https://api.cleanlist.ai/api/v1/public") is None     # never asked: not loopback
True
>>> SandboxInfo.from_json({"sandbox": True, "time_scale": 0.1}).window_s
6.0
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cleanlist_pandas._constants import (
    RATE_LIMIT_PER_ORG,
    RATE_LIMIT_WINDOW_S,
    is_loopback_host,
)

__all__ = ["INFO_PATH", "SandboxInfo", "origin_of", "probe"]

#: The sandbox's self-description route, relative to the origin (not under the API prefix).
INFO_PATH: Final = "/_sandbox/info"
#: How long a probe may take (seconds): it is a loopback request.
PROBE_TIMEOUT_S: Final = 2.0


def origin_of(base_url: str) -> str:
    """The API's origin: scheme, host and port, lower-case — what a cached result is
    attributed to, with the organization that paid for it.

    >>> origin_of("https://API.cleanlist.ai/api/v1/public")
    'https://api.cleanlist.ai'
    >>> origin_of("http://127.0.0.1:8765/api/v1/public")
    'http://127.0.0.1:8765'
    """
    parts = urllib.parse.urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}"


@dataclass(frozen=True)
class SandboxInfo:
    """A sandbox's answer to ``GET /_sandbox/info`` (the fields the client uses).

    ``window_s`` is the sandbox's rate window in real seconds (its service window times
    ``time_scale``); ``scratch_dir`` the directory it keeps for its clients (None: it keeps
    none, e.g. it was started with ``cache_dir=`` pointing at one the user chose — then that
    one is given).
    """

    time_scale: float
    rate_limit_per_org: int = RATE_LIMIT_PER_ORG
    rate_limit_window_s: float = RATE_LIMIT_WINDOW_S
    scratch_dir: Path | None = None
    organization_id: str | None = None

    @property
    def window_s(self) -> float:
        """The rate window in real seconds."""
        return self.rate_limit_window_s * self.time_scale

    @classmethod
    def from_json(cls, body: Any) -> SandboxInfo | None:
        """Read the answer tolerantly; None when it is not a sandbox's.

        >>> SandboxInfo.from_json({"time_scale": "x"}) is None, SandboxInfo.from_json([])
        (True, None)
        """
        if not isinstance(body, Mapping):
            return None
        ts = body.get("time_scale")
        if isinstance(ts, bool) or not isinstance(ts, int | float):
            return None
        if not (math.isfinite(ts) and ts > 0):
            return None
        rate = body.get("rate_limit_per_org")
        window = body.get("rate_limit_window_s")
        scratch = body.get("cache_dir")
        org = body.get("organization_id")
        return cls(
            time_scale=float(ts),
            rate_limit_per_org=int(rate)
            if isinstance(rate, int) and not isinstance(rate, bool) and rate >= 1
            else RATE_LIMIT_PER_ORG,
            rate_limit_window_s=float(window)
            if isinstance(window, int | float) and not isinstance(window, bool) and window > 0
            else RATE_LIMIT_WINDOW_S,
            scratch_dir=Path(scratch) if isinstance(scratch, str) and scratch else None,
            organization_id=org if isinstance(org, str) and org else None,
        )


def probe(base_url: str) -> SandboxInfo | None:
    """What the sandbox at ``base_url`` says of itself, or None (not loopback, not a
    sandbox, not answering). Blocking, at most :data:`PROBE_TIMEOUT_S` (a loopback request:
    a millisecond, or an instant refusal). Not remembered here: a client asks once and keeps
    the answer; a sandbox restarted on the same port is asked anew by the next client.

    >>> probe("http://127.0.0.1:9/api/v1/public")      # nothing listens on port 9
    """
    origin = origin_of(base_url)
    host = urllib.parse.urlsplit(origin).hostname or ""
    if not is_loopback_host(host):
        return None
    return _ask(origin)


def _ask(origin: str) -> SandboxInfo | None:
    import httpx

    try:
        r = httpx.get(origin + INFO_PATH, timeout=PROBE_TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    try:
        return SandboxInfo.from_json(r.json())
    except ValueError:
        return None
