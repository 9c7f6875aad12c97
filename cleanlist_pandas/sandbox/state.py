"""The sandbox's state: organizations, keys, workflows, the ledger, stats, faults and the
rate limiter. One object, guarded by one lock, shared by the HTTP app and the Python API.

Why one module of this size: every route reads and writes several of these under one lock
(a submission checks the key, the rate window and the balance, then creates a workflow
and its ledger rows); one object keeps that atomic.

The state reads time only through its ``clock`` (default ``time.monotonic``) and moves only
when asked (:meth:`SandboxState.advance`, which every read calls first and the server's
background ticker calls every ``tick_s``). So a simulator can drive it directly, with no
HTTP, no thread and no sleep, on a virtual clock — the same model of the API the server
serves:

>>> from cleanlist_pandas.sandbox.state import SandboxState
>>> from cleanlist_pandas.sandbox.config import SandboxConfig
>>> clock = [0.0]
>>> st = SandboxState(SandboxConfig(), seed=0, credits=5.0, clock=lambda: clock[0], epoch=0.0)
>>> p = st.admit("Bearer " + st.api_key)
>>> wid = st.submit(p, "partial", [{"linkedin_url": "https://www.linkedin.com/in/ann-lee"}])[
...     "workflow_id"]
>>> st.workflow_status(p, wid)["workflow"]["summary"]["pending"]
1
>>> clock[0] = st.next_event_at()  # jump to the next thing the service does
>>> st.workflow_status(p, wid)["workflow"]["status"]
'completed'
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import math
import random
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cleanlist_pandas._constants import (
    API_KEY_PREFIX,
    API_PREFIX,
    CONTACT_FIELDS,
    EMAIL_COST,
    EXTENSION_KEY_PREFIX,
    MAX_CONTACTS_PER_REQUEST,
    MAX_UNIT_COST,
    PHONE_COST,
    PROSPECT_COST,
    WEBHOOK_EVENT,
)
from cleanlist_pandas.sandbox.config import SandboxConfig
from cleanlist_pandas.sandbox.oracle import Outcome, contact_fingerprint, decide

__all__ = [
    "AGENT_INSTRUCTIONS",
    "ENDPOINTS",
    "FAULT_KINDS",
    "ApiError",
    "Fault",
    "Principal",
    "SandboxState",
    "WebhookJob",
]

#: Fault endpoint names.
ENDPOINTS = ("validate-key", "balance", "bulk", "status", "deliveries")
FAULT_KINDS = ("status", "slow", "drop_before", "drop_after", "fail_workflow")
_INSUFFICIENT = "Insufficient credits to deliver this result"
_WORKFLOW_BROKE = "Workflow failed: internal processing error"
#: ``agent_instructions`` of the agent-shaped balance (spec §3.2); [ours] the wording.
AGENT_INSTRUCTIONS = (
    "Credits are charged only for what is found: 1 per verified email, 10 per contact "
    "with a phone number, 1 per discovered contact. Check the balance covers the worst "
    "case of a request (contacts x unit cost) before submitting it."
)


class ApiError(Exception):
    """An HTTP error the app turns into ``{"detail": ...}`` with ``status`` and ``headers``.

    >>> ApiError(404, "Workflow not found").status
    404
    """

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def _iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass
class Fault:
    """One injected fault; see :meth:`SandboxState.inject_fault`.

    >>> Fault("bulk", "status", times=2, status=503).times
    2
    """

    endpoint: str
    kind: str
    times: int | None = 1
    probability: float | None = None
    status: int | None = None
    delay_s: float | None = None
    retry_after: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict view (for the control route).

        >>> Fault("*", "slow", delay_s=0.1).as_dict()["kind"]
        'slow'
        """
        return dataclasses.asdict(self)


@dataclass
class Principal:
    """The authenticated caller of one request.

    >>> Principal("org_1", "clapi_x", "user_1").organization_id
    'org_1'
    """

    organization_id: str
    key: str
    user_id: str


@dataclass
class _Org:
    id: str
    credits: float
    api_access: bool


@dataclass
class _Key:
    key: str
    org_id: str
    user_id: str
    revoked: bool = False
    expires_at: float | None = None  # state clock; None = never


@dataclass
class _Task:
    task_id: str
    index: int
    contact: dict[str, Any]
    fingerprint: str
    duration: float  # scaled processing time, fixed at submission
    workflow: _Workflow
    start_at: float | None = None  # when a worker took it (None while queued)
    finish_at: float | None = None  # start_at + duration
    on_worker: bool = False  # it went through its organization's worker queue
    status: str = "pending"
    result: dict[str, Any] | None = None
    credits: float = 0.0
    records: int = 1  # webhook payload records: 1 + discovered contacts


@dataclass
class _Workflow:
    id: str
    org_id: str
    enrichment_type: str
    lead_list_id: str
    webhook_url: str | None
    created_at: float  # state clock
    start_at: float  # state clock: the start delay is over, its tasks may start
    fail: bool
    tasks: list[_Task] = field(default_factory=list)
    done: int = 0
    successful: int = 0
    failed: int = 0
    emails_found: int = 0
    phones_found: int = 0
    status: str = "processing"
    completed_at: float | None = None  # state clock
    body_json: bytes | None = None  # cached status body once terminal (it never changes)


@dataclass
class WebhookJob:
    """One webhook to deliver (built when the workflow ends).

    >>> WebhookJob("wf", "http://127.0.0.1:1/h", {}, 0).attempts_logged
    0
    """

    workflow_id: str
    url: str
    payload: dict[str, Any]
    generation: int
    attempts_logged: int = 0
    _body: bytes | None = None

    def body(self) -> bytes:
        """The payload as JSON bytes (ASCII-escaped, so any string survives), computed once.

        >>> WebhookJob("wf", "u", {"a": [1, None]}, 0).body()
        b'{"a":[1,null]}'
        """
        if self._body is None:
            self._body = json.dumps(self.payload, ensure_ascii=True, separators=(",", ":")).encode(
                "ascii"
            )
        return self._body


class SandboxState:
    """All mutable state of one sandbox; every public method is thread-safe.

    ``clock`` is the only source of time (default ``time.monotonic``; any callable
    returning seconds, e.g. a simulator's virtual clock); ``epoch`` is the Unix time its
    first reading stands for in the ISO times of the bodies (default: now).

    >>> st = SandboxState(SandboxConfig(), seed=0, credits=10.0, api_key="clapi_test")
    >>> st.authenticate("Bearer clapi_test").organization_id == st.organization_id
    True
    """

    def __init__(
        self,
        config: SandboxConfig,
        *,
        seed: int = 0,
        credits: float = 10_000.0,
        api_key: str | None = None,
        clock: Callable[[], float] | None = None,
        epoch: float | None = None,
    ) -> None:
        if api_key is not None and not api_key.startswith(API_KEY_PREFIX):
            raise ValueError(f"api_key must start with {API_KEY_PREFIX!r}")
        self.lock = threading.RLock()
        self.config = config
        self._initial_config = dataclasses.replace(config)
        self.seed = seed
        self.initial_credits = float(credits)
        self.organization_id = "org_" + uuid.uuid4().hex[:12]
        self.api_key = api_key or (API_KEY_PREFIX + "sandbox_" + secrets.token_hex(16))
        self._default_user = "user_" + uuid.uuid4().hex[:12]
        #: Called (outside the lock) with every webhook job; set by the background worker.
        self.dispatcher: Callable[[WebhookJob], None] | None = None
        #: The directory this sandbox's clients keep their cache, journal and spend ledger
        #: in (``GET /_sandbox/info``'s ``cache_dir``; set by ``Sandbox``), or None.
        self.client_cache_dir: str | None = None
        self.clock: Callable[[], float] = clock if clock is not None else time.monotonic
        self._mono0 = self.clock()
        self._wall0 = time.time() if epoch is None else float(epoch)
        self.generation = 0
        self._reset_locked()

    # --- clock ----------------------------------------------------------------------------
    def now(self) -> float:
        """The state's clock now (seconds; ``time.monotonic`` unless another was given).

        >>> SandboxState(SandboxConfig(), clock=lambda: 12.5).now()
        12.5
        """
        return self.clock()

    def wall(self, at: float) -> float:
        """Unix time of an instant of the state's clock.

        >>> SandboxState(SandboxConfig(), clock=lambda: 100.0, epoch=1e9).wall(160.0)
        1000000060.0
        """
        return self._wall0 + (at - self._mono0)

    def iso(self, at: float) -> str:
        """ISO-8601 UTC wall time of an instant of the state's clock.

        >>> SandboxState(SandboxConfig(), clock=lambda: 5.0, epoch=0.0).iso(6.5)
        '1970-01-01T00:00:01.500Z'
        """
        return _iso(self.wall(at))

    # --- lifecycle ------------------------------------------------------------------------
    def _reset_locked(self) -> None:
        self.generation += 1
        self.orgs: dict[str, _Org] = {
            self.organization_id: _Org(self.organization_id, self.initial_credits, True)
        }
        self.keys: dict[str, _Key] = {
            self.api_key: _Key(self.api_key, self.organization_id, self._default_user)
        }
        self.workflows: dict[str, _Workflow] = {}
        self.tasks: dict[str, _Task] = {}
        #: the schedule: (time, seq, a task that finishes | a workflow whose start delay
        #: ends and whose tasks join its organization's worker queue)
        self._heap: list[tuple[float, int, _Task | _Workflow]] = []
        self._seq = itertools.count()
        #: organization -> tasks waiting for a worker (FIFO) / tasks on its workers
        self._queues: dict[str, deque[_Task]] = {}
        self._busy: dict[str, int] = {}
        self._ledger: list[dict[str, Any]] = []
        self._stats: dict[str, dict[str, int]] = {}
        self._total = 0
        self._faults: dict[str, list[Fault]] = {}
        self._windows: dict[str, tuple[float, int]] = {}
        self.deliveries: dict[str, list[dict[str, Any]]] = {}
        #: user_id -> the user's protected DEFAULT lead list (created at its first workflow)
        self._lead_lists: dict[str, str] = {}
        #: one stream per kind of draw, so that turning one knob never moves another's
        #: draws: task times; per-workflow start delay and speed; faults; duplicate webhooks
        self.rng = random.Random(self.seed)
        self.workflow_rng = random.Random(f"{self.seed}:workflow")
        self.fault_rng = random.Random(self.seed + 1)
        self.duplicate_rng = random.Random(f"{self.seed}:webhook-duplicate")

    def reset(self) -> None:
        """Back to the initial state: initial credits and config, the default key only, no
        workflows, ledger, faults, deliveries or stats; in-flight webhooks are abandoned.

        >>> st = SandboxState(SandboxConfig(), credits=3.0); st.set_credits(0.0); st.reset()
        >>> st.balance()
        3.0
        """
        with self.lock:
            for f in dataclasses.fields(SandboxConfig):
                setattr(self.config, f.name, getattr(self._initial_config, f.name))
            self._reset_locked()

    # --- organizations and keys -------------------------------------------------------------
    def add_organization(
        self, credits: float = 10_000.0, api_access: bool = True
    ) -> tuple[str, str]:
        """Create an organization with one key; return ``(organization_id, api_key)``.

        >>> org, key = SandboxState(SandboxConfig()).add_organization(5.0)
        >>> key.startswith("clapi_")
        True
        """
        if not math.isfinite(credits) or credits < 0:
            raise ValueError("credits must be a finite number >= 0")
        with self.lock:
            org_id = "org_" + uuid.uuid4().hex[:12]
            self.orgs[org_id] = _Org(org_id, float(credits), api_access)
            return org_id, self._new_key(org_id)

    def _new_key(self, org_id: str, expires_in_s: float | None = None) -> str:
        key = API_KEY_PREFIX + "sandbox_" + secrets.token_hex(16)
        expires_at = None
        if expires_in_s is not None:
            expires_at = self.now() + self.config.scaled(expires_in_s)
        self.keys[key] = _Key(key, org_id, "user_" + uuid.uuid4().hex[:12], expires_at=expires_at)
        return key

    def add_key(self, organization_id: str, expires_in_s: float | None = None) -> str:
        """Add another key (a new user) to an organization and return it.

        ``expires_in_s`` (service seconds, scaled by ``time_scale``) makes the key expire:
        from then on it answers 401 like an unknown key. ``0`` gives an expired key.

        >>> st = SandboxState(SandboxConfig()); st.add_key(st.organization_id) != st.api_key
        True
        """
        if expires_in_s is not None and not (math.isfinite(expires_in_s) and expires_in_s >= 0):
            raise ValueError("expires_in_s must be a finite number >= 0")
        with self.lock:
            if organization_id not in self.orgs:
                raise KeyError(organization_id)
            return self._new_key(organization_id, expires_in_s)

    def revoke_key(self, key: str) -> None:
        """Revoke a key: it answers 401 from now on (until :meth:`reset` for the default key).

        >>> st = SandboxState(SandboxConfig()); st.revoke_key(st.api_key)
        """
        with self.lock:
            self.keys[key].revoked = True

    def set_api_access(self, organization_id: str, api_access: bool) -> None:
        """Grant or withdraw API access (without it every call answers 403).

        >>> st = SandboxState(SandboxConfig()); st.set_api_access(st.organization_id, False)
        """
        with self.lock:
            self.orgs[organization_id].api_access = api_access

    def authenticate(self, authorization: str | None) -> Principal:
        """Check an ``Authorization`` header value; raise :class:`ApiError` 401/403.

        >>> SandboxState(SandboxConfig()).authenticate(None)
        Traceback (most recent call last):
        ...
        cleanlist_pandas.sandbox.state.ApiError: Not authenticated
        """
        # one body for every 401 [doc: errors page]: missing header, wrong scheme, unknown,
        # revoked or expired key alike
        refused = ApiError(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
        if not authorization:
            raise refused
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise refused
        if token.startswith(EXTENSION_KEY_PREFIX) or not token.startswith(API_KEY_PREFIX):
            raise refused
        with self.lock:
            key = self.keys.get(token)
            if key is None or key.revoked:
                raise refused
            if key.expires_at is not None and self.now() >= key.expires_at:
                raise refused
            org = self.orgs[key.org_id]
            if not org.api_access:
                raise ApiError(403, "Your plan does not include API access")
            return Principal(org.id, key.key, key.user_id)

    # --- credits --------------------------------------------------------------------------
    def set_credits(self, credits: float, organization_id: str | None = None) -> None:
        """Set an organization's balance (default: the default organization).

        >>> st = SandboxState(SandboxConfig()); st.set_credits(2.5); st.balance()
        2.5
        """
        if not math.isfinite(credits) or credits < 0:
            raise ValueError("credits must be a finite number >= 0")
        with self.lock:
            self.orgs[organization_id or self.organization_id].credits = float(credits)

    def balance(self, organization_id: str | None = None) -> float:
        """The organization's balance after materializing every task due by now.

        >>> SandboxState(SandboxConfig(), credits=1).balance()
        1.0
        """
        self.advance()
        with self.lock:
            return self.orgs[organization_id or self.organization_id].credits

    def balance_body(self, principal: Principal) -> dict[str, Any]:
        """Body of ``GET /credits/balance`` in the configured shape (spec §3.2):
        ``organization`` = ``{"organization_id", "credits": <float>}``; ``agent`` = the
        agent/MCP pages' ``{"credits": <int>, "timestamp_ms", "agent_instructions"}``, with
        ``organization_id`` too [doc: credits page] — [ours] the whole credits rounded down
        (never more than there is), the timestamp from the state's clock.

        >>> st = SandboxState(SandboxConfig(), credits=2.5)
        >>> st.balance_body(st.admit("Bearer " + st.api_key))["credits"]
        2.5
        """
        credits = self.balance(principal.organization_id)
        if self.config.balance_shape == "agent":
            return {
                "organization_id": principal.organization_id,
                "credits": math.floor(credits),
                "timestamp_ms": int(self.wall(self.now()) * 1000),
                "agent_instructions": AGENT_INSTRUCTIONS,
            }
        return {"organization_id": principal.organization_id, "credits": float(credits)}

    def ledger(self) -> list[dict[str, Any]]:
        """Every charge so far, oldest first.

        >>> SandboxState(SandboxConfig()).ledger()
        []
        """
        self.advance()
        with self.lock:
            return [dict(row) for row in self._ledger]

    def schedule(self) -> dict[str, Any]:
        """Each workflow's schedule, for benchmarks that compute the best possible run:
        ``{"now": t, "workflows": [{"workflow_id", "submitted", "finishes", "completed"}]}``
        in seconds on the state's clock (``finishes``: when its last task is scheduled to
        end, None while a task still waits for a worker; ``completed``: when it was seen
        terminal, or None).

        >>> SandboxState(SandboxConfig()).schedule()["workflows"]
        []
        """
        self.advance()
        with self.lock:
            rows = [
                {
                    "workflow_id": wf.id,
                    "submitted": wf.created_at,
                    "finishes": _finishes(wf),
                    "completed": wf.completed_at,
                }
                for wf in self.workflows.values()
            ]
            return {"now": self.now(), "workflows": rows}

    # --- stats ----------------------------------------------------------------------------
    def record(self, endpoint: str, status: int | str, generation: int | None = None) -> None:
        """Count one answered API request (``status`` may be ``"dropped"``); a request that
        started before a :meth:`reset` (``generation`` differs) is not counted.

        >>> st = SandboxState(SandboxConfig()); st.record("GET /credits/balance", 200)
        >>> st.stats()["by_endpoint"]
        {'GET /credits/balance': {'200': 1}}
        """
        with self.lock:
            if generation is not None and generation != self.generation:
                return
            self._total += 1
            row = self._stats.setdefault(endpoint, {})
            row[str(status)] = row.get(str(status), 0) + 1

    def stats(self) -> dict[str, Any]:
        """``{"total": N, "by_endpoint": {"POST /enrich/bulk": {"200": 3}, ...}}``.

        >>> SandboxState(SandboxConfig()).stats()
        {'total': 0, 'by_endpoint': {}}
        """
        with self.lock:
            return {
                "total": self._total,
                "by_endpoint": {k: dict(v) for k, v in self._stats.items()},
            }

    # --- faults ---------------------------------------------------------------------------
    def inject_fault(self, fault: Fault) -> None:
        """Queue a fault on its endpoint (``"*"`` = every endpoint).

        >>> st = SandboxState(SandboxConfig()); st.inject_fault(Fault("bulk", "status", status=503))
        >>> st.take_fault("bulk").status
        503
        """
        if fault.endpoint not in (*ENDPOINTS, "*"):
            raise ValueError(f"unknown endpoint {fault.endpoint!r}; one of {ENDPOINTS} or '*'")
        for name in ("times", "status", "retry_after"):
            value = getattr(fault, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"{name} must be an integer")
        for name in ("probability", "delay_s"):
            value = getattr(fault, name)
            if value is not None and not (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number")
        if fault.retry_after is not None and fault.retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; one of {FAULT_KINDS}")
        if fault.kind == "status" and (fault.status is None or not 400 <= fault.status <= 599):
            raise ValueError("kind 'status' needs status=4xx/5xx")
        if fault.kind == "slow" and (fault.delay_s is None or fault.delay_s < 0):
            raise ValueError("kind 'slow' needs delay_s >= 0")
        if fault.probability is not None and not 0.0 <= fault.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if fault.kind == "fail_workflow" and fault.endpoint not in ("bulk", "*"):
            raise ValueError("kind 'fail_workflow' applies to endpoint 'bulk' (or '*')")
        if fault.times is not None and fault.times < 1:
            raise ValueError("times must be >= 1 or None")
        with self.lock:
            self._faults.setdefault(fault.endpoint, []).append(fault)

    def clear_faults(self) -> None:
        """Remove every queued fault.

        >>> SandboxState(SandboxConfig()).clear_faults()
        """
        with self.lock:
            self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        """The queued faults, endpoint by endpoint.

        >>> SandboxState(SandboxConfig()).faults()
        []
        """
        with self.lock:
            return [f.as_dict() for q in self._faults.values() for f in q]

    def take_fault(self, endpoint: str) -> Fault | None:
        """Pick the fault that applies to one request on ``endpoint``, if any.

        The endpoint's own queue is read first, then ``"*"``. In each queue the first fault
        that fires wins: a fault without probability always fires (so queued faults form a
        script), a probabilistic one fires with its chance (seeded) and otherwise lets the
        next one try. A fault that fired uses up one of its ``times``. ``fail_workflow``
        faults are only taken by bulk requests.

        >>> SandboxState(SandboxConfig()).take_fault("status") is None
        True
        """
        with self.lock:
            for name in (endpoint, "*"):
                queue = self._faults.get(name)
                if not queue:
                    continue
                for fault in list(queue):
                    if fault.kind == "fail_workflow" and endpoint != "bulk":
                        continue  # only a bulk request can use it ("*" included)
                    if fault.probability is not None and (
                        self.fault_rng.random() >= fault.probability
                    ):
                        continue
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            queue.remove(fault)
                    return dataclasses.replace(fault)
            return None

    # --- rate limit -----------------------------------------------------------------------
    def admit(self, authorization: str | None) -> Principal:
        """What every API route does first, after injected faults: authenticate the
        ``Authorization`` header value (401/403), then count the request in the rate windows
        (429 with ``Retry-After``); raise :class:`ApiError`, or return the caller.

        >>> st = SandboxState(SandboxConfig(rate_limit_per_org=1))
        >>> st.admit("Bearer " + st.api_key).organization_id == st.organization_id
        True
        >>> try:
        ...     st.admit("Bearer " + st.api_key)
        ... except ApiError as exc:
        ...     print(exc.status, exc.detail, exc.headers)
        429 Rate limit exceeded {'Retry-After': '60'}
        """
        principal = self.authenticate(authorization)
        retry_after = self.check_rate(principal)
        if retry_after is not None:
            raise ApiError(429, "Rate limit exceeded", {"Retry-After": str(retry_after)})
        return principal

    def check_rate(self, principal: Principal) -> int | None:
        """Count one request in the fixed windows; return ``Retry-After`` seconds if over.

        ``Retry-After`` = ``max(1, ceil(scaled time left in the window))`` — whole seconds as
        the spec demands, so with a small ``time_scale`` it is 1 (longer than the window).
        Rejected requests do not count.

        >>> st = SandboxState(SandboxConfig())
        >>> st.check_rate(Principal(st.organization_id, st.api_key, "u")) is None
        True
        """
        cfg = self.config
        if not cfg.rate_limit_enabled:
            return None
        window = cfg.scaled(cfg.rate_limit_window_s)
        buckets = [("org:" + principal.organization_id, cfg.rate_limit_per_org)]
        if cfg.rate_limit_per_key_enabled:
            buckets.append(("key:" + principal.key, cfg.rate_limit_per_key))
        with self.lock:
            now = self.now()
            current: list[tuple[str, float, int]] = []
            for name, limit in buckets:
                start, count = self._windows.get(name, (now, 0))
                if now - start >= window:
                    start, count = now, 0
                if count >= limit:
                    return max(1, math.ceil(start + window - now))
                current.append((name, start, count))
            for name, start, count in current:
                self._windows[name] = (start, count + 1)
            return None

    # --- workflows ------------------------------------------------------------------------
    def worst_case(self, enrichment_type: str, n_contacts: int) -> float:
        """Credits a request could cost at most (contacts x the type's max unit cost).

        >>> SandboxState(SandboxConfig()).worst_case("full", 3)
        33.0
        """
        if enrichment_type == "prospecting_only":
            unit = PROSPECT_COST * self.config.prospecting_discovery_cap
        else:
            unit = MAX_UNIT_COST[enrichment_type]
        return float(unit * n_contacts)

    @staticmethod
    def check_count(n_contacts: int) -> None:
        """The 400s of ``POST /enrich/bulk`` (spec §3.3): no contacts, or more than 250.

        >>> SandboxState.check_count(0)
        Traceback (most recent call last):
        ...
        cleanlist_pandas.sandbox.state.ApiError: contacts must not be empty
        """
        if n_contacts == 0:
            raise ApiError(400, "contacts must not be empty")
        if n_contacts > MAX_CONTACTS_PER_REQUEST:
            raise ApiError(
                400,
                f"Bulk enrichment supports up to {MAX_CONTACTS_PER_REQUEST} contacts per request",
            )

    def submit(
        self,
        principal: Principal,
        enrichment_type: str,
        contacts: list[dict[str, Any]],
        webhook_url: str | None = None,
        *,
        fail: bool = False,
    ) -> dict[str, Any]:
        """Create a workflow (after the count and credit checks) and return the 200 body of
        ``POST /enrich/bulk``. Raises :class:`ApiError` 400 or 402. The contacts are taken
        as valid (the route checks them first, 422); each is the dict of the API fields
        sent.

        The service model (see :class:`SandboxConfig`): the workflow's start delay and its
        speed factor are drawn for it, each task's time is drawn (all fixed now, from the
        seed, in submission order); with ``workers_per_org`` set, its tasks join the
        organization's worker queue when the start delay ends, otherwise each starts then.

        >>> st = SandboxState(SandboxConfig(), credits=0)
        >>> p = st.authenticate("Bearer " + st.api_key)
        >>> st.submit(p, "partial", [{"linkedin_url": "https://www.linkedin.com/in/a"}])
        Traceback (most recent call last):
        ...
        cleanlist_pandas.sandbox.state.ApiError: Insufficient credits
        """
        cfg = self.config
        self.check_count(len(contacts))
        worst = self.worst_case(enrichment_type, len(contacts))
        now = self.now()  # one reading: the service did everything due by it, then this
        self.advance(now)
        with self.lock:
            org = self.orgs[principal.organization_id]
            if worst > 0:
                ok = org.credits >= worst if cfg.credit_rule == "worst_case" else org.credits > 0
                if not ok:
                    raise ApiError(402, "Insufficient credits")
            # per-workflow draws, two per workflow whatever the sigmas, so the k-th
            # workflow's factors depend on the seed and k only (a sigma of 0 gives 1)
            delay_z = self.workflow_rng.gauss(0.0, 1.0)
            speed_z = self.workflow_rng.gauss(0.0, 1.0)
            delay = cfg.workflow_start_delay_s * math.exp(cfg.workflow_start_delay_sigma * delay_z)
            speed = math.exp(cfg.workflow_speed_sigma * speed_z)
            start = now + cfg.scaled(delay)
            queued = cfg.workers_per_org is not None
            wf = _Workflow(
                id="public_bulk_" + str(uuid.uuid4()),
                org_id=org.id,
                enrichment_type=enrichment_type,
                lead_list_id=self._lead_list_locked(principal.user_id),
                webhook_url=webhook_url,
                created_at=now,
                start_at=start,
                fail=fail,
            )
            mu = math.log(max(cfg.task_time_median_s, 1e-9))
            low, high = cfg.task_time_bounds()
            for i, contact in enumerate(contacts):
                dur = self.rng.lognormvariate(mu, cfg.task_time_sigma)
                dur = min(max(dur, low), high) * speed
                task = _Task(
                    task_id=str(uuid.uuid4()),
                    index=i,
                    contact=contact,
                    fingerprint=contact_fingerprint(contact),
                    duration=cfg.scaled(dur),
                    workflow=wf,
                )
                wf.tasks.append(task)
                self.tasks[task.task_id] = task
                if not queued:  # unlimited workers: every task starts when the delay ends
                    task.start_at = start
                    task.finish_at = start + task.duration
                    heapq.heappush(self._heap, (task.finish_at, next(self._seq), task))
            if queued:  # its tasks join the organization's queue when the delay ends
                heapq.heappush(self._heap, (start, next(self._seq), wf))
            self.workflows[wf.id] = wf
            return {
                "workflow_id": wf.id,
                "status": "processing",
                "message": "Bulk enrichment started",
                "task_ids": [t.task_id for t in wf.tasks],
                "total_contacts": len(wf.tasks),
            }

    def _lead_list_locked(self, user_id: str) -> str:
        # the user's protected DEFAULT lead list: created once, reused by every workflow
        lead_list = self._lead_lists.get(user_id)
        if lead_list is None:
            lead_list = self._lead_lists[user_id] = str(uuid.uuid4())
        return lead_list

    def advance(self, now: float | None = None) -> None:
        """Do everything the service does by ``now`` (default: the clock's now), in time
        order: tasks finish (credits charged, results stored, workflows ended, webhook jobs
        handed to :attr:`dispatcher`), workflows whose start delay is over queue their tasks,
        free workers take queued tasks. Every read calls it first; the server's background
        ticker calls it every ``tick_s``; a simulator calls it (or just reads) after moving
        its clock — see :meth:`next_event_at`.

        >>> SandboxState(SandboxConfig()).advance()
        """
        jobs: list[WebhookJob] = []
        with self.lock:
            t = self.now() if now is None else now
            heap = self._heap
            while heap and heap[0][0] <= t:
                at, _, item = heapq.heappop(heap)
                if isinstance(item, _Workflow):  # start delay over: its tasks queue
                    self._queues.setdefault(item.org_id, deque()).extend(item.tasks)
                    self._start_queued(item.org_id, at)
                    continue
                task = item
                wf = task.workflow
                self._complete(task)
                if wf.done == len(wf.tasks):
                    job = self._finish(wf)
                    if job is not None:
                        jobs.append(job)
                if task.on_worker:  # free its worker for the next queued task
                    self._busy[wf.org_id] -= 1
                    self._start_queued(wf.org_id, at)
        dispatch = self.dispatcher
        if dispatch is not None:
            for job in jobs:
                dispatch(job)

    def _start_queued(self, org_id: str, at: float) -> None:
        """Free workers of ``org_id`` take queued tasks (FIFO) at instant ``at``; the cap is
        read now, so a changed ``workers_per_org`` applies from the next free worker."""
        queue = self._queues.get(org_id)
        if not queue:
            return
        cap = self.config.workers_per_org
        busy = self._busy.get(org_id, 0)
        while queue and (cap is None or busy < cap):
            task = queue.popleft()
            task.start_at = at
            task.finish_at = at + task.duration
            task.on_worker = True
            busy += 1
            heapq.heappush(self._heap, (task.finish_at, next(self._seq), task))
        self._busy[org_id] = busy

    def next_event_at(self) -> float | None:
        """When the service next does something on its own (a task finishes, or a
        workflow's start delay ends), on the state's clock; None when nothing is scheduled.
        Between now and then no read can see a change (but a task's ``pending`` turns
        ``processing`` at its start). A simulator jumps its clock here.

        >>> SandboxState(SandboxConfig()).next_event_at() is None
        True
        """
        with self.lock:
            return self._heap[0][0] if self._heap else None

    def _complete(self, task: _Task) -> None:
        wf = task.workflow
        cfg = self.config
        finished = task.finish_at
        assert finished is not None  # a task completes at its scheduled finish
        outcome = _decide(task, self.seed, cfg, wf.enrichment_type == "prospecting_only")
        etype = wf.enrichment_type
        error: str | None = None
        if wf.fail:
            error = _WORKFLOW_BROKE
        elif outcome.failed and etype != "none":
            # only look-ups fail; "none" looks nothing up (spec §5), so its tasks do not
            error = outcome.error
        charge = 0.0
        if error is None:
            charge = float(_charge(etype, outcome))
            org = self.orgs.get(wf.org_id)
            if org is None or org.credits < charge:
                error = _INSUFFICIENT
                charge = 0.0
            elif charge > 0:
                org.credits -= charge
                self._ledger.append(
                    {
                        "organization_id": wf.org_id,
                        "workflow_id": wf.id,
                        "task_id": task.task_id,
                        "fingerprint": task.fingerprint,
                        "enrichment_type": etype,
                        "credits": charge,
                        "at": self.iso(finished),
                    }
                )
        task.credits = charge
        task.result = _result(task, outcome, etype, error)
        task.status = task.result["status"]
        # payload records (spec §4): the task result itself plus each discovered contact
        task.records = 1 + len(task.result.get("discovered_contacts") or ())
        wf.done += 1
        if error is None:
            wf.successful += 1
            if task.result["primary_email"]:
                wf.emails_found += 1
            if task.result["personal_phone_numbers"]:
                wf.phones_found += 1
        else:
            wf.failed += 1

    def _finish(self, wf: _Workflow) -> WebhookJob | None:
        wf.completed_at = _finishes(wf) if wf.tasks else self.now()
        if wf.fail:
            wf.status = "failed"
        elif wf.failed:
            wf.status = "completed_with_errors"
        else:
            wf.status = "completed"
        if not wf.webhook_url:
            return None
        return WebhookJob(wf.id, wf.webhook_url, self._payload(wf), self.generation)

    def _summary(self, wf: _Workflow, full: bool) -> dict[str, int]:
        s = {"total": len(wf.tasks)}
        if full:
            s |= {"completed": wf.done, "pending": len(wf.tasks) - wf.done}
        return s | {
            "successful": wf.successful,
            "failed": wf.failed,
            "emails_found": wf.emails_found,
            "phones_found": wf.phones_found,
        }

    def _payload(self, wf: _Workflow) -> dict[str, Any]:
        limit = self.config.results_limit
        results: list[dict[str, Any]] = []
        used = truncated = 0
        for task in wf.tasks:
            # whole task results, in task order, while their records fit; the first that
            # does not fit and all after it are left out. results_truncated counts task
            # results, so len(results) + results_truncated == summary.total (spec §4)
            if truncated or used + task.records > limit:
                truncated += 1
                continue
            used += task.records
            assert task.result is not None
            results.append(task.result)
        assert wf.completed_at is not None
        return {
            "event": WEBHOOK_EVENT,
            "workflow_id": wf.id,
            "lead_list_id": wf.lead_list_id,
            "enrichment_type": wf.enrichment_type,
            "status": wf.status,
            "summary": self._summary(wf, full=False),
            "results": results,
            "results_limit": limit,
            "results_truncated": truncated,
            "results_endpoint": f"{API_PREFIX}/enrich/status?workflow_id={wf.id}",
            "completed_at": self.iso(wf.completed_at),
        }

    def _workflow_for(self, principal: Principal, workflow_id: str) -> _Workflow:
        wf = self.workflows.get(workflow_id)
        if wf is None or wf.org_id != principal.organization_id:
            raise ApiError(404, "Workflow not found")
        return wf

    def workflow_status(self, principal: Principal, workflow_id: str) -> dict[str, Any]:
        """Body of ``GET /enrich/status?workflow_id=`` (raises :class:`ApiError` 404).

        >>> st = SandboxState(SandboxConfig())
        >>> st.workflow_status(st.authenticate("Bearer " + st.api_key), "nope")
        Traceback (most recent call last):
        ...
        cleanlist_pandas.sandbox.state.ApiError: Workflow not found
        """
        self.advance()
        with self.lock:
            wf = self._workflow_for(principal, workflow_id)
            return {
                "workflow": {
                    "workflow_id": wf.id,
                    "status": wf.status,
                    "enrichment_type": wf.enrichment_type,
                    "lead_list_id": wf.lead_list_id,
                    "total_contacts": len(wf.tasks),
                    "summary": self._summary(wf, full=True),
                    "webhook_url": wf.webhook_url,
                    "created_at": self.iso(wf.created_at),
                    "completed_at": None if wf.completed_at is None else self.iso(wf.completed_at),
                },
                "results": [t.result for t in wf.tasks if t.result is not None],
            }

    def workflow_status_json(self, principal: Principal, workflow_id: str) -> bytes:
        """:meth:`workflow_status` serialized as JSON bytes; cached once the workflow is
        terminal, since its body never changes after that.

        >>> st = SandboxState(SandboxConfig())
        >>> st.workflow_status_json(st.authenticate("Bearer " + st.api_key), "x")
        Traceback (most recent call last):
        ...
        cleanlist_pandas.sandbox.state.ApiError: Workflow not found
        """
        self.advance()
        with self.lock:
            wf = self._workflow_for(principal, workflow_id)
            if wf.body_json is not None:
                return wf.body_json
            body = self.workflow_status(principal, workflow_id)
            data = json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")
            if wf.status != "processing":
                wf.body_json = data
            return data

    def task_status(self, principal: Principal, task_id: str) -> dict[str, Any]:
        """Body of ``GET /enrich/status?task_id=`` (raises :class:`ApiError` 404).

        >>> st = SandboxState(SandboxConfig())
        >>> st.task_status(st.authenticate("Bearer " + st.api_key), "nope")
        Traceback (most recent call last):
        ...
        cleanlist_pandas.sandbox.state.ApiError: Task not found
        """
        self.advance()
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None or task.workflow.org_id != principal.organization_id:
                raise ApiError(404, "Task not found")
            if task.result is not None:
                return {"task": task.result}
            started = task.start_at is not None and self.now() >= task.start_at
            status = "processing" if started else "pending"
            return {"task": _blank(task, status, task.workflow.enrichment_type)}

    def deliveries_for(self, principal: Principal, workflow_id: str) -> list[dict[str, Any]]:
        """Body of ``GET /webhooks/deliveries?workflow_id=`` (raises :class:`ApiError` 404).

        >>> st = SandboxState(SandboxConfig())
        >>> st.deliveries_for(st.authenticate("Bearer " + st.api_key), "x")
        Traceback (most recent call last):
        ...
        cleanlist_pandas.sandbox.state.ApiError: Workflow not found
        """
        self.advance()
        with self.lock:
            wf = self._workflow_for(principal, workflow_id)
            return [dict(r) for r in self.deliveries.get(wf.id, [])]

    def deliveries_body(self, principal: Principal, workflow_id: str) -> Any:
        """Body of ``GET /webhooks/deliveries?workflow_id=`` in the configured shape (spec
        §3.5): a bare list, or ``{"deliveries": [...]}``.

        >>> st = SandboxState(SandboxConfig(deliveries_shape="object")); wf = "public_bulk_x"
        >>> st.deliveries_body(st.admit("Bearer " + st.api_key), wf)
        Traceback (most recent call last):
        ...
        cleanlist_pandas.sandbox.state.ApiError: Workflow not found
        """
        rows = self.deliveries_for(principal, workflow_id)
        if self.config.deliveries_shape == "object":
            return {"deliveries": rows}
        return rows

    def duplicate_delivery(self) -> bool:
        """Whether a successful webhook delivery is sent a second time (the seeded chance
        ``webhook_duplicate_probability``, on its own random stream).

        >>> SandboxState(SandboxConfig()).duplicate_delivery()
        False
        """
        p = self.config.webhook_duplicate_probability
        if p <= 0:
            return False
        with self.lock:
            return self.duplicate_rng.random() < p

    def log_delivery(self, job: WebhookJob, row: dict[str, Any]) -> bool:
        """Log one delivery attempt; False (and nothing logged) if the sandbox was reset since.

        >>> st = SandboxState(SandboxConfig())
        >>> st.log_delivery(WebhookJob("wf", "u", {}, st.generation - 1), {})
        False
        """
        with self.lock:
            if job.generation != self.generation:
                return False
            self.deliveries.setdefault(job.workflow_id, []).append(row)
            return True

    def all_terminal(self) -> bool:
        """True when no workflow is processing.

        >>> SandboxState(SandboxConfig()).all_terminal()
        True
        """
        self.advance()
        with self.lock:
            return not self._heap


#: Outcomes already decided, by (fingerprint, seed, rates...): ``decide`` is pure, and a
#: simulator runs the same contacts through thousands of fresh states. Outcomes are shared
#: read-only (a result copies what it takes). Cleared when full (a crude bound on memory).
_OUTCOMES: dict[tuple[Any, ...], Outcome] = {}
_OUTCOMES_MAX = 50_000


def _decide(task: _Task, seed: int, cfg: SandboxConfig, discover: bool) -> Outcome:
    key = (
        task.fingerprint,
        seed,
        cfg.email_found_rate,
        cfg.phone_found_rate,
        cfg.task_failure_rate,
        cfg.prospecting_discovery_cap,
        discover,
    )
    outcome = _OUTCOMES.get(key)
    if outcome is None:
        outcome = decide(
            task.contact,
            seed,
            email_found_rate=cfg.email_found_rate,
            phone_found_rate=cfg.phone_found_rate,
            failure_rate=cfg.task_failure_rate,
            discovery_cap=cfg.prospecting_discovery_cap,
            discover=discover,
            fingerprint=task.fingerprint,
        )
        if len(_OUTCOMES) >= _OUTCOMES_MAX:
            _OUTCOMES.clear()
        _OUTCOMES[key] = outcome
    return outcome


def _finishes(wf: _Workflow) -> float | None:
    """When the workflow's last task is scheduled to end; None while one waits for a worker."""
    ends = [task.finish_at for task in wf.tasks]
    if not ends:
        return wf.start_at
    known = [end for end in ends if end is not None]
    return max(known) if len(known) == len(ends) else None


def _charge(etype: str, outcome: Outcome) -> int:
    email = EMAIL_COST if outcome.primary_email else 0
    phone = PHONE_COST if outcome.phones else 0
    if etype == "partial":
        return email
    if etype == "phone_only":
        return phone
    if etype == "full":
        return email + phone
    if etype == "prospecting_only":
        return PROSPECT_COST * len(outcome.discovered)
    return 0


def _input(contact: dict[str, Any]) -> dict[str, Any]:
    return {k: contact.get(k) for k in CONTACT_FIELDS}


_NORMALIZED_PROSPECT = ("first_name", "last_name", "full_name", "linkedin_url")


def _blank(task: _Task, status: str, etype: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task_id": task.task_id,
        "status": status,
        "primary_email": None,
        "primary_email_status": None,
        "other_emails": [],
        "personal_phone_numbers": [],
        "prospect": None,
        "company": None,
        "credits_charged": 0,
        "error": None,
        "input": _input(task.contact),
    }
    if etype == "prospecting_only":
        out["discovered_contacts"] = []
    return out


def _result(task: _Task, outcome: Outcome, etype: str, error: str | None) -> dict[str, Any]:
    if error is not None:
        out = _blank(task, "failed", etype)
        out["error"] = error
        return out
    out = _blank(task, "completed", etype)
    out["prospect"] = dict(outcome.prospect)
    out["company"] = dict(outcome.company)
    if etype == "none":
        # "none" finds nothing [doc]: only the contact as normalized and stored — names,
        # profile URL, company name and domain — none of the looked-up fields.
        out["prospect"] = {k: outcome.prospect.get(k) for k in _NORMALIZED_PROSPECT}
        out["company"] = {k: outcome.company.get(k) for k in ("name", "domain")}
    if etype in ("partial", "full") and outcome.primary_email:
        out["primary_email"] = outcome.primary_email
        out["primary_email_status"] = outcome.primary_email_status
        out["other_emails"] = list(outcome.other_emails)
    if etype in ("phone_only", "full"):
        out["personal_phone_numbers"] = list(outcome.phones)
    if etype == "prospecting_only":
        out["discovered_contacts"] = [dict(d) for d in outcome.discovered]
    c = task.credits
    out["credits_charged"] = int(c) if float(c).is_integer() else c
    return out
