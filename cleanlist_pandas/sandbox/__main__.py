"""Serve the sandbox from a shell: ``python -m cleanlist_pandas.sandbox [options]``.

Prints ``base_url: ...``, ``api_key: ...`` and ``organization_id: ...`` lines (one per line,
flushed), then serves until interrupted (Ctrl-C or SIGTERM).

>>> import argparse
>>> p = argparse.ArgumentParser(); add_arguments(p)
>>> p.parse_args(["--port", "0", "--time-scale", "0.01"]).time_scale
0.01
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from types import FrameType

from cleanlist_pandas._constants import API_KEY_PREFIX
from cleanlist_pandas.sandbox.config import BALANCE_SHAPES, DELIVERIES_SHAPES, SandboxConfig

__all__ = ["add_arguments", "main", "run"]


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


def run(args: argparse.Namespace) -> int:
    """Start the sandbox from parsed arguments, print how to reach it, serve until stopped.

    >>> run(argparse.Namespace(port=0))  # doctest: +SKIP
    """
    from cleanlist_pandas.sandbox.server import Sandbox

    if args.api_key is not None and not args.api_key.startswith(API_KEY_PREFIX):
        print(f"error: --api-key must start with {API_KEY_PREFIX}", file=sys.stderr)
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
