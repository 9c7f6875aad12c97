"""Receive Cleanlist's webhook: a small local receiver, and parsing of the payload.

Cleanlist POSTs one JSON payload to the ``webhook_url`` of a bulk request when the workflow
ends (spec §4). Payloads are **not signed**, so the receiver defends itself the way the
webhook guide says: it accepts only workflow ids it was told to expect (others get ``404``)
and it is idempotent on ``workflow_id`` (a second delivery of the same workflow is
acknowledged with ``200`` and ignored). At most 250 results ride in a payload; when
``results_truncated`` is more than 0 the rest must be read from the status endpoint —
:attr:`WebhookPayload.complete` says whether that is needed.

>>> with WebhookReceiver() as rx:                      # doctest: +SKIP
...     sub = client.submit(contacts, webhook_url=rx.url)
...     rx.expect(sub.workflow_id)
...     payload = rx.wait(sub.workflow_id, timeout=60)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cleanlist_pandas._constants import is_loopback_host


@dataclass(frozen=True)
class WebhookPayload:
    """One webhook delivery, parsed tolerantly; unknown fields are kept in ``raw``.

    >>> p = WebhookPayload.from_dict({"workflow_id": "public_bulk_1", "status": "completed",
    ...     "results": [{"task_id": "t"}], "results_truncated": 0})
    >>> p.complete, len(p.results)
    (True, 1)
    """

    workflow_id: str
    status: str
    event: str | None = None
    enrichment_type: str | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    results: tuple[Mapping[str, Any], ...] = ()
    results_limit: int | None = None
    results_truncated: int = 0
    results_endpoint: str | None = None
    completed_at: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def complete(self) -> bool:
        """True when every result rode in the payload (nothing to fetch from the status API)."""
        return self.results_truncated == 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WebhookPayload:
        """Parse a payload dict (spec §4); raises ``ValueError`` without a ``workflow_id``.

        >>> WebhookPayload.from_dict({"workflow_id": "w", "status": "failed"}).status
        'failed'
        """
        workflow_id = data.get("workflow_id")
        if not isinstance(workflow_id, str) or not workflow_id:
            raise ValueError("webhook payload has no workflow_id")
        results = data.get("results") or ()
        return cls(
            workflow_id=workflow_id,
            status=str(data.get("status") or ""),
            event=data.get("event"),
            enrichment_type=data.get("enrichment_type"),
            summary=dict(data.get("summary") or {}),
            results=tuple(r for r in results if isinstance(r, Mapping)),
            results_limit=data.get("results_limit"),
            results_truncated=int(data.get("results_truncated") or 0),
            results_endpoint=data.get("results_endpoint"),
            completed_at=data.get("completed_at"),
            raw=dict(data),
        )


class WebhookReceiver:
    """A threaded HTTP server on loopback that receives Cleanlist webhooks.

    ``expect(workflow_id)`` registers an id; deliveries for other ids get ``404``
    (``accept_unknown=True`` takes everything). Each workflow's first delivery is kept;
    duplicates are answered ``200`` and counted in ``duplicates``.

    >>> rx = WebhookReceiver().start(); rx.url.startswith("http://127.0.0.1:")
    True
    >>> rx.stop()
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        path: str = "/cleanlist/webhook",
        accept_unknown: bool = False,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError("WebhookReceiver binds loopback hosts only; put a proxy in front")
        self.host = host
        self.port = port
        self.path = path
        self.accept_unknown = accept_unknown
        self.duplicates = 0
        self.rejected = 0
        self._expected: set[str] = set()
        self._payloads: dict[str, WebhookPayload] = {}
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self._server else "stopped"
        return f"WebhookReceiver({state}, received={len(self._payloads)})"

    @property
    def url(self) -> str:
        """The URL to pass as ``webhook_url``."""
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        return f"http://{self.host}:{self._server.server_address[1]}{self.path}"

    def expect(self, workflow_ids: str | Iterable[str]) -> None:
        """Accept deliveries for these workflow ids."""
        ids = [workflow_ids] if isinstance(workflow_ids, str) else list(workflow_ids)
        with self._cond:
            self._expected.update(ids)

    def payloads(self) -> dict[str, WebhookPayload]:
        """Every workflow's first delivery, by workflow id."""
        with self._cond:
            return dict(self._payloads)

    def wait(self, workflow_id: str, timeout: float | None = None) -> WebhookPayload:
        """Block until the webhook of ``workflow_id`` arrives; ``TimeoutError`` otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: workflow_id in self._payloads, timeout):
                raise TimeoutError(f"no webhook for {workflow_id} within {timeout} s")
            return self._payloads[workflow_id]

    def _receive(self, body: bytes) -> int:
        try:
            payload = WebhookPayload.from_dict(json.loads(body))
        except (ValueError, TypeError):
            self.rejected += 1
            return 400
        with self._cond:
            if not self.accept_unknown and payload.workflow_id not in self._expected:
                self.rejected += 1
                return 404
            if payload.workflow_id in self._payloads:
                self.duplicates += 1
                return 200
            self._payloads[payload.workflow_id] = payload
            self._cond.notify_all()
        return 200

    def start(self) -> WebhookReceiver:
        """Start serving in a daemon thread; returns self."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                code = receiver._receive(body) if self.path == receiver.path else 404
                out = json.dumps({"ok": code == 200}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: a notebook must not fill with access logs

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="cleanlist-webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
