"""The enrichment engine: submit chunks, poll workflows, collect results — async, UI-free.

Why one module of this size: submitting, polling and collecting share one budget (the
rate window and ``max_credits``), one set of stop conditions and one journal; split, each
part would need the others' private state to decide when to send, wait or stop.

The engine takes the *unique, valid, uncached* contacts of a plan (keyed by fingerprint),
submits them in chunks through one :class:`~cleanlist_pandas.client.AsyncClient` (whose pacer
every request shares), polls the workflows adaptively and returns an :class:`EngineOutcome`:
a result object per fingerprint, and for every contact that has none, why (``unknown``,
``not_submitted``, ``failed``, ``pending``). It emits events (``enrich.events``), hands each
finished workflow's results to ``on_results`` (the job layer caches and flattens them while
the run waits on the network) and never imports a UI.

Rules it keeps (DESIGN.md, spec §7):

* every chunk is journaled *before* it is sent and its workflow id right after, so a re-run
  re-attaches instead of paying twice;
* ``max_credits`` is never exceeded counting the worst case of what is in flight: a chunk that
  does not fit waits for in-flight workflows to settle, then shrinks or is not submitted;
* a refused submission — 401/402/403, or 429/503/no connection after the client's retries —
  stops submitting at once; in-flight workflows are still polled to the end, so every paid
  result is kept; 400/422 fail only that chunk's rows;
* an ambiguous submission (500/502/504, a time-out or a dropped connection after the body
  was sent) is journaled as such and never resent on its own;
* ``interrupt()`` (Ctrl-C) stops at once: nothing more is sent (a request already on the
  wire gets ``SUBMIT_GRACE_S`` to answer, so its workflow is journaled), pollers stop, the
  journal keeps every submitted workflow for the next run;
* a workflow whose status cannot be read ``MAX_POLL_FAILURES`` times in a row ends
  ``pending``: the next run collects it.

Pacing follows the best schedule under the rate window (issue 10): submissions first — the
pacer serves them before waiting reads, and the run keeps places for the chunks it still has
to send (``Pacer.keep_for``) — then one read per workflow as soon as it is done. Polling is
adaptive: a workflow's first read comes when the job's finished workflows say it is likely
done (``PollPolicy.first`` for the one scout before anything is learnt); durations come
from the service's own ``created_at``/``completed_at`` when given, else from when the
reads left. The window's spare reads (its room, less a submission and a read per chunk
still to come, a read per workflow in flight — even one whose read is out: it may miss —
and a small reserve) are shared by the workflows in flight, until they are surely done; a
sleeping read is replanned each time a workflow is collected (the spare grows). A read
that may miss is re-checked right before it leaves, so it never takes a place a needed
request will want. When nothing is spare, each workflow is read once, when it is surely
done; "surely done" never comes down (the first to finish are the fastest) and a miss at
it moves it past the miss; the reserve takes such misses, and a read that would take a
workflow's last place waits until it is twice as old as when last seen running.

>>> PollPolicy().first
5.0
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cleanlist_pandas._constants import (
    DEFAULT_RATE_LIMIT_PATIENCE,
    MAX_POLL_FAILURES,
    MAX_UNIT_COST,
    RUN_POLL_EAGER_S,
    RUN_POLL_FIRST_S,
    RUN_POLL_MAX_S,
    RUN_POLL_MIN_S,
    SUBMIT_GRACE_S,
    TERMINAL_WORKFLOW_STATUSES,
)
from cleanlist_pandas.client.http import Pacer, SendHooks
from cleanlist_pandas.errors import (
    AmbiguousSubmissionError,
    AuthenticationError,
    BadRequestError,
    CleanlistError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ValidationError,
)
from cleanlist_pandas.events import (
    ChunkAmbiguous,
    ChunkSubmitted,
    ContactsDone,
    Listener,
    RunStopped,
    Waiting,
    WorkflowProgress,
    emit,
)
from cleanlist_pandas.store.journal import (
    AMBIGUOUS,
    AWAITING_CREDITS,
    DONE,
    SENDING,
    SUBMITTED,
    Journal,
)
from cleanlist_pandas.types import FOUND_FIELDS, StatusSnapshot, Submission

log = logging.getLogger(__name__)

#: Errors after which nothing more is submitted: the key, the plan or the credits (the
#: request loop has already sorted every answer into these classes; the engine only reads
#: them — ambiguous submissions arrive as AmbiguousSubmissionError, spec §7).
STOP_ERRORS = (AuthenticationError, InsufficientCreditsError, PermissionDeniedError)
#: The API refused the chunk's contacts: our local validation let something through.
REFUSED_INPUT_ERRORS = (BadRequestError, ValidationError)


#: Called on the loop thread with each finished workflow's (fingerprint, result) pairs, e.g.
#: to cache and flatten results while the run still waits on the network.
ResultsHook = Callable[[str, list[tuple[str, dict[str, Any]]]], None]


@dataclass(frozen=True)
class PollPolicy:
    """How often workflows are polled (seconds of wall time).

    ``first``: the first poll of a workflow before any workflow of the job has finished;
    after that the engine predicts from what it has seen. ``min_interval``/``max_interval``
    bound every wait between two polls of one workflow. ``eager``: the wait between two
    polls of a workflow that is due, while the rate window has room to spare (latency then
    costs more than requests, which are free of credits).

    >>> PollPolicy(first=0.05, min_interval=0.01, max_interval=0.5).max_interval
    0.5
    """

    first: float = RUN_POLL_FIRST_S
    min_interval: float = RUN_POLL_MIN_S
    max_interval: float = RUN_POLL_MAX_S
    eager: float = RUN_POLL_EAGER_S

    def scaled(self, factor: float) -> PollPolicy:
        """Every duration multiplied by ``factor`` (for a sandbox with a ``time_scale``).

        >>> PollPolicy().scaled(0.1).first
        0.5
        """
        return PollPolicy(
            self.first * factor,
            self.min_interval * factor,
            self.max_interval * factor,
            self.eager * factor,
        )


@dataclass(frozen=True)
class Chunk:
    """Contacts sent in one request: fingerprints and API contact dicts, in the same order."""

    number: int
    fingerprints: tuple[str, ...]
    contacts: tuple[Mapping[str, str], ...]


@dataclass
class EngineOutcome:
    """What the engine found out, by contact fingerprint."""

    job_id: str
    #: fingerprint -> (result object as a dict, workflow_id)
    results: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    #: fingerprint -> (cl_status, cl_error) for contacts with no result object
    missing: dict[str, tuple[str, str]] = field(default_factory=dict)
    credits: float = 0.0
    requests_submit: int = 0
    requests_status: int = 0
    #: the error that stopped submitting (401/402/403...), if any
    stop_error: BaseException | None = None
    stop_reason: str | None = None
    interrupted: bool = False
    ambiguous_chunks: list[int] = field(default_factory=list)
    workflow_ids: list[str] = field(default_factory=list)
    #: fingerprints whose result an earlier run already collected (and reported as paid):
    #: read again here for free, so this run's ``cl_credits`` shows 0 for them
    prepaid: set[str] = field(default_factory=set)


class _StoppedBeforeSend(Exception):
    """The run stopped while this request waited for its turn: it was never sent."""


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def is_credit_failure(result: Mapping[str, Any]) -> bool:
    """True for a task that failed because the organization could not pay for it.

    The real API's wording is not documented; the sandbox says "Insufficient credits to
    deliver this result" (spec §5: charged at completion). Such a contact was never paid
    for: it is ``awaiting_credits`` and the next identical call sends it again.

    >>> is_credit_failure({"status": "failed", "error": "Insufficient credits to deliver"})
    True
    >>> is_credit_failure({"status": "failed", "error": "upstream provider timeout"})
    False
    """
    if str(result.get("status") or "") != "failed":
        return False
    error = str(result.get("error") or "").lower()
    return "insufficient credit" in error or "not enough credit" in error


def _echo_mismatch(echo: Any, sent: Mapping[str, str] | None) -> bool:
    """True when the API echoed an input that is not the contact we sent at that position
    (compared trimmed and case-insensitively; a field the echo leaves out or nulls is not
    compared).

    >>> _echo_mismatch({"first_name": " ADA ", "last_name": None}, {"first_name": "Ada",
    ...                "last_name": "Lovelace"})
    False
    >>> _echo_mismatch({"first_name": "Bob"}, {"first_name": "Ada"})
    True
    """
    if sent is None or (type(echo) is not dict and not isinstance(echo, Mapping)):
        return False
    if sent.items() <= echo.items():
        return False  # the usual case: every field echoed exactly as sent (one C-level pass)
    for key, value in sent.items():
        got = echo.get(key)
        if got is not None and str(got).strip().lower() != str(value).strip().lower():
            return True
    return False


class EngineClient(Protocol):
    """What the engine needs from a client (:class:`~cleanlist_pandas.client.AsyncClient`
    is one): submit with send hooks, read a workflow for a poller, and the shared pacer
    (whose room sets how eagerly workflows are polled)."""

    pacer: Pacer

    async def submit(
        self,
        contacts: Sequence[Mapping[str, Any]],
        enrichment_type: str = ...,
        webhook_url: str | None = None,
        *,
        send_hooks: SendHooks | None = None,
    ) -> Submission: ...

    async def status_snapshot(
        self, workflow_id: str, *, send_hooks: SendHooks | None = None
    ) -> StatusSnapshot: ...


class Engine:
    """Runs one job's submissions and polls. Create one per run; ``await run(...)``.

    >>> import tempfile, pathlib
    >>> from cleanlist_pandas.store.journal import Journal
    >>> j = Journal(pathlib.Path(tempfile.mkdtemp()) / "j.sqlite")
    >>> e = Engine(client=None, journal=j, job_id="job_x", enrichment_type="partial")
    >>> e.unit_cost
    1
    """

    def __init__(
        self,
        *,
        client: EngineClient,
        journal: Journal,
        job_id: str,
        enrichment_type: str,
        webhook_url: str | None = None,
        max_credits: float | None = None,
        poll: PollPolicy | None = None,
        listeners: Sequence[Listener] = (),
        max_concurrent_submits: int = 4,
        chunk_size: int = 250,
        on_results: ResultsHook | None = None,
        rate_limit_patience: float = DEFAULT_RATE_LIMIT_PATIENCE,
    ) -> None:
        self.client = client
        self.journal = journal
        self.job_id = job_id
        self.enrichment_type = enrichment_type
        self.webhook_url = webhook_url
        self.max_credits = max_credits
        self.poll = poll or PollPolicy()
        self.listeners = list(listeners)
        self.max_concurrent_submits = max_concurrent_submits
        self.chunk_size = chunk_size
        self.on_results = on_results
        self.rate_limit_patience = rate_limit_patience
        self.unit_cost = MAX_UNIT_COST[enrichment_type]
        self.outcome = EngineOutcome(job_id=job_id)
        self._stop = False
        #: the status of rows this run will not send: ``awaiting_credits`` after a 402
        self._stop_status = "not_submitted"
        self._on_wire: set[int] = set()  # chunk numbers whose request may have left
        self._last_ok = time.monotonic()  # the last request that succeeded
        self._interrupted = False
        self._total = 0
        self._done = 0
        self._found = 0
        self._in_flight: dict[str, float] = {}  # workflow_id -> worst-case credits reserved
        self._changed: asyncio.Condition | None = None  # created in run(), on the loop
        self._durations: list[float] = []
        self._learned: asyncio.Event | None = None  # set when a workflow's duration is known
        #: set (and replaced) when a workflow of the job is collected: the window's spare
        #: grows by the final read it no longer needs, and sleeping pollers may read sooner
        self._freed: asyncio.Event | None = None
        self._scout: str | None = None  # the workflow that probes while the window binds
        #: how long after its submission the first workflow read was nearly done (99 %)
        self._nearly: float | None = None
        self._unsent = 0  # contacts of this run not handed to a submission yet
        self._unslotted: set[int] = set()  # chunks whose request has no place in the window yet
        self._budget_wait = False  # submissions wait for in-flight workflows (max_credits)
        self._pollers: set[asyncio.Task[None]] = set()
        #: the oldest a workflow was still running when read at or after "surely done"
        self._missed_sure = 0.0
        self._sure = 0.0  # the highest "surely done" given so far (it never comes down)
        self._submits: set[asyncio.Task[None]] = set()

    # -- control --------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """Stop submitting (what is in flight is still polled to the end)."""
        if not self._stop:
            self._stop = True
            self.outcome.stop_reason = self.outcome.stop_reason or reason
            self._keep_places()

    def _keep_places(self) -> None:
        """Tell the pacer how many submissions this run is still to send, so status reads
        leave them their places: the best schedule submits everything as early as the
        window allows and reads after. Nothing is kept once the run stops submitting or
        while submissions wait on ``max_credits`` (they wait for those very reads)."""
        keep = getattr(getattr(self.client, "pacer", None), "keep_for", None)
        if keep is None:
            return
        waiting = self._stop or self._budget_wait
        keep(self, 0 if waiting else -(-self._unsent // self.chunk_size) + len(self._unslotted))

    def interrupt(self) -> None:
        """Stop at once (Ctrl-C): no more requests; in-flight workflows stay journaled."""
        self._interrupted = True
        self.outcome.interrupted = True
        self.stop("interrupted")
        for task in list(self._pollers):
            task.cancel()

    # -- bookkeeping ----------------------------------------------------------------------
    def _emit(self, event: Any) -> None:
        emit(self.listeners, event)

    def _progress(self) -> None:
        self._emit(
            ContactsDone(
                done=self._done,
                total=self._total,
                found=self._found,
                credits=self.outcome.credits,
                in_flight=len(self._in_flight),
            )
        )

    def _committed(self) -> float:
        return self.outcome.credits + sum(self._in_flight.values())

    def _mark(self, fingerprints: Sequence[str], status: str, error: str) -> None:
        for fp in fingerprints:
            if fp not in self.outcome.results:
                self.outcome.missing[fp] = (status, error)

    # -- the run --------------------------------------------------------------------------
    async def run(
        self,
        to_send: Sequence[tuple[str, Mapping[str, str]]],
        *,
        resume_chunks: Sequence[Any] = (),
    ) -> EngineOutcome:
        """Submit ``to_send`` (fingerprint, contact) pairs and poll journaled ``resume_chunks``.

        ``resume_chunks`` are :class:`~cleanlist_pandas.store.journal.ChunkRecord` of an
        unfinished job: submitted ones are polled, ambiguous ones reported ``unknown``.
        """
        self._changed = asyncio.Condition()
        self._learned = asyncio.Event()
        self._freed = asyncio.Event()
        self._unsent = len(to_send)
        self._last_ok = time.monotonic()
        resumed = [c for c in resume_chunks if c.state in (SUBMITTED, DONE) and c.workflow_id]
        unknown = [c for c in resume_chunks if c.state in (SENDING, AMBIGUOUS)]
        self._total = len(to_send) + sum(len(c.fingerprints) for c in resumed)
        for c in unknown:
            self.journal.record_ambiguous(
                self.job_id, c.number, c.note or "interrupted while sending"
            )
            self.outcome.ambiguous_chunks.append(c.number)
            self._mark(c.fingerprints, "unknown", _ambiguous_message(c.number, c.note))
        for c in resumed:
            self._start_poller(
                c.number,
                c.workflow_id,
                c.fingerprints,
                c.task_ids,
                time.monotonic(),
                first_delay=0.0,
                # a done chunk was collected (and its charges reported) by an earlier run;
                # its contacts that could not be paid for are being sent again
                prepaid=c.state == DONE,
                skip=frozenset(c.retry),
            )
        try:
            await self._submit_all(to_send)
            while self._pollers:
                await asyncio.gather(*list(self._pollers), return_exceptions=True)
        except asyncio.CancelledError:
            self.interrupt()
            # Let submissions on the wire settle (bounded by SUBMIT_GRACE_S) so the journal
            # knows their workflow ids before the interrupt reaches the caller.
            if self._submits:
                await asyncio.gather(*list(self._submits), return_exceptions=True)
            raise
        finally:
            if self._interrupted:
                for task in list(self._pollers):
                    task.cancel()
        return self.outcome

    async def _submit_all(self, to_send: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        sem = asyncio.Semaphore(self.max_concurrent_submits)
        try:
            await self._submit_chunks(to_send, sem, self.journal.next_chunk_number(self.job_id))
        finally:
            self._unsent = 0
            self._unslotted.clear()
            self._keep_places()

    async def _submit_chunks(
        self, to_send: Sequence[tuple[str, Mapping[str, str]]], sem: asyncio.Semaphore, number: int
    ) -> None:
        submits = self._submits
        pos = 0
        self._keep_places()
        while pos < len(to_send):
            if self._stop:
                break
            size = min(self.chunk_size, len(to_send) - pos)
            size = await self._fit_budget(size)
            if size == 0 or self._stop:
                break
            await sem.acquire()
            if self._stop:
                sem.release()
                break
            part = to_send[pos : pos + size]
            chunk = Chunk(number, tuple(fp for fp, _ in part), tuple(c for _, c in part))
            pos += size
            self._unsent = len(to_send) - pos
            number += 1
            # Reserve the worst case before the request leaves.
            reservation = f"_chunk{chunk.number}"
            self._in_flight[reservation] = size * self.unit_cost
            self._unslotted.add(chunk.number)
            task = asyncio.create_task(self._submit(chunk, reservation, sem))
            submits.add(task)
            task.add_done_callback(submits.discard)
        if submits:
            await asyncio.gather(*list(submits), return_exceptions=True)
        rest = [fp for fp, _ in to_send[pos:]]
        if rest:
            if self.outcome.stop_reason is None:
                self.outcome.stop_reason = "budget"
            self._leave_unsent(rest, number)
            self._emit(RunStopped(reason=self.outcome.stop_reason, not_submitted=len(rest)))

    async def _fit_budget(self, size: int) -> int:
        """How many of ``size`` contacts fit ``max_credits``, counting in-flight worst cases."""
        if self.max_credits is None or self.unit_cost == 0:
            return size
        while True:
            room = self.max_credits - self._committed()
            fits = max(0, math.floor(room / self.unit_cost + 1e-9))
            if fits >= size or (not self._in_flight):
                if fits < size and fits == 0:
                    self.stop(f"max_credits={self.max_credits:g} reached")
                return min(size, fits)
            # Wait for in-flight workflows to settle: they usually cost less than the worst case.
            assert self._changed is not None
            self._budget_wait = True
            self._keep_places()
            try:
                async with self._changed:
                    await self._changed.wait()
            finally:
                self._budget_wait = False
                self._keep_places()
            if self._stop:
                return 0

    async def _notify(self) -> None:
        if self._changed is None:
            return
        async with self._changed:
            self._changed.notify_all()

    # -- submitting ---------------------------------------------------------------------
    def _slotted(self, chunk: Chunk) -> None:
        """The chunk's request has its place (or will not need one): stop keeping it."""
        if chunk.number in self._unslotted:
            self._unslotted.discard(chunk.number)
            self._keep_places()

    def _before_send(self, chunk: Chunk) -> None:
        """The pacer granted the slot: re-check every stop condition right before sending."""
        self._slotted(chunk)
        if self._stop:
            raise _StoppedBeforeSend()

    def _sending(self, chunk: Chunk) -> None:
        """The request's first bytes are being written: journal the chunk as ``sending``
        (from here on it may have reached the server; before, it provably has not)."""
        self.journal.record_sending(self.job_id, chunk.number, chunk.fingerprints)
        self._on_wire.add(chunk.number)
        self.outcome.requests_submit += 1

    def _not_sent(self, chunk: Chunk) -> None:
        """An attempt provably was not processed (429, 503, no connection) and the client
        will try again after a wait: until then the chunk is not on the wire."""
        self._on_wire.discard(chunk.number)
        self.journal.forget_chunk(self.job_id, chunk.number)

    def _leave_unsent(self, fingerprints: Sequence[str], chunk_number: int) -> None:
        """Contacts this run will not send: not_submitted, or awaiting_credits after a 402
        (journaled, so ``estimate()`` and the next identical call know them)."""
        if not fingerprints:
            return
        reason = self.outcome.stop_reason or "the run stopped"
        if self._stop_status == AWAITING_CREDITS:
            note = _awaiting_message(reason)
            self.journal.record_awaiting_credits(self.job_id, chunk_number, fingerprints, note)
            self._mark(fingerprints, AWAITING_CREDITS, note)
        else:
            self._mark(fingerprints, "not_submitted", _not_submitted_message(reason))

    async def _wait_out_rate_limit(self, exc: RateLimitError, *, submitting: bool) -> bool:
        """A 429 is a reason to wait, not to give up: wait ``Retry-After`` and say so, unless
        no request has succeeded for ``rate_limit_patience`` seconds by then. Returns
        whether to try again."""
        wait = exc.retry_after if exc.retry_after is not None else self.poll.min_interval
        wait = max(float(wait), 0.0)
        if self._interrupted or (submitting and self._stop):
            return False
        if time.monotonic() + wait - self._last_ok > self.rate_limit_patience:
            return False
        self._emit(Waiting(wait, f"rate-limited (HTTP 429), waiting {wait:.0f}s"))
        await asyncio.sleep(wait)
        return not (self._interrupted or (submitting and self._stop))

    async def _submit(self, chunk: Chunk, reservation: str, sem: asyncio.Semaphore) -> None:
        hooks = SendHooks(
            before_send=functools.partial(self._before_send, chunk),
            on_wire=functools.partial(self._sending, chunk),
            not_sent=functools.partial(self._not_sent, chunk),
        )
        try:
            while True:
                request = asyncio.ensure_future(
                    self.client.submit(
                        list(chunk.contacts),
                        enrichment_type=self.enrichment_type,
                        webhook_url=self.webhook_url,
                        send_hooks=hooks,
                    )
                )
                cancelled = False
                try:
                    sub = await asyncio.shield(request)
                except asyncio.CancelledError:
                    cancelled = True
                    if chunk.number not in self._on_wire:
                        # Ctrl-C while the chunk waits for its turn: it never left.
                        request.cancel()
                        self._leave_unsent(chunk.fingerprints, chunk.number)
                        raise asyncio.CancelledError() from None
                    # Ctrl-C while the request is on the wire: wait a moment for its answer,
                    # so a workflow that was created is journaled (and collected by the next
                    # run) instead of being left ambiguous.
                    try:
                        sub = await asyncio.wait_for(request, SUBMIT_GRACE_S)
                    except (TimeoutError, asyncio.CancelledError, CleanlistError) as exc:
                        request.cancel()
                        note = f"interrupted while sending ({type(exc).__name__})"
                        self._ambiguous(chunk, note)
                        raise asyncio.CancelledError() from None
                except _StoppedBeforeSend:
                    self._leave_unsent(chunk.fingerprints, chunk.number)
                    return
                except RateLimitError as exc:
                    self._on_wire.discard(chunk.number)
                    if await self._wait_out_rate_limit(exc, submitting=True):
                        continue
                    self._submit_failed(chunk, exc)
                    return
                except CleanlistError as exc:
                    self._submit_failed(chunk, exc)
                    return
                break
            self._last_ok = time.monotonic()
            workflow_id = str(sub.workflow_id)
            task_ids = tuple(str(t) for t in sub.task_ids)
            if len(task_ids) != len(chunk.fingerprints):
                log.warning(
                    "workflow %s answered %d task ids for %d contacts",
                    workflow_id,
                    len(task_ids),
                    len(chunk.fingerprints),
                )
            self.journal.record_submitted(self.job_id, chunk.number, workflow_id, task_ids)
            self.outcome.workflow_ids.append(workflow_id)
            self._in_flight[workflow_id] = self._in_flight.pop(reservation)
            reservation = workflow_id
            self._emit(ChunkSubmitted(chunk.number, workflow_id, len(chunk.fingerprints)))
            if cancelled:
                raise asyncio.CancelledError()
            self._start_poller(
                chunk.number,
                workflow_id,
                chunk.fingerprints,
                task_ids,
                time.monotonic(),
                contacts=chunk.contacts,
            )
        finally:
            self._on_wire.discard(chunk.number)
            self._slotted(chunk)
            if reservation.startswith("_chunk"):
                self._in_flight.pop(reservation, None)
            sem.release()
            await self._notify()

    def _ambiguous(self, chunk: Chunk, note: str) -> None:
        self.journal.record_ambiguous(self.job_id, chunk.number, note)
        self.outcome.ambiguous_chunks.append(chunk.number)
        self._mark(chunk.fingerprints, "unknown", _ambiguous_message(chunk.number, note))
        self._emit(ChunkAmbiguous(chunk.number, len(chunk.fingerprints), note))

    def _submit_failed(self, chunk: Chunk, exc: CleanlistError) -> None:
        """Sort a failed submission: ambiguous, refused as invalid, or refused (stop)."""
        code = _status_code(exc)
        if isinstance(exc, AmbiguousSubmissionError):
            self._ambiguous(chunk, f"{type(exc).__name__}: {exc}")
            return
        # Refused before processing: nothing was created, nothing will be charged.
        self.journal.forget_chunk(self.job_id, chunk.number)
        if isinstance(exc, REFUSED_INPUT_ERRORS):
            # Our local validation let through something the API refuses (a bug): these rows
            # fail, the other chunks go on.
            self._mark(chunk.fingerprints, "failed", f"refused by the API: {exc}")
            if self.outcome.stop_error is None:
                self.outcome.stop_error = exc
            return
        # 401/402/403, 429 beyond the retry cap, 503 after retries, no connection, a wrong
        # base URL (404): stop submitting at once; what is in flight is still collected.
        if self.outcome.stop_error is None:
            self.outcome.stop_error = exc
        if isinstance(exc, InsufficientCreditsError):
            self._stop_status = AWAITING_CREDITS
        self.stop(f"{type(exc).__name__} ({code})" if code else type(exc).__name__)
        self._leave_unsent(chunk.fingerprints, chunk.number)

    # -- polling --------------------------------------------------------------------------
    def _start_poller(
        self,
        chunk: int,
        workflow_id: str,
        fingerprints: Sequence[str],
        task_ids: Sequence[str],
        submitted_at: float,
        first_delay: float | None = None,
        contacts: Sequence[Mapping[str, str]] = (),
        prepaid: bool = False,
        skip: frozenset[str] = frozenset(),
    ) -> None:
        if not prepaid:
            self._in_flight.setdefault(workflow_id, len(fingerprints) * self.unit_cost)
        task = asyncio.create_task(
            self._poll_workflow(
                chunk,
                workflow_id,
                fingerprints,
                task_ids,
                submitted_at,
                first_delay,
                contacts,
                prepaid,
                skip,
            )
        )
        self._pollers.add(task)
        task.add_done_callback(self._pollers.discard)

    def _beyond_need(self) -> int | None:
        """The rate window's room now, less what the job still needs for sure: a submission
        and a final read per chunk not yet accepted, a final read per workflow in flight.
        None when the client has no window to ask."""
        pacer = getattr(self.client, "pacer", None)
        room = getattr(pacer, "room", None)
        if room is None:
            return None
        # A read that has left may still miss, surely done or not: until it is answered its
        # workflow still needs its final read (counted as a hit, 7 reads at one wrong
        # "surely done" all missed and the last final read waited for the next window)
        return int(room()) - 2 * self._chunks_ahead() - len(self._pollers)

    def _spare(self) -> int:
        """Requests the rate window can spend on early polls right now: what it has beyond
        the job's needs, less a small reserve. Positive: some early polls are free;
        otherwise every extra poll may delay a chunk or a final read."""
        beyond = self._beyond_need()
        return 0 if beyond is None else beyond - self._reserve()

    def _reserve(self) -> int:
        """Places held back against misses of reads that looked sure (one per ten
        workflows): when a job's requests fit the window, one miss too many costs a whole
        window."""
        return 1 + len(self._pollers) // 10

    def _chunks_ahead(self) -> int:
        return -(-self._unsent // self.chunk_size) + len(self._submits)

    def _eager(self) -> bool:
        """Whether every workflow of the run (in flight or still to submit) can afford an
        extra read before the window binds — room to spare for all of them, not one."""
        return self._spare() >= max(1, len(self._pollers) + self._chunks_ahead())

    async def _until_learnt(self, workflow_id: str, submitted_at: float) -> float | None:
        """While the window binds and no workflow of the job has finished yet, one poller
        (the scout) probes; the others wait to learn from it, then poll when the job's
        finished workflows predict them done. Returns that delay, or None for the scout
        (and for anyone when the window has room to spare)."""
        if self._expected_duration() is None:
            if self._eager() or self._scout in (None, workflow_id):
                self._scout = workflow_id
                return None
            assert self._learned is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._learned.wait(), self.poll.max_interval)
        if self._expected_duration() is None:
            return 0.0
        return self._first_read(time.monotonic() - submitted_at)

    def _expected_duration(self) -> float | None:
        """A typical workflow's duration: the median of the last finished ones; before any
        has finished, a little more than when the first was nearly done."""
        if not self._durations:
            return None if self._nearly is None else self._nearly * 1.1
        recent = sorted(self._durations[-8:])
        return recent[len(recent) // 2]

    def _surely_done(self) -> float | None:
        """How long after its submission a workflow is surely done: the slowest of the
        job's finished workflows, plus a margin that shrinks as more have finished (the
        first to finish are the fastest). The sandbox's workflows of 250 take 0.8–1.35 ×
        their median: a margin of 50 % on one sample, 12 % on sixteen. Before any has
        finished, a guess from when the first read was nearly done (its last task is a
        straggler: up to 1.6 × that); None before that."""
        if not self._durations:
            guess = None if self._nearly is None else self._nearly * 1.6
        else:
            guess = max(self._durations) * (1.0 + 0.5 / math.sqrt(len(self._durations)))
        if guess is None:
            return None
        if self._missed_sure:
            # a workflow still ran when it was surely done: so may the others (one miss
            # each would spend the places the final reads need), so the bar moves past it
            guess = max(guess, self._missed_sure * 1.1)
        # The first to finish are the fastest: while the slow ones still run, more samples
        # would shrink the margin faster than the maximum grows (at 5,000 rows "surely
        # done" fell from 1.12 to 0.96 s, the slowest took 1.13, and the misses spent
        # every place of the window). So it never comes down.
        self._sure = max(self._sure, guess)
        return self._sure

    def _next_delay(self, elapsed: float, completed: int, total: int) -> float:
        """The wait before reading again a workflow that was still running ``elapsed`` s
        after its submission, with ``completed`` of ``total`` tasks done.

        * Room for every workflow in flight to read once more: soon (``eager``); latency
          costs more than a request, which is free of credits. Once the workflow is down
          to its last 1 % of tasks, sooner still, as the room allows.
        * Nothing learnt yet (no workflow of the job has finished): extrapolate the
          completion rate (early for the slowest tasks, which run in parallel).
        * Some room (``spare`` extra reads before the window binds): spread them evenly, in
          turn over every workflow in flight, until they are surely done; a workflow's
          interval shrinks as the others finish (:meth:`_nap` replans it then). The
          job's end waits on its last workflow, so the spare reads last until the
          stragglers are done.
        * No room: every extra read would push a final read into the next window, so wait
          until the workflow is surely done.
        """
        p = self.poll
        sure = self._surely_done()
        if self._eager():
            if sure is None or not _nearly_done(completed, total):
                return p.eager
            # down to its stragglers: it may end any moment, and the window has room to
            # read every workflow again; spread that room over the time left, no less
            # than a quarter of ``eager`` apart (~0.1 s of lateness for the last one)
            running = max(1, len(self._pollers))
            guess = _time_left(sure, elapsed, p.eager) * running / max(self._spare(), 1)
            return min(max(guess, p.eager / 4), p.eager)
        if sure is None:
            if completed > 0 and total > completed:
                guess = (total - completed) * elapsed / completed
            else:
                guess = max(elapsed, p.first)
            if self._spare() < 1:  # a miss costs a needed place: at least double its age
                guess = max(guess, elapsed)
            return min(max(guess, p.min_interval), p.max_interval)
        left = sure - elapsed
        spare = self._spare()
        if spare >= 1:
            running = max(1, len(self._pollers))
            guess = _time_left(sure, elapsed, p.eager) * running / spare
            # never later than when it is surely done
            return min(max(guess, p.eager), max(left, p.eager), p.max_interval)
        return min(max(left, 0.25 * elapsed, p.min_interval), p.max_interval)

    def _first_read(self, elapsed: float) -> float:
        """The wait before a workflow's first read, once the job has finished workflows:
        at their typical duration when the spare reads cover a miss of every workflow in
        flight, later the fewer they cover — up to when it is surely done."""
        expected = self._expected_duration()
        sure = self._surely_done()
        assert expected is not None and sure is not None
        if self._eager():
            return max(expected * 0.95 - elapsed, 0.0)
        cover = min(1.0, max(self._spare(), 0) / max(1, len(self._pollers)))
        at = sure - (sure - expected) * cover
        return max(at - elapsed, 0.0)

    def _first_read_at(self, submitted_at: float) -> float:
        """When a workflow submitted at ``submitted_at`` is due for its first read, now."""
        return time.monotonic() + self._first_read(time.monotonic() - submitted_at)

    def _next_read_at(self, read_at: float, elapsed: float, completed: int, total: int) -> float:
        """When a workflow read at ``read_at`` (then ``elapsed`` s old, ``completed`` of
        ``total`` tasks done) is due for its next read, now."""
        return read_at + self._next_delay(elapsed, completed, total)

    async def _nap(self, until: float, replan: Callable[[], float] | None) -> None:
        """Sleep until ``until`` (monotonic), or sooner: each time a workflow of the job is
        collected, the window's spare grows by the final read it no longer needs, and
        ``replan()`` says when the read is due now (taken if earlier). At 5,000 rows the
        stragglers that missed when the window was tight waited 0.25 s (2.5 s unscaled)
        after the others were collected and the spare was back."""
        while (left := until - time.monotonic()) > 0:
            if replan is None:
                await asyncio.sleep(left)
                return
            if await self._until_collected(left):
                until = min(until, replan())

    async def _until_collected(self, timeout: float) -> bool:
        """Sleep until a workflow of the job is collected (True) or ``timeout`` s pass."""
        freed = self._freed
        if freed is None:
            await asyncio.sleep(timeout)
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(freed.wait(), timeout)
        return freed.is_set()

    def _is_sure(self, elapsed: float) -> bool:
        """Whether a workflow ``elapsed`` s old is surely done: its read is the final one
        the window keeps a place for, not an extra from the spare."""
        sure = self._surely_done()
        return sure is not None and elapsed >= sure - 1e-3

    def _may_read(self, elapsed: float, last_running: float = 0.0) -> bool:
        """Whether a workflow ``elapsed`` s old may be read now. Decided right before the
        read (on the loop, with no await until the pacer books it), so pollers that chose
        their time together cannot spend the same spare read twice: a read is an extra
        unless the workflow is surely done, and an extra needs a spare place.

        A surely-done read may miss too (a straggler beyond every estimate): it takes the
        reserve. When nothing is left beyond the job's needs, the place it takes is its
        own final read's, and a miss there costs a whole window: then it waits for
        :meth:`_last_place_age`.
        """
        beyond = self._beyond_need()
        if beyond is not None and beyond - self._reserve() >= 1:
            return True  # a spare place
        if not self._is_sure(elapsed):
            return False
        return beyond is None or beyond >= 1 or elapsed >= self._last_place_age(last_running)

    def _last_place_age(self, last_running: float) -> float:
        """How old a workflow must be before its read takes the last place the window has
        for it: twice as old as when it was last seen running, or as the oldest workflow
        seen running when it was surely done (a miss then costs a whole window, so misses
        are few: one per doubling)."""
        return 2 * max(last_running, self._missed_sure)

    def _patient_until(self, first_age: float, last_running: float) -> float:
        """The age at which a read held for want of a place goes anyway: when the workflow
        is surely done or, before any has finished, twice as old as when it was first held
        (``first_age``: a miss then costs a needed place, so misses are few: one per
        doubling); with no place beyond the job's needs, not before its
        :meth:`_last_place_age`. Re-asked while it waits: the answer moves with what the
        job learns."""
        sure = self._surely_done()
        if sure is None:
            return 2 * first_age
        beyond = self._beyond_need()
        if beyond is not None and beyond < 1:
            return max(sure, self._last_place_age(last_running))
        return sure

    async def _wait_for_place(self, submitted_at: float, last_running: float) -> None:
        """Hold a read until it may go (:meth:`_may_read`, re-checked each
        ``min_interval`` and whenever a workflow is collected), or until its patience is
        over (:meth:`_patient_until`, at most ``max_interval``). Nothing is awaited between
        the last check and the read's booking in the pacer, so two pollers cannot take the
        same place."""
        start = time.monotonic()
        first_age = start - submitted_at
        while not self._interrupted:
            now = time.monotonic()
            age = now - submitted_at
            if self._may_read(age, last_running):
                return
            wait = min(
                self._patient_until(first_age, last_running) - age,
                start + self.poll.max_interval - now,
            )
            if wait <= 0:
                return
            # a collected workflow frees its final read's place: ask again at once then
            await self._until_collected(min(self.poll.min_interval, wait))

    async def _poll_workflow(
        self,
        chunk: int,
        workflow_id: str,
        fingerprints: Sequence[str],
        task_ids: Sequence[str],
        submitted_at: float,
        first_delay: float | None,
        contacts: Sequence[Mapping[str, str]],
        prepaid: bool = False,
        skip: frozenset[str] = frozenset(),
    ) -> None:
        # a read collecting a workflow of an earlier run is due at once, spare or not
        due_at_once = first_delay is not None
        # when the next read is due under what is known now (None: keep the plan)
        replan: Callable[[], float] | None = None
        if first_delay is None:
            learnt = await self._until_learnt(workflow_id, submitted_at)
            first_delay = self.poll.first if learnt is None else learnt
            if learnt is not None:
                replan = functools.partial(self._first_read_at, submitted_at)
        delay = first_delay
        last_seen_running = 0.0
        failures = 0
        # When each read left: after any wait for the rate window, which says nothing about
        # the workflow (measured from the call, durations grew by the wait, and so did
        # every prediction made from them: 13 s late reads at 50k rows).
        sent = [0.0]
        hooks = SendHooks(before_send=lambda: sent.__setitem__(0, time.monotonic()))
        try:
            while True:
                if delay > 0:
                    await self._nap(time.monotonic() + delay, replan)
                if not due_at_once:
                    await self._wait_for_place(submitted_at, last_seen_running)
                due_at_once = False
                if self._interrupted:
                    return
                self.outcome.requests_status += 1
                sent[0] = 0.0
                try:
                    status = await self.client.status_snapshot(workflow_id, send_hooks=hooks)
                except RateLimitError as exc:
                    # another client of the organization may be using the budget: wait
                    if await self._wait_out_rate_limit(exc, submitting=False):
                        delay = 0.0
                        continue
                    self._mark(fingerprints, "pending", _resume_message(workflow_id, exc))
                    if self.outcome.stop_error is None:
                        self.outcome.stop_error = exc
                    return
                except CleanlistError as exc:
                    if isinstance(exc, STOP_ERRORS):
                        if self.outcome.stop_error is None:
                            self.outcome.stop_error = exc
                        self.stop(f"{type(exc).__name__} ({_status_code(exc)})")
                        self._mark(fingerprints, "pending", _resume_message(workflow_id, exc))
                        return
                    if isinstance(exc, NotFoundError):
                        self._mark(fingerprints, "failed", f"workflow {workflow_id} not found")
                        self.journal.record_done(self.job_id, chunk)
                        return
                    # The client's retries are used up on a transient error: keep trying,
                    # more slowly, then give up on this run; the journal keeps the workflow
                    # and the next run collects it (polling is free).
                    failures += 1
                    if failures >= MAX_POLL_FAILURES:
                        self._mark(fingerprints, "pending", _resume_message(workflow_id, exc))
                        return
                    self._emit(Waiting(self.poll.max_interval, f"status poll failed: {exc}"))
                    delay = self.poll.max_interval
                    continue
                failures = 0
                now = self._last_ok = time.monotonic()
                read_at = sent[0] or now
                elapsed = read_at - submitted_at  # what the answer describes
                completed, total, state = status.completed, status.total, status.status
                self._emit(
                    WorkflowProgress(
                        workflow_id,
                        completed,
                        total or len(fingerprints),
                        state,
                        status.emails_found,
                        status.phones_found,
                    )
                )
                if state in TERMINAL_WORKFLOW_STATUSES:
                    self._durations.append(
                        _duration(status.run_seconds, last_seen_running, elapsed)
                    )
                    if self._learned is not None:
                        self._learned.set()
                    retry = self._collect(
                        workflow_id, fingerprints, task_ids, status, contacts, prepaid, skip
                    )
                    self.journal.record_done(self.job_id, chunk, retry=retry)
                    return
                if self._is_sure(elapsed):
                    self._missed_sure = max(self._missed_sure, elapsed)
                last_seen_running = elapsed
                if self._nearly is None and not self._durations and _nearly_done(completed, total):
                    # the scout is down to its stragglers, and so, likely, are the others:
                    # they need not wait for it to finish to be read. When the answer was
                    # seen, not when the read left: a busy service answers late, and a
                    # guess from the leaving time would call every workflow done too soon
                    self._nearly = now - submitted_at
                    if self._learned is not None:
                        self._learned.set()
                delay = max(self._next_delay(elapsed, completed, total) - (now - read_at), 0.0)
                replan = functools.partial(
                    self._next_read_at, read_at, elapsed, completed, total
                )
                if not self._eager() and self._expected_duration() is None:
                    learnt = await self._until_learnt(workflow_id, submitted_at)
                    if learnt is not None:
                        delay = learnt
                        replan = functools.partial(self._first_read_at, submitted_at)
        finally:
            self._in_flight.pop(workflow_id, None)
            if self._freed is not None:
                freed, self._freed = self._freed, asyncio.Event()
                freed.set()
            await self._notify()
            self._progress()

    def _collect(
        self,
        workflow_id: str,
        fingerprints: Sequence[str],
        task_ids: Sequence[str],
        status: StatusSnapshot,
        contacts: Sequence[Mapping[str, str]] = (),
        prepaid: bool = False,
        skip: frozenset[str] = frozenset(),
    ) -> list[str]:
        """Take a terminal workflow's results; return the contacts it could not pay for.

        One pass over the results as decoded: only the results matched to a contact are
        copied (to drop the echoed ``input``), and the per-result rules (credit failure,
        echo check, "found") are the module's and ``models.is_found``'s, with their common
        case decided inline (``tests/enrich/test_collect_fast.py`` holds it to the plain
        reading on fuzzed bodies)."""
        by_task: dict[str, Mapping[str, Any]] = {}
        item: Mapping[str, Any] | None
        for item in status.results:
            tid = item.get("task_id")
            if tid is not None:
                by_task[tid if type(tid) is str else str(tid)] = item
        unpaid: list[str] = []
        wf_status = status.status
        outcome = self.outcome
        results, missing = outcome.results, outcome.missing
        found_fields = FOUND_FIELDS.get(self.enrichment_type, FOUND_FIELDS[None])
        n_tasks, n_contacts = len(task_ids), len(contacts)
        fresh: list[tuple[str, dict[str, Any]]] = []
        copies: dict[str, dict[str, Any]] = {}  # one copy per task, as task ids may repeat
        for i, fp in enumerate(fingerprints):
            if skip and fp in skip:
                continue  # sent again in a new chunk of this run
            tid = task_ids[i] if i < n_tasks else None
            key = "" if tid is None else tid if type(tid) is str else str(tid)
            item = None if tid is None else by_task.get(key)
            if item is None:
                why = "the workflow failed" if wf_status == "failed" else "no result returned"
                missing[fp] = ("failed", f"{why} (workflow {workflow_id})")
                continue
            state = item.get("status")
            if state != "completed" and is_credit_failure(item):
                unpaid.append(fp)
                missing[fp] = (
                    AWAITING_CREDITS,
                    _awaiting_message(f"task {tid} of workflow {workflow_id} could not be paid"),
                )
                continue
            # a shallow copy without the echo (nothing nested is changed)
            result = copies.get(key)
            if result is None:
                result = copies[key] = dict(item)
            # The API echoes the input [ours]: cross-check the task order (spec §3.3).
            echo = result.pop("input", None)
            sent = contacts[i] if i < n_contacts else None
            if (
                echo is not None
                # _echo_mismatch's common case, inline: every field echoed as sent
                and not (type(echo) is dict and sent is not None and sent.items() <= echo.items())
                and _echo_mismatch(echo, sent)
            ):
                log.error("workflow %s: task %s echoes another contact", workflow_id, tid)
                missing[fp] = (
                    "failed",
                    f"the result of task {tid} does not match the contact sent (workflow "
                    f"{workflow_id}); not merged, to avoid attaching it to the wrong row",
                )
                continue
            results[fp] = (result, workflow_id)
            missing.pop(fp, None)
            fresh.append((fp, result))
            if prepaid:
                outcome.prepaid.add(fp)
            else:
                outcome.credits += float(result.get("credits_charged") or 0)
            if state == "completed":  # models.is_found, inline
                if not found_fields:
                    self._found += 1
                else:
                    for f in found_fields:
                        if result.get(f):
                            self._found += 1
                            break
        self._done += len(fingerprints)
        if fresh and self.on_results is not None:
            try:
                self.on_results(workflow_id, fresh)
            except Exception:  # caching is an optimization: never lose the results over it
                log.exception("results hook failed for workflow %s", workflow_id)
        return unpaid


def _time_left(sure: float, elapsed: float, floor: float) -> float:
    """How long the spare reads must last for a workflow ``elapsed`` s old: until it is
    surely done, and once it is older than that (a straggler beyond every estimate), a
    quarter of its age again.

    >>> _time_left(1.5, 1.0, 0.05), _time_left(1.1, 1.4, 0.05)
    (0.5, 0.35)
    """
    return max(sure - elapsed, 0.25 * elapsed, floor)


def _nearly_done(completed: int, total: int) -> bool:
    """At most 1 % of a workflow's tasks (at least one) still pending, out of 20 or more.

    >>> _nearly_done(248, 250), _nearly_done(240, 250), _nearly_done(0, 1)
    (True, False, False)
    """
    return total >= 20 and total - completed <= max(1, total // 100)


def _duration(run_seconds: float | None, last_running: float, first_done: float) -> float:
    """How long a finished workflow took, to predict the next ones: the service's own
    ``completed_at - created_at`` when it says so and it fits what the reads saw (the
    workflow ran at ``last_running`` s after submission, was done at ``first_done``);
    otherwise the middle of that interval, or ``first_done`` after a single read (an upper
    bound: a read that waited for the window, or was put off for submissions, says late).

    >>> _duration(8.2, 0.0, 31.0), _duration(None, 7.0, 9.0), _duration(None, 0.0, 31.0)
    (8.2, 8.0, 31.0)
    >>> _duration(40.0, 0.0, 31.0)   # longer than the read saw: the clocks disagree
    31.0
    """
    if run_seconds is not None and last_running - 1.0 <= run_seconds <= first_done + 1.0:
        return run_seconds
    return (last_running + first_done) / 2 if last_running else first_done


def _ambiguous_message(chunk: int, note: str | None) -> str:
    why = f" ({note})" if note else ""
    return (
        f"chunk {chunk} may or may not have reached Cleanlist{why}; it was not resent, to avoid "
        "paying twice. Check the workflows in your Cleanlist dashboard, then re-run with "
        "resend_unknown=True to send these rows again."
    )


def _awaiting_message(reason: str) -> str:
    return (
        f"awaiting credits: {reason}. Nothing was charged for this row. Top up, then run the "
        "same call again: exactly these rows are sent, nothing is paid twice."
    )


def _not_submitted_message(reason: str) -> str:
    return f"not submitted: {reason}. Re-run the same call to continue (finished rows are kept)."


def _resume_message(workflow_id: str, exc: BaseException) -> str:
    return (
        f"submitted as {workflow_id} but not read back ({type(exc).__name__}); "
        "re-run the same call to fetch it (polling is free)"
    )
