"""Serve the sandbox from a shell: ``python -m cleanlist_pandas.sandbox [options]``.

Prints ``base_url: ...``, ``api_key: ...`` and ``organization_id: ...`` lines (one per line,
flushed), then the lines to paste into a shell so that the package and the command line use
the sandbox (``export CLEANLIST_API_KEY=...`` and ``export CLEANLIST_BASE_URL=...``; on
Windows PowerShell's ``$env:CLEANLIST_API_KEY='...'``), then serves until interrupted (Ctrl-C
or SIGTERM). The key printed is the sandbox's own (generated, or ``--api-key``); the sandbox
never reads ``$CLEANLIST_API_KEY``, so a real key in the environment is never shown.

>>> import argparse
>>> p = argparse.ArgumentParser(); add_arguments(p)
>>> p.parse_args(["--port", "0", "--time-scale", "0.01"]).time_scale
0.01
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import textwrap
import threading
import warnings
from collections.abc import Sequence
from types import FrameType

from cleanlist_pandas._constants import (
    API_KEY_PREFIX,
    ENV_API_KEY,
    ENV_BASE_URL,
    is_loopback_host,
)
from cleanlist_pandas.sandbox.config import BALANCE_SHAPES, DELIVERIES_SHAPES, SandboxConfig

__all__ = ["add_arguments", "env_lines", "main", "run"]


def env_lines(api_key: str, base_url: str, windows: bool | None = None) -> list[str]:
    """The lines that point a shell at the sandbox: POSIX ``export`` lines, or PowerShell's
    ``$env:`` lines on Windows (``windows=None``: this platform's).

    >>> for line in env_lines("clapi_sbx", "http://127.0.0.1:8765/api/v1/public", False):
    ...     print(line)
    export CLEANLIST_API_KEY=clapi_sbx
    export CLEANLIST_BASE_URL=http://127.0.0.1:8765/api/v1/public
    >>> env_lines("clapi_it's", "http://127.0.0.1:1/api/v1/public", True)[0]
    "$env:CLEANLIST_API_KEY='clapi_it''s'"
    """
    if windows is None:
        windows = os.name == "nt"
    pairs = ((ENV_API_KEY, api_key), (ENV_BASE_URL, base_url))
    if windows:
        return ["$env:{}='{}'".format(k, v.replace("'", "''")) for k, v in pairs]
    return [f"export {k}={shlex.quote(v)}" for k, v in pairs]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox options to ``parser``.

    >>> p = argparse.ArgumentParser(); add_arguments(p); p.parse_args([]).host
    '127.0.0.1'
    """
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port (default 8765; 0 = any free port)"
    )
    parser.add_argument(
        "--api-key", default=None, help="the default organization's key (default: generate one)"
    )
    parser.add_argument("--credits", type=float, default=10_000.0, help="initial balance")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiplies every duration (0.01 = a hundred times faster)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the outcome oracle")
    parser.add_argument(
        "--no-rate-limit", action="store_true", help="disable the 60/min per-organization limit"
    )
    parser.add_argument(
        "--balance-shape",
        choices=BALANCE_SHAPES,
        default="organization",
        help="documented shape of GET /credits/balance (default organization)",
    )
    parser.add_argument(
        "--deliveries-shape",
        choices=DELIVERIES_SHAPES,
        default="list",
        help="GET /webhooks/deliveries as a bare list (default) or {'deliveries': [...]}",
    )


def _real_key_in_env(key: str) -> bool:
    """True if ``key`` is ``$CLEANLIST_API_KEY`` and ``$CLEANLIST_BASE_URL`` is not a
    loopback address (unset: the real API): the user's real key, which is never printed.

    >>> os.environ.get(ENV_API_KEY) == "clapi_unlikely_test_key"
    False
    >>> _real_key_in_env("clapi_unlikely_test_key")
    False
    """
    from urllib.parse import urlsplit

    if not key or key != os.environ.get(ENV_API_KEY, "").strip():
        return False
    host = urlsplit(os.environ.get(ENV_BASE_URL, "").strip()).hostname or ""
    return not is_loopback_host(host)


def run(args: argparse.Namespace) -> int:
    """Start the sandbox from parsed arguments, print how to reach it, serve until stopped.

    >>> run(argparse.Namespace(port=0))  # doctest: +SKIP
    """
    from cleanlist_pandas.sandbox.server import Sandbox

    if args.api_key is not None and not args.api_key.startswith(API_KEY_PREFIX):
        print(f"error: --api-key must start with {API_KEY_PREFIX}", file=sys.stderr)
        return 2
    if args.api_key is not None and _real_key_in_env(args.api_key):
        print(
            textwrap.fill(
                f"error: --api-key is the key in ${ENV_API_KEY}, which is not a sandbox's "
                f"(its ${ENV_BASE_URL} is not a local address): the sandbox prints its key, "
                f"so give it a made-up one, e.g. --api-key {API_KEY_PREFIX}sandbox_test",
                80,
                break_long_words=False,
            ),
            file=sys.stderr,
        )
        return 2
    config = SandboxConfig(time_scale=args.time_scale)
    if getattr(args, "no_rate_limit", False):
        config.rate_limit_enabled = False
    config.balance_shape = getattr(args, "balance_shape", None) or config.balance_shape
    config.deliveries_shape = getattr(args, "deliveries_shape", None) or config.deliveries_shape
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sb = Sandbox(
                credits=args.credits,
                seed=args.seed,
                api_key=args.api_key,
                host=args.host,
                port=args.port,
                config=config,
            )
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr, flush=True)
        sb.start()
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_signal)
    print(f"base_url: {sb.base_url}", flush=True)
    print(f"api_key: {sb.api_key}", flush=True)
    print(f"organization_id: {sb.organization_id}", flush=True)
    shell = "PowerShell" if os.name == "nt" else "a shell"
    print(f"# to use this sandbox from {shell} (a sandbox key, not a real one):", flush=True)
    for line in env_lines(sb.api_key, sb.base_url):
        print(line, flush=True)
    print(
        f"# Cleanlist API sandbox (time_scale={sb.config.time_scale}, seed={sb.seed}, "
        f"credits={args.credits:g}); control routes under {sb.root_url}/_sandbox/ ; "
        "Ctrl-C to stop",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sb.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m cleanlist_pandas.sandbox``.

    >>> main(["--help"])  # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(
        prog="python -m cleanlist_pandas.sandbox",
        description="Serve the local Cleanlist API sandbox.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
