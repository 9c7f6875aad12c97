"""The API client: :class:`AsyncClient` (the core) and :class:`Client` (sync, Jupyter-safe).

Why one module of this size: the sync :class:`Client` mirrors every method of
:class:`AsyncClient` one line each, and both must change together; the request mechanics
live in ``_http.py``.

>>> import cleanlist_pandas as clp                                   # doctest: +SKIP
>>> with clp.Client() as client:                                     # doctest: +SKIP
...     print(client.balance().credits)
...     job = client.submit([{"linkedin_url": "https://www.linkedin.com/in/johndoe"}])
...     wf = client.wait(job.workflow_id, progress=True)
...     print(wf.status, client.deliveries(job.workflow_id).to_dataframe())

Every request goes through one :class:`~cleanlist_pandas.client.http.RequestLoop`: the shared
pacer, the retry table, typed errors. The sync client runs the async core on the one
dedicated loop thread of :mod:`cleanlist_pandas.client.runner`, so it also works inside a running
event loop (a Jupyter cell).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from cleanlist_pandas._constants import (
    CONTACT_FIELDS,
    DEFAULT_ENRICHMENT_TYPE,
    ENRICHMENT_TYPES,
    MAX_CONTACTS_PER_REQUEST,
    WAIT_MAX_POLL_INTERVAL_S,
    WAIT_POLL_INTERVAL_S,
    is_loopback_url,
)
from cleanlist_pandas._sandbox_info import SandboxInfo
from cleanlist_pandas._sandbox_info import probe as probe_sandbox
from cleanlist_pandas.client.http import (
    Pacer,
    PacerStats,
    RequestLoop,
    SendHooks,
    Sleep,
    SubmissionInfo,
    shared_pacer,
)
from cleanlist_pandas.client.runner import run_sync
from cleanlist_pandas.config import (
    LoopStrategy,
    Settings,
    get_config,
    key_fingerprint,
    mask_key,
    resolve_api_key,
    validate_webhook_url,
)
from cleanlist_pandas.errors import (
    AuthenticationError,
    InputValidationError,
    UnexpectedResponseError,
    UserValueError,
    WaitTimeoutError,
)
from cleanlist_pandas.events import Event, Listener, PacerWait, RetryScheduled, wait_view
from cleanlist_pandas.types import (
    Balance,
    DeliveryLog,
    KeyInfo,
    StatusSnapshot,
    Submission,
    TaskResult,
    Workflow,
)

__all__ = ["AsyncClient", "Client", "validate_contacts"]

T = TypeVar("T")

#: First and largest interval between status polls in ``wait()`` (seconds).


def validate_contacts(
    contacts: Iterable[Mapping[str, Any]], enrichment_type: str = DEFAULT_ENRICHMENT_TYPE
) -> list[dict[str, str]]:
    """Check contacts against the API's rule locally; return the bodies to send.

    A contact needs ``linkedin_url``, or ``first_name`` + ``last_name`` + (``company_domain``
    or ``company_name``). Fields are strings; ``None`` and blank strings count as missing and
    are left out of the body. Unknown fields are refused (a typo would otherwise be ignored).
    Raises :class:`InputValidationError` (a ``ValueError``) naming each index and field.

    >>> validate_contacts([{"first_name": "Ann", "last_name": "Lee", "company_name": "Acme",
    ...                     "linkedin_url": None}])
    [{'first_name': 'Ann', 'last_name': 'Lee', 'company_name': 'Acme'}]
    """
    if enrichment_type not in ENRICHMENT_TYPES:
        raise InputValidationError(
            f"Unknown enrichment_type {enrichment_type!r}; use one of {list(ENRICHMENT_TYPES)}.",
            [(None, "enrichment_type", "unknown")],
        )
    if isinstance(contacts, Mapping | str | bytes):
        raise InputValidationError(
            "contacts must be a list of contact dicts, not a single "
            f"{type(contacts).__name__}.",
            [(None, "contacts", "not a list")],
        )
    items = list(contacts)
    if not items:
        raise InputValidationError("contacts must not be empty.", [(None, "contacts", "empty")])
    if len(items) > MAX_CONTACTS_PER_REQUEST:
        raise InputValidationError(
            f"{len(items)} contacts in one request; the API takes at most "
            f"{MAX_CONTACTS_PER_REQUEST}. Split them into chunks (df.cleanlist.enrich() does).",
            [(None, "contacts", "too many")],
        )
    problems: list[tuple[int | None, str, str]] = []
    cleaned: list[dict[str, str]] = []
    for i, contact in enumerate(items):
        if not isinstance(contact, Mapping):
            problems.append((i, "*", f"is a {type(contact).__name__}, not a dict"))
            continue
        body: dict[str, str] = {}
        for name, value in contact.items():
            if name not in CONTACT_FIELDS:
                known = ", ".join(CONTACT_FIELDS)
                problems.append((i, str(name), f"unknown field (known: {known})"))
                continue
            if value is None:
                continue
            if not isinstance(value, str):
                problems.append((i, name, f"must be a string, not {type(value).__name__}"))
                continue
            if value.strip():
                body[name] = value
        has_linkedin = "linkedin_url" in body
        has_names = "first_name" in body and "last_name" in body
        has_company = "company_domain" in body or "company_name" in body
        if not has_linkedin and not (has_names and has_company):
            missing = [f for f in ("first_name", "last_name") if f not in body]
            if not has_company:
                missing.append("company_domain or company_name")
            problems.append(
                (i, "linkedin_url" if not missing else missing[0],
                 "needs linkedin_url, or first_name + last_name + (company_domain or "
                 f"company_name); missing: {', '.join(missing)}")
            )
        cleaned.append(body)
    if problems:
        shown = "; ".join(f"contact {i}: {field} {why}" for i, field, why in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise InputValidationError(
            f"{len({p[0] for p in problems})} contact(s) would be rejected by the API; "
            f"nothing was sent. {shown}{more}",
            problems,
        )
    return cleaned


def _wait_note(event: Event) -> str:
    """What a ``wait()``'s view says of a client event: a wait for the window, a retry.

    >>> _wait_note(PacerWait("GET", "/enrich/status", 2.0))
    'waiting 2.0s on the rate limit'
    """
    if isinstance(event, PacerWait) and event.delay >= 0.5:
        return f"waiting {event.delay:.1f}s on the rate limit"
    if isinstance(event, RetryScheduled):
        return f"retry in {event.delay:.1f}s ({event.reason})"
    return ""


class AsyncClient:
    """Async client of the Cleanlist Public API v1.

    Options left as ``None`` come from :func:`cleanlist_pandas.configure`, then the
    environment (``CLEANLIST_API_KEY``, ``CLEANLIST_BASE_URL``), then the defaults.

    ``pacer`` lets several clients share one rate limit; otherwise one is made from
    ``rate``/``per``/``burst``. ``on_event`` receives :class:`RetryScheduled` /
    :class:`PacerWait` / ... events. ``transport`` is handed to httpx (tests);
    ``clock``/``sleep`` drive every wait (tests run them in scaled time).

    >>> async def main():                                             # doctest: +SKIP
    ...     async with AsyncClient(api_key="clapi_...") as client:
    ...         return (await client.balance()).credits
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        max_retries: int | None = None,
        max_retry_after: float | None = None,
        rate_limit_patience: float | None = None,
        rate: int | None = None,
        per: float | None = None,
        burst: int | None = None,
        progress: bool | None = None,
        pacer: Pacer | None = None,
        on_event: Listener | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Sleep | None = None,
        _settings: Settings | None = None,
        _rebind_on_loop_change: bool = False,
    ) -> None:
        settings = _settings or get_config(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retries=max_retries,
            max_retry_after=max_retry_after,
            rate_limit_patience=rate_limit_patience,
            rate=rate,
            per=per,
            burst=burst,
            progress=progress,
        )
        key = resolve_api_key(settings)
        self._settings = settings
        self._clock = clock or time.monotonic
        self._sleep: Sleep = sleep or asyncio.sleep
        # A local sandbox's own window (60 s x its time_scale, in real seconds) replaces the
        # API's when the caller set neither rate nor per (nor a clock of their own, whose
        # seconds may already be scaled): learnt before the first request.
        self._adopt_window = (
            pacer is None
            and clock is None
            and sleep is None
            and (settings.rate is None or settings.per is None)
        )
        self._sandbox: tuple[SandboxInfo | None] | None = None  # (answer,) once probed
        if pacer is None and clock is None and sleep is None:
            # one window per organization: clients of the same key in this process share it
            s = settings
            pacer = shared_pacer(s.base_url, key, s.rate, s.per, s.burst)
        self.pacer = pacer or Pacer(
            settings.rate_or_default,
            settings.per_or_default,
            settings.burst,
            clock=self._clock,
            sleep=self._sleep,
        )
        self._requests = RequestLoop(
            settings,
            key,
            pacer=self.pacer,
            on_event=on_event,
            transport=transport,
            clock=self._clock,
            sleep=self._sleep,
            rebind_on_loop_change=_rebind_on_loop_change,
            prepare=self._learn_sandbox if is_loopback_url(settings.base_url) else None,
        )
        self.api_key_masked = mask_key(key)
        #: the key's fingerprint (:func:`~cleanlist_pandas.config.key_fingerprint`): names
        #: the key in local files, never the key itself
        self.key_fingerprint = key_fingerprint(key)

    # -- plumbing -----------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The resolved settings (the key masked in their repr)."""
        return self._settings

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    def stats(self) -> PacerStats:
        """Pacer counters: requests, 429s seen, retries, seconds waited."""
        return self.pacer.stats()

    def add_listener(self, callback: Listener) -> None:
        """Also send client events to ``callback`` (in addition to ``on_event``)."""
        self._requests.add_listener(callback)

    def remove_listener(self, callback: Listener) -> None:
        self._requests.remove_listener(callback)

    def __repr__(self) -> str:
        return f"<AsyncClient base_url={self.base_url!r} key={self.api_key_masked}>"

    __str__ = __repr__

    async def aclose(self) -> None:
        """Close the connection pool. The client cannot be used afterwards."""
        await self._requests.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @staticmethod
    def _expect_mapping(body: Any, what: str, path: str) -> Mapping[str, Any]:
        if not isinstance(body, Mapping):
            raise UnexpectedResponseError(
                f"{what}: expected a JSON object from {path}, got {type(body).__name__}.",
                path=path,
            )
        return body

    async def sandbox_info(self) -> SandboxInfo | None:
        """What the local sandbox this client points at says of itself (its clock, rate
        window and scratch cache directory; see :mod:`cleanlist_pandas._sandbox_info`), or
        None for any other server. Asked once per client, and only of a loopback host (the
        real API is never asked). Free: not an API route, not counted in the window.

        A client that was given neither ``rate`` nor ``per`` paces itself to the sandbox's
        window from then on (this is done before its first request anyway).

        >>> sb = clp.Sandbox(time_scale=0.1).start()                    # doctest: +SKIP
        >>> client = AsyncClient(sb.api_key, base_url=sb.base_url)      # doctest: +SKIP
        >>> (await client.sandbox_info()).window_s                      # doctest: +SKIP
        6.0
        """
        if self._sandbox is None:
            info = (
                await asyncio.to_thread(probe_sandbox, self.base_url)
                if is_loopback_url(self.base_url)
                else None
            )
            self._sandbox = (info,)
            if info is not None and self._adopt_window:
                s = self._settings
                self.pacer.adopt_window(
                    info.rate_limit_per_org if s.rate is None else s.rate,
                    info.window_s if s.per is None else s.per,
                )
        return self._sandbox[0]

    async def _learn_sandbox(self) -> None:
        await self.sandbox_info()

    # -- endpoints ----------------------------------------------------------------------

    async def validate_key(self) -> KeyInfo:
        """``GET /auth/validate-key`` (free). A 200 with ``valid: false`` raises
        :class:`AuthenticationError`, like a 401.

        >>> (await client.validate_key()).organization_id               # doctest: +SKIP
        'org_...'
        """
        path = "/auth/validate-key"
        body = self._expect_mapping(await self._requests.request("GET", path), "validate-key", path)
        info = KeyInfo.from_api(body)
        if not info.valid:
            raise AuthenticationError(
                f"HTTP 200 from GET {path}: the API says key {self.api_key_masked} is not "
                "valid. Check the key (mistyped, revoked or from another environment).",
                status_code=200,
                body=dict(body),
                method="GET",
                path=path,
                detail="valid: false",
            )
        return info

    async def balance(self) -> Balance:
        """``GET /credits/balance`` (free): the organization's credits, a float.

        >>> (await client.balance()).credits                            # doctest: +SKIP
        10000.0
        """
        path = "/credits/balance"
        return Balance.from_api(
            self._expect_mapping(await self._requests.request("GET", path), "balance", path)
        )

    async def submit(
        self,
        contacts: Sequence[Mapping[str, Any]],
        enrichment_type: str = DEFAULT_ENRICHMENT_TYPE,
        webhook_url: str | None = None,
        *,
        send_hooks: SendHooks | None = None,
    ) -> Submission:
        """``POST /enrich/bulk``: start a workflow for 1 to 250 contacts.

        Contacts are checked locally first (:func:`validate_contacts`), and so is
        ``webhook_url`` (:func:`~cleanlist_pandas.config.validate_webhook_url`: https, or
        http on loopback); nothing is sent if one fails. The request is re-sent only when it
        provably never reached the server (refused connection, DNS failure, 429, 503); a
        time-out or dropped connection after sending raises
        :class:`AmbiguousSubmissionError` with the contacts concerned. ``send_hooks``
        (:class:`~cleanlist_pandas.client.http.SendHooks`) lets a journal record the moment each
        attempt can leave the machine, and veto it.

        >>> job = await client.submit([{"linkedin_url": "https://linkedin.com/in/x"}],
        ...                           webhook_url="https://example.com/hook")  # doctest: +SKIP
        >>> job.workflow_id, job.task_ids                                # doctest: +SKIP
        """
        cleaned = validate_contacts(contacts, enrichment_type)
        if webhook_url is not None:
            validate_webhook_url(webhook_url)
        body: dict[str, Any] = {"enrichment_type": enrichment_type, "contacts": cleaned}
        if webhook_url is not None:
            body["webhook_url"] = webhook_url
        path = "/enrich/bulk"
        answer = await self._requests.request(
            "POST",
            path,
            json_body=body,
            submission=SubmissionInfo(tuple(contacts), enrichment_type, webhook_url),
            hooks=send_hooks,
        )
        answer = self._expect_mapping(answer, "submit", path)
        if "workflow_id" not in answer:
            raise UnexpectedResponseError(
                f"POST {path} answered without a workflow_id: {dict(answer)!r}",
                method="POST",
                path=path,
            )
        job = Submission.from_api(answer, enrichment_type=enrichment_type, webhook_url=webhook_url)
        if job.task_ids and len(job.task_ids) != len(cleaned):
            raise UnexpectedResponseError(
                f"POST {path} created workflow {job.workflow_id} with {len(job.task_ids)} "
                f"task ids for {len(cleaned)} contacts; results cannot be mapped back to "
                "rows by position. The workflow exists: read it with status().",
                method="POST",
                path=path,
                workflow_id=job.workflow_id,
            )
        return job

    async def status(self, workflow_id: str) -> Workflow:
        """``GET /enrich/status?workflow_id=`` (free): the workflow and finished results.

        >>> wf = await client.status("public_bulk_...")                 # doctest: +SKIP
        >>> wf.status, wf.summary.completed, len(wf.results)            # doctest: +SKIP
        """
        path = "/enrich/status"
        body = await self._requests.request(
            "GET", path, params={"workflow_id": workflow_id}, workflow_id=workflow_id
        )
        return Workflow.from_api(
            self._expect_mapping(body, "status", path), workflow_id=workflow_id
        )

    async def status_snapshot(
        self, workflow_id: str, *, send_hooks: SendHooks | None = None
    ) -> StatusSnapshot:
        """``GET /enrich/status?workflow_id=`` read for a poller: the status, the summary's
        counts and the result objects as decoded, not copied (:class:`StatusSnapshot`).
        ``send_hooks`` are called around each attempt (e.g. to note when the read left,
        after any wait for the rate window).

        >>> snap = await client.status_snapshot("public_bulk_...")      # doctest: +SKIP
        >>> snap.is_terminal, snap.completed, snap.total                # doctest: +SKIP
        """
        path = "/enrich/status"
        snap = await self._requests.request(
            "GET",
            path,
            params={"workflow_id": workflow_id},
            workflow_id=workflow_id,
            hooks=send_hooks,
            parse=functools.partial(StatusSnapshot.from_json, workflow_id=workflow_id),
        )
        if isinstance(snap, StatusSnapshot):
            return snap
        self._expect_mapping(snap, "status", path)  # raises: not a JSON object
        raise AssertionError("unreachable")  # pragma: no cover

    async def task_status(self, task_id: str) -> TaskResult:
        """``GET /enrich/status?task_id=`` (free): one task's result object.

        >>> (await client.task_status("6f1c...")).primary_email       # doctest: +SKIP
        """
        path = "/enrich/status"
        body = await self._requests.request("GET", path, params={"task_id": task_id})
        return TaskResult.from_api(self._expect_mapping(body, "task status", path))

    async def results(self, workflow_id: str) -> tuple[TaskResult, ...]:
        """The complete result set of a workflow (from the status endpoint).

        >>> [r.primary_email for r in await client.results(job.workflow_id)]  # doctest: +SKIP
        """
        return (await self.status(workflow_id)).results

    async def deliveries(self, workflow_id: str) -> DeliveryLog:
        """``GET /webhooks/deliveries`` (free): one row per webhook delivery attempt.

        >>> (await client.deliveries(job.workflow_id)).to_dataframe()    # doctest: +SKIP
        """
        path = "/webhooks/deliveries"
        body = await self._requests.request(
            "GET", path, params={"workflow_id": workflow_id}, workflow_id=workflow_id
        )
        return DeliveryLog.from_api(body, workflow_id)

    async def wait(
        self,
        workflow_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        max_poll_interval: float = WAIT_MAX_POLL_INTERVAL_S,
        progress: bool | None = None,
        on_update: Callable[[Workflow], None] | None = None,
    ) -> Workflow:
        """Poll ``status`` until the workflow is terminal; return the final :class:`Workflow`.

        Polls start every ``poll_interval`` s (default 1 s) and slow down by 1.5x up to
        ``max_poll_interval`` (a fixed ``poll_interval`` is kept as given when
        ``max_poll_interval`` equals it). ``timeout`` is the total time allowed (seconds);
        past it, :class:`WaitTimeoutError` is raised — the workflow keeps running.
        ``progress=True`` shows a tqdm bar; ``on_update`` is called with every status read.
        Polls share the client's pacer with every other request.

        >>> wf = await client.wait(job.workflow_id, timeout=600, progress=True)  # doctest: +SKIP
        """
        show = self._settings.progress if progress is None else progress
        bar = wait_view(workflow_id, show)

        def _listen(event: Event) -> None:
            note = _wait_note(event)
            if note:
                bar.note(note)

        def _update(wf: Workflow) -> None:  # the one wiring of a wait's view: on_update
            bar.note("")
            bar.update(wf)
            if on_update is not None:
                on_update(wf)

        self._requests.add_listener(_listen)
        try:
            return await self._wait(
                workflow_id, timeout, poll_interval, max_poll_interval, _update
            )
        finally:
            self._requests.remove_listener(_listen)
            bar.close()

    async def _wait(
        self,
        workflow_id: str,
        timeout: float | None,
        poll_interval: float | None,
        max_poll_interval: float,
        on_update: Callable[[Workflow], None],
    ) -> Workflow:
        interval = WAIT_POLL_INTERVAL_S if poll_interval is None else poll_interval
        if interval < 0 or (timeout is not None and timeout < 0):
            raise UserValueError("poll_interval and timeout must be >= 0")
        ceiling = max(max_poll_interval, interval)
        deadline = math.inf if timeout is None else self._clock() + timeout
        last: Workflow | None = None
        while True:
            last = await self.status(workflow_id)
            on_update(last)
            if last.is_terminal:
                return last
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            await self._sleep(min(interval, remaining))
            interval = min(interval * 1.5, ceiling)
            if self._clock() >= deadline:
                # one last look, so a workflow that finished at the deadline is not an error
                last = await self.status(workflow_id)
                on_update(last)
                if last.is_terminal:
                    return last
                break
        done, total = last.progress if last else (0, 0)
        raise WaitTimeoutError(
            f"Workflow {workflow_id} is still {last.status if last else 'unknown'} "
            f"({done}/{total} tasks finished) after {timeout} s. It keeps running on the "
            f"server: call wait({workflow_id!r}) again, or results() later; a webhook, if "
            "set, will still fire.",
            workflow_id=workflow_id,
            last=last,
        )


def _close_on_loop(inner: AsyncClient, strategy: str) -> None:
    """Finalizer of a sync Client that was not closed: close its pool on the loop thread."""
    from cleanlist_pandas.client import runner

    lt = runner._loop_thread
    if lt is None or not lt.is_alive() or inner._requests.closed:
        return
    with contextlib.suppress(RuntimeError):  # loop closed at interpreter exit
        lt.loop.call_soon_threadsafe(lambda: lt.loop.create_task(inner.aclose()))


class Client:
    """Synchronous client: the same methods as :class:`AsyncClient`, blocking.

    Works in a plain script, in IPython, and inside a running event loop (a Jupyter cell):
    the async core runs on one dedicated background loop thread, which owns the httpx
    client; this thread waits and receives Ctrl-C, which cancels the request cleanly.
    ``loop_strategy="nest_asyncio"`` (opt-in, needs nest-asyncio2) re-enters the caller's
    running loop instead.

    >>> import cleanlist_pandas as clp                                # doctest: +SKIP
    >>> clp.configure(api_key="clapi_...")                            # doctest: +SKIP
    >>> client = clp.Client()                                         # doctest: +SKIP
    >>> client.balance().credits                                      # doctest: +SKIP
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        max_retries: int | None = None,
        max_retry_after: float | None = None,
        rate_limit_patience: float | None = None,
        rate: int | None = None,
        per: float | None = None,
        burst: int | None = None,
        progress: bool | None = None,
        loop_strategy: LoopStrategy | None = None,
        pacer: Pacer | None = None,
        on_event: Listener | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        settings = get_config(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retries=max_retries,
            max_retry_after=max_retry_after,
            rate_limit_patience=rate_limit_patience,
            rate=rate,
            per=per,
            burst=burst,
            progress=progress,
            loop_strategy=loop_strategy,
        )
        self._strategy: str = settings.loop_strategy
        self._async = AsyncClient(
            _settings=settings,
            pacer=pacer,
            on_event=on_event,
            transport=transport,
            clock=clock,
            sleep=sleep,
            _rebind_on_loop_change=True,
        )
        self._finalizer = weakref.finalize(self, _close_on_loop, self._async, self._strategy)

    @property
    def aio(self) -> AsyncClient:
        """The async client underneath (for ``await`` inside async code)."""
        return self._async

    @property
    def api_key_masked(self) -> str:
        """The key as it may be shown: ``clapi_…1a2b``."""
        return self._async.api_key_masked

    @property
    def key_fingerprint(self) -> str:
        """The key's fingerprint, never the key (see
        :func:`~cleanlist_pandas.config.key_fingerprint`)."""
        return self._async.key_fingerprint

    @property
    def settings(self) -> Settings:
        return self._async.settings

    @property
    def base_url(self) -> str:
        return self._async.base_url

    @property
    def pacer(self) -> Pacer:
        return self._async.pacer

    def stats(self) -> PacerStats:
        """Pacer counters: requests, 429s seen, retries, seconds waited."""
        return self._async.stats()

    def add_listener(self, callback: Listener) -> None:
        self._async.add_listener(callback)

    def remove_listener(self, callback: Listener) -> None:
        self._async.remove_listener(callback)

    def __repr__(self) -> str:
        return f"<Client base_url={self.base_url!r} key={self._async.api_key_masked}>"

    __str__ = __repr__

    def _run(
        self, factory: Callable[[], Awaitable[T]], tick: Callable[[], None] | None = None
    ) -> T:
        return run_sync(factory, tick=tick, strategy=self._strategy)

    def close(self) -> None:
        """Close the connection pool."""
        self._finalizer.detach()
        self._run(self._async.aclose)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sandbox_info(self) -> SandboxInfo | None:
        """The local sandbox's self-description, or None; see
        :meth:`AsyncClient.sandbox_info`.

        >>> clp.Client(sb.api_key, base_url=sb.base_url).sandbox_info().time_scale  # doctest: +SKIP
        0.1
        """
        return self._run(self._async.sandbox_info)

    def validate_key(self) -> KeyInfo:
        """``GET /auth/validate-key``; see :meth:`AsyncClient.validate_key`.

        >>> client.validate_key().organization_id                       # doctest: +SKIP
        """
        return self._run(self._async.validate_key)

    def balance(self) -> Balance:
        """``GET /credits/balance``; see :meth:`AsyncClient.balance`.

        >>> client.balance().credits                                    # doctest: +SKIP
        """
        return self._run(self._async.balance)

    def submit(
        self,
        contacts: Sequence[Mapping[str, Any]],
        enrichment_type: str = DEFAULT_ENRICHMENT_TYPE,
        webhook_url: str | None = None,
    ) -> Submission:
        """``POST /enrich/bulk``; see :meth:`AsyncClient.submit`.

        >>> client.submit([{"linkedin_url": "https://linkedin.com/in/x"}])  # doctest: +SKIP
        """
        # validate in the caller's thread: a bad row fails before anything is scheduled
        validate_contacts(contacts, enrichment_type)
        return self._run(lambda: self._async.submit(contacts, enrichment_type, webhook_url))

    def status(self, workflow_id: str) -> Workflow:
        """``GET /enrich/status?workflow_id=``; see :meth:`AsyncClient.status`."""
        return self._run(lambda: self._async.status(workflow_id))

    def task_status(self, task_id: str) -> TaskResult:
        """``GET /enrich/status?task_id=``; see :meth:`AsyncClient.task_status`."""
        return self._run(lambda: self._async.task_status(task_id))

    def results(self, workflow_id: str) -> tuple[TaskResult, ...]:
        """The workflow's complete result set; see :meth:`AsyncClient.results`."""
        return self._run(lambda: self._async.results(workflow_id))

    def deliveries(self, workflow_id: str) -> DeliveryLog:
        """Webhook delivery attempts; ``.to_dataframe()`` for a DataFrame.

        >>> client.deliveries(job.workflow_id).to_dataframe()           # doctest: +SKIP
        """
        return self._run(lambda: self._async.deliveries(workflow_id))

    def wait(
        self,
        workflow_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        max_poll_interval: float = WAIT_MAX_POLL_INTERVAL_S,
        progress: bool | None = None,
        on_update: Callable[[Workflow], None] | None = None,
    ) -> Workflow:
        """Poll until terminal; see :meth:`AsyncClient.wait`. The progress bar is drawn
        from this (the caller's) thread; Ctrl-C stops waiting (the workflow keeps running).

        >>> wf = client.wait(job.workflow_id, progress=True, timeout=600)  # doctest: +SKIP
        """
        show = self._async.settings.progress if progress is None else progress
        bar = wait_view(workflow_id, show)
        latest: list[Workflow] = []
        notes: list[str] = []

        def _record(wf: Workflow) -> None:  # on the loop thread
            latest.append(wf)
            del latest[:-1]

        def _listen(event: Event) -> None:  # on the loop thread
            note = _wait_note(event)
            if note:
                notes.append(note)

        shown: list[Workflow | None] = [None]

        def _tick() -> None:  # in the caller's thread
            if notes:
                bar.note(notes[-1])
                notes.clear()
            if latest and latest[-1] is not shown[0]:
                shown[0] = latest[-1]
                bar.update(latest[-1])
                bar.note("")
                if on_update is not None:
                    on_update(latest[-1])

        self._async.add_listener(_listen)
        try:
            return self._run(
                lambda: self._async.wait(
                    workflow_id,
                    timeout=timeout,
                    poll_interval=poll_interval,
                    max_poll_interval=max_poll_interval,
                    progress=False,
                    on_update=_record,
                ),
                tick=_tick,
            )
        finally:
            self._async.remove_listener(_listen)
            bar.close()
