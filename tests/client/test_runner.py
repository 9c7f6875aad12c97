"""run_sync: a plain call, inside a running loop, the loop-thread guard, Ctrl-C, fork."""

from __future__ import annotations

import _thread
import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest

from cleanlist_pandas.client import runner
from cleanlist_pandas.errors import LoopThreadError


async def _add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def test_plain_call_uses_the_dedicated_loop_thread() -> None:
    assert runner.run_sync(lambda: _add(1, 2)) == 3
    assert runner.run_sync(_add(2, 2)) == 4

    async def where() -> str:
        return threading.current_thread().name

    assert runner.run_sync(where) == runner.THREAD_NAME
    first = runner.get_loop_thread()
    runner.run_sync(where)
    assert runner.get_loop_thread() is first  # reused


def test_inside_a_running_loop() -> None:
    async def notebook_cell() -> int:
        # a running loop in this thread, as in Jupyter: asyncio.run() would fail here
        return runner.run_sync(lambda: _add(20, 22))

    assert asyncio.run(notebook_cell()) == 42


def test_exceptions_propagate() -> None:
    async def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        runner.run_sync(boom)


def test_guard_against_the_loop_thread_itself() -> None:
    async def nested() -> int:
        return runner.run_sync(lambda: _add(1, 1))

    with pytest.raises(LoopThreadError, match="await"):
        runner.run_sync(nested)


def test_guard_closes_a_passed_coroutine() -> None:
    async def nested() -> None:
        coro = _add(1, 1)
        with pytest.raises(LoopThreadError):
            runner.run_sync(coro)
        assert coro.cr_frame is None  # type: ignore[attr-defined]  # closed: no "never awaited" warning

    runner.run_sync(nested)


def test_timeout_cancels_the_task() -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        runner.run_sync(slow, timeout=0.2)
    assert cancelled.wait(5)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="KeyboardInterrupt is delivered to the main thread")
def test_keyboard_interrupt_cancels_cleanly() -> None:
    started = threading.Event()
    cleaned = threading.Event()

    async def long_request() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            await asyncio.sleep(0)  # clean-up that needs the loop
            cleaned.set()

    def interrupt() -> None:
        started.wait(5)
        _thread.interrupt_main()  # what Ctrl-C / "Interrupt kernel" does

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        runner.run_sync(long_request)
    assert cleaned.is_set()  # the task was cancelled and finished before we re-raised
    assert runner.run_sync(lambda: _add(1, 1)) == 2  # the loop thread is still healthy


def test_tick_runs_in_the_callers_thread() -> None:
    threads: set[str] = set()

    async def slowish() -> int:
        await asyncio.sleep(0.35)
        return 1

    runner.run_sync(slowish, tick=lambda: threads.add(threading.current_thread().name))
    assert threads == {threading.current_thread().name}


def test_wake_runs_the_tick_at_once() -> None:
    # results arriving on the loop set ``wake``: the caller's thread handles them within
    # milliseconds, not at the next 0.1 s tick
    wake = threading.Event()
    lags: list[float] = []
    set_at: list[float] = []

    async def arrivals() -> int:
        for _ in range(5):
            await asyncio.sleep(0.033)  # off the tick's 0.1 s grid
            set_at.append(time.monotonic())
            wake.set()
        await asyncio.sleep(0.05)
        return 1

    def tick() -> None:  # each arrival's wait until a tick handled it
        now = time.monotonic()
        lags.extend(now - t for t in set_at[len(lags) :])

    assert runner.run_sync(arrivals, tick=tick, wake=wake) == 1
    # on the 0.1 s grid alone, arrivals 33 ms apart wait 0-100 ms (median ~50)
    assert len(lags) == 5 and sorted(lags)[2] < 0.02, lags


def test_nest_asyncio_strategy_is_opt_in() -> None:
    pytest.importorskip("nest_asyncio2")

    # run in a fresh interpreter: patching a loop is process-global state
    code = (
        "import asyncio, sys, cleanlist_pandas, cleanlist_pandas.client\n"
        "assert 'nest_asyncio' not in sys.modules and 'nest_asyncio2' not in sys.modules\n"
        "from cleanlist_pandas.client import runner\n"
        "async def add(): return 3\n"
        "async def cell(): return runner.run_sync(add, strategy='nest_asyncio')\n"
        "assert asyncio.run(cell()) == 3\n"
        "assert 'nest_asyncio2' in sys.modules or 'nest_asyncio' in sys.modules\n"
        "assert runner._loop_thread is None  # ran on the caller's loop, no thread\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_gets_a_fresh_loop_thread() -> None:
    runner.run_sync(lambda: _add(1, 1))  # the parent's thread exists
    parent_thread = runner.get_loop_thread()
    pid = os.fork()
    if pid == 0:  # child: the parent's loop thread does not exist here
        code = 1
        try:
            lt = runner.get_loop_thread()
            ok = lt is not parent_thread and runner.run_sync(lambda: _add(2, 3)) == 5
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
