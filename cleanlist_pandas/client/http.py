"""The one request loop: pacing, retries, error mapping — shared by every API call.

Why one module of this size: the pacer, the retry table and the error mapping are the three
halves of one decision per attempt (may it go, may it be repeated, what does its answer
mean), each tested on its own below; split, the request loop would import all three anyway.

Pieces, each usable on its own:

* :class:`Pacer` — the sliding rate window shared by all requests of a client (and by every
  client of the same key in the process), thread-safe and not bound to an event loop;
  counters for benchmarks (:meth:`Pacer.stats`).
* :func:`retry_decision` — the pure table of what is retried, raised, or ambiguous.
* :func:`parse_retry_after` and :func:`backoff_delay` — server-directed and computed delays.
* Events (:mod:`cleanlist_pandas.events`) passed to ``on_event`` listeners: ``RequestSent``,
  ``ResponseReceived``, ``RetryScheduled``, ``PacerWait``.
* :class:`RequestLoop` — sends one logical request through all of the above.

>>> retry_decision("POST", exc=httpx.ReadTimeout("timed out"))
<Decision.AMBIGUOUS: 'ambiguous'>
>>> retry_decision("GET", status=502)
<Decision.RETRY: 'retry'>
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import hashlib
import json
import logging
import math
import os
import random
import ssl
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from cleanlist_pandas._constants import (
    INITIAL_RETRY_DELAY,
    MAX_RETRY_DELAY,
    RATE_LIMIT_PER_ORG,
    RATE_LIMIT_WINDOW_S,
    __version__,
)
from cleanlist_pandas.config import Settings, mask_key
from cleanlist_pandas.errors import (
    AmbiguousSubmissionError,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    UnexpectedResponseError,
    UserError,
    UserValueError,
    ValidationError,
    status_error_class,
)
from cleanlist_pandas.events import (
    ClientEvent,
    Listener,
    PacerWait,
    RequestSent,
    ResponseReceived,
    RetryScheduled,
    emit,
)

__all__ = [
    "Decision",
    "Pacer",
    "PacerStats",
    "RequestLoop",
    "SendHooks",
    "backoff_delay",
    "parse_retry_after",
    "reset_shared_pacers",
    "retry_decision",
    "shared_pacer",
]

logger = logging.getLogger("cleanlist_pandas.http")

USER_AGENT: Final = f"cleanlist-pandas/{__version__}"

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


# --------------------------------------------------------------------------------------
# pacer


@dataclass(frozen=True)
class PacerStats:
    """A snapshot of a pacer's counters."""

    requests: int
    throttled: int
    retries: int
    waited_s: float
    retry_wait_s: float


class _Slot:
    """One request's place in the window: when it was sent, and when its answer came."""

    __slots__ = ("done", "sent")

    def __init__(self, sent: float, done: float | None = None) -> None:
        self.sent = sent
        self.done = done


class Pacer:
    """A sliding window shared by every request of a client (thread-safe, loop-agnostic).

    The API allows ``rate`` requests in a fixed ``per``-second window per organization (spec
    §2). "At most ``rate - 1`` in any ``per`` seconds" is safe under a fixed window, a sliding
    window and a token bucket alike, and it lets a job's first submissions all leave at once
    (40 chunks at t = 0) instead of one a second.

    The server counts a request when it *arrives*, which we never see; but it has arrived by
    the time its answer is back. So a request holds its place in the window from when it is
    sent until ``per`` seconds after its answer (:meth:`release`): the next request beyond the
    limit waits for that, never for a guess. This is exact whatever the latency (a request's
    own latency is the only slack), keeps one request of headroom (``rate - 1``), and adds
    ``margin`` seconds (default 0.2 % of ``per``: 0.12 s a minute, twenty times what two
    NTP-kept clocks drift apart in one) against clock drift; it was 1 %, which cost a
    fixed-window job about 1 % of its time.

    ``burst`` (optional) adds steady spacing on top: at most ``burst`` requests back-to-back,
    then one every ``per / (rate - burst)`` seconds (GCRA). After a 429, :meth:`hold` stops
    all requests until the server's ``Retry-After`` has passed.

    >>> p = Pacer(rate=5, per=10.0, clock=lambda: 0.0)
    >>> [round(p.reserve(), 2) for _ in range(6)]   # answered at once: free again at 10.02
    [0.0, 0.0, 0.0, 0.0, 10.02, 10.02]
    >>> g = Pacer(rate=60, per=60.0, burst=4, clock=lambda: 0.0)
    >>> [round(g.reserve(), 3) for _ in range(6)]
    [0.0, 0.0, 0.0, 0.0, 1.071, 2.143]
    """

    #: how often a request re-checks a full window whose oldest request is still unanswered
    RECHECK_S: Final = 0.02

    def __init__(
        self,
        rate: int = RATE_LIMIT_PER_ORG,
        per: float = RATE_LIMIT_WINDOW_S,
        burst: int | None = None,
        *,
        margin: float | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate < 1 or per <= 0 or (burst is not None and burst < 1):
            raise UserValueError("rate >= 1, per > 0 and burst >= 1 are required")
        self.rate = rate
        self.per = float(per)
        self.burst = None if burst is None else min(burst, rate)
        #: requests allowed in any window: one of headroom when the limit allows it
        self.limit = rate - 1 if rate > 1 else 1
        self.window = self.per + (0.002 * self.per if margin is None else margin)
        self._slots: list[_Slot] = []
        self.interval = self.per / max(rate - (self.burst or 1), 1)
        self._tau = ((self.burst or 1) - 1) * self.interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = -math.inf
        self._hold_until = -math.inf
        self._urgent_waiting = 0  # urgent requests waiting for a place (acquire)
        #: places kept for urgent requests announced by their callers (see keep_for)
        self._kept: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
        self._requests = 0
        self._throttled = 0
        self._retries = 0
        self._waited = 0.0
        self._retry_waited = 0.0

    def __repr__(self) -> str:
        return f"Pacer(rate={self.rate}, per={self.per}, burst={self.burst})"

    def adopt_window(self, rate: int, per: float) -> None:
        """Take another limit (``rate`` per ``per`` seconds): a local sandbox's own window,
        learnt from its self-description before a client's first request. The places
        already taken keep their times.

        >>> p = Pacer(rate=60, per=60.0); p.adopt_window(60, 6.0); p.per, round(p.window, 3)
        (6.0, 6.012)
        """
        if rate < 1 or per <= 0:
            raise UserValueError("rate >= 1 and per > 0 are required")
        with self._lock:
            if (rate, float(per)) == (self.rate, self.per):
                return
            margin = self.window - self.per
            scale = float(per) / self.per
            self.rate = rate
            self.per = float(per)
            self.burst = None if self.burst is None else min(self.burst, rate)
            self.limit = rate - 1 if rate > 1 else 1
            self.window = self.per + margin * scale
            self.interval = self.per / max(rate - (self.burst or 1), 1)
            self._tau = ((self.burst or 1) - 1) * self.interval

    # -- the window (call with the lock held) -----------------------------------------------
    def _trim(self, now: float) -> None:
        edge = now - self.window
        self._slots = [s for s in self._slots if s.done is None or s.done > edge]

    def _earliest(self, now: float, reserve: int = 0) -> float | None:
        """The earliest time >= now a request may start, leaving ``reserve`` places to
        others; None while that depends on an answer still outstanding."""
        self._trim(now)
        start = max(now, self._hold_until)
        if self.burst is not None:
            start = max(start, self._tat - self._tau)
        while True:  # a start in the future must respect the window as it is then
            edge = start - self.window
            live = [s for s in self._slots if s.done is None or s.done > edge]
            over = len(live) - self.limit + 1 + reserve
            if over <= 0:
                return start
            dones = sorted(s.done for s in live if s.done is not None)
            if len(dones) < over:
                return None  # waits for answers still outstanding
            later = dones[over - 1] + self.window
            if later <= start:
                return start
            start = later

    def _book(self, start: float, done: float | None) -> _Slot:
        if self.burst is not None:
            self._tat = max(self._tat, start) + self.interval
        slot = _Slot(start, done)
        self._slots.append(slot)
        self._requests += 1
        return slot

    # -- API --------------------------------------------------------------------------------
    def reserve(self) -> float:
        """Book the next slot for a request answered the moment it is sent (a simulation:
        real requests use :meth:`acquire` and :meth:`release`); return the wait (seconds)."""
        with self._lock:
            now = self._clock()
            start = self._earliest(now)
            if start is None:  # pragma: no cover - reserve() books answered slots only
                raise RuntimeError("reserve() cannot be mixed with unanswered requests")
            self._book(start, start)
            return start - now

    async def acquire(self, urgent: bool = False) -> _Slot:
        """Wait for a place in the window; return it (pass it to :meth:`release`).

        ``urgent`` requests (submissions: each starts work that takes the service seconds)
        take places before routine ones (status reads, which only collect): a routine
        request leaves one place per urgent request waiting, whoever waited first. When the
        window binds, this is the best schedule's order — every submission as early as the
        window allows, the reads after — and a job's end comes a window or two sooner.
        """
        waited = 0.0
        slept_until = -math.inf  # a wait already served counts as "now" (injected sleeps)
        queued = urgent
        if queued:
            with self._lock:
                self._urgent_waiting += 1
        try:
            while True:
                with self._lock:
                    now = max(self._clock(), slept_until)
                    reserve = max(
                        self._urgent_waiting - (1 if queued else 0),
                        min(sum(self._kept.values()), self.limit - 1),
                    )
                    start = self._earliest(now, 0 if urgent else reserve)
                    if start is not None and start <= now:
                        slot = self._book(now, None)
                        if queued:
                            self._urgent_waiting -= 1
                            queued = False
                        self._waited += waited
                        return slot
                delay = self.RECHECK_S if start is None else start - now
                waited += delay
                await self._sleep(delay)
                slept_until = now + delay
        finally:
            if queued:  # cancelled while waiting
                with self._lock:
                    self._urgent_waiting -= 1

    def keep_for(self, owner: object, places: int) -> None:
        """Keep ``places`` of the window for urgent requests ``owner`` is about to send
        (e.g. a job's submissions not made yet): routine requests leave them free. Keep 0
        (or let ``owner`` be collected) to give them back. Capped at the limit less one, so
        routine requests are never shut out for good.

        >>> class Job: ...
        >>> p = Pacer(rate=5, per=10.0); job = Job(); p.keep_for(job, 2); p.kept()
        2
        >>> p.keep_for(job, 0); p.kept()
        0
        """
        with self._lock:
            if places > 0:
                self._kept[owner] = min(int(places), self.limit - 1)
            else:
                self._kept.pop(owner, None)

    def kept(self) -> int:
        """Places kept for announced urgent requests (see :meth:`keep_for`)."""
        with self._lock:
            return sum(self._kept.values())

    def release(self, slot: _Slot) -> None:
        """The request's answer is back (or it failed): its place frees ``per`` s from now."""
        with self._lock:
            if slot.done is None:
                slot.done = self._clock()

    def now(self) -> float:
        """The pacer's clock."""
        return self._clock()

    def room(self) -> int:
        """Requests that could go now without waiting for the window.

        >>> p = Pacer(rate=5, per=10.0, clock=lambda: 0.0); p.reserve(); p.room()
        0.0
        3
        """
        with self._lock:
            self._trim(self._clock())
            return max(0, self.limit - len(self._slots))

    def held_for(self) -> float:
        """Seconds left of a 429's hold (0 when requests may go).

        >>> p = Pacer(clock=lambda: 10.0)
        >>> p.hold(5.0); p.held_for()
        5.0
        """
        with self._lock:
            return max(0.0, self._hold_until - self._clock())

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a 429's Retry-After); counts one throttle."""
        with self._lock:
            self._throttled += 1
            self._hold_until = max(self._hold_until, self._clock() + max(seconds, 0.0))

    def note_retry(self, delay: float) -> None:
        with self._lock:
            self._retries += 1
            self._retry_waited += delay

    def stats(self) -> PacerStats:
        """Counters: requests sent, 429s seen, retries, seconds waited (pacing / retries)."""
        with self._lock:
            return PacerStats(
                requests=self._requests,
                throttled=self._throttled,
                retries=self._retries,
                waited_s=self._waited,
                retry_wait_s=self._retry_waited,
            )


_shared: weakref.WeakValueDictionary[tuple[Any, ...], Pacer] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def shared_pacer(
    base_url: str, api_key: str, rate: int | None, per: float | None, burst: int | None
) -> Pacer:
    """The pacer of every client of this key (so of its organization) in this process: the
    API's limit is per organization, so two notebooks' clients in one kernel share it.
    ``rate``/``per`` None: the API's limit (or a sandbox's own, adopted later).

    >>> shared_pacer("u", "k", 60, 60.0, None) is shared_pacer("u", "k", 60, 60.0, None)
    True
    """
    digest = hashlib.sha256(api_key.encode()).hexdigest()  # never keep the key itself
    key = (base_url, digest, rate, per, burst)
    with _shared_lock:
        pacer = _shared.get(key)
        if pacer is None:
            pacer = Pacer(
                RATE_LIMIT_PER_ORG if rate is None else rate,
                RATE_LIMIT_WINDOW_S if per is None else per,
                burst,
            )
            _shared[key] = pacer
        return pacer


def reset_shared_pacers() -> None:
    """Forget the shared pacers: clients created afterwards start with an empty window (for
    tests, where one sandbox key serves many independent scenarios)."""
    with _shared_lock:
        _shared.clear()


_ssl_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_ssl_lock = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """The process's TLS context for verified HTTPS, made once.

    httpx builds a new one for every client, loading the whole CA bundle (~20 ms of CPU),
    and a run makes a client: that was a third of a small job's start-up. A context is safe
    to share between connections and threads. It is made as httpx makes its own
    (``httpx.create_ssl_context``, so certifi's bundle and ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``), again when those variables change.

    >>> shared_ssl_context() is shared_ssl_context()
    True
    """
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _ssl_lock:
        ctx = _ssl_contexts.get(key)
        if ctx is None:
            ctx = _ssl_contexts[key] = httpx.create_ssl_context(trust_env=True)
        return ctx


# --------------------------------------------------------------------------------------
# retry policy


class Decision(enum.Enum):
    """What to do after a failed attempt."""

    RETRY = "retry"
    RAISE = "raise"
    AMBIGUOUS = "ambiguous"


#: Transport errors that prove the request never reached the server: no connection was
#: ever established (refused, DNS failure, connect time-out, no free pooled connection).
#: Determined empirically with httpx 0.28 / httpcore 1.0 (see tests/client/test_http_units.py).
NOT_SENT_ERRORS: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Errors in building the request (our bug, nothing sent, retrying cannot help).
NEVER_SENT_FATAL: Final = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL)
#: Statuses retried for idempotent (GET) requests.
RETRY_STATUSES_GET: Final = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses that prove POST /enrich/bulk was not processed and may be re-sent [spec §7].
RETRY_STATUSES_POST: Final = frozenset({429, 503})
#: Statuses after which POST /enrich/bulk may or may not have created a workflow.
AMBIGUOUS_STATUSES_POST: Final = frozenset({500, 502, 504})


def retry_decision(
    method: str, *, status: int | None = None, exc: BaseException | None = None
) -> Decision:
    """The retry table. ``method`` GET is idempotent; any other method is a submission.

    >>> retry_decision("POST", exc=httpx.ConnectError("refused")).value
    'retry'
    >>> retry_decision("POST", status=500).value, retry_decision("GET", status=404).value
    ('ambiguous', 'raise')
    """
    idempotent = method.upper() in ("GET", "HEAD", "OPTIONS")
    if exc is not None:
        if isinstance(exc, NOT_SENT_ERRORS):
            return Decision.RETRY
        if isinstance(exc, NEVER_SENT_FATAL):
            return Decision.RAISE
        if isinstance(exc, httpx.TransportError):
            return Decision.RETRY if idempotent else Decision.AMBIGUOUS
        return Decision.RAISE
    if status is None or status < 400:
        return Decision.RAISE
    if idempotent:
        return Decision.RETRY if status in RETRY_STATUSES_GET else Decision.RAISE
    if status in RETRY_STATUSES_POST:
        return Decision.RETRY
    if status in AMBIGUOUS_STATUSES_POST:
        return Decision.AMBIGUOUS
    return Decision.RAISE


def parse_retry_after(
    headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date).

    Returns None when absent, negative or unreadable.

    >>> parse_retry_after({"retry-after": "3"})
    3.0
    >>> parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=lambda: 1445412470)
    10.0
    >>> parse_retry_after({"retry-after": "soon"}) is None
    True
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            parsed = email.utils.parsedate_tz(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if parsed is None:
            return None
        value = float(email.utils.mktime_tz(parsed) - now())
        return max(value, 0.0)
    if not math.isfinite(value) or value < 0:
        return None
    return value


def backoff_delay(retry: int, *, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with jitter for retry number ``retry`` (1, 2, ...).

    ``min(0.5 * 2**(retry-1), 8)`` scaled by a random factor in [0.75, 1].

    >>> 0.375 <= backoff_delay(1) <= 0.5, 6.0 <= backoff_delay(30) <= 8.0
    (True, True)
    """
    base = min(INITIAL_RETRY_DELAY * 2.0 ** min(max(retry - 1, 0), 30), MAX_RETRY_DELAY)
    factor = 1.0 - 0.25 * (rng or random).random()
    return base * factor


# --------------------------------------------------------------------------------------
# error mapping

_HINTS: Final[dict[int, str]] = {
    400: "Fix the request: send 1 to 250 contacts per submit; a status query needs exactly "
    "one of workflow_id or task_id.",
    401: "Check the API key ({key}): it may be mistyped, revoked, or from another "
    "environment. Set CLEANLIST_API_KEY or call cleanlist_pandas.configure(api_key=...).",
    402: "Top up credits (or send fewer contacts / a cheaper enrichment_type), then re-run: "
    "this request was not processed and nothing was charged for it.",
    403: "This key's plan does not include API access: upgrade the plan in the Cleanlist "
    "portal or use a key of an organization that has API access.",
    404: "Check the id: it must come from submit() against the same base URL and "
    "organization (and the base URL must end in /api/v1/public).",
    422: "The API rejected these contacts: each needs linkedin_url, or first_name + "
    "last_name + (company_domain or company_name). Fix or drop them and re-submit.",
    429: "The rate limit (60 requests/min per organization) was exceeded: wait and retry, "
    "or lower the client's rate=. Other clients on the same organization share the limit.",
}
_OTHER_HINT: Final = (
    "The API answered with a status its contract does not list: check that the base URL "
    "points at the Cleanlist API (not a proxy), then retry; report it if it persists."
)
_SERVER_HINT: Final = (
    "The Cleanlist service failed; try again in a few minutes. Finished work is not lost: "
    "status(workflow_id) still returns it."
)


def _detail_of(body: Any) -> Any:
    if isinstance(body, Mapping) and "detail" in body:
        return body["detail"]
    return None


def _detail_text(detail: Any, body_text: str) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail[:10]:
            if isinstance(item, Mapping):
                loc = ".".join(str(p) for p in item.get("loc", ()) or ())
                parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
            else:
                parts.append(str(item))
        more = f" (+{len(detail) - 10} more)" if len(detail) > 10 else ""
        return "; ".join(parts) + more
    if detail is not None:
        return json.dumps(detail, default=str)[:300]
    snippet = body_text.strip().replace("\n", " ")
    return snippet[:300] if snippet else "(no detail)"


def contact_indexes_from_detail(detail: Any) -> tuple[int, ...]:
    """Contact indexes named by a FastAPI 422 ``detail`` list (``loc[2]`` after body/contacts).

    >>> contact_indexes_from_detail([{"loc": ["body", "contacts", 3, "first_name"]},
    ...                              {"loc": ["body", "contacts", 1]}])
    (1, 3)
    """
    found: set[int] = set()
    if isinstance(detail, list):
        for item in detail:
            loc = item.get("loc") if isinstance(item, Mapping) else None
            if (
                isinstance(loc, Sequence)
                and len(loc) >= 3
                and loc[0] == "body"
                and loc[1] == "contacts"
            ):
                try:
                    found.add(int(loc[2]))
                except (TypeError, ValueError):
                    continue
    return tuple(sorted(found))


def _where(method: str, path: str, workflow_id: str | None) -> str:
    where = f"{method} {path}"
    return f"{where}, workflow {workflow_id}" if workflow_id else where


# --------------------------------------------------------------------------------------
# the request loop


@dataclass(frozen=True)
class SubmissionInfo:
    """What a POST /enrich/bulk carried, for an AmbiguousSubmissionError."""

    contacts: tuple[Mapping[str, Any], ...]
    enrichment_type: str
    webhook_url: str | None


@dataclass(frozen=True)
class SendHooks:
    """Callbacks around each attempt of one request, for a caller that journals submissions.

    ``before_send`` runs after the pacer has granted the slot, before anything else: it may
    raise (e.g. the run was stopped meanwhile), and then nothing is sent and the exception
    propagates. ``on_wire`` runs at the instant the request's first bytes are written to
    the connection (httpcore's ``send_request_headers`` trace; with a custom transport,
    which may not trace, right before the request is handed to it): before it nothing can
    have reached the server, so a journal marks "sending" there. ``not_sent`` runs when an
    attempt provably was not processed (no connection, 429, 503) and the loop is about to
    wait for another attempt, so a journal can take back its "sending" mark meanwhile.
    """

    before_send: Callable[[], None]
    on_wire: Callable[[], None] = lambda: None
    not_sent: Callable[[], None] = lambda: None


def _on_headers(callback: Callable[[], None]) -> Callable[[str, Any], Awaitable[None]]:
    """An httpcore ``trace`` callback that calls ``callback`` once, as the request's headers
    start to be written (HTTP/1.1 or HTTP/2)."""
    fired = False

    async def trace(event: str, info: Any) -> None:
        nonlocal fired
        if not fired and event.endswith("send_request_headers.started"):
            fired = True
            callback()

    return trace


class RequestLoop:
    """Sends requests: pacing, retries, error mapping; owns the ``httpx.AsyncClient``.

    The httpx client is created lazily **inside the running loop** on first use, and
    re-created after a fork or when its loop has closed. ``transport`` is passed to httpx
    (tests inject ``httpx.MockTransport``); ``clock``/``sleep`` drive every wait (pacing,
    Retry-After, backoff), so tests can run in scaled time.
    """

    def __init__(
        self,
        settings: Settings,
        api_key: str,
        *,
        pacer: Pacer,
        on_event: Listener | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        rebind_on_loop_change: bool = False,
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        #: awaited before the first request (a sandbox's window is learnt there)
        self._prepare = prepare
        self._api_key = api_key
        self.pacer = pacer
        self._listeners: list[Listener] = [on_event] if on_event else []
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rebind = rebind_on_loop_change
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._http_pid: int | None = None
        self.closed = False

    def __repr__(self) -> str:
        return f"<RequestLoop {self.settings.base_url} key={mask_key(self._api_key)}>"

    # -- events -------------------------------------------------------------------------

    def add_listener(self, callback: Listener) -> None:
        self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _emit(self, event: ClientEvent) -> None:
        emit(list(self._listeners), event)  # a broken progress bar must not break a request

    # -- httpx client -------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self.closed:
            raise UserError("This client is closed; create a new one.")
        loop = asyncio.get_running_loop()
        http = self._http
        if http is not None:
            if self._http_pid != os.getpid():
                http = None  # forked child: the parent's sockets are not ours to use
            elif self._http_loop is not loop:
                old_loop = self._http_loop
                if old_loop is None or old_loop.is_closed():
                    http = None
                elif self._rebind:
                    old = http
                    old_loop.call_soon_threadsafe(lambda: old_loop.create_task(old.aclose()))
                    http = None
                else:
                    raise UserError(
                        "This AsyncClient is in use on another running event loop. Create "
                        "one AsyncClient per event loop (httpx clients cannot be shared "
                        "across loops), or use the sync Client."
                    )
        if http is None:
            s = self.settings
            http = httpx.AsyncClient(
                base_url=s.base_url,
                headers={
                    "Authorization": f"Bearer {self._api_key}",
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                },
                timeout=httpx.Timeout(s.timeout, connect=s.connect_timeout),
                # keep-alive shorter than common server idle time-outs (uvicorn: 5 s), so a
                # POST is not sent on a connection the server is closing
                limits=httpx.Limits(
                    max_connections=20, max_keepalive_connections=10, keepalive_expiry=4.0
                ),
                transport=self._transport,
                verify=shared_ssl_context(),
                follow_redirects=False,
            )
            self._http, self._http_loop, self._http_pid = http, loop, os.getpid()
        return http

    async def aclose(self) -> None:
        http, self._http = self._http, None
        self.closed = True
        if http is not None and self._http_pid == os.getpid():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:  # pragma: no cover - aclose is always awaited
                running = None
            if self._http_loop is running:
                await http.aclose()
            elif self._http_loop is not None and not self._http_loop.is_closed():
                loop = self._http_loop
                loop.call_soon_threadsafe(lambda: loop.create_task(http.aclose()))

    # -- helpers ------------------------------------------------------------------------

    def _scrub(self, value: Any) -> Any:
        """Replace the key wherever a server echoed it (defence in depth)."""
        key = self._api_key
        if isinstance(value, str):
            return value.replace(key, mask_key(key)) if key in value else value
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError):
            return value
        if key not in text:
            return value
        return json.loads(text.replace(key, mask_key(key)))

    def _status_error(
        self,
        method: str,
        path: str,
        response: httpx.Response,
        body: Any,
        workflow_id: str | None,
        retries: int,
        retry_after: float | None,
    ) -> APIStatusError:
        status = response.status_code
        body = self._scrub(body)
        detail = _detail_of(body)
        text = _detail_text(detail, self._scrub(response.text) if body is None else "")
        cls = status_error_class(status)
        hint = _HINTS.get(status, _SERVER_HINT if status >= 500 else _OTHER_HINT)
        hint = hint.replace("{key}", mask_key(self._api_key))
        extra: dict[str, Any] = {}
        if cls is ValidationError:
            indexes = contact_indexes_from_detail(detail)
            extra["contact_indexes"] = indexes
            if indexes:
                hint = f"Contacts at indexes {list(indexes)}: " + hint[0].lower() + hint[1:]
        if cls is RateLimitError:
            extra["retry_after"] = retry_after
            if retry_after is not None:
                hint = f"Retry after {retry_after:g} s. " + hint
        if retries:
            hint += f" (Already retried {retries} time{'s' if retries > 1 else ''}.)"
        message = f"HTTP {status} from {_where(method, path, workflow_id)}: {text}. {hint}"
        return cls(
            message,
            status_code=status,
            body=body,
            method=method,
            path=path,
            workflow_id=workflow_id,
            detail=detail,
            hint=hint,
            **extra,
        )

    def _ambiguous(
        self,
        method: str,
        path: str,
        submission: SubmissionInfo | None,
        cause: str,
        status_code: int | None,
    ) -> AmbiguousSubmissionError:
        n = len(submission.contacts) if submission else 0
        hint = (
            f"The request may or may not have created a workflow and charged credits for "
            f"its {n} contact(s). It was NOT re-sent automatically (the API has no "
            "idempotency key; a resend could bill twice). Before re-submitting "
            "exc.contacts, check your webhook receiver, the balance, or the Cleanlist "
            "portal for a workflow created just now."
        )
        message = f"Outcome unknown for {_where(method, path, None)}: {cause}. {hint}"
        return AmbiguousSubmissionError(
            message,
            contacts=submission.contacts if submission else (),
            enrichment_type=submission.enrichment_type if submission else None,
            webhook_url=submission.webhook_url if submission else None,
            status_code=status_code,
            method=method,
            path=path,
            detail=cause,
            hint=hint,
        )

    def _transport_error(
        self, method: str, path: str, exc: Exception, workflow_id: str | None, retries: int
    ) -> APIError:
        host = httpx.URL(self.settings.base_url).host
        kind = type(exc).__name__
        reason = self._scrub(str(exc)) or kind
        again = f" Already retried {retries} time(s)." if retries else ""
        if isinstance(exc, httpx.TimeoutException):
            hint = (
                "The request timed out: try again later, or raise timeout= / "
                f"connect_timeout= on the client.{again}"
            )
            cls: type[APIConnectionError] = APITimeoutError
        else:
            hint = (
                f"Could not talk to {host}: check the network, a proxy, and that the base "
                f"URL ({self.settings.base_url}) is right.{again}"
            )
            cls = APIConnectionError
        message = f"{kind} for {_where(method, path, workflow_id)}: {reason}. {hint}"
        return cls(
            message, method=method, path=path, workflow_id=workflow_id, detail=reason, hint=hint
        )

    # -- the loop -----------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        workflow_id: str | None = None,
        submission: SubmissionInfo | None = None,
        hooks: SendHooks | None = None,
        parse: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """Send one logical request; return the decoded JSON body of the 2xx answer
        (``parse(body_bytes)`` instead of ``json.loads`` when given; a ``ValueError`` from
        it is an answer that is not JSON).

        Raises the typed errors of :mod:`cleanlist_pandas.errors`. A request that finds the
        pacer held by an earlier 429 for longer than ``max_retry_after`` raises
        :class:`~cleanlist_pandas.errors.RateLimitError` at once, with the time left in
        ``retry_after``, instead of blocking.
        """
        if self._prepare is not None:
            # every request waits for it until it has run once (it is idempotent: two
            # requests that start together may both run it)
            await self._prepare()
            self._prepare = None
        http = self._client()
        max_retries = self.settings.max_retries
        attempt = 0
        # the body is serialized once: every attempt sends the same bytes
        content = None if json_body is None else json.dumps(json_body).encode()
        headers = {"Content-Type": "application/json"} if content is not None else None
        while True:
            attempt += 1
            held = self.pacer.held_for()
            if held > self.settings.max_retry_after:
                raise self._still_held(method, path, workflow_id, held)
            asked_at = self.pacer.now()
            # a submission goes before waiting status reads (see Pacer.acquire)
            slot = await self.pacer.acquire(urgent=submission is not None)
            failure: httpx.HTTPError | None = None
            try:
                waited = slot.sent - asked_at
                if waited > 0.001:
                    self._emit(PacerWait(method, path, waited))
                extensions: dict[str, Any] | None = None
                if hooks is not None:
                    hooks.before_send()
                    if self._transport is None:
                        extensions = {"trace": _on_headers(hooks.on_wire)}
                    else:
                        hooks.on_wire()
                self._emit(RequestSent(method, path, attempt))
                logger.debug("-> %s %s (attempt %d)", method, path, attempt)
                started = time.monotonic()
                response = await http.request(
                    method,
                    path,
                    params=dict(params) if params else None,
                    content=content,
                    headers=headers,
                    extensions=extensions,
                )
            except httpx.HTTPError as exc:
                failure = exc
            finally:
                # answered (or failed): the server has seen it by now, if ever
                self.pacer.release(slot)
            if failure is not None:
                decision = retry_decision(method, exc=failure)
                reason = type(failure).__name__
                logger.debug("<- %s %s failed: %s (%s)", method, path, reason, decision.value)
                if decision is Decision.AMBIGUOUS:
                    raise self._ambiguous(
                        method, path, submission, f"{reason} after the request was sent", None
                    ) from failure
                if decision is Decision.RETRY and attempt <= max_retries:
                    if hooks is not None:
                        hooks.not_sent()
                    await self._retry_wait(method, path, attempt, backoff_delay(
                        attempt, rng=self._rng), reason, None)
                    continue
                raise self._transport_error(
                    method, path, failure, workflow_id, attempt - 1
                ) from failure

            elapsed = time.monotonic() - started  # real seconds
            status = response.status_code
            self._emit(ResponseReceived(method, path, attempt, status, elapsed))
            logger.debug("<- %s %s %d in %.3fs", method, path, status, elapsed)
            if status < 400:
                return self._decode(method, path, response, workflow_id, parse)

            body = self._safe_json(response)
            retry_after = (
                parse_retry_after(response.headers) if status in (429, 503) else None
            )
            if status == 429:
                self.pacer.hold(retry_after if retry_after is not None else 1.0)
            decision = retry_decision(method, status=status)
            if decision is Decision.AMBIGUOUS:
                detail = _detail_text(_detail_of(self._scrub(body)), "")
                raise self._ambiguous(
                    method, path, submission, f"HTTP {status} ({detail})", status
                )
            if decision is Decision.RETRY and attempt <= max_retries:
                if retry_after is not None and retry_after > self.settings.max_retry_after:
                    # a server-directed wait beyond our cap: fail now rather than hang
                    raise self._status_error(
                        method, path, response, body, workflow_id, attempt - 1, retry_after
                    )
                delay = retry_after if retry_after is not None else backoff_delay(
                    attempt, rng=self._rng
                )
                if hooks is not None:
                    hooks.not_sent()
                await self._retry_wait(method, path, attempt, delay, f"HTTP {status}", status)
                continue
            raise self._status_error(
                method, path, response, body, workflow_id, attempt - 1, retry_after
            )

    def _still_held(
        self, method: str, path: str, workflow_id: str | None, held: float
    ) -> RateLimitError:
        """A 429's Retry-After still holds every request for longer than we may wait."""
        hint = (
            f"Retry after {held:.0f} s: an earlier 429 asked this client to wait that long, "
            f"more than max_retry_after={self.settings.max_retry_after:g} s. Nothing was "
            "sent. Wait and call again, or raise max_retry_after to let the client wait."
        )
        return RateLimitError(
            f"HTTP 429 (still rate-limited) for {_where(method, path, workflow_id)}. {hint}",
            status_code=429,
            method=method,
            path=path,
            workflow_id=workflow_id,
            detail="rate-limited",
            hint=hint,
            retry_after=held,
        )

    async def _retry_wait(
        self,
        method: str,
        path: str,
        attempt: int,
        delay: float,
        reason: str,
        status: int | None,
    ) -> None:
        self.pacer.note_retry(delay)
        self._emit(RetryScheduled(method, path, attempt, delay, reason, status))
        logger.debug("retrying %s %s in %.2fs after %s", method, path, delay, reason)
        await self._sleep(delay)

    @staticmethod
    def _safe_json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    def _decode(
        self,
        method: str,
        path: str,
        response: httpx.Response,
        workflow_id: str | None,
        parse: Callable[[bytes], Any] | None = None,
    ) -> Any:
        try:
            return response.json() if parse is None else parse(response.content)
        except ValueError as exc:
            snippet = self._scrub(response.text[:200])
            raise UnexpectedResponseError(
                f"HTTP {response.status_code} from {_where(method, path, workflow_id)} is not "
                f"JSON: {snippet!r}. Check that the base URL ({self.settings.base_url}) "
                "points at the Cleanlist API.",
                status_code=response.status_code,
                method=method,
                path=path,
                workflow_id=workflow_id,
                detail=snippet,
            ) from exc
