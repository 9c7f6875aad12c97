"""Run coroutines from synchronous code: a script, IPython, or a Jupyter cell.

Every coroutine goes to **one dedicated daemon event-loop thread** (the jupyter_core /
fsspec / dask.distributed pattern), so an ``httpx.AsyncClient`` created there lives on one
loop for the life of the process, whether or not the caller's thread already runs a loop.
The caller's thread waits with short timeouts, so Ctrl-C ("Interrupt kernel") is delivered
there; the task is then cancelled on the loop, given a moment to clean up, and the
``KeyboardInterrupt`` re-raised.

>>> import asyncio
>>> async def add(a, b):
...     await asyncio.sleep(0)
...     return a + b
>>> run_sync(lambda: add(1, 2))
3

The opt-in ``strategy="nest_asyncio"`` runs the coroutine on the caller's own running loop
after patching it with nest-asyncio (``nest_asyncio2`` preferred). It is never applied at
import; see the README for why it is not the default.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

from cleanlist_pandas._constants import CANCEL_GRACE_S, WAIT_TICK_S
from cleanlist_pandas._constants import LOOP_THREAD_NAME as THREAD_NAME
from cleanlist_pandas.errors import ConfigurationError, LoopThreadError

__all__ = ["LoopThread", "get_loop_thread", "in_loop_thread", "run_sync"]

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread, owned by one process."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def is_alive(self) -> bool:
        return self.pid == os.getpid() and self.thread.is_alive() and not self.loop.is_closed()

    def __repr__(self) -> str:
        return f"<LoopThread {self.thread.name} pid={self.pid} alive={self.is_alive()}>"


_lock = threading.Lock()
_loop_thread: LoopThread | None = None


def get_loop_thread() -> LoopThread:
    """The process's dedicated loop thread, started on first use (and again after a fork:
    a forked child has no copy of the parent's threads)."""
    global _loop_thread
    with _lock:
        if _loop_thread is None or not _loop_thread.is_alive():
            _loop_thread = LoopThread()
        return _loop_thread


def in_loop_thread() -> bool:
    """True when called from the dedicated loop thread itself."""
    lt = _loop_thread
    return lt is not None and lt.pid == os.getpid() and threading.current_thread() is lt.thread


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _make_coro(
    coro_or_factory: Awaitable[T] | Callable[[], Awaitable[T]],
) -> Coroutine[Any, Any, T]:
    aw = coro_or_factory() if callable(coro_or_factory) else coro_or_factory
    if inspect.iscoroutine(aw):
        return cast(Coroutine[Any, Any, T], aw)

    async def _await() -> T:
        return await aw

    return _await()


def _close(coro_or_factory: object) -> None:
    if inspect.iscoroutine(coro_or_factory):
        coro_or_factory.close()


def run_sync(
    coro_or_factory: Awaitable[T] | Callable[[], Awaitable[T]],
    *,
    timeout: float | None = None,
    tick: Callable[[], None] | None = None,
    strategy: str = "thread",
    wake: threading.Event | None = None,
) -> T:
    """Run a coroutine to completion from synchronous code and return its result.

    Pass a zero-argument callable returning the coroutine (preferred: nothing is created if
    the call is refused) or a coroutine. ``tick`` is called in the caller's thread about
    every 0.1 s while waiting (drive a progress bar there), and at once whenever ``wake``
    (a ``threading.Event`` the work sets from the loop, e.g. when results arrive to be
    handled by the caller's thread) is set. ``timeout`` (seconds) cancels
    the task and raises ``TimeoutError``. On ``KeyboardInterrupt`` the task is cancelled on
    the loop, allowed to finish its clean-up, and the interrupt re-raised.

    Works in a plain script, in IPython, and inside a running event loop (a Jupyter cell).
    Calling it from the dedicated loop thread itself raises :class:`LoopThreadError`: code
    already running on that loop must ``await`` the async API instead.

    >>> async def answer():
    ...     return 42
    >>> run_sync(answer)
    42
    """
    if in_loop_thread():
        _close(coro_or_factory)
        raise LoopThreadError(
            "A blocking cleanlist_pandas call was made from the client's own event-loop "
            "thread, which would deadlock. In async code use the async API instead, e.g. "
            "`await AsyncClient().balance()` rather than `Client().balance()`."
        )
    if strategy == "nest_asyncio":
        loop = _running_loop()
        if loop is not None:
            return _run_nested(loop, _make_coro(coro_or_factory))
    elif strategy != "thread":
        _close(coro_or_factory)
        raise ConfigurationError(
            f"Unknown loop strategy {strategy!r}: use 'thread' or 'nest_asyncio'"
        )

    lt = get_loop_thread()
    done = threading.Event()
    woken = wake if wake is not None else done  # what the waiting thread sleeps on
    result: concurrent.futures.Future[T] = concurrent.futures.Future()
    task_box: list[asyncio.Task[T]] = []
    coro = _make_coro(coro_or_factory)

    def _on_done(task: asyncio.Task[T]) -> None:
        if task.cancelled():
            result.cancel()
        elif (exc := task.exception()) is not None:
            result.set_exception(exc)
        else:
            result.set_result(task.result())
        done.set()
        woken.set()

    def _start() -> None:
        task = lt.loop.create_task(coro)
        task_box.append(task)
        task.add_done_callback(_on_done)

    def _cancel_and_wait() -> None:
        def _cancel() -> None:
            # runs after _start if _start was queued at all: the loop's queue is FIFO
            if task_box:
                task_box[0].cancel()
            else:  # interrupted before _start was queued: nothing ever ran
                coro.close()
                done.set()

        lt.loop.call_soon_threadsafe(_cancel)
        done.wait(CANCEL_GRACE_S)

    deadline = None if timeout is None else _monotonic() + timeout
    try:
        lt.loop.call_soon_threadsafe(_start)
        while not done.is_set():
            woken.wait(WAIT_TICK_S)
            if woken is not done:
                woken.clear()  # set again while tick() runs: the next wait returns at once
            if done.is_set():
                break
            if tick is not None:
                tick()
            if deadline is not None and _monotonic() >= deadline:
                _cancel_and_wait()
                raise TimeoutError(f"run_sync: the coroutine did not finish in {timeout} s")
    except BaseException:
        # KeyboardInterrupt (Ctrl-C / "Interrupt kernel"), SystemExit, or an error in tick():
        # stop the work on the loop cleanly, then re-raise in the caller's thread.
        if not done.is_set():
            _cancel_and_wait()
        raise
    if tick is not None:
        tick()
    if result.cancelled():
        raise asyncio.CancelledError("the task was cancelled on the loop thread")
    return result.result()


def _monotonic() -> float:
    return time.monotonic()


_nest_patched: set[int] = set()


def _run_nested(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """The opt-in strategy: patch the running loop with nest-asyncio and re-enter it."""
    try:
        import nest_asyncio2 as nest
    except ImportError:
        try:
            import nest_asyncio as nest
        except ImportError as exc:
            coro.close()
            raise ConfigurationError(
                "loop_strategy='nest_asyncio' needs the nest-asyncio2 (or nest-asyncio) "
                "package: pip install 'cleanlist-pandas[nest]'. The default 'thread' "
                "strategy needs nothing."
            ) from exc
    if id(loop) not in _nest_patched:
        nest.apply(loop)
        _nest_patched.add(id(loop))
    return loop.run_until_complete(coro)
