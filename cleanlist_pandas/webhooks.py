"""Receive Cleanlist's webhook: a small local receiver, and parsing of the payload.

Cleanlist POSTs one JSON payload to the ``webhook_url`` of a bulk request when the workflow
ends (spec §4). Payloads are **not signed**, so the receiver defends itself the way the
webhook guide says: it accepts only workflow ids it was told to expect (others get ``404``)
and it is idempotent on ``workflow_id`` (a second delivery of the same workflow is
acknowledged with ``200`` and ignored). A body that is not a JSON object with a
``workflow_id`` gets ``400``, one over ``max_body`` bytes ``413`` (unread), one that does not
arrive within ``read_timeout`` seconds ``408``. At most 250 results ride in a payload; when
``results_truncated`` is more than 0 the rest must be read from the status endpoint —
:attr:`WebhookPayload.complete` says whether that is needed.

>>> with WebhookReceiver() as rx:                      # doctest: +SKIP
...     sub = client.submit(contacts, webhook_url=rx.url)
...     rx.expect(sub.workflow_id)
...     payload = rx.wait(sub.workflow_id, timeout=60)
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cleanlist_pandas._constants import is_loopback_host
from cleanlist_pandas.errors import UserValueError

#: Largest webhook body the receiver reads (bytes). A payload carries at most 250 results,
#: a few hundred kB; anything bigger is answered ``413`` without being read.
DEFAULT_MAX_BODY = 8 * 1024 * 1024
#: Seconds a request may take to arrive (headers, then the whole body), and the longest
#: an idle connection is kept: a sender that stalls gets ``408`` and frees its thread.
DEFAULT_READ_TIMEOUT = 10.0
#: After refusing a body unread, at most this many bytes / seconds of it are discarded so
#: that closing does not reset the connection before the sender reads the answer.
_LINGER_BYTES = 1024 * 1024
_LINGER_SECONDS = 2.0


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
            raise UserValueError("webhook payload has no workflow_id")
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
    duplicates are answered ``200`` and counted in ``duplicates``. A body over ``max_body``
    bytes is refused unread (``413``); one that does not arrive within ``read_timeout``
    seconds gets ``408``, so no sender can hold a handler thread. Refusals are counted in
    ``rejected``.

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
        max_body: int = DEFAULT_MAX_BODY,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        if not is_loopback_host(host):
            raise UserValueError("WebhookReceiver binds loopback hosts only; put a proxy in front")
        if max_body < 1 or not read_timeout > 0:
            raise UserValueError("max_body must be >= 1 byte and read_timeout > 0 seconds")
        self.max_body = max_body
        self.read_timeout = read_timeout
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

    def _reject(self, code: int) -> int:
        with self._cond:
            self.rejected += 1
        return code

    def _receive(self, body: bytes) -> int:
        try:
            data = json.loads(body)
            if not isinstance(data, dict):  # [1, 2], "x", 7, null: not a payload
                return self._reject(400)
            payload = WebhookPayload.from_dict(data)
        except (ValueError, TypeError, RecursionError):
            return self._reject(400)
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
            # a socket timeout on every read: a stalled sender cannot hold this thread
            timeout = receiver.read_timeout

            def do_POST(self) -> None:
                if self.path != receiver.path:
                    self._refuse(404)
                    return
                raw_length = self.headers.get("Content-Length")
                if raw_length is None:
                    self._refuse(receiver._reject(411))
                    return
                try:
                    length = int(raw_length)
                except ValueError:
                    length = -1
                if length < 0:
                    self._refuse(receiver._reject(400))
                elif length > receiver.max_body:
                    self._refuse(receiver._reject(413))  # never read, never buffered
                else:
                    body = self._read_body(length)
                    if body is None:
                        self._answer(receiver._reject(408), close=True)
                    else:
                        self._answer(receiver._receive(body))

            def _read_body(self, length: int) -> bytes | None:
                """The body, or None if it is not all there within ``read_timeout``."""
                deadline = time.monotonic() + receiver.read_timeout
                parts: list[bytes] = []
                left = length
                try:
                    while left > 0:
                        if time.monotonic() > deadline:
                            return None
                        chunk = self.rfile.read1(min(left, 65536))
                        if not chunk:  # the sender closed before the end
                            return None
                        parts.append(chunk)
                        left -= len(chunk)
                except OSError:  # TimeoutError: nothing arrived for read_timeout
                    return None
                return b"".join(parts)

            def _refuse(self, code: int) -> None:
                """Answer without reading the body, then close, letting the answer arrive."""
                self._answer(code, close=True)
                try:
                    self.connection.shutdown(socket.SHUT_WR)
                    deadline = time.monotonic() + min(receiver.read_timeout, _LINGER_SECONDS)
                    left = _LINGER_BYTES
                    while left > 0:
                        wait = deadline - time.monotonic()
                        if wait <= 0:
                            break
                        self.connection.settimeout(wait)
                        chunk = self.connection.recv(min(left, 65536))
                        if not chunk:
                            break
                        left -= len(chunk)
                except OSError:
                    pass

            def _answer(self, code: int, *, close: bool = False) -> None:
                out = json.dumps({"ok": code == 200}).encode()
                if close:  # unread bytes may follow: this connection is done
                    self.close_connection = True
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    if close:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:  # the sender is gone: nothing to tell
                    self.close_connection = True

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
