"""The request loop's pure parts and its behaviour over a mock transport (no sandbox).

The retry table here is the pinned contract of what is retried, raised or ambiguous.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from cleanlist_pandas.client import AsyncClient
from cleanlist_pandas.client.http import (
    Decision,
    Pacer,
    backoff_delay,
    contact_indexes_from_detail,
    parse_retry_after,
    retry_decision,
)
from cleanlist_pandas.errors import (
    AmbiguousSubmissionError,
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from cleanlist_pandas.events import PacerWait, RequestSent, RetryScheduled

KEY = "clapi_unit_test_key_0123456789abcdef"
BASE = "http://127.0.0.1:9/api/v1/public"
CONTACT = {"linkedin_url": "https://www.linkedin.com/in/johndoe"}

R, X, A = Decision.RETRY, Decision.RAISE, Decision.AMBIGUOUS
REQ = httpx.Request("POST", "http://x")

# (method, status or exception, decision) — the pinned retry table
RETRY_TABLE: list[tuple[str, int | Exception, Decision]] = [
    # connection never made: provably not sent -> retried for every method
    ("GET", httpx.ConnectError("refused", request=REQ), R),
    ("POST", httpx.ConnectError("refused", request=REQ), R),
    ("POST", httpx.ConnectError("[Errno -2] Name or service not known", request=REQ), R),
    ("POST", httpx.ConnectTimeout("", request=REQ), R),
    ("POST", httpx.PoolTimeout("", request=REQ), R),
    # after the request went out: GET retried, the submission ambiguous
    ("GET", httpx.ReadTimeout("", request=REQ), R),
    ("POST", httpx.ReadTimeout("", request=REQ), A),
    ("GET", httpx.ReadError("", request=REQ), R),
    ("POST", httpx.ReadError("", request=REQ), A),
    ("POST", httpx.WriteError("", request=REQ), A),
    ("POST", httpx.WriteTimeout("", request=REQ), A),
    ("GET", httpx.RemoteProtocolError("Server disconnected", request=REQ), R),
    ("POST", httpx.RemoteProtocolError("Server disconnected", request=REQ), A),
    # a request that could never be built: a bug, raised
    ("GET", httpx.UnsupportedProtocol("ftp", request=REQ), X),
    ("POST", httpx.LocalProtocolError("bad header", request=REQ), X),
    ("GET", ValueError("not an httpx error"), X),
    # statuses
    ("GET", 429, R), ("POST", 429, R),
    ("GET", 503, R), ("POST", 503, R),
    ("GET", 500, R), ("POST", 500, A),
    ("GET", 502, R), ("POST", 502, A),
    ("GET", 504, R), ("POST", 504, A),
    ("GET", 408, R), ("POST", 408, X),
    ("GET", 501, X), ("POST", 501, X),
    *[(m, s, X) for m in ("GET", "POST") for s in (400, 401, 402, 403, 404, 409, 422)],
]


@pytest.mark.parametrize(("method", "what", "expected"), RETRY_TABLE,
                         ids=[f"{m}-{w if isinstance(w, int) else type(w).__name__}"
                              for m, w, _ in RETRY_TABLE])
def test_retry_table(method: str, what: int | Exception, expected: Decision) -> None:
    if isinstance(what, int):
        assert retry_decision(method, status=what) is expected
    else:
        assert retry_decision(method, exc=what) is expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "garbage", "retry-after": "2"}, 2.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 10.0),   # now = 07:27:50
        ({"retry-after": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),    # in the past
        ({"retry-after": "-5"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "1e400"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=lambda: 1445412470.0) == expected


def test_backoff_bounds_and_cap() -> None:
    rng = random.Random(1)
    for retry in range(1, 40):
        base = min(0.5 * 2 ** (retry - 1), 8.0)
        d = backoff_delay(retry, rng=rng)
        assert 0.75 * base <= d <= base
    assert backoff_delay(10_000) <= 8.0  # no overflow


def test_contact_indexes_from_detail() -> None:
    detail = [
        {"type": "missing", "loc": ["body", "contacts", 4, "linkedin_url"], "msg": "x"},
        {"type": "missing", "loc": ["body", "contacts", 1], "msg": "x"},
        {"type": "enum", "loc": ["body", "enrichment_type"], "msg": "x"},
        "garbage",
    ]
    assert contact_indexes_from_detail(detail) == (1, 4)
    assert contact_indexes_from_detail("a string") == ()


# --- pacer -------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pacer_burst_then_even_spacing() -> None:
    clock = FakeClock()
    p = Pacer(rate=60, per=60.0, burst=4, clock=clock)
    delays = [p.reserve() for _ in range(8)]
    assert delays[:4] == [0, 0, 0, 0]
    step = 60.0 / 56
    assert delays[4:] == pytest.approx([step, 2 * step, 3 * step, 4 * step])


@pytest.mark.parametrize(("rate", "per", "burst"), [(60, 60.0, 4), (60, 0.6, 1), (10, 1.0, 9),
                                                    (1, 5.0, 1), (30, 60.0, 4), (60, 60.0, None),
                                                    (60, 0.6, None), (2, 1.0, None)])
def test_pacer_never_exceeds_rate_in_any_window(
    rate: int, per: float, burst: int | None
) -> None:
    """Simulate callers that send as soon as allowed, with random idle gaps: every window
    of length ``per`` (aligned anywhere) holds at most ``rate`` sends (``rate - 1`` when
    ``rate > burst``: one request of headroom)."""
    rng = random.Random(rate)
    clock = FakeClock()
    p = Pacer(rate=rate, per=per, burst=burst, clock=clock)
    sends: list[float] = []
    for _ in range(400):
        if rng.random() < 0.1:
            clock.now += rng.random() * per  # idle for a while
        delay = p.reserve()
        sends.append(clock.now + delay)
        clock.now += delay  # the caller sleeps, then sends
    limit = rate - 1 if rate > (burst or 1) else rate
    j = 0
    for i, start in enumerate(sends):  # windows starting at each send: the worst case
        while j < len(sends) and sends[j] < start + per - 1e-9:
            j += 1
        assert j - i <= limit


def test_pacer_window_lets_a_job_front_load_then_waits_for_the_window() -> None:
    """40 submissions of a 10,000-row job all leave at t = 0; the 60th request waits until
    the first ones leave the window (plus the margin)."""
    clock = FakeClock()
    p = Pacer(rate=60, per=60.0, clock=clock)
    delays = [p.reserve() for _ in range(62)]
    assert delays[:59] == [0.0] * 59  # one request of headroom
    assert delays[59:] == pytest.approx([60.12, 60.12, 60.12])
    assert p.room() == 0
    clock.now += 60.2
    assert p.room() == 56  # the first 59 left, the 3 booked at 60.12 remain


def test_pacer_place_frees_a_window_after_the_answer_not_after_the_send() -> None:
    """The server counts a request when it arrives; we only know it has arrived once the
    answer is back. A slow answer keeps its place until ``per`` after it came."""
    clock = FakeClock()

    async def sleep(d: float) -> None:
        clock.now += d

    p = Pacer(rate=3, per=10.0, margin=0.0, clock=clock, sleep=sleep)
    t0 = clock.now

    async def main() -> list[float]:
        a = await p.acquire()
        b = await p.acquire()
        clock.now += 1.0
        p.release(a)  # answered after 1 s
        clock.now += 4.0
        p.release(b)  # answered after 5 s
        c = await p.acquire()  # the window is full until a's answer + 10 s
        p.release(c)
        d = await p.acquire()  # then until b's answer + 10 s
        return [c.sent - t0, d.sent - t0]

    assert asyncio.run(main()) == pytest.approx([11.0, 15.0])


def test_pacer_serves_a_waiting_submission_before_a_status_read_that_waited_longer() -> None:
    """When one place frees, the urgent request (a submission) takes it, though a routine
    one (a status read) was waiting first; the read goes at the next free place."""
    p = Pacer(rate=3, per=0.3, margin=0.0)  # 2 places

    async def main() -> tuple[float, float, float]:
        a = await p.acquire()
        b = await p.acquire()
        t0 = time.monotonic()
        p.release(a)  # its place frees at t0 + 0.3 ...
        await asyncio.sleep(0.2)
        p.release(b)  # ... this one at t0 + 0.5
        read = asyncio.create_task(p.acquire())  # routine, waiting first
        await asyncio.sleep(0.02)
        submit = asyncio.create_task(p.acquire(urgent=True))
        s, r = await submit, await read
        return s.sent - t0, r.sent - t0, p.stats().requests

    sent_submit, sent_read, n = asyncio.run(main())
    assert sent_submit == pytest.approx(0.3, abs=0.08)
    assert sent_read == pytest.approx(0.5, abs=0.08) and n == 4


def test_pacer_keeps_places_for_announced_submissions() -> None:
    """A job that still has chunks to submit keeps their places: status reads wait while
    the window's room is no more than that, submissions do not; giving the places back (or
    dropping the job) lets reads go."""
    clock = FakeClock()
    slept: list[float] = []

    async def sleep(d: float) -> None:
        slept.append(d)
        clock.now += d

    class Job: ...

    p = Pacer(rate=5, per=10.0, margin=0.0, clock=clock, sleep=sleep)  # 4 places
    job = Job()
    p.keep_for(job, 2)

    async def main(job: Job) -> None:
        for _ in range(2):
            p.release(await p.acquire())  # routine: 2 of the 4 places, no wait
        assert slept == []
        for _ in range(2):
            p.release(await p.acquire(urgent=True))  # the kept places, no wait
        assert slept == []
        p.keep_for(job, 0)
        p.release(await p.acquire())  # the window is full: waits for the first place
        assert slept == [pytest.approx(10.0)]

    asyncio.run(main(job))
    p.keep_for(job, 3)
    assert p.kept() == 3
    del job
    assert p.kept() == 0  # a job that is gone keeps nothing
    p.keep_for(Job(), 99)
    assert p.kept() == 0  # collected at once; and a kept count is capped below the limit
    keeper = Job()
    p.keep_for(keeper, 99)
    assert p.kept() == 3


def test_pacer_hold_and_stats() -> None:
    clock = FakeClock()
    p = Pacer(rate=60, per=60.0, burst=4, clock=clock)
    assert p.reserve() == 0
    p.hold(5.0)
    assert p.reserve() == pytest.approx(5.0)
    s = p.stats()
    assert (s.requests, s.throttled) == (2, 1)


def test_pacer_acquire_sleeps_and_counts() -> None:
    clock = FakeClock()
    slept: list[float] = []

    async def sleep(d: float) -> None:
        slept.append(d)
        clock.now += d

    p = Pacer(rate=3, per=3.0, burst=1, margin=0.0, clock=clock, sleep=sleep)

    async def main() -> None:
        for _ in range(4):
            p.release(await p.acquire())  # answered at once

    asyncio.run(main())
    assert slept == pytest.approx([1.5, 1.5, 1.5])
    assert p.stats().waited_s == pytest.approx(4.5)


# --- empirical: which httpx errors mean "never sent" --------------------------------------


def _server(mode: str) -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    seen: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            if mode == "read_then_close":
                seen.append(conn.recv(65536))
                conn.close()
            elif mode == "hang":
                seen.append(conn.recv(65536))
                threading.Event().wait(2.0)
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def _exc_of(url: str, timeout: float = 1.0) -> BaseException:
    async def main() -> BaseException:
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout)) as c:
            try:
                await c.post(url, json={"contacts": [CONTACT]})
            except httpx.HTTPError as exc:
                return exc
        raise AssertionError("no error")

    return asyncio.run(main())


def test_empirical_refused_connection_is_connect_error() -> None:
    exc = _exc_of(f"http://127.0.0.1:{_free_port()}/x")
    assert isinstance(exc, httpx.ConnectError)
    assert retry_decision("POST", exc=exc) is Decision.RETRY


def test_empirical_dns_failure_is_connect_error() -> None:
    exc = _exc_of("http://no-such-host.invalid/x")
    assert isinstance(exc, httpx.ConnectError)
    assert retry_decision("POST", exc=exc) is Decision.RETRY


def test_empirical_dropped_after_send_is_ambiguous() -> None:
    srv, port = _server("read_then_close")
    try:
        exc = _exc_of(f"http://127.0.0.1:{port}/x")
    finally:
        srv.close()
    assert isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError)
    assert retry_decision("POST", exc=exc) is Decision.AMBIGUOUS


def test_empirical_read_timeout_is_ambiguous() -> None:
    srv, port = _server("hang")
    try:
        exc = _exc_of(f"http://127.0.0.1:{port}/x", timeout=0.2)
    finally:
        srv.close()
    assert isinstance(exc, httpx.ReadTimeout)
    assert retry_decision("POST", exc=exc) is Decision.AMBIGUOUS


# --- the request loop over httpx.MockTransport --------------------------------------------


def _client(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> AsyncClient:
    slept: list[float] = kw.pop("slept", [])

    async def sleep(d: float) -> None:
        slept.append(d)

    kw.setdefault("max_retries", 3)
    return AsyncClient(api_key=KEY, base_url=BASE, transport=httpx.MockTransport(handler),
                       sleep=sleep, rate=1000, per=1.0, burst=999, **kw)


def _script(*steps: Any) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    """A handler that plays ``steps`` in order: an int status, a Response, or an exception."""
    seen: list[httpx.Request] = []
    queue = list(steps)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = queue.pop(0)
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return httpx.Response(step, json={"detail": f"status {step}"})

    return handler, seen


OK_BULK = httpx.Response(200, json={"workflow_id": "public_bulk_1", "status": "processing",
                                     "task_ids": ["t1"], "total_contacts": 1})
OK_BALANCE = httpx.Response(200, json={"organization_id": "o", "credits": 5.5})


def _run(coro: Any) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def test_post_retried_when_connection_refused_with_the_same_body() -> None:
    handler, seen = _script(httpx.ConnectError("refused"), httpx.ConnectError("refused"),
                            OK_BULK)
    client = _client(handler)
    job = _run(client.submit([CONTACT]))
    assert job.workflow_id == "public_bulk_1" and len(seen) == 3
    assert len({r.content for r in seen}) == 1
    assert json.loads(seen[0].content) == {"enrichment_type": "partial", "contacts": [CONTACT]}
    assert client.stats().retries == 2


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("t"), httpx.RemoteProtocolError("gone"),
                                 httpx.WriteError("w"), httpx.ReadError("r")])
def test_post_not_resent_after_ambiguous_failure(exc: Exception) -> None:
    handler, seen = _script(exc, OK_BULK)
    client = _client(handler)
    contacts = [CONTACT, {"first_name": "A", "last_name": "B", "company_name": "C"}]
    with pytest.raises(AmbiguousSubmissionError) as info:
        _run(client.submit(contacts, webhook_url="https://example.com/hook"))
    assert len(seen) == 1
    err = info.value
    assert err.contacts == tuple(contacts)
    assert err.webhook_url == "https://example.com/hook" and err.enrichment_type == "partial"
    assert "NOT re-sent" in str(err) and type(exc).__name__ in str(err)
    assert isinstance(err.__cause__, type(exc))


@pytest.mark.parametrize("status", [500, 502, 504])
def test_post_5xx_other_than_503_is_ambiguous(status: int) -> None:
    handler, seen = _script(status, OK_BULK)
    with pytest.raises(AmbiguousSubmissionError) as info:
        _run(_client(handler).submit([CONTACT]))
    assert len(seen) == 1 and info.value.status_code == status


def test_post_503_and_429_are_retried() -> None:
    handler, seen = _script(503, httpx.Response(429, headers={"Retry-After": "2"}), OK_BULK)
    slept: list[float] = []
    _run(_client(handler, slept=slept).submit([CONTACT]))
    assert len(seen) == 3
    assert 2.0 in slept


def test_get_retried_on_5xx_then_succeeds_and_events() -> None:
    handler, _seen = _script(502, httpx.ReadTimeout("t"), OK_BALANCE)
    events: list[Any] = []
    client = _client(handler, on_event=events.append)
    assert _run(client.balance()).credits == 5.5
    retries = [e for e in events if isinstance(e, RetryScheduled)]
    assert [(e.attempt, e.reason, e.status_code) for e in retries] == [
        (1, "HTTP 502", 502), (2, "ReadTimeout", None)]
    assert [e.attempt for e in events if isinstance(e, RequestSent)] == [1, 2, 3]


def test_get_gives_up_after_max_retries() -> None:
    handler, seen = _script(500, 500, 500, 500, OK_BALANCE)
    with pytest.raises(ServerError) as info:
        _run(_client(handler).balance())
    assert len(seen) == 4 and info.value.status_code == 500
    assert "Already retried 3 times" in str(info.value)


def test_get_connection_errors_exhausted() -> None:
    handler, _ = _script(*[httpx.ConnectError("refused")] * 2)
    with pytest.raises(APIConnectionError) as info:
        _run(_client(handler, max_retries=1).balance())
    assert not isinstance(info.value, APITimeoutError)
    handler, _seen = _script(*[httpx.ReadTimeout("t")] * 2)
    with pytest.raises(APITimeoutError):
        _run(_client(handler, max_retries=1).balance())


def test_retry_after_beyond_cap_raises_rate_limit_error_at_once() -> None:
    handler, seen = _script(httpx.Response(429, headers={"Retry-After": "3600"},
                                           json={"detail": "Rate limit exceeded"}))
    slept: list[float] = []
    with pytest.raises(RateLimitError) as info:
        _run(_client(handler, slept=slept, max_retry_after=60).balance())
    assert info.value.retry_after == 3600 and slept == [] and len(seen) == 1
    assert "Retry after 3600 s" in str(info.value)


def test_retry_after_http_date_is_honoured() -> None:
    import email.utils
    import time

    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    handler, _ = _script(httpx.Response(429, headers={"Retry-After": when}), OK_BALANCE)
    slept: list[float] = []
    _run(_client(handler, slept=slept).balance())
    assert any(27 <= s <= 31 for s in slept)


def test_429_without_retry_after_backs_off_and_holds_the_pacer() -> None:
    handler, _ = _script(429, OK_BALANCE)
    slept: list[float] = []
    client = _client(handler, slept=slept)
    _run(client.balance())
    assert 0.375 <= slept[0] <= 0.5
    assert client.stats().throttled == 1


def test_pacer_wait_event() -> None:
    handler, _ = _script(OK_BALANCE, OK_BALANCE)
    events: list[Any] = []

    async def sleep(d: float) -> None:
        return None

    client = AsyncClient(api_key=KEY, base_url=BASE, transport=httpx.MockTransport(handler),
                         rate=2, per=10.0, burst=1, sleep=sleep, on_event=events.append)

    async def main() -> None:
        await client.balance()
        await client.balance()

    asyncio.run(main())
    waits = [e for e in events if isinstance(e, PacerWait)]
    assert len(waits) == 1 and waits[0].delay == pytest.approx(10.0, abs=0.5)


def test_validate_key_false_is_authentication_error() -> None:
    handler, _ = _script(httpx.Response(200, json={"valid": False}))
    with pytest.raises(AuthenticationError) as info:
        _run(_client(handler).validate_key())
    assert info.value.status_code == 200 and "clapi_…cdef" in str(info.value)


def test_non_json_success_is_unexpected_response() -> None:
    handler, _ = _script(httpx.Response(200, text="<html>proxy login</html>"))
    with pytest.raises(UnexpectedResponseError, match="not JSON"):
        _run(_client(handler).balance())


def test_task_ids_must_match_contacts() -> None:
    bad = httpx.Response(200, json={"workflow_id": "public_bulk_2", "task_ids": ["a", "b"]})
    handler, _ = _script(bad)
    with pytest.raises(UnexpectedResponseError, match="public_bulk_2"):
        _run(_client(handler).submit([CONTACT]))


def test_key_sent_only_in_authorization_header() -> None:
    handler, seen = _script(OK_BALANCE)
    _run(_client(handler).balance())
    req = seen[0]
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in str(req.url)
    assert str(req.url) == f"{BASE}/credits/balance"


def test_server_echoing_the_key_is_scrubbed() -> None:
    handler, _ = _script(httpx.Response(401, json={"detail": f"bad key {KEY}"}))
    with pytest.raises(AuthenticationError) as info:
        _run(_client(handler).balance())
    err = info.value
    for text in (str(err), repr(err), repr(err.body), repr(err.detail)):
        assert KEY not in text
    assert "clapi_…cdef" in str(err)
