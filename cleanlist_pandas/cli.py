"""The ``cleanlist-pandas`` command line.

Subcommands: ``demo`` (the whole flow on a local sandbox, no account needed), ``sandbox``
(serve the local emulator), ``enrich`` / ``estimate`` (a CSV in, a CSV out), ``pilot`` (enrich
a sample, print the find rates and the expected cost of the rest), and the API
quickstart steps ``validate-key``, ``balance``, ``status``, ``deliveries``; plus ``jobs``
and ``cache`` for the local journal and result cache, ``spend`` for the spend ledger and
``forget`` to erase one person's data from this machine. The key comes from ``--api-key`` or
``CLEANLIST_API_KEY`` and is never printed (only masked).

The command line speaks its own words: its messages name its options (``--api-key``,
``-c FIELD=COLUMN``, ``--max-credits``) and "the same command", never a Python call; an
interrupted ``enrich`` exits 130 and says where the partial CSV is; the output CSV keeps the
input's delimiter, encoding and line ending. Every local check (input file, options, output
path) runs before the first request, and a user's mistake is an ``error:`` paragraph with
exit 2, never a traceback; an output that cannot be written after the run paid goes to a
private fallback file (exit 1), never lost. Exit statuses: see :data:`EXIT_OK`.

Why one module of this size: every subcommand is a thin function over the package, and they
share the argument parser, the connection options and the CLI's words for messages.

>>> from cleanlist_pandas.cli import build_parser
>>> build_parser().prog
'cleanlist-pandas'
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import shlex
import sys
import tempfile
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

#: Exit statuses: 0 done; 1 an error from the API or while running (and, after a paid run,
#: an output file that could not be written: the rows are then in a fallback file, see
#: :func:`_saved_text`); 2 a usage error, found before anything is sent (no key, a bad
#: option, an unreadable input, an output path that cannot be written); 130 interrupted.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: ``forget`` found nothing of the person (like grep's "no match")
EXIT_NOT_FOUND = EXIT_ERROR
ENV_API_KEY = "CLEANLIST_API_KEY"
NO_KEY = (
    f"no API key: pass --api-key KEY, set the {ENV_API_KEY} environment variable, or try it "
    "on a local sandbox with --sandbox (no account needed)"
)


class UsageError(Exception):
    """A mistake in the command line itself; printed as ``error: ...``, exit status 2."""


def _add_connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api-key", help="API key (default: $CLEANLIST_API_KEY); never printed")
    p.add_argument("--base-url", help="API base URL (default: $CLEANLIST_BASE_URL or the real API)")
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="run against a local sandbox started for this command (no account needed)",
    )


def type_help() -> str:
    """The help of ``-t/--type``: every enrichment type and its worst-case cost per contact
    (from ``_constants``: only what is found is charged).

    >>> print(type_help())  # doctest: +NORMALIZE_WHITESPACE
    enrichment type (default partial); worst-case credits per contact: none 0, partial 1
    (email), phone_only 10 (phone), full 11 (email 1 + phone 10), prospecting_only 5 (up to
    5 contacts found, 1 each); only what is found is charged
    """
    from cleanlist_pandas._constants import (
        DEFAULT_ENRICHMENT_TYPE,
        ENRICHMENT_TYPES,
        FOUND_COSTS,
        MAX_UNIT_COST,
        PROSPECT_COST,
        PROSPECTING_DISCOVERY_CAP,
    )

    parts = []
    for t in ENRICHMENT_TYPES:
        costs = FOUND_COSTS[t]
        if "prospect" in costs:
            what = f" (up to {PROSPECTING_DISCOVERY_CAP} contacts found, {PROSPECT_COST} each)"
        elif len(costs) > 1:
            what = " (" + " + ".join(f"{k} {v}" for k, v in costs.items()) + ")"
        else:
            what = "".join(f" ({k})" for k in costs)
        parts.append(f"{t} {MAX_UNIT_COST[t]:g}{what}")
    return (
        f"enrichment type (default {DEFAULT_ENRICHMENT_TYPE}); worst-case credits per "
        f"contact: {', '.join(parts)}; only what is found is charged"
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand.

    >>> build_parser().parse_args(["sandbox", "--port", "0"]).command
    'sandbox'
    """
    from cleanlist_pandas._constants import ENRICHMENT_TYPES, __version__
    from cleanlist_pandas.sandbox.__main__ import add_arguments as add_sandbox_arguments

    parser = argparse.ArgumentParser(
        prog="cleanlist-pandas",
        description="Cleanlist contact enrichment for pandas, and a local sandbox of the API.",
    )
    parser.add_argument(
        "--version", action="version", version=f"cleanlist-pandas {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_sandbox_arguments(sub.add_parser("sandbox", help="serve the local sandbox API"))

    demo = sub.add_parser("demo", help="the whole flow on a local sandbox (no account needed)")
    demo.add_argument("--time-scale", type=float, default=0.05, help="sandbox speed (1 = real)")

    for name, help_ in (
        ("enrich", "enrich a CSV of leads; writes a CSV with cl_* columns"),
        ("estimate", "what enrich would send and cost; spends nothing"),
        ("pilot", "enrich a random sample first: find rates and the expected cost of the rest"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("input", type=Path, help="CSV (or TSV) file of leads")
        p.add_argument(
            "-t",
            "--type",
            dest="enrichment_type",
            default="partial",
            choices=ENRICHMENT_TYPES,
            metavar="TYPE",
            help=type_help(),
        )
        if name == "pilot":
            p.add_argument(
                "-n", type=int, default=200, help="contacts in the sample (200; at least 1)"
            )
            p.add_argument(
                "--seed", type=int, default=0, help="the sample's seed (0; same seed, same sample)"
            )
        p.add_argument(
            "-c",
            "--column",
            action="append",
            default=[],
            metavar="FIELD=COLUMN",
            help="map a field to a column, e.g. -c first_name=Vorname (repeatable); "
            "FIELD= ignores a field",
        )
        p.add_argument(
            "--only-missing",
            action="append",
            default=[],
            metavar="FIELD[=COLUMN]",
            help="do not send rows that already have an email (or phone) in their own column, "
            "e.g. --only-missing email, --only-missing phone=Mobile (repeatable: rows that "
            "have all of them)",
        )
        p.add_argument(
            "--max-credits",
            type=float,
            help="never spend more than this"
            + (" (default: the sample's worst case)" if name == "pilot" else ""),
        )
        p.add_argument("--no-cache", action="store_true", help="do not use the local cache")
        p.add_argument("--prefix", default="cl_", help="prefix of the new columns (cl_)")
        _add_connection(p)
        if name == "pilot":
            p.add_argument("-o", "--output", type=Path, help="also write the enriched sample CSV")
            p.add_argument("--no-progress", action="store_true", help="no progress bar")
        if name == "enrich":
            p.add_argument(
                "--fill",
                action="append",
                nargs="?",
                const="",
                metavar="FIELD=COLUMN",
                help="write found emails/phones into the empty cells of the file's own email/"
                "phone column (an existing value always wins); --fill phone=Mobile names it",
            )
            p.add_argument(
                "-o", "--output", type=Path, help="output CSV (default: INPUT.enriched.csv)"
            )
            p.add_argument(
                "--output-delimiter",
                help="delimiter of the output CSV (default: the input's), e.g. ';' or tab",
            )
            p.add_argument(
                "--output-encoding",
                help="encoding of the output CSV (default: the input's; utf-8-sig = with BOM)",
            )
            p.add_argument("--webhook-url", help="also have Cleanlist POST results there")
            p.add_argument(
                "--resend-unknown",
                action="store_true",
                help="resend rows of an earlier ambiguous submission",
            )
            p.add_argument("--no-progress", action="store_true", help="no progress bar")

    for name, help_ in (("validate-key", "check the API key"), ("balance", "credit balance")):
        _add_connection(sub.add_parser(name, help=help_))
    st = sub.add_parser("status", help="status of a workflow (or --task)")
    st.add_argument("id", help="workflow id (public_bulk_...) or, with --task, a task id")
    st.add_argument("--task", action="store_true", help="the id is a task id")
    _add_connection(st)
    dl = sub.add_parser("deliveries", help="webhook delivery attempts of a workflow")
    dl.add_argument("workflow_id", help="workflow id (public_bulk_...)")
    _add_connection(dl)
    sub.add_parser("jobs", help="journaled enrichment jobs (for resume)")
    cache = sub.add_parser(
        "cache",
        help="the local result cache (purge-expired: also finished journal jobs)",
    )
    cache.add_argument(
        "action",
        choices=["info", "clear", "purge-expired"],
        help="info: what is cached; clear: remove every result; purge-expired: remove "
        "results (and finished journal jobs) older than the retention",
    )
    sp = sub.add_parser("spend", help="credits spent and saved by this machine's runs")
    sp.add_argument(
        "--by",
        choices=["run", "day", "job", "type"],
        default="run",
        help="one row per run (default), or added up per day (UTC), job or type",
    )
    sp.add_argument("--since", metavar="DATE", help="from this day (YYYY-MM-DD, UTC)")
    sp.add_argument("--until", metavar="DATE", help="through this day (YYYY-MM-DD, UTC)")
    sp.add_argument("--csv", type=Path, metavar="FILE", help="also write every column to FILE")
    fg = sub.add_parser(
        "forget",
        help="erase one person's cached results and journal entries from this machine",
    )
    for flag in (
        "email",
        "linkedin_url",
        "first_name",
        "last_name",
        "company_domain",
        "company_name",
    ):
        fg.add_argument(
            "--" + flag.replace("_", "-"),
            dest=flag,
            metavar="VALUE",
            help=f"the person's {flag.replace('_', ' ')}",
        )
    return parser


# -- helpers ----------------------------------------------------------------------------------
def _api_key(args: argparse.Namespace) -> str | None:
    """The key the command would use (``--api-key``, else ``$CLEANLIST_API_KEY``), or None."""
    key = getattr(args, "api_key", None) or os.environ.get(ENV_API_KEY, "")
    return key.strip() or None


@contextlib.contextmanager
def _connection(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Yield client kwargs; with --sandbox, start a sandbox for the command's lifetime.

    Without a key (and without --sandbox) it raises :class:`UsageError` naming the
    command line's ways to give one.
    """
    if getattr(args, "sandbox", False):
        from cleanlist_pandas.sandbox import Sandbox

        with Sandbox(time_scale=0.02) as sb:
            print(f"(sandbox at {sb.base_url})", file=sys.stderr)
            # its clients pace to its clock and keep their files in its scratch directory
            yield {"api_key": sb.api_key, "base_url": sb.base_url}
    else:
        if _api_key(args) is None:
            raise UsageError(NO_KEY)
        yield {"api_key": args.api_key, "base_url": args.base_url}


def _client(kw: dict[str, Any]) -> Any:
    from cleanlist_pandas.client import Client

    return Client(**kw)


class _NoKeyClient:
    """Stands in for a client when ``estimate`` has no key: everything but the balance is
    local, so the estimate is shown and the balance is reported unknown (the cached results
    shown are those of the one organization this machine used at the server, if one)."""

    def __init__(self, base_url: str | None = None) -> None:
        from cleanlist_pandas.config import normalize_base_url, session_base_url

        self.base_url = normalize_base_url(base_url or session_base_url())

    def sandbox_info(self) -> Any:
        from cleanlist_pandas._sandbox_info import probe

        return probe(self.base_url)

    @property
    def key_fingerprint(self) -> str:
        from cleanlist_pandas.errors import ConfigurationError

        raise ConfigurationError(NO_KEY)

    def balance(self) -> Any:
        from cleanlist_pandas.errors import ConfigurationError

        raise ConfigurationError(NO_KEY)

    def close(self) -> None:
        return None


def read_leads(path: Path) -> Any:
    """Read a CSV/TSV of leads as text (no type guessing: zip codes and ids stay as written).

    Tries UTF-8 (with or without BOM), then cp1252, the usual encodings of CRM exports; the
    delimiter (``,`` ``;`` tab ``|``) is read from the header line.

    >>> read_leads(Path("missing.csv"))  # doctest: +SKIP
    """
    from cleanlist_pandas._csvio import read_csv

    return read_csv(path)[0]


# -- checks before anything is sent, and saving what was paid for ----------------------------
#: ``--output-delimiter`` names for a tab (a shell passes ``'\t'`` as backslash and t).
_TAB_NAMES = ("tab", "\\t", "\t")


def output_format(fmt: Any, delimiter: str | None, encoding: str | None) -> Any:
    """The output CSV's format: the input's ``fmt`` with ``--output-delimiter`` and
    ``--output-encoding`` applied, each checked before anything is sent (a
    :class:`UsageError` naming the option otherwise).

    >>> from cleanlist_pandas._csvio import CsvFormat
    >>> output_format(CsvFormat(), "tab", "utf-8-sig")
    CsvFormat(delimiter='\\t', encoding='utf-8-sig', lineterminator='\\n')
    >>> output_format(CsvFormat(), None, "klingon")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cleanlist_pandas.cli.UsageError: --output-encoding 'klingon': unknown encoding; e.g. ...
    """
    import codecs
    from dataclasses import replace

    if delimiter is not None:
        d = "\t" if delimiter.lower() in _TAB_NAMES else delimiter
        if len(d) != 1 or d in "\"\r\n\0" or d.isalnum():
            raise UsageError(
                f"--output-delimiter {delimiter!r}: give one character such as ',' ';' '|' "
                "or tab (not a letter, digit, quote or line break)"
            )
        fmt = replace(fmt, delimiter=d)
    if encoding is not None:
        examples = "e.g. utf-8, utf-8-sig (UTF-8 with BOM, for Excel), cp1252 or latin-1"
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UsageError(
                f"--output-encoding {encoding!r}: unknown encoding; {examples}"
            ) from None
        try:
            "".encode(encoding)
        except LookupError:  # a codec such as hex or rot13: bytes to bytes, not text
            raise UsageError(
                f"--output-encoding {encoding!r} is not a text encoding; {examples}"
            ) from None
        fmt = replace(fmt, encoding=encoding)
    return fmt


def _read_input(path: Path) -> tuple[Any, Any]:
    """The input CSV and its format; a file that cannot be read is a usage error naming it
    (missing, a directory, unreadable, not text, not CSV)."""
    from cleanlist_pandas._csvio import CsvFileError, read_csv

    try:
        return read_csv(path)
    except CsvFileError as exc:
        raise UsageError(str(exc)) from None


def _check_output(path: Path, flag: str, input_path: Path | None = None) -> None:
    """A :class:`UsageError` naming ``flag`` unless a CSV can be written at ``path``."""
    from cleanlist_pandas._csvio import CsvFileError, check_output_path

    try:
        check_output_path(path, input_path)
    except CsvFileError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _check_run(df: Any, options: Any) -> None:
    """The run's own checks (options, the output columns against the input's: ``--prefix``)
    here, before a sandbox is started or a client made; the engine repeats them."""
    from cleanlist_pandas.frame.merge import check_output_names
    from cleanlist_pandas.run.options import check_options

    check_options(options)
    check_output_names(df, options.enrichment_type, options.prefix)


def _fallback_dirs(path: Path) -> list[Path]:
    """Where rows that could not be written to ``path`` go: next to it, else the cache
    directory, else the temporary directory."""
    from cleanlist_pandas.store.files import default_cache_dir

    dirs = [path.parent]
    with contextlib.suppress(Exception):  # an unusable cache setting: one place fewer
        dirs.append(default_cache_dir())
    dirs.append(Path(tempfile.gettempdir()))
    seen: set[str] = set()
    out = []
    for d in dirs:
        key = os.path.abspath(d)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _save(df: Any, path: Path, fmt: Any) -> Any:
    """Write ``df`` to ``path``; a failure writes a private fallback file instead
    (:func:`cleanlist_pandas._csvio.save_csv`)."""
    from cleanlist_pandas._csvio import save_csv

    return save_csv(df, path, fmt, _fallback_dirs(path))


def _move_command(src: Path, dst: Path) -> str:
    """The shell command that moves the fallback file where it was meant to go.

    >>> cmd = _move_command(Path("/tmp/o.rescued-1.csv"), Path("my out.csv"))
    >>> os.name == "nt" or cmd == "mv /tmp/o.rescued-1.csv 'my out.csv'"
    True
    """
    if os.name == "nt":  # pragma: no cover - PowerShell
        return f"Move-Item -LiteralPath '{src}' -Destination '{dst}'"
    return shlex.join(["mv", str(src), str(dst)])


def _saved_text(saved: Any, rows: str) -> tuple[str, str]:
    """What to say when the file asked for could not be written: a paragraph, and the
    command to run (the fallback file's move), or ``""``.

    >>> from cleanlist_pandas._csvio import Saved, CsvFormat
    >>> text, cmd = _saved_text(Saved(Path("/t/o.rescued-1.csv"), CsvFormat(),
    ...                         Path("o.csv"), "no space left on device"), "The results")
    >>> print(_wrap(text))
    could not write o.csv (no space left on device). The results are saved in
      /t/o.rescued-1.csv instead, readable only by you (it holds personal data).
      Move it where you want it:
    """
    if saved.path is not None:
        return (
            f"could not write {saved.asked} ({saved.error}). {rows} are saved in "
            f"{saved.path} instead, readable only by you (it holds personal data). Move it "
            "where you want it:",
            _move_command(saved.path, saved.asked),
        )
    tried = "; ".join(saved.tried) or "no directory to try"
    return (
        f"could not write {saved.asked} ({saved.error}), nor a fallback file ({tried}).",
        "",
    )


def _columns(pairs: Sequence[str]) -> dict[str, str | None] | None:
    out: dict[str, str | None] = {}
    for pair in pairs:
        field, sep, col = pair.partition("=")
        if not sep or not field.strip():
            raise UsageError(
                f"-c expects FIELD=COLUMN, got {pair!r}; e.g. -c first_name=Vorname "
                "(FIELD= with no column ignores a field)"
            )
        out[field.strip()] = col or None
    return out or None


def _only_missing(pairs: Sequence[str]) -> dict[str, str | None] | None:
    """``--only-missing email --only-missing phone=Mobile`` as ``only_missing=``.

    >>> _only_missing(["email", "phone=Mobile"])
    {'email': None, 'phone': 'Mobile'}
    """
    from cleanlist_pandas.frame.mapping import VALUE_FIELDS

    out: dict[str, str | None] = {}
    for pair in pairs:
        field, _, col = pair.partition("=")
        if field.strip() not in VALUE_FIELDS:
            raise UsageError(
                f"--only-missing takes email or phone (optionally =COLUMN), got {pair!r}; "
                "e.g. --only-missing email or --only-missing phone=Mobile"
            )
        out[field.strip()] = col or None
    return out or None


def _fill(values: Sequence[str] | None, enrichment_type: str) -> bool | dict[str, str | None]:
    """``--fill`` (True) or ``--fill phone=Mobile`` (the named columns) as ``fill=``.

    >>> _fill([""], "full"), _fill(None, "full"), _fill(["phone=Mobile"], "full")
    (True, False, {'phone': 'Mobile'})
    """
    if not values:
        return False
    named = [v for v in values if v]
    if not named:
        return True
    out: dict[str, str | None] = {}
    if len(named) < len(values):  # a bare --fill too: every field the type finds
        from cleanlist_pandas.frame.select import FOUND_VALUES

        out.update(dict.fromkeys(FOUND_VALUES.get(enrichment_type, ())))
    for pair in named:
        field, sep, col = pair.partition("=")
        if not sep or not col:
            raise UsageError(f"--fill takes FIELD=COLUMN (or nothing), got {pair!r}")
        out[field.strip()] = col
    return out


def _command_line(argv: Sequence[str]) -> str:
    """The command as typed, to run it again; the key's value is never shown.

    >>> _command_line(["enrich", "a b.csv", "--api-key", "clapi_secret123456", "-t", "full"])
    "cleanlist-pandas enrich 'a b.csv' --api-key KEY -t full"
    """
    shown: list[str] = []
    hide = False
    for arg in argv:
        if hide:
            shown.append("KEY")
            hide = False
        elif arg == "--api-key":
            shown.append(arg)
            hide = True
        elif arg.startswith("--api-key="):
            shown.append("--api-key=KEY")
        else:
            shown.append(arg)
    return shlex.join(["cleanlist-pandas", *shown])


#: Python phrasing in the package's messages, and the command line's words for it.
_CLI_WORDS: tuple[tuple[str, str], ...] = (
    (
        r"Pass api_key=\.\.\., set the CLEANLIST_API_KEY environment variable, or call "
        r"cleanlist_pandas\.configure\(api_key=\.\.\.\) once per session\.",
        "Pass --api-key KEY or set the CLEANLIST_API_KEY environment variable.",
    ),
    (
        r"Pass api_key=\.\.\., set CLEANLIST_API_KEY, or call "
        r"cleanlist_pandas\.configure\(api_key=\.\.\.\)\.",
        "Pass --api-key KEY or set CLEANLIST_API_KEY.",
    ),
    (
        r"Set CLEANLIST_API_KEY or call cleanlist_pandas\.configure\(api_key=\.\.\.\)\.",
        "Pass --api-key KEY or set CLEANLIST_API_KEY.",
    ),
    (r"\(?df\.cleanlist\.(?:enrich|pilot)\([^\n]*?\)\)?(?=[:;,.]? )", "(\0COMMAND\0)"),
    (r"\bthe same call\b", "the same command"),
    (r"\ba cheaper enrichment_type\b", "a cheaper -t type"),
    (r"\bmax_credits=([0-9][0-9,._]*)", r"--max-credits \1"),
    (r"\bmax_credits=", "--max-credits"),
    (r"\bmax_credits must\b", "--max-credits must"),
    (r"\bin the input frame\b", "in the input file"),
    (r"\bresend_unknown=True\b", "--resend-unknown"),
    (r"\bfill=True\b", "--fill"),
    (r"\bprefix='([^']*)'", r"--prefix \1"),
    (r"\bprefix=", "--prefix"),
    (r"\bsee cl_error\b", "see the cl_error column"),
)


def cli_words(text: str, command: str = "cleanlist-pandas ...") -> str:
    """Say a package message in the command line's words (options, "the same command").

    >>> cli_words("Top up, then run the same call again (df.cleanlist.enrich('full')): it "
    ...           "sends these rows.", "cleanlist-pandas x")
    'Top up, then run the same command again (cleanlist-pandas x): it sends these rows.'
    >>> cli_words("Pass max_credits=100 to cap, or another prefix='cl2_'.")
    'Pass --max-credits 100 to cap, or another --prefix cl2_.'
    >>> cli_words("run the same call again (df.cleanlist.enrich('full')): ok",
    ...           "cleanlist-pandas enrich max_credits=1.csv --prefix=x_")
    'run the same command again (cleanlist-pandas enrich max_credits=1.csv --prefix=x_): ok'
    """
    for pattern, repl in _CLI_WORDS:
        text = re.sub(pattern, repl, text)
    return text.replace("\0COMMAND\0", command)  # last: no rule rewrites the command


def _wrap(text: str, indent: str = "") -> str:
    """Wrap to 80 columns, keeping each line's own indent."""
    out = []
    for line in text.splitlines() or [""]:
        lead = indent + line[: len(line) - len(line.lstrip(" "))]
        out.append(
            textwrap.fill(
                line.strip(),
                80,
                initial_indent=lead,
                subsequent_indent=lead + "  ",
                break_on_hyphens=False,
                break_long_words=False,
            )
            or lead
        )
    return "\n".join(out)


def _print_warnings(caught: Sequence[Any], category: type, command: str) -> None:
    """The run's warnings (of ``category``) on stderr, in the command line's words: the
    warning's own ``cli_message`` where it has one (a mapping hint's ``-c`` options)."""
    for w in caught:
        if issubclass(w.category, category):
            text = getattr(w.message, "cli_message", None) or str(w.message)
            print(_wrap(f"warning: {cli_words(text, command)}"), file=sys.stderr)


def _wrap_commands(text: str) -> str:
    """:func:`_wrap`, but a line indented by two spaces is a command to copy: left whole.

    >>> print(_wrap_commands("run:\\n  mv " + "x" * 90 + " y"))  # doctest: +ELLIPSIS
    run:
      mv xxx...x y
    """
    return "\n".join(
        line if line.startswith("  ") else _wrap(line) for line in text.splitlines()
    )


def _print_table(df: Any) -> None:
    import pandas as pd

    with pd.option_context(
        "display.width", 160, "display.max_columns", 20, "display.max_colwidth", 40
    ):
        print(df.to_string())


# -- commands ---------------------------------------------------------------------------------
def cmd_enrich(args: argparse.Namespace) -> int:
    import pandas as pd

    from cleanlist_pandas.errors import CleanlistWarning, EnrichmentInterrupted
    from cleanlist_pandas.run.job import enrich as run_enrich
    from cleanlist_pandas.run.options import Options
    from cleanlist_pandas.views.progress import progress_view

    # every local check first: nothing is sent, nor a sandbox started, before they pass
    df, in_fmt = _read_input(args.input)
    fmt = output_format(in_fmt, args.output_delimiter, args.output_encoding)
    if args.output is not None:
        out_path = args.output
        _check_output(out_path, f"-o {out_path}", args.input)
    else:
        out_path = args.input.with_suffix(".enriched.csv")
        _check_output(out_path, f"the output file {out_path} (the default; -o names another)")
    command = _command_line(args.argv)
    options = Options(
        enrichment_type=args.enrichment_type,
        columns=_columns(args.column),
        prefix=args.prefix,
        max_credits=args.max_credits,
        only_missing=_only_missing(args.only_missing),
        fill=_fill(args.fill, args.enrichment_type),
        cache=not args.no_cache,
        progress=not args.no_progress,
        webhook_url=args.webhook_url,
        resend_unknown=args.resend_unknown,
        errors="warn",
    )
    _check_run(df, options)
    with _connection(args) as kw:
        client = _client(kw)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CleanlistWarning)
                try:
                    out = run_enrich(df, options, client=client, view=progress_view)
                    assert isinstance(out, pd.DataFrame)
                except EnrichmentInterrupted as exc:
                    partial = exc.partial_result
                    saved = _save(partial, out_path, fmt)
                    status = partial[options.prefix + "status"].value_counts()
                    head = f"Interrupted. Cleanlist job {exc.job_id}: " + ", ".join(
                        f"{v:,} {k}" for k, v in status.items()
                    )
                    resume = (
                        "Every submitted workflow is journaled: run the same command again to "
                        "resume without paying twice (rows already paid for come from the "
                        "cache):"
                    )
                    if saved.error is None:
                        text = (
                            f"{head}. The rows so far are written to {out_path}"
                            + ("" if saved.fmt == fmt else f" ({saved.fmt.describe()})")
                            + f". {resume}"
                        )
                    elif saved.path is not None:
                        text = (
                            f"{head}. The rows so far could not be written to {out_path} "
                            f"({saved.error}); they are saved in {saved.path} instead, "
                            "readable only by you (it holds personal data). Move it where you "
                            f"want it:\n  {_move_command(saved.path, out_path)}\n{resume}"
                        )
                    else:
                        text = (
                            f"{head}. The rows so far could not be written to {out_path} "
                            f"({saved.error}), nor to a fallback file "
                            f"({'; '.join(saved.tried)}). {resume}"
                        )
                    print("\n" + _wrap_commands(text) + f"\n  {command}", file=sys.stderr)
                    return EXIT_INTERRUPTED
        finally:
            client.close()
    saved = _save(out, out_path, fmt)
    counts = out[options.prefix + "status"].value_counts()
    credits = float(out[options.prefix + "credits"].fillna(0).sum())
    # no file anywhere and no cache: the rows go to stdout, so the summary goes to stderr
    dump = saved.path is None and not options.cache
    info = sys.stderr if dump else sys.stdout
    if saved.path is not None:
        print(f"Wrote {len(out):,} rows to {saved.path} ({saved.fmt.describe()})")
        if saved.fmt != fmt:
            print(
                _wrap(
                    f"  note: some values do not fit {fmt.encoding}, so the file is "
                    f"{saved.fmt.describe()}; pass --output-encoding to choose"
                )
            )
    print("  " + ", ".join(f"{k}: {v:,}" for k, v in counts.items()), file=info)
    print(f"  credits: {credits:,.0f}", file=info)
    _print_warnings(caught, CleanlistWarning, command)
    if saved.error is None:
        return EXIT_OK
    _report_unsaved(out, fmt, saved, f"The results ({_n(len(out), 'row')})", options, command)
    return EXIT_ERROR


def _report_unsaved(
    df: Any, fmt: Any, saved: Any, rows: str, options: Any, command: str
) -> None:
    """Say on stderr where the rows went instead of the file asked for (exit 1 follows).
    With no file anywhere and no cache (``--no-cache``), the rows go to stdout: the last
    place left, so that nothing paid for is lost."""
    from dataclasses import replace

    from cleanlist_pandas._csvio import write_csv

    text, move = _saved_text(saved, rows)
    if saved.path is None:
        if options.cache:
            text += (
                " Nothing paid for is lost: the results are in the local cache. Run the same "
                "command again with another -o (rows already paid for come from the cache, "
                "at no charge):"
            )
            move = command
        else:
            text += " With --no-cache they are in no cache: the rows follow on standard output."
    print(_wrap("error: " + text) + (f"\n  {move}" if move else ""), file=sys.stderr)
    if saved.path is None and not options.cache:
        sys.stdout.flush()
        to_stdout = replace(fmt, encoding=sys.stdout.encoding or "utf-8")
        write_csv(df, sys.stdout, to_stdout)  # type: ignore[arg-type]


def cmd_estimate(args: argparse.Namespace) -> int:
    from cleanlist_pandas.run.estimate import estimate
    from cleanlist_pandas.run.options import Options

    df, _fmt = _read_input(args.input)
    options = Options(
        enrichment_type=args.enrichment_type,
        columns=_columns(args.column),
        prefix=args.prefix,
        max_credits=args.max_credits,
        only_missing=_only_missing(args.only_missing),
        cache=not args.no_cache,
    )
    if not args.sandbox and _api_key(args) is None:
        # everything but the balance is local: show it, and say the balance is unknown
        est = estimate(df, options, client=_NoKeyClient(args.base_url))
    else:
        with _connection(args) as kw:
            client = _client(kw)
            try:
                est = estimate(df, options, client=client)
            finally:
                client.close()
    print(_wrap(est.mapping))
    print(cli_words(est.text(cli=True), _command_line(args.argv)))
    return EXIT_OK


def cmd_pilot(args: argparse.Namespace) -> int:
    from cleanlist_pandas.errors import CleanlistWarning
    from cleanlist_pandas.run.options import Options
    from cleanlist_pandas.run.pilot import pilot
    from cleanlist_pandas.views.progress import progress_view

    # every local check first: nothing is sent, nor a sandbox started, before they pass
    df, fmt = _read_input(args.input)
    if args.n < 1:
        raise UsageError(f"-n {args.n}: the sample needs at least 1 contact, e.g. -n 200")
    if args.output is not None:
        _check_output(args.output, f"-o {args.output}", args.input)
    command = _command_line(args.argv)
    options = Options(
        enrichment_type=args.enrichment_type,
        columns=_columns(args.column),
        prefix=args.prefix,
        max_credits=args.max_credits,
        only_missing=_only_missing(args.only_missing),
        cache=not args.no_cache,
        progress=not args.no_progress,
        errors="warn",
    )
    _check_run(df, options)
    with _connection(args) as kw:
        client = _client(kw)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CleanlistWarning)
                res = pilot(
                    df, options, n=args.n, seed=args.seed, client=client, view=progress_view
                )
        finally:
            client.close()
    print(res)
    saved = None
    if args.output:
        saved = _save(res.enriched, args.output, fmt)
        if saved.path is not None:
            print(
                _wrap(
                    f"Wrote the {len(res.enriched):,} sampled rows to {saved.path} "
                    f"({saved.fmt.describe()})"
                )
            )
    _print_warnings(caught, CleanlistWarning, command)
    if saved is not None and saved.error is not None:
        # the measured rates are printed above and stored for estimate: only the sample's
        # rows are at stake, and the cache holds them (the same command serves them free)
        _report_unsaved(
            res.enriched, fmt, saved, f"The sampled rows ({len(res.enriched):,})", options,
            command,
        )
        return EXIT_ERROR
    return EXIT_OK


def cmd_api(args: argparse.Namespace) -> int:
    with _connection(args) as kw:
        client = _client(kw)
        try:
            if args.command == "validate-key":
                info = client.validate_key()
                print(
                    f"valid: {info.valid}  key: {client.api_key_masked}  "
                    f"organization: {info.organization_id}  user: {info.user_id}"
                )
            elif args.command == "balance":
                bal = client.balance()
                print(f"credits: {bal.credits:,.2f}  organization: {bal.organization_id}")
            elif args.command == "status":
                if args.task:
                    t = client.task_status(args.id)
                    print(f"{t.task_id}: {t.status}  email: {t.primary_email}  error: {t.error}")
                else:
                    wf = client.status(args.id)
                    s = wf.summary
                    print(
                        f"{wf.workflow_id}: {wf.status}  {s.completed}/{s.total} done, "
                        f"{s.emails_found} emails, {s.phones_found} phones, {s.failed} failed"
                    )
            elif args.command == "deliveries":
                log = client.deliveries(args.workflow_id)
                if not len(log):
                    print("no delivery attempts (no webhook_url, or not fired yet)")
                else:
                    _print_table(log.to_dataframe())
        finally:
            client.close()
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    from cleanlist_pandas.store.files import journal_path
    from cleanlist_pandas.store.journal import Journal

    journal = Journal(journal_path())
    try:
        jobs = journal.jobs()
        if not jobs:
            print("no journaled jobs")
        for job in jobs:
            chunks = journal.chunks(job.job_id)
            states: dict[str, int] = {}
            for c in chunks:
                states[c.state] = states.get(c.state, 0) + 1
            where = str(job.scope) if job.scope is not None else "origin unknown (before 0.2)"
            print(
                f"{job.job_id}  {job.state:<8} {job.enrichment_type:<16} {job.rows:>9,} rows  "
                f"{job.created_at}  {where}  chunks: {states or '-'}"
            )
    finally:
        journal.close()
    return EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    from cleanlist_pandas.store.cache import ResultCache
    from cleanlist_pandas.store.files import journal_path
    from cleanlist_pandas.store.journal import Journal

    with ResultCache() as cache:
        if args.action == "clear":
            print(f"removed {cache.clear():,} cached results from {cache.path}")
        elif args.action == "purge-expired":
            journal = Journal(journal_path(cache.dir))
            try:
                jobs = journal.purge_finished()
            finally:
                journal.close()
            days = cache.max_age / 86400
            print(
                _wrap(
                    f"removed {_n(cache.purge_expired(), 'expired result')} and "
                    f"{_n(jobs, 'finished job')} from the journal (older than {days:g} days)"
                )
            )
        else:
            print(cache_table(cache.stats()))
    return EXIT_OK


def cmd_spend(args: argparse.Namespace) -> int:
    from cleanlist_pandas.store.ledger import spend, spend_text

    if args.csv is not None:
        _check_output(args.csv, f"--csv {args.csv}")
    try:
        frame = spend(args.by, since=args.since, until=args.until)
    except ValueError as exc:
        raise UsageError(re.sub(r"\b(since|until)=", r"--\1 ", str(exc))) from None
    print(spend_text(frame, args.by))
    if args.csv is not None:
        frame.to_csv(args.csv)
        print(f"wrote {len(frame):,} rows to {args.csv}")
    return EXIT_OK


def cmd_forget(args: argparse.Namespace) -> int:
    from cleanlist_pandas.store.privacy import forget

    fields = {
        k: getattr(args, k)
        for k in (
            "email",
            "linkedin_url",
            "first_name",
            "last_name",
            "company_domain",
            "company_name",
        )
        if getattr(args, k) is not None
    }
    if not fields:
        raise UsageError(
            "forget needs at least one of --email, --linkedin-url, --first-name, "
            "--last-name, --company-domain, --company-name"
        )
    try:
        gone = forget(**fields)
    except (TypeError, ValueError) as exc:
        raise UsageError(re.sub(_FORGET_ARG, _flag, str(exc))) from None
    # the flags, never their values (a terminal's scrollback, a CI log)
    flags = [_flag_name(k) for k in fields]
    looked_for = " ".join(flags) if len(flags) == 1 else ", ".join(flags[:-1]) + " and " + flags[-1]
    if not gone.found:
        print(
            _wrap(
                f"nothing found for the {looked_for} given: no cached result or journal "
                "entry of this person is on this machine (check the spelling; a name needs "
                "the company it was enriched with, --company-domain or --company-name)"
            ),
            file=sys.stderr,
        )
        return EXIT_NOT_FOUND
    print(
        _wrap(
            f"removed {_n(gone.cache_entries, 'cached result')} and "
            f"{_n(gone.journal_references, 'journal entry', 'journal entries')} of "
            f"{_n(len(gone.fingerprints), 'contact')} matching {looked_for}; the spend ledger "
            "holds no personal data and is kept"
        )
    )
    return EXIT_OK


def _flag_name(field: str) -> str:
    """``first_name`` → ``--first-name``.

    >>> _flag_name("company_domain")
    '--company-domain'
    """
    return "--" + field.replace("_", "-")


_FORGET_ARG = r"\bforget\(\): (\w+)=?"


def _flag(match: re.Match[str]) -> str:
    """``forget(): first_name=`` → ``--first-name `` (the command line's words).

    >>> re.sub(_FORGET_ARG, _flag, "forget(): email='x' is not an address")
    "--email 'x' is not an address"
    """
    return "--" + match.group(1).replace("_", "-") + " "


def _n(count: int, one: str, many: str | None = None) -> str:
    """A count and its noun.

    >>> _n(1, "result"), _n(2, "entry", "entries"), _n(1_000, "job")
    ('1 result', '2 entries', '1,000 jobs')
    """
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def _size(n: float) -> str:
    """Bytes for people.

    >>> _size(512), _size(2_400_000)
    ('512 bytes', '2.3 MiB')
    """
    if n < 1024:
        return f"{int(n)} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            break
    return f"{n:,.1f} {unit}"


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def cache_table(stats: dict[str, Any]) -> str:
    """``cache info`` as a readable table: file, size, entries by type, oldest/newest dates.

    >>> print(cache_table({"path": "/c/results.sqlite3", "entries": 1200, "expired": 3,
    ...     "by_type": {"partial": 1000, "full": 200}, "oldest": 1.7e9, "newest": 1.7e9,
    ...     "size_bytes": 2_400_000, "max_age_s": 30 * 86400}))
    Cleanlist result cache
      file       /c/results.sqlite3
      size       2.3 MiB
      results    1,200
        partial  1,000
        full     200
      expired    3 (older than 30 days: cleanlist-pandas cache purge-expired)
      oldest     2023-11-14 22:13 UTC
      newest     2023-11-14 22:13 UTC
    """
    from cleanlist_pandas._display import text_table

    days = float(stats.get("max_age_s") or 0) / 86400
    rows = [
        ("file", str(stats["path"])),
        ("size", _size(float(stats.get("size_bytes") or 0))),
        ("results", f"{int(stats['entries']):,}"),
        *((f"  {t}", f"{int(n):,}") for t, n in sorted(
            stats.get("by_type", {}).items(), key=lambda kv: -kv[1])),
        *(("  paid by", f"{w}: {int(n):,}") for w, n in stats.get("by_scope", {}).items()),
        *(
            [
                (
                    "unattributed",
                    f"{int(stats['unattributed']):,} (from before 0.2, origin unknown: never "
                    "served; removed by the retention, forget and cache clear)",
                )
            ]
            if stats.get("unattributed")
            else []
        ),
        (
            "expired",
            f"{int(stats['expired']):,} (older than {days:g} days: "
            "cleanlist-pandas cache purge-expired)",
        ),
        ("oldest", _when(stats.get("oldest"))),
        ("newest", _when(stats.get("newest"))),
    ]
    return text_table("Cleanlist result cache", rows)


def cmd_demo(args: argparse.Namespace) -> int:
    """The quickstart flow, then df.cleanlist.enrich() on a messy CSV, all on a sandbox."""

    import cleanlist_pandas as clp
    from cleanlist_pandas.store.files import default_cache_dir

    ts = args.time_scale
    print("== Cleanlist sandbox: a local emulator of the API (no account needed)")
    with clp.Sandbox(credits=5_000, time_scale=ts, seed=7) as sb, clp.WebhookReceiver() as rx:
        print(f"   base URL {sb.base_url}; time runs {1 / ts:g}x faster than the real service\n")
        # no plumbing: the client reads the sandbox's clock and scratch directory itself
        client = clp.Client(api_key=sb.api_key, base_url=sb.base_url)
        try:
            print("== 1. The API quickstart from Python")
            info = client.validate_key()
            print(
                f"   key {client.api_key_masked} valid={info.valid} "
                f"organization={info.organization_id}"
            )
            print(f"   balance: {client.balance().credits:,.2f} credits")
            contacts = [
                {"linkedin_url": "https://www.linkedin.com/in/johndoe"},
                {"first_name": "Ann", "last_name": "Lee", "company_domain": "acme.com"},
                {"first_name": "Bo", "last_name": "Chen", "company_name": "Initech"},
            ]
            sub = client.submit(contacts, enrichment_type="full", webhook_url=rx.url)
            rx.expect(sub.workflow_id)
            print(
                f"   submitted {sub.workflow_id} ({sub.total_contacts} contacts), "
                f"webhook -> {rx.url}"
            )
            wf = client.wait(sub.workflow_id, progress=True, timeout=600)
            print(
                f"   {wf.status}: {wf.summary.emails_found} emails, "
                f"{wf.summary.phones_found} phones found"
            )
            payload = rx.wait(sub.workflow_id, timeout=60)
            print(
                f"   webhook received: {payload.event} {payload.status}, "
                f"{len(payload.results)} results"
            )
            print("   webhook delivery audit:")
            audit = client.deliveries(sub.workflow_id).to_dataframe()
            _print_table(audit[["attempt_number", "status", "response_status_code", "duration_ms"]])

            print("\n== 2. df.cleanlist.enrich() on a messy CSV of leads")
            src = Path(__file__).with_name("data") / "sample_leads.csv"
            df = read_leads(src)
            print(f"   {src.name}: {len(df)} rows, columns {list(df.columns)}")
            print("   " + df.cleanlist.mapping().describe().replace("\n", "\n   "))
            print(df.cleanlist.estimate("full", client=client))
            out = df.cleanlist.enrich("full", client=client)
            cols = [
                "First Name",
                "Last Name",
                "cl_email",
                "cl_email_status",
                "cl_phone",
                "cl_company_name",
                "cl_status",
                "cl_error",
            ]
            _print_table(out[cols])
            spent = float(out["cl_credits"].fillna(0).sum())
            print(f"   credits spent: {spent:,.0f}; balance now {client.balance().credits:,.2f}")

            print("\n== 3. Re-running the same cell: served from the local cache")
            before = sb.stats()["by_endpoint"].get("POST /enrich/bulk", {})
            again = df.cleanlist.enrich("full", client=client, progress=False)
            after = sb.stats()["by_endpoint"].get("POST /enrich/bulk", {})
            same = again.drop(columns="cl_credits").equals(out.drop(columns="cl_credits"))
            print(
                f"   identical result: {same}; bulk requests sent: "
                f"{sum(after.values()) - sum(before.values())}; credits spent: "
                f"{float(again['cl_credits'].fillna(0).sum()):,.0f}"
            )

            print("\n== 4. What it cost, and what it saved: the local spend ledger")
            from cleanlist_pandas.store.ledger import spend, spend_text

            ledger = spend(cache_dir=default_cache_dir(client.base_url))  # where the runs wrote
            print("   " + spend_text(ledger, width=77).replace("\n", "\n   "))
            print("   (`cleanlist-pandas spend --by day`, or clp.spend() in Python)")
        finally:
            client.close()
    print(
        "\nDone. Next: open notebooks/quickstart.ipynb, or run "
        "`cleanlist-pandas enrich your_leads.csv --sandbox`."
    )
    return EXIT_OK


def os_error_text(exc: OSError) -> str:
    """An OSError for people: the file and the reason, no ``[Errno N]``.

    >>> os_error_text(FileNotFoundError(2, "No such file or directory", "leads.csv"))
    'leads.csv: no such file or directory'
    >>> os_error_text(OSError("Cannot save file into a non-existent directory: 'x'"))
    "Cannot save file into a non-existent directory: 'x'"
    """
    if not exc.strerror:
        return str(exc) or type(exc).__name__
    reason = exc.strerror[:1].lower() + exc.strerror[1:]
    return f"{exc.filename}: {reason}" if exc.filename else reason


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cleanlist-pandas`` console script.

    >>> main(["--help"])  # doctest: +SKIP
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.command == "sandbox":
        from cleanlist_pandas.sandbox.__main__ import run

        return run(args)
    from cleanlist_pandas.errors import CleanlistError, MappingError

    handlers = {
        "demo": cmd_demo,
        "enrich": cmd_enrich,
        "estimate": cmd_estimate,
        "pilot": cmd_pilot,
        "validate-key": cmd_api,
        "balance": cmd_api,
        "status": cmd_api,
        "deliveries": cmd_api,
        "jobs": cmd_jobs,
        "cache": cmd_cache,
        "spend": cmd_spend,
        "forget": cmd_forget,
    }
    command = _command_line(argv)
    try:
        return handlers[args.command](args)
    except MappingError as exc:
        print(_wrap(f"error: {exc.cli_message}"), file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, ValueError) as exc:
        if isinstance(exc, CleanlistError) and exc.shown_as is None:
            # ConfigurationError, OutputColumnCollision... (an argument check's
            # UserValueError reads as a ValueError did: its message alone)
            text = f"error: {type(exc).__name__}: {cli_words(str(exc), command)}"
        elif isinstance(exc, UsageError):  # already in the command line's words
            text = f"error: {exc}"
        else:  # a check of the package's (check_options...): its words become the CLI's
            text = f"error: {cli_words(str(exc), command)}"
        print(_wrap(text), file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a file or directory the machine refused: which, and why
        print(_wrap(f"error: {os_error_text(exc)}"), file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, FileNotFoundError) else EXIT_ERROR
    except CleanlistError as exc:
        print(_wrap(f"error: {type(exc).__name__}: {cli_words(str(exc), command)}"),
              file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        # also EnrichmentInterrupted, a KeyboardInterrupt subclass, for which Python's own
        # "killed by SIGINT" exit (130) does not happen: exit 130 explicitly
        print(
            "\ninterrupted; run the same command again to resume (nothing paid is lost)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
