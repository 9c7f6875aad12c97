"""Fixtures of the client tests: clients that run in the sandbox's scaled time.

A client built by ``make_client(sandbox)`` uses a clock and a sleep scaled by the sandbox's
``time_scale``: one client "second" is ``time_scale`` real seconds, exactly as in the
sandbox. So the default pacer (60 requests per 60 s) matches the sandbox's scaled window,
and a ``Retry-After: 1`` or a 0.5 s backoff costs milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import cleanlist_pandas.config as cfg
from cleanlist_pandas.client import AsyncClient, Client


class ScaledTime:
    """A clock and a sleep running ``1/scale`` times faster than real time.

    ``sleeps`` records every requested (unscaled) delay.
    """

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return time.monotonic() / self.scale

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(max(seconds, 0.0) * self.scale)


@pytest.fixture(autouse=True)
def _clean_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No session defaults and no CLEANLIST_* variables leak between tests."""
    monkeypatch.delenv(cfg.ENV_API_KEY, raising=False)
    monkeypatch.delenv(cfg.ENV_BASE_URL, raising=False)
    cfg.reset_config()
    yield
    cfg.reset_config()


@pytest.fixture
def make_client() -> Iterator[Callable[..., Client]]:
    """``make_client(sandbox, **options)`` -> a sync Client in the sandbox's scaled time."""
    made: list[Client] = []

    def factory(sb: Any, **options: Any) -> Client:
        st = options.pop("time", None) or ScaledTime(sb.config.time_scale)
        options.setdefault("api_key", sb.api_key)
        options.setdefault("base_url", sb.base_url)
        options.setdefault("clock", st.clock)
        options.setdefault("sleep", st.sleep)
        client = Client(**options)
        client.scaled_time = st  # type: ignore[attr-defined]
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def make_async_client() -> Callable[..., AsyncClient]:
    """``make_async_client(sandbox, **options)`` -> an AsyncClient in scaled time (close it)."""

    def factory(sb: Any, **options: Any) -> AsyncClient:
        st = options.pop("time", None) or ScaledTime(sb.config.time_scale)
        options.setdefault("api_key", sb.api_key)
        options.setdefault("base_url", sb.base_url)
        options.setdefault("clock", st.clock)
        options.setdefault("sleep", st.sleep)
        return AsyncClient(**options)

    return factory


def run(coro: Awaitable[Any]) -> Any:
    """asyncio.run for an awaitable."""

    async def main() -> Any:
        return await coro

    return asyncio.run(main())


@pytest.fixture
def sb(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The shared ``sandbox`` fixture of tests/conftest.py when present, else our own.

    Skips when the sandbox cannot be imported (its extra is not installed).
    """
    pytest.importorskip("cleanlist_pandas.sandbox")
    try:
        yield request.getfixturevalue("sandbox")
        return
    except pytest.FixtureLookupError:
        pass
    from cleanlist_pandas.sandbox import Sandbox as _Sandbox

    with _Sandbox(credits=10_000.0, time_scale=0.002, seed=0) as own:
        yield own


@pytest.fixture
def scaled_time() -> Callable[[float], ScaledTime]:
    """``scaled_time(scale)`` -> a :class:`ScaledTime`."""
    return ScaledTime
