"""The sandbox's background worker: the workflow clock's ticker and the webhook sender.

One daemon thread runs one asyncio loop with (a) a ticker that materializes due tasks, so
credits fall and webhooks fire without anyone polling, and (b) one coroutine per webhook:
``webhook_attempts`` POSTs with ``webhook_backoff_s`` waits between them (all scaled by
``time_scale``), each attempt logged for ``GET /webhooks/deliveries``.

>>> from cleanlist_pandas.sandbox.config import SandboxConfig
>>> from cleanlist_pandas.sandbox.state import SandboxState
>>> worker = BackgroundWorker(SandboxState(SandboxConfig()))
>>> worker.start(); worker.stop()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
import uuid
from typing import Any

import httpx

from cleanlist_pandas.sandbox.state import SandboxState, WebhookJob

__all__ = ["BackgroundWorker"]


class BackgroundWorker:
    """Ticker + webhook sender on a private event loop in a daemon thread.

    >>> from cleanlist_pandas.sandbox.config import SandboxConfig
    >>> from cleanlist_pandas.sandbox.state import SandboxState
    >>> BackgroundWorker(SandboxState(SandboxConfig())).running
    False
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._client: httpx.AsyncClient | None = None
        self._pending: set[concurrent.futures.Future[None]] = set()

    @property
    def running(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread and hook the state's webhook dispatcher to it."""
        if self.running:
            return
        self._ready.clear()
        self._thread = threading.Thread(
            target=self._run, name="cleanlist-sandbox-worker", daemon=True
        )
        self._thread.start()
        self._ready.wait(10)
        self.state.dispatcher = self.submit

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the ticker, abandon pending webhooks, join the thread."""
        self.state.dispatcher = None
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def submit(self, job: WebhookJob) -> None:
        """Queue one webhook (thread-safe; called by the state when a workflow ends)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            fut = asyncio.run_coroutine_threadsafe(self._deliver(job), loop)
            self._pending.add(fut)
            fut.add_done_callback(self._pending.discard)

    # --- the loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            with contextlib.suppress(Exception):
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, limits=httpx.Limits(max_connections=100)
        )
        self._ready.set()
        try:
            while not self._stop.is_set():
                with contextlib.suppress(Exception):  # keep the clock alive
                    self.state.advance()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.state.config.tick_s)
        finally:
            for t in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                t.cancel()
            await self._client.aclose()

    async def _deliver(self, job: WebhookJob) -> None:
        state = self.state
        cfg = state.config
        assert self._client is not None
        attempts = max(1, cfg.webhook_attempts)
        for attempt in range(1, attempts + 1):
            if job.generation != state.generation:
                return
            ok = await self._attempt(job, attempt)
            if ok:
                if state.duplicate_delivery():
                    await self._attempt(job, attempt + 1)
                return
            if attempt < attempts:
                backoff = cfg.webhook_backoff_s or (1.0,)
                wait = backoff[min(attempt - 1, len(backoff) - 1)]
                await asyncio.sleep(cfg.scaled(wait))

    async def _attempt(self, job: WebhookJob, attempt: int) -> bool:
        cfg = self.state.config
        assert self._client is not None
        timeout = max(cfg.scaled(cfg.webhook_timeout_s), cfg.webhook_timeout_floor_s)
        attempted_at = self.state.iso(self.state.now())
        t0 = time.perf_counter()
        code: int | None = None
        error: str | None = None
        try:
            resp = await self._client.post(
                job.url,
                content=job.body(),
                timeout=timeout,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "cleanlist-sandbox-webhooks/1",
                },
            )
            code = resp.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code}"
        except httpx.TimeoutException:
            error = f"Timeout after {timeout:g}s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = round((time.perf_counter() - t0) * 1000)
        row: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "workflow_id": job.workflow_id,
            "webhook_url": job.url,
            "attempt_number": attempt,
            "status": "success" if error is None else "failed",
            "response_status_code": code,
            "duration_ms": duration_ms,
            "error": error,
            "attempted_at": attempted_at,
        }
        self.state.log_delivery(job, row)
        return error is None
