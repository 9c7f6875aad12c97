"""Shared fixtures: a fast local sandbox of the Cleanlist API.

``sandbox`` is one session-wide server (time_scale 0.002, 10,000 credits, seed 0) that is
``reset()`` before and after every test, so each test sees a fresh state cheaply.
``make_sandbox(**kwargs)`` starts dedicated sandboxes (stopped at teardown) for custom
configurations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cleanlist_pandas.client.http import reset_shared_pacers
from cleanlist_pandas.sandbox import Sandbox

FAST_TIME_SCALE = 0.002


@pytest.fixture(autouse=True)
def _own_pacers() -> Iterator[None]:
    """Clients of one key share a pacer in a process (the limit is per organization); every
    test starts and ends with an empty registry, so one test's 429 hold or requests never
    slow another (which clients are still alive is up to the garbage collector)."""
    reset_shared_pacers()
    yield
    reset_shared_pacers()


@pytest.fixture(scope="session")
def _session_sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(credits=10_000.0, time_scale=FAST_TIME_SCALE, seed=0)
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def sandbox(_session_sandbox: Sandbox) -> Iterator[Sandbox]:
    """A started sandbox in its initial state (time_scale 0.002, 10,000 credits, seed 0)."""
    _session_sandbox.reset()
    yield _session_sandbox
    _session_sandbox.reset()


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """Factory: ``make_sandbox(config=SandboxConfig(...), credits=..., ...)`` -> started."""
    made: list[Sandbox] = []

    def factory(**kwargs: Any) -> Sandbox:
        kwargs.setdefault("credits", 10_000.0)
        if "config" not in kwargs:
            kwargs.setdefault("time_scale", FAST_TIME_SCALE)
        sb = Sandbox(**kwargs).start()
        made.append(sb)
        return sb

    yield factory
    for sb in made:
        sb.stop()
