"""The seed's whole flow in ten lines, with a local webhook receiver; and the key never
shows up in a repr, a message, or a DEBUG log line."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("cleanlist_pandas.sandbox")

import cleanlist_pandas.config as cfg
from cleanlist_pandas.client import Client
from cleanlist_pandas.errors import CleanlistError
from cleanlist_pandas.sandbox.config import BALANCE_SHAPES, DELIVERIES_SHAPES

CONTACTS = [
    {"linkedin_url": "https://www.linkedin.com/in/johndoe"},
    {"first_name": "Ann", "last_name": "Lee", "company_domain": "acme.com"},
    {"first_name": "Bo", "last_name": "Chen", "company_name": "Initech"},
]


class Receiver:
    """A tiny threaded webhook receiver on 127.0.0.1 (answers 200, keeps the payloads)."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.received = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                outer.payloads.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                outer.received.set()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cleanlist-hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _wait_logged(sb: Any, workflow_id: str, timeout: float = 10.0) -> None:
    """Wait until the sandbox has logged a delivery attempt: the receiver sees the POST a
    moment before the sandbox reads the answer and writes the row."""
    deadline = time.monotonic() + timeout
    while not sb.deliveries(workflow_id):
        assert time.monotonic() < deadline, "the sandbox never logged the delivery"
        time.sleep(0.005)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.mark.parametrize(("balance_shape", "deliveries_shape"),
                         list(zip(BALANCE_SHAPES, DELIVERIES_SHAPES, strict=True)))
def test_quickstart_flow(sb: Any, receiver: Receiver, scaled_time: Callable[[float], Any],
                         capsys: pytest.CaptureFixture[str], balance_shape: str,
                         deliveries_shape: str) -> None:
    sb.config.balance_shape = balance_shape  # both documented shapes (spec §3.2, §3.5)
    sb.config.deliveries_shape = deliveries_shape
    st = scaled_time(sb.config.time_scale)  # test-only: run the client in sandbox time
    contacts = CONTACTS
    # ---- the README quickstart, as written there (plus the test-only clock/sleep) ----
    import cleanlist_pandas as clp  # noqa: F401  (the README uses clp.configure/clp.Client)

    cfg.configure(api_key=sb.api_key, base_url=sb.base_url)
    with Client(clock=st.clock, sleep=st.sleep) as client:
        print("org", client.validate_key().organization_id, "credits", client.balance().credits)
        job = client.submit(contacts, enrichment_type="partial", webhook_url=receiver.url)
        wf = client.wait(job.workflow_id, progress=True, timeout=600)
        print(wf.status, wf.summary.emails_found, "emails found")
        assert receiver.received.wait(10)  # (test only) the webhook has landed
        _wait_logged(sb, job.workflow_id)  # (test only) ...and the sandbox has logged it
        audit = client.deliveries(job.workflow_id).to_dataframe()
        print(audit[["attempt_number", "status", "response_status_code", "duration_ms"]])
    # ---------------------------------------------------------------------------------
    out = capsys.readouterr()
    assert wf.is_terminal and len(wf.results) == 3
    assert f"{job.workflow_id[:24]}" in out.err and "3/3" in out.err  # the tqdm bar
    (payload,) = receiver.payloads
    assert payload["workflow_id"] == job.workflow_id and payload["status"] == wf.status
    assert len(audit) == 1
    row = audit.iloc[0]
    assert row["attempt_number"] == 1 and row["status"] == "success"
    assert row["response_status_code"] == 200
    assert row["webhook_url"] == receiver.url


def test_the_key_never_leaks(sb: Any, make_client: Callable[..., Client],
                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # root: httpx, httpcore, uvicorn and ours
    key = sb.api_key
    revoked = sb.add_key(sb.organization_id)
    sb.revoke_key(revoked)
    errors: list[BaseException] = []
    client = make_client(sb)
    texts: list[str] = [repr(client), str(client), repr(client.aio), str(client.aio),
                        repr(client.settings), str(client.settings), repr(client.pacer)]

    job = client.submit(CONTACTS)
    client.wait(job.workflow_id, timeout=600)
    client.deliveries(job.workflow_id)
    def fault(*args: Any, **kw: Any) -> Callable[[], None]:
        return lambda: sb.inject_fault(*args, **kw)

    def nothing() -> None:
        return None

    actions: list[tuple[Callable[[], None], Callable[[], object]]] = [
        (nothing, lambda: make_client(sb, api_key=revoked).balance()),
        (nothing, lambda: client.status("public_bulk_missing")),
        (nothing, lambda: client.submit([{"first_name": "only"}])),
        (fault("bulk", "drop_after"), lambda: client.submit(CONTACTS)),
    ]
    for status in (402, 403, 429, 500, 503):
        actions.append((fault("balance", "status", status=status, times=4, retry_after=999),
                        lambda: make_client(sb, max_retries=1).balance()))
    for setup, action in actions:
        setup()
        try:
            action()
        except CleanlistError as exc:
            errors.append(exc)
        finally:
            sb.clear_faults()
    assert len(errors) == len(actions)
    for err in errors:
        texts += [str(err), repr(err), repr(vars(err)), repr(err.args)]
        cause = err.__cause__
        if cause is not None:
            texts += [str(cause), repr(cause)]
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
    assert any("GET /credits/balance" in t for t in texts)  # the log was captured
    for secret in (key, revoked):
        leaks = [t for t in texts if secret in t]
        assert not leaks, leaks[:3]
