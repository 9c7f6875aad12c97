"""The sandbox's state: organizations, keys, workflows, the ledger, stats, faults and the
rate limiter. One object, guarded by one lock, shared by the HTTP app and the Python API.

Why one module of this size: every route reads and writes several of these under one lock
(a submission checks the key, the rate window and the balance, then creates a workflow
and its ledger rows); one object keeps that atomic.

>>> from cleanlist_pandas.sandbox.state import SandboxState
>>> from cleanlist_pandas.sandbox.config import SandboxConfig
>>> st = SandboxState(SandboxConfig(), seed=0, credits=5.0)
>>> st.balance()
5.0
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
    MAX_UNIT_COST,
    PHONE_COST,
    PROSPECT_COST,
    WEBHOOK_EVENT,
)
from cleanlist_pandas.sandbox.config import SandboxConfig
from cleanlist_pandas.sandbox.oracle import Outcome, contact_fingerprint, decide

__all__ = [
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
    expires_at: float | None = None  # monotonic; None = never


@dataclass
class _Task:
    task_id: str
    index: int
    contact: dict[str, Any]
    fingerprint: str
    finish_at: float
    workflow: _Workflow
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
    created_at: float  # monotonic
    start_at: float  # monotonic
    fail: bool
    tasks: list[_Task] = field(default_factory=list)
    done: int = 0
    successful: int = 0
    failed: int = 0
    emails_found: int = 0
    phones_found: int = 0
    status: str = "processing"
    completed_at: float | None = None  # monotonic
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
        self._wall0 = time.time()
        self._mono0 = time.monotonic()
        self.generation = 0
        self._reset_locked()

    # --- clock ----------------------------------------------------------------------------
    def now(self) -> float:
        """Monotonic now (seconds).

        >>> SandboxState(SandboxConfig()).now() > 0
        True
        """
        return time.monotonic()

    def iso(self, mono: float) -> str:
        """ISO-8601 UTC wall time of a monotonic instant.

        >>> SandboxState(SandboxConfig()).iso(time.monotonic()).endswith("Z")
        True
        """
        return _iso(self._wall0 + (mono - self._mono0))

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
        self._heap: list[tuple[float, int, _Task]] = []
        self._seq = itertools.count()
        self._ledger: list[dict[str, Any]] = []
        self._stats: dict[str, dict[str, int]] = {}
        self._total = 0
        self._faults: dict[str, list[Fault]] = {}
        self._windows: dict[str, tuple[float, int]] = {}
        self.deliveries: dict[str, list[dict[str, Any]]] = {}
        #: user_id -> the user's protected DEFAULT lead list (created at its first workflow)
        self._lead_lists: dict[str, str] = {}
        self.rng = random.Random(self.seed)
        self.fault_rng = random.Random(self.seed + 1)

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
        in seconds on the sandbox's monotonic clock (``finishes``: when its last task is
        scheduled to end; ``completed``: when it was seen terminal, or None).

        >>> SandboxState(SandboxConfig()).schedule()["workflows"]
        []
        """
        self.advance()
        with self.lock:
            rows = [
                {
                    "workflow_id": wf.id,
                    "submitted": wf.created_at,
                    "finishes": max((t.finish_at for t in wf.tasks), default=wf.start_at),
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

    def submit(
        self,
        principal: Principal,
        enrichment_type: str,
        contacts: list[dict[str, Any]],
        webhook_url: str | None = None,
        *,
        fail: bool = False,
    ) -> dict[str, Any]:
        """Create a workflow (after the credit check) and return the 200 body of
        ``POST /enrich/bulk``. Raises :class:`ApiError` 402.

        >>> st = SandboxState(SandboxConfig(), credits=0)
        >>> p = st.authenticate("Bearer " + st.api_key)
        >>> st.submit(p, "partial", [{"linkedin_url": "https://www.linkedin.com/in/a"}])
        Traceback (most recent call last):
        ...
        cleanlist_pandas.sandbox.state.ApiError: Insufficient credits
        """
        cfg = self.config
        worst = self.worst_case(enrichment_type, len(contacts))
        self.advance()
        with self.lock:
            org = self.orgs[principal.organization_id]
            if worst > 0:
                ok = org.credits >= worst if cfg.credit_rule == "worst_case" else org.credits > 0
                if not ok:
                    raise ApiError(402, "Insufficient credits")
            now = self.now()
            start = now + cfg.scaled(cfg.workflow_start_delay_s)
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
            for i, contact in enumerate(contacts):
                dur = self.rng.lognormvariate(mu, cfg.task_time_sigma)
                dur = min(max(dur, cfg.task_time_min_s), cfg.task_time_max_s)
                task = _Task(
                    task_id=str(uuid.uuid4()),
                    index=i,
                    contact=contact,
                    fingerprint=contact_fingerprint(contact),
                    finish_at=start + cfg.scaled(dur),
                    workflow=wf,
                )
                wf.tasks.append(task)
                self.tasks[task.task_id] = task
                heapq.heappush(self._heap, (task.finish_at, next(self._seq), task))
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
        """Materialize every task whose finish time has passed (charging credits, ending
        workflows, queueing webhooks). Called on every read and by the background ticker.

        >>> SandboxState(SandboxConfig()).advance()
        """
        jobs: list[WebhookJob] = []
        with self.lock:
            t = self.now() if now is None else now
            heap = self._heap
            while heap and heap[0][0] <= t:
                _, _, task = heapq.heappop(heap)
                self._complete(task)
                wf = task.workflow
                if wf.done == len(wf.tasks):
                    job = self._finish(wf)
                    if job is not None:
                        jobs.append(job)
        dispatch = self.dispatcher
        if dispatch is not None:
            for job in jobs:
                dispatch(job)

    def _complete(self, task: _Task) -> None:
        wf = task.workflow
        cfg = self.config
        outcome = decide(
            task.contact,
            self.seed,
            email_found_rate=cfg.email_found_rate,
            phone_found_rate=cfg.phone_found_rate,
            failure_rate=cfg.task_failure_rate,
            discovery_cap=cfg.prospecting_discovery_cap,
            discover=wf.enrichment_type == "prospecting_only",
            fingerprint=task.fingerprint,
        )
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
                        "at": self.iso(task.finish_at),
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
        wf.completed_at = max(t.finish_at for t in wf.tasks) if wf.tasks else self.now()
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
            status = "processing" if self.now() >= task.workflow.start_at else "pending"
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
