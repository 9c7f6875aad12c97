"""Helpers for the sandbox tests: an authenticated httpx client, a real webhook receiver
that can fail on purpose, and polling until a workflow is terminal."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from cleanlist_pandas.sandbox import Sandbox

TERMINAL = {"completed", "completed_with_errors", "failed"}


def client(sb: Sandbox, key: str | None = None) -> httpx.Client:
    """An httpx client on ``sb.base_url`` with the key as a Bearer token."""
    return httpx.Client(
        base_url=sb.base_url,
        headers={"Authorization": f"Bearer {key or sb.api_key}"},
        timeout=10.0,
        trust_env=False,
    )


def contacts(n: int, prefix: str = "p") -> list[dict[str, str]]:
    """``n`` distinct valid contacts (names + domain)."""
    return [
        {"first_name": f"First{i}", "last_name": f"{prefix}Last{i}", "company_domain": "acme.com"}
        for i in range(n)
    ]


def wait_terminal(c: httpx.Client, workflow_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """Poll the status endpoint until the workflow is terminal; return the last body."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.get("/enrich/status", params={"workflow_id": workflow_id})
        if r.status_code == 429:
            time.sleep(0.05)
            continue
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["workflow"]["status"] in TERMINAL:
            return body
        assert time.monotonic() < deadline, f"workflow {workflow_id} not terminal in time"
        time.sleep(0.005)


def submit(c: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = c.post("/enrich/bulk", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


class Receiver:
    """A real local webhook receiver. ``plan`` is consumed one item per request: an int is
    the status to answer, a float ``s`` means "sleep s seconds, then answer 200"; when the
    plan is empty it answers ``default``."""

    def __init__(self, plan: list[int | float] | None = None, default: int = 200) -> None:
        self.plan = list(plan or [])
        self.default = default
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append(
                        {
                            "at": time.monotonic(),
                            "path": self.path,
                            "content_type": self.headers.get("Content-Type"),
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": json.loads(raw) if raw else None,
                        }
                    )
                    step = receiver.plan.pop(0) if receiver.plan else receiver.default
                if isinstance(step, float):
                    time.sleep(step)
                    step = 200
                try:
                    self.send_response(int(step))
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cleanlist"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= n:
                    return list(self.received)
            time.sleep(0.005)
        raise AssertionError(f"expected {n} webhook requests, got {len(self.received)}")


def wait_deliveries(
    c: httpx.Client, workflow_id: str, n: int, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """Poll ``/webhooks/deliveries`` until it lists ``n`` rows (either documented shape:
    a bare list or ``{"deliveries": [...]}``)."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        r = c.get("/webhooks/deliveries", params={"workflow_id": workflow_id})
        if r.status_code == 200:
            body = r.json()
            rows = body["deliveries"] if isinstance(body, dict) else body
            if len(rows) >= n:
                return rows
        time.sleep(0.01)
    raise AssertionError(f"expected {n} delivery rows, got {rows}")


@contextmanager
def receiver(plan: list[int | float] | None = None, default: int = 200) -> Iterator[Receiver]:
    with Receiver(plan, default) as r:
        yield r
