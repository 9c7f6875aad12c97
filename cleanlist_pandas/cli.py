"""The ``cleanlist-pandas`` command line.

>>> from cleanlist_pandas.cli import build_parser
>>> build_parser().prog
'cleanlist-pandas'
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand.

    >>> build_parser().parse_args(["sandbox", "--port", "0"]).command
    'sandbox'
    """
    parser = argparse.ArgumentParser(
        prog="cleanlist-pandas",
        description="Cleanlist contact enrichment for pandas, and a local sandbox of the API.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    from cleanlist_pandas.sandbox.__main__ import add_arguments as add_sandbox_arguments

    add_sandbox_arguments(sub.add_parser("sandbox", help="serve the local sandbox API"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cleanlist-pandas`` console script.

    >>> main(["--help"])  # doctest: +SKIP
    """
    args = build_parser().parse_args(argv)
    if args.command == "sandbox":
        from cleanlist_pandas.sandbox.__main__ import run

        return run(args)
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    sys.exit(main())
