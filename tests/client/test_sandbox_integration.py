"""The client against the sandbox on a real socket: every endpoint, every error class,
and the fault injections. Clients run in the sandbox's scaled time (see conftest.py)."""

from __future__ import annotations

import _thread
import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("cleanlist_pandas.sandbox")

from cleanlist_pandas.client import AsyncClient, Client
from cleanlist_pandas.client.runner import run_sync
from cleanlist_pandas.errors import (
    AmbiguousSubmissionError,
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
    WaitTimeoutError,
)
from cleanlist_pandas.sandbox.config import BALANCE_SHAPES, DELIVERIES_SHAPES

CONTACTS = [
    {"linkedin_url": "https://www.linkedin.com/in/johndoe"},
    {"first_name": "Ann", "last_name": "Lee", "company_domain": "acme.com"},
    {"first_name": "Bo", "last_name": "Chen", "company_name": "Initech"},
]
MakeClient = Callable[..., Client]


def _workflows(sb: Any) -> int:
    return len(sb.state.workflows)


def _count(sb: Any, endpoint: str, status: str) -> int:
    return int(sb.stats()["by_endpoint"].get(endpoint, {}).get(status, 0))


# --- every endpoint --------------------------------------------------------------------


@pytest.mark.parametrize("deliveries_shape", DELIVERIES_SHAPES)
@pytest.mark.parametrize("balance_shape", BALANCE_SHAPES)
def test_every_endpoint(
    sb: Any, make_client: MakeClient, balance_shape: str, deliveries_shape: str
) -> None:
    sb.config.balance_shape = balance_shape  # both documented shapes (spec §3.2, §3.5)
    sb.config.deliveries_shape = deliveries_shape
    client = make_client(sb)
    info = client.validate_key()
    assert info.valid and info.organization_id == sb.organization_id
    assert client.balance().credits == pytest.approx(sb.balance())

    job = client.submit(CONTACTS, enrichment_type="partial")
    assert job.workflow_id.startswith("public_bulk_") and len(job.task_ids) == 3
    assert job.total_contacts == 3 and job.enrichment_type == "partial"

    first = client.status(job.workflow_id)
    assert first.workflow_id == job.workflow_id and first.total_contacts == 3

    final = client.wait(job.workflow_id, timeout=600)
    assert final.is_terminal and final.summary.total == 3 and final.progress == (3, 3)
    assert {r.task_id for r in final.results} == set(job.task_ids)

    results = client.results(job.workflow_id)
    assert {r.task_id for r in results} == set(job.task_ids)
    task = client.task_status(job.task_ids[1])
    assert task.task_id == job.task_ids[1] and task.is_finished

    log = client.deliveries(job.workflow_id)  # no webhook: no attempts
    assert len(log) == 0 and len(log.to_dataframe()) == 0

    found = sum(r.credits_charged for r in results)
    assert client.balance().credits == pytest.approx(10_000.0 - found)
    assert _count(sb, "POST /enrich/bulk", "200") == 1


@pytest.mark.parametrize("balance_shape", BALANCE_SHAPES)
def test_async_client_directly(
    sb: Any, make_async_client: Callable[..., AsyncClient], balance_shape: str
) -> None:
    sb.config.balance_shape = balance_shape
    client = make_async_client(sb)

    async def flow() -> str:
        job = await client.submit(CONTACTS[:1], enrichment_type="none")
        wf = await client.wait(job.workflow_id, timeout=600)
        return wf.status

    assert asyncio.run(flow()) == "completed"
    # a second asyncio.run: the first loop is closed, the client rebuilds its pool
    assert asyncio.run(client.balance()).credits == pytest.approx(10_000.0)
    asyncio.run(client.aclose())


def test_sync_client_inside_asyncio_run(sb: Any, make_client: MakeClient) -> None:
    """As in a Jupyter cell: a loop already runs in this thread."""
    client = make_client(sb)

    async def cell() -> str:
        assert client.validate_key().valid
        job = client.submit(CONTACTS)
        return client.wait(job.workflow_id, timeout=600).status

    assert asyncio.run(cell()) in ("completed", "completed_with_errors")


# --- every error class -----------------------------------------------------------------


def test_401_unknown_and_revoked_key(sb: Any, make_client: MakeClient) -> None:
    with pytest.raises(AuthenticationError) as info:
        make_client(sb, api_key="clapi_not_a_real_key_00001a2b").balance()
    assert info.value.status_code == 401 and "clapi_…1a2b" in str(info.value)
    key = sb.add_key(sb.organization_id)
    sb.revoke_key(key)
    with pytest.raises(AuthenticationError):
        make_client(sb, api_key=key).validate_key()


def test_402_insufficient_credits(sb: Any, make_client: MakeClient) -> None:
    sb.set_credits(1.0)
    with pytest.raises(InsufficientCreditsError) as info:
        make_client(sb).submit(CONTACTS)
    msg = str(info.value)
    assert "HTTP 402" in msg and "Insufficient credits" in msg and "Top up" in msg
    assert _workflows(sb) == 0


def test_403_plan_without_api_access(sb: Any, make_client: MakeClient) -> None:
    _, key = sb.add_organization(credits=10, api_access=False)
    with pytest.raises(PermissionDeniedError, match="upgrade the plan"):
        make_client(sb, api_key=key).balance()


def test_404_unknown_ids(sb: Any, make_client: MakeClient) -> None:
    client = make_client(sb)
    wid = "public_bulk_00000000-0000-4000-8000-000000000000"
    with pytest.raises(NotFoundError) as info:
        client.status(wid)
    assert info.value.workflow_id == wid and wid in str(info.value)
    with pytest.raises(NotFoundError):
        client.deliveries(wid)
    with pytest.raises(NotFoundError):
        client.task_status("00000000-0000-4000-8000-000000000000")


def test_400_and_422_from_the_server(sb: Any, make_client: MakeClient) -> None:
    client = make_client(sb)
    loop = client.aio._requests  # bypass local validation to see the server's own answers
    with pytest.raises(BadRequestError):
        run_sync(lambda: loop.request("GET", "/enrich/status"))
    body = {"contacts": [CONTACTS[0], {"first_name": "X"}, CONTACTS[1], {"last_name": "Y"}]}
    with pytest.raises(ValidationError) as info:
        run_sync(lambda: loop.request("POST", "/enrich/bulk", json_body=body))
    assert info.value.contact_indexes == (1, 3)
    assert "[1, 3]" in str(info.value)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequestError), (401, AuthenticationError), (402, InsufficientCreditsError),
     (403, PermissionDeniedError), (404, NotFoundError), (422, ValidationError),
     (429, RateLimitError), (500, ServerError), (502, ServerError), (503, ServerError),
     (504, ServerError), (409, APIStatusError)],
)
def test_each_status_maps_to_its_class(
    sb: Any, make_client: MakeClient, status: int, cls: type[APIStatusError]
) -> None:
    client = make_client(sb, max_retries=0)
    sb.inject_fault("balance", "status", status=status)
    with pytest.raises(cls) as info:
        client.balance()
    err = info.value
    assert type(err) is cls and err.status_code == status
    assert f"HTTP {status} from GET /credits/balance" in str(err) and err.hint
    if status == 429:
        assert isinstance(err, RateLimitError) and err.retry_after == 1.0


# --- faults: what is retried and what is not ----------------------------------------------


@pytest.mark.parametrize("balance_shape", BALANCE_SHAPES)
def test_429_retry_after_is_honoured(sb: Any, make_client: MakeClient, balance_shape: str) -> None:
    sb.config.balance_shape = balance_shape
    client = make_client(sb)
    sb.inject_fault("balance", "status", status=429, retry_after=2, times=2)
    assert client.balance().credits == pytest.approx(10_000.0)
    assert client.scaled_time.sleeps.count(2.0) == 2  # type: ignore[attr-defined]
    assert client.stats().throttled == 2
    assert _count(sb, "GET /credits/balance", "429") == 2
    assert _count(sb, "GET /credits/balance", "200") == 1


def test_bulk_resent_after_429_and_503_creates_one_workflow(
    sb: Any, make_client: MakeClient
) -> None:
    client = make_client(sb)
    sb.inject_fault("bulk", "status", status=503)
    sb.inject_fault("bulk", "status", status=429, retry_after=1)
    sb.inject_fault("bulk", "status", status=503)
    job = client.submit(CONTACTS)
    assert _workflows(sb) == 1 and _count(sb, "POST /enrich/bulk", "200") == 1
    assert client.stats().retries == 3
    assert client.wait(job.workflow_id, timeout=600).is_terminal


def test_bulk_503_exhausted_raises_server_error(sb: Any, make_client: MakeClient) -> None:
    client = make_client(sb, max_retries=2)
    sb.inject_fault("bulk", "status", status=503, times=3)
    with pytest.raises(ServerError, match="Already retried 2 times"):
        client.submit(CONTACTS)
    assert _workflows(sb) == 0


@pytest.mark.parametrize("status", [500, 502, 504])
def test_bulk_other_5xx_is_ambiguous_not_resent(
    sb: Any, make_client: MakeClient, status: int
) -> None:
    sb.inject_fault("bulk", "status", status=status)
    with pytest.raises(AmbiguousSubmissionError) as info:
        make_client(sb).submit(CONTACTS)
    assert info.value.status_code == status and len(info.value.contacts) == 3
    assert sb.stats()["by_endpoint"]["POST /enrich/bulk"] == {str(status): 1}


def test_get_503_sequence_then_success(sb: Any, make_client: MakeClient) -> None:
    client = make_client(sb, max_retries=4)
    job = client.submit(CONTACTS)
    for status in (503, 500, 502, 504):
        sb.inject_fault("status", "status", status=status)
    assert client.wait(job.workflow_id, timeout=600).is_terminal
    assert client.stats().retries == 4


@pytest.mark.parametrize("balance_shape", BALANCE_SHAPES)
def test_get_dropped_connection_is_retried(
    sb: Any, make_client: MakeClient, balance_shape: str
) -> None:
    sb.config.balance_shape = balance_shape
    client = make_client(sb)
    sb.inject_fault("balance", "drop_before")
    sb.inject_fault("balance", "drop_after")
    assert client.balance().credits == pytest.approx(10_000.0)
    assert client.stats().retries == 2


def test_bulk_dropped_before_processing_is_ambiguous(sb: Any, make_client: MakeClient) -> None:
    """The client cannot tell a drop before processing from one after: both ambiguous."""
    sb.inject_fault("bulk", "drop_before")
    with pytest.raises(AmbiguousSubmissionError) as info:
        make_client(sb).submit(CONTACTS, webhook_url="http://127.0.0.1:9/hook")
    err = info.value
    assert [dict(c) for c in err.contacts] == CONTACTS
    assert err.webhook_url == "http://127.0.0.1:9/hook"
    assert _workflows(sb) == 0  # here nothing ran (the sandbox knows; the client cannot)
    assert _count(sb, "POST /enrich/bulk", "dropped") == 1


def test_bulk_dropped_after_processing_is_ambiguous_and_not_resent(
    sb: Any, make_client: MakeClient
) -> None:
    sb.inject_fault("bulk", "drop_after")
    client = make_client(sb)
    with pytest.raises(AmbiguousSubmissionError) as info:
        client.submit(CONTACTS)
    assert "NOT re-sent" in str(info.value)
    assert _workflows(sb) == 1  # it did run: a resend would have billed twice
    assert sb.stats()["by_endpoint"]["POST /enrich/bulk"] == {"dropped": 1}


def test_bulk_read_timeout_is_ambiguous(sb: Any, make_client: MakeClient) -> None:
    sb.inject_fault("bulk", "slow", delay_s=1.0)
    client = make_client(sb, timeout=0.25)
    with pytest.raises(AmbiguousSubmissionError, match="ReadTimeout"):
        client.submit(CONTACTS)
    deadline = time.monotonic() + 10  # let the slow handler finish

    def bulk_requests() -> int:
        return sum(sb.stats()["by_endpoint"].get("POST /enrich/bulk", {}).values())

    while (_workflows(sb) == 0 or bulk_requests() == 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _workflows(sb) == 1  # it did run, unanswered: a resend would have billed twice
    assert bulk_requests() == 1  # sent once, never re-sent


@pytest.mark.parametrize("balance_shape", BALANCE_SHAPES)
def test_get_read_timeout_is_retried(sb: Any, make_client: MakeClient, balance_shape: str) -> None:
    sb.config.balance_shape = balance_shape
    sb.inject_fault("balance", "slow", delay_s=1.0)
    client = make_client(sb, timeout=0.25)
    assert client.balance().credits == pytest.approx(10_000.0)
    assert client.stats().retries == 1


def test_connection_refused_is_retried_then_raised(make_client: MakeClient) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

    class Dead:
        api_key = "clapi_dead_server_0000"
        base_url = f"http://127.0.0.1:{port}/api/v1/public"

        class config:
            time_scale = 0.002

    client = make_client(Dead(), max_retries=2)
    with pytest.raises(APIConnectionError, match="Already retried 2 time"):
        client.submit(CONTACTS)
    assert client.stats().retries == 2


def test_failed_workflow_is_a_terminal_status(sb: Any, make_client: MakeClient) -> None:
    sb.inject_fault("bulk", "fail_workflow")
    client = make_client(sb)
    job = client.submit(CONTACTS)
    wf = client.wait(job.workflow_id, timeout=600)
    assert wf.status == "failed" and all(r.status == "failed" for r in wf.results)


def test_wait_total_timeout(sb: Any, make_client: MakeClient) -> None:
    client = make_client(sb)
    sb.config.workflow_start_delay_s = 1e6  # never starts (reset() restores the config)
    job = client.submit(CONTACTS)
    with pytest.raises(WaitTimeoutError) as info:
        client.wait(job.workflow_id, timeout=0.0)
    err = info.value
    assert err.workflow_id == job.workflow_id and "keeps running" in str(err)
    assert err.last is not None and err.last.status == "processing"
    with pytest.raises(WaitTimeoutError):
        client.wait(job.workflow_id, timeout=30)  # 30 scaled seconds: several polls


def test_retry_after_beyond_cap_is_not_waited(sb: Any, make_client: MakeClient) -> None:
    client = make_client(sb, max_retry_after=5)
    sb.inject_fault("balance", "status", status=429, retry_after=30)
    with pytest.raises(RateLimitError) as info:
        client.balance()
    assert info.value.retry_after == 30.0
    assert 30.0 not in client.scaled_time.sleeps  # type: ignore[attr-defined]


# --- the pacer against the real rate limit -----------------------------------------------


def test_pacer_keeps_a_busy_client_under_the_rate_limit(
    make_sandbox: Any, scaled_time: Callable[[float], Any]
) -> None:
    """64 concurrent requests against a sandbox enforcing 60 per (scaled) minute: no 429.

    The window is 3 s real here, so requests are paced ~54 ms apart: the one request of
    headroom the pacer keeps absorbs scheduling jitter of that order on a loaded machine.
    (The exact bound is proved with a fake clock in test_http_units.py.)
    """
    sb = make_sandbox(time_scale=0.05)
    st = scaled_time(0.05)
    client = AsyncClient(api_key=sb.api_key, base_url=sb.base_url, clock=st.clock,
                         sleep=st.sleep)

    async def burst() -> None:
        try:
            await asyncio.gather(*(client.balance() for _ in range(64)))
        finally:
            await client.aclose()

    asyncio.run(burst())
    assert _count(sb, "GET /credits/balance", "200") == 64
    assert _count(sb, "GET /credits/balance", "429") == 0
    stats = client.stats()
    assert stats.requests == 64 and stats.throttled == 0 and stats.waited_s > 0


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="KeyboardInterrupt is delivered to the main thread")
def test_ctrl_c_during_wait_cancels_cleanly(sb: Any, make_client: MakeClient) -> None:
    client = make_client(sb)
    sb.config.workflow_start_delay_s = 1e6  # never finishes (reset() restores the config)
    job = client.submit(CONTACTS)
    polled = threading.Event()

    def interrupt() -> None:
        polled.wait(10)
        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        client.wait(job.workflow_id, poll_interval=1.0, on_update=lambda wf: polled.set())
    # the client is still usable; the workflow is still there
    assert client.status(job.workflow_id).status == "processing"


def test_nest_asyncio_strategy_with_the_sync_client(sb: Any) -> None:
    """The opt-in strategy, in a fresh interpreter (nest-asyncio patches process state)."""
    pytest.importorskip("nest_asyncio2")
    code = (
        "import asyncio, sys\n"
        "import cleanlist_pandas.config as cfg\n"
        "from cleanlist_pandas.client import Client\n"
        "from cleanlist_pandas.client import runner\n"
        f"cfg.configure(api_key={sb.api_key!r}, base_url={sb.base_url!r},"
        " loop_strategy='nest_asyncio')\n"
        "async def cell():\n"
        "    c = Client()\n"
        "    try:\n"
        "        return c.balance().credits\n"
        "    finally:\n"
        "        c.close()\n"
        "print(asyncio.run(cell()), runner._loop_thread is None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["10000.0", "True"], out.stderr[-2000:]
