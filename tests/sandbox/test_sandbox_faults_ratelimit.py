"""Fault injection (every family) and the rate limit (spec §2)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from sandbox_helpers import client, contacts, submit, wait_terminal

from cleanlist_pandas.sandbox import Sandbox, SandboxConfig


def test_scripted_status_sequence(sandbox: Sandbox) -> None:
    sandbox.inject_fault("balance", "status", status=503)
    sandbox.inject_fault("balance", "status", status=503)
    with client(sandbox) as c:
        codes = [c.get("/credits/balance").status_code for _ in range(4)]
    assert codes == [503, 503, 200, 200]
    assert sandbox.stats()["by_endpoint"]["GET /credits/balance"] == {"503": 2, "200": 2}


@pytest.mark.parametrize(("status", "detail"), [(500, "Internal Server Error"),
                                                (502, "Bad Gateway"),
                                                (503, "Service Unavailable")])  # fmt: skip
def test_status_fault_bodies(sandbox: Sandbox, status: int, detail: str) -> None:
    sandbox.inject_fault("status", "status", status=status, times=2)
    with client(sandbox) as c:
        r = c.get("/enrich/status", params={"workflow_id": "x"})
    assert (r.status_code, r.json()) == (status, {"detail": detail})


def test_status_fault_does_not_process_bulk(sandbox: Sandbox) -> None:
    sandbox.inject_fault("bulk", "status", status=503)
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json={"contacts": contacts(3)})
    assert r.status_code == 503
    assert sandbox.state.workflows == {}


def test_429_fault_retry_after(sandbox: Sandbox) -> None:
    sandbox.inject_fault("validate-key", "status", status=429, retry_after=7)
    sandbox.inject_fault("validate-key", "status", status=429)
    with client(sandbox) as c:
        r1, r2 = c.get("/auth/validate-key"), c.get("/auth/validate-key")
    assert r1.status_code == r2.status_code == 429
    assert r1.headers["Retry-After"] == "7" and r1.json() == {"detail": "Rate limit exceeded"}
    assert int(r2.headers["Retry-After"]) >= 1


def test_probability_fault_is_seeded_and_unlimited(sandbox: Sandbox) -> None:
    def run() -> list[int]:
        sandbox.reset()
        sandbox.config.rate_limit_enabled = False
        sandbox.inject_fault("balance", "status", status=502, probability=0.5)
        with client(sandbox) as c:
            return [c.get("/credits/balance").status_code for _ in range(40)]

    a, b = run(), run()
    assert a == b  # the same seed gives the same sequence
    assert 5 < a.count(502) < 35 and a.count(200) + a.count(502) == 40


def test_star_endpoint_and_clear(sandbox: Sandbox) -> None:
    sandbox.inject_fault("*", "status", status=500, times=None)
    with client(sandbox) as c:
        assert c.get("/auth/validate-key").status_code == 500
        assert c.get("/credits/balance").status_code == 500
        sandbox.clear_faults()
        assert c.get("/credits/balance").status_code == 200


def test_endpoint_queue_before_star(sandbox: Sandbox) -> None:
    sandbox.inject_fault("*", "status", status=500, times=None)
    sandbox.inject_fault("balance", "status", status=503)
    with client(sandbox) as c:
        assert c.get("/credits/balance").status_code == 503
        assert c.get("/credits/balance").status_code == 500


def test_slow_fault_real_seconds(sandbox: Sandbox) -> None:
    sandbox.inject_fault("balance", "slow", delay_s=0.3)
    with client(sandbox) as c:
        t0 = time.monotonic()
        r = c.get("/credits/balance")
        elapsed = time.monotonic() - t0
    assert r.status_code == 200 and elapsed >= 0.29


def test_slow_fault_client_timeout(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox()
    sb.inject_fault("balance", "slow", delay_s=1.0)
    with client(sb) as c, pytest.raises(httpx.TimeoutException):
        c.get("/credits/balance", timeout=0.2)


def test_slow_bulk_then_client_timeout_is_still_processed(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    """The ambiguous time-out: the client gave up, the server still created the workflow."""
    sb = make_sandbox()
    sb.inject_fault("bulk", "slow", delay_s=0.5)
    with client(sb) as c, pytest.raises(httpx.TimeoutException):
        c.post("/enrich/bulk", json={"contacts": contacts(3)}, timeout=0.1)
    deadline = time.monotonic() + 10
    while not sb.state.workflows:
        assert time.monotonic() < deadline, "the slow bulk request was never processed"
        time.sleep(0.02)
    assert sb.wait_idle(10)
    (wid,) = sb.state.workflows
    assert sb.state.workflows[wid].done == 3


@pytest.mark.parametrize("endpoint", ["validate-key", "balance", "status", "deliveries"])
def test_drop_before_is_a_transport_error(sandbox: Sandbox, endpoint: str) -> None:
    path = {
        "validate-key": "/auth/validate-key",
        "balance": "/credits/balance",
        "status": "/enrich/status?workflow_id=x",
        "deliveries": "/webhooks/deliveries?workflow_id=x",
    }[endpoint]
    sandbox.inject_fault(endpoint, "drop_before")
    with client(sandbox) as c:
        with pytest.raises(httpx.TransportError):
            c.get(path)
        assert c.get("/auth/validate-key").status_code == 200  # next request is normal


def test_a_client_that_dies_mid_body_is_counted_aborted(sandbox: Sandbox) -> None:
    # a client killed while writing a bulk request: it reached the sandbox, unprocessed
    # (it was counted as a 500 nobody saw); the kill-and-resume checks count it among the
    # requests that may come back unknown
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(sandbox.base_url)
    body = b'{"contacts": [' + b" " * 500
    head = (
        f"POST {url.path}/enrich/bulk HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {sandbox.api_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) + 1000}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head + body)
        time.sleep(0.1)  # the sandbox is reading the body when the client goes
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        row = sandbox.stats()["by_endpoint"].get("POST /enrich/bulk", {})
        if row:
            break
        time.sleep(0.02)
    assert row == {"aborted": 1}
    assert sandbox.state.workflows == {} and sandbox.ledger() == []


#: a dropped connection, as the client sees it: a clean close before the answer, or a reset
#: when the server closes with request bytes still unread (which one depends on timing)
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)


def test_drop_before_bulk_processes_nothing(sandbox: Sandbox) -> None:
    sandbox.inject_fault("bulk", "drop_before")
    with client(sandbox) as c, pytest.raises(DROPPED):
        c.post("/enrich/bulk", json={"contacts": contacts(5)})
    time.sleep(0.05)
    assert sandbox.state.workflows == {} and sandbox.ledger() == []
    assert sandbox.stats()["by_endpoint"]["POST /enrich/bulk"] == {"dropped": 1}


def test_drop_after_bulk_is_processed_and_charged(sandbox: Sandbox) -> None:
    sandbox.config.task_failure_rate = 0.0
    sandbox.inject_fault("bulk", "drop_after")
    with client(sandbox) as c:
        with pytest.raises(DROPPED):
            c.post("/enrich/bulk", json={"contacts": contacts(20)})
        (wid,) = sandbox.state.workflows
        body = wait_terminal(c, wid)
    assert body["workflow"]["status"] == "completed"
    assert sandbox.balance() < 10_000 and sandbox.ledger()


def test_drop_after_async_client(sandbox: Sandbox) -> None:
    import asyncio

    sandbox.inject_fault("bulk", "drop_after")

    async def go() -> None:
        async with httpx.AsyncClient(
            base_url=sandbox.base_url,
            headers={"Authorization": f"Bearer {sandbox.api_key}"},
            trust_env=False,
        ) as c:
            with pytest.raises(httpx.RemoteProtocolError):
                await c.post("/enrich/bulk", json={"contacts": contacts(2)})

    asyncio.run(go())
    assert len(sandbox.state.workflows) == 1


def test_fail_workflow(sandbox: Sandbox) -> None:
    sandbox.inject_fault("bulk", "fail_workflow")
    with client(sandbox) as c:
        out = submit(c, {"enrichment_type": "full", "contacts": contacts(10)})
        body = wait_terminal(c, out["workflow_id"])
        again = wait_terminal(c, submit(c, {"contacts": contacts(2)})["workflow_id"])
    assert body["workflow"]["status"] == "failed"
    assert all(r["status"] == "failed" and r["error"] for r in body["results"])
    assert all(r["credits_charged"] == 0 for r in body["results"])
    assert all(row["workflow_id"] != out["workflow_id"] for row in sandbox.ledger())
    assert again["workflow"]["status"] in ("completed", "completed_with_errors")


def test_bad_fault_arguments(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError):
        sandbox.inject_fault("nope", "status", status=500)
    with pytest.raises(ValueError):
        sandbox.inject_fault("bulk", "explode")
    with pytest.raises(ValueError):
        sandbox.inject_fault("bulk", "status")
    with pytest.raises(ValueError):
        sandbox.inject_fault("bulk", "slow")
    with pytest.raises(ValueError):
        sandbox.inject_fault("bulk", "status", status=503, probability=2.0)
    with pytest.raises(ValueError):
        sandbox.inject_fault("status", "fail_workflow")


def test_star_fail_workflow_waits_for_a_bulk_request(sandbox: Sandbox) -> None:
    sandbox.inject_fault("*", "fail_workflow")
    with client(sandbox) as c:
        assert c.get("/credits/balance").status_code == 200
        assert c.get("/auth/validate-key").status_code == 200
        body = wait_terminal(c, submit(c, {"contacts": contacts(2)})["workflow_id"])
    assert body["workflow"]["status"] == "failed"
    assert sandbox.state.faults() == []


# --- the rate limit --------------------------------------------------------------------


def test_rate_limit_60_per_org_fixed_window(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(time_scale=0.2)  # window 12 s: plenty for 61 quick requests
    with client(sb) as c:
        codes = [c.get("/credits/balance").status_code for _ in range(30)]
        codes += [
            c.get("/enrich/status", params={"workflow_id": "x"}).status_code for _ in range(30)
        ]
        r = c.get("/auth/validate-key")
    assert codes.count(429) == 0
    assert r.status_code == 429
    assert r.json() == {"detail": "Rate limit exceeded"}
    retry_after = r.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 12
    assert not any(h.lower().startswith("x-ratelimit") for h in r.headers)


def test_rate_limit_is_per_org_and_window_resets(make_sandbox: Callable[..., Sandbox]) -> None:
    cfg = SandboxConfig(time_scale=1 / 60, rate_limit_per_org=5)  # 5 per 1 s window
    sb = make_sandbox(config=cfg)
    _org, key = sb.add_organization()
    with client(sb) as c, client(sb, key) as other:
        codes = [c.get("/credits/balance").status_code for _ in range(6)]
        other_code = other.get("/credits/balance").status_code
        time.sleep(1.1)
        after = c.get("/credits/balance").status_code
    assert codes[:5] == [200] * 5 and codes[5] == 429
    assert other_code == 200
    assert after == 200


def test_keys_of_one_org_share_the_window(make_sandbox: Callable[..., Sandbox]) -> None:
    """Spec §2 [doc]: the limit is per organization, so two keys (users) of one
    organization share one window: 30 requests each use it up, the 61st is refused whichever
    key sends it, while another organization's key is unaffected."""
    sb = make_sandbox(time_scale=0.2)  # window 12 s: plenty for 64 quick requests
    second = sb.add_key(sb.organization_id)
    _org, stranger = sb.add_organization()
    with client(sb) as a, client(sb, second) as b, client(sb, stranger) as other:
        codes = []
        for _ in range(30):
            codes.append(a.get("/credits/balance").status_code)
            codes.append(b.get("/auth/validate-key").status_code)
        over_a = a.get("/credits/balance")
        over_b = b.get("/enrich/status", params={"workflow_id": "x"})
        elsewhere = other.get("/credits/balance").status_code
    assert codes == [200] * 60
    assert over_a.status_code == over_b.status_code == 429
    assert over_b.json() == {"detail": "Rate limit exceeded"}
    assert elsewhere == 200


def test_rate_limit_per_key_option(make_sandbox: Callable[..., Sandbox]) -> None:
    cfg = SandboxConfig(time_scale=0.2, rate_limit_per_key_enabled=True)
    sb = make_sandbox(config=cfg)
    extra = sb.add_key(sb.organization_id)
    with client(sb) as a, client(sb, extra) as b:
        first = [a.get("/credits/balance").status_code for _ in range(31)]
        second = [b.get("/credits/balance").status_code for _ in range(30)]
        third = b.get("/credits/balance")
    assert first[:30] == [200] * 30 and first[30] == 429
    assert second[:29] == [200] * 29  # org total reaches 60 on b's 30th request
    assert third.status_code == 429


def test_rate_limit_can_be_disabled(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(config=SandboxConfig(time_scale=1.0, rate_limit_enabled=False))
    with client(sb) as c:
        assert all(c.get("/credits/balance").status_code == 200 for _ in range(70))


class _Clock:
    """A settable clock for the sandbox state (whole numbers stay exact as floats)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return 1_000_000.0 + self.offset


def test_rate_limit_window_is_60_s_fixed_not_sliding(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spec §2 [doc]: a fixed 60-second window; ``Retry-After`` in whole seconds.

    At time_scale 1 on a settable clock: the window starts at the first request, answers
    429 with the seconds left until its end, and resets exactly at its boundary — after
    which ``limit`` requests pass at once, which a sliding window would not allow.
    """
    sandbox.config.time_scale = 1.0
    sandbox.config.rate_limit_per_org = 3
    clock = _Clock()
    monkeypatch.setattr(sandbox.state, "now", clock)

    def at(t: float) -> httpx.Response:
        clock.offset = t
        return c.get("/credits/balance")

    with client(sandbox) as c:
        assert at(0.0).status_code == 200  # opens the window [0, 60)
        assert at(50.0).status_code == 200
        assert at(50.5).status_code == 200
        r = at(51.0)
        assert r.status_code == 429 and r.headers["Retry-After"] == "9"
        r = at(59.2)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        # the boundary: a fresh window, though 2 requests of the last 60 s were at 50 s
        assert [at(t).status_code for t in (60.0, 60.1, 60.2)] == [200, 200, 200]
        r = at(60.3)
        assert r.status_code == 429 and r.headers["Retry-After"] == "60"
        assert at(119.9).status_code == 429
        assert at(120.0).status_code == 200
