"""The ``cleanlist-pandas`` command line.

Subcommands: ``demo`` (the whole flow on a local sandbox, no account needed), ``sandbox``
(serve the local emulator), ``enrich`` / ``estimate`` (a CSV in, a CSV out), and the API
quickstart steps ``validate-key``, ``balance``, ``status``, ``deliveries``; plus ``jobs``
and ``cache`` for the local journal and result cache. The key comes from ``--api-key`` or
``CLEANLIST_API_KEY`` and is never printed (only masked).

>>> from cleanlist_pandas.cli import build_parser
>>> build_parser().prog
'cleanlist-pandas'
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _add_connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api-key", help="API key (default: $CLEANLIST_API_KEY); never printed")
    p.add_argument("--base-url", help="API base URL (default: $CLEANLIST_BASE_URL or the real API)")
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="run against a local sandbox started for this command (no account needed)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand.

    >>> build_parser().parse_args(["sandbox", "--port", "0"]).command
    'sandbox'
    """
    from cleanlist_pandas._constants import ENRICHMENT_TYPES
    from cleanlist_pandas.sandbox.__main__ import add_arguments as add_sandbox_arguments

    parser = argparse.ArgumentParser(
        prog="cleanlist-pandas",
        description="Cleanlist contact enrichment for pandas, and a local sandbox of the API.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_sandbox_arguments(sub.add_parser("sandbox", help="serve the local sandbox API"))

    demo = sub.add_parser("demo", help="the whole flow on a local sandbox (no account needed)")
    demo.add_argument("--time-scale", type=float, default=0.05, help="sandbox speed (1 = real)")

    for name, help_ in (
        ("enrich", "enrich a CSV of leads; writes a CSV with cl_* columns"),
        ("estimate", "what enrich would send and cost; spends nothing"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("input", type=Path, help="CSV (or TSV) file of leads")
        p.add_argument(
            "-t", "--type", dest="enrichment_type", default="partial", choices=ENRICHMENT_TYPES
        )
        p.add_argument(
            "-c",
            "--column",
            action="append",
            default=[],
            metavar="FIELD=COLUMN",
            help="map a field to a column, e.g. -c first_name=Vorname (repeatable)",
        )
        p.add_argument("--max-credits", type=float, help="never spend more than this")
        p.add_argument("--no-cache", action="store_true", help="do not use the local cache")
        _add_connection(p)
        if name == "enrich":
            p.add_argument(
                "-o", "--output", type=Path, help="output CSV (default: INPUT.enriched.csv)"
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
    st.add_argument("--task", action="store_true")
    _add_connection(st)
    dl = sub.add_parser("deliveries", help="webhook delivery attempts of a workflow")
    dl.add_argument("workflow_id")
    _add_connection(dl)
    sub.add_parser("jobs", help="journaled enrichment jobs (for resume)")
    cache = sub.add_parser("cache", help="the local result cache")
    cache.add_argument("action", choices=["info", "clear", "purge-expired"])
    return parser


# -- helpers ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _connection(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Yield client kwargs; with --sandbox, start a sandbox for the command's lifetime."""
    if getattr(args, "sandbox", False):
        from cleanlist_pandas.sandbox import Sandbox

        with Sandbox(time_scale=0.02) as sb:
            print(f"(sandbox at {sb.base_url})", file=sys.stderr)
            yield {"api_key": sb.api_key, "base_url": sb.base_url, "per": 60 * 0.02}
    else:
        yield {"api_key": args.api_key, "base_url": args.base_url}


def _client(kw: dict[str, Any]) -> Any:
    from cleanlist_pandas.client import Client

    return Client(**kw)


def read_leads(path: Path) -> Any:
    """Read a CSV/TSV of leads as text (no type guessing: zip codes and ids stay as written).

    Tries UTF-8 (with or without BOM), then cp1252, the usual encodings of CRM exports.

    >>> read_leads(Path("missing.csv"))  # doctest: +SKIP
    """
    import pandas as pd

    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else None
    last: Exception | None = None
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return pd.read_csv(
                path, dtype="string", sep=sep, engine="python", encoding=enc, skipinitialspace=False
            )
        except UnicodeDecodeError as exc:
            last = exc
    raise ValueError(f"{path}: not UTF-8 nor cp1252 text ({last})")


def _columns(pairs: Sequence[str]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for pair in pairs:
        field, sep, col = pair.partition("=")
        if not sep or not field.strip() or not col:
            raise ValueError(f"--column expects FIELD=COLUMN, got {pair!r}")
        out[field.strip()] = col
    return out or None


def _print_table(df: Any) -> None:
    import pandas as pd

    with pd.option_context(
        "display.width", 160, "display.max_columns", 20, "display.max_colwidth", 40
    ):
        print(df.to_string())


# -- commands ---------------------------------------------------------------------------------
def cmd_enrich(args: argparse.Namespace) -> int:
    import pandas as pd

    from cleanlist_pandas.enrich.job import CleanlistWarning, EnrichmentInterrupted, Options
    from cleanlist_pandas.enrich.job import enrich as run_enrich
    from cleanlist_pandas.progress import progress_view

    df = read_leads(args.input)
    out_path = args.output or args.input.with_suffix(".enriched.csv")
    options = Options(
        enrichment_type=args.enrichment_type,
        columns=_columns(args.column),
        max_credits=args.max_credits,
        cache=not args.no_cache,
        progress=not args.no_progress,
        webhook_url=args.webhook_url,
        resend_unknown=args.resend_unknown,
        errors="warn",
    )
    with _connection(args) as kw:
        client = _client(kw)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CleanlistWarning)
                try:
                    out = run_enrich(df, options, client=client, view=progress_view)
                    assert isinstance(out, pd.DataFrame)
                except EnrichmentInterrupted as exc:
                    exc.partial_result.to_csv(out_path, index=False)
                    print(f"\n{exc}\nPartial results written to {out_path}.", file=sys.stderr)
                    return EXIT_INTERRUPTED
        finally:
            client.close()
    out.to_csv(out_path, index=False)
    counts = out[options.prefix + "status"].value_counts()
    print(f"Wrote {len(out):,} rows to {out_path}")
    print("  " + ", ".join(f"{k}: {v:,}" for k, v in counts.items()))
    print(f"  credits: {float(out[options.prefix + 'credits'].fillna(0).sum()):,.0f}")
    for w in caught:
        if issubclass(w.category, CleanlistWarning):
            print(f"warning: {w.message}", file=sys.stderr)
    return EXIT_OK


def cmd_estimate(args: argparse.Namespace) -> int:
    from cleanlist_pandas.enrich.job import Options, estimate

    df = read_leads(args.input)
    options = Options(
        enrichment_type=args.enrichment_type,
        columns=_columns(args.column),
        max_credits=args.max_credits,
        cache=not args.no_cache,
    )
    with _connection(args) as kw:
        client = _client(kw)
        try:
            est = estimate(df, options, client=client)
        finally:
            client.close()
    print(est.mapping)
    print(est)
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
    from cleanlist_pandas._store import journal_path
    from cleanlist_pandas.enrich.journal import Journal

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
            print(
                f"{job.job_id}  {job.state:<8} {job.enrichment_type:<16} {job.rows:>9,} rows  "
                f"{job.created_at}  chunks: {states or '-'}"
            )
    finally:
        journal.close()
    return EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    from cleanlist_pandas.cache import ResultCache

    with ResultCache() as cache:
        if args.action == "clear":
            print(f"removed {cache.clear():,} cached results from {cache.path}")
        elif args.action == "purge-expired":
            print(f"removed {cache.purge_expired():,} expired results")
        else:
            print(f"{cache.path}: {cache.stats()}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """The quickstart flow, then df.cleanlist.enrich() on a messy CSV, all on a sandbox."""

    import cleanlist_pandas as clp
    from cleanlist_pandas.enrich.engine import PollPolicy

    ts = args.time_scale
    os.environ.setdefault("CLEANLIST_CACHE_DIR", tempfile.mkdtemp(prefix="cleanlist-demo-"))
    print("== Cleanlist sandbox: a local emulator of the API (no account needed)")
    with clp.Sandbox(credits=5_000, time_scale=ts, seed=7) as sb, clp.WebhookReceiver() as rx:
        print(f"   base URL {sb.base_url}; time runs {1 / ts:g}x faster than the real service\n")
        client = clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=60 * ts)
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
            poll = PollPolicy(first=5 * ts, min_interval=ts, max_interval=30 * ts)
            out = df.cleanlist.enrich("full", client=client, poll=poll)
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
            again = df.cleanlist.enrich("full", client=client, poll=poll, progress=False)
            after = sb.stats()["by_endpoint"].get("POST /enrich/bulk", {})
            same = again.drop(columns="cl_credits").equals(out.drop(columns="cl_credits"))
            print(
                f"   identical result: {same}; bulk requests sent: "
                f"{sum(after.values()) - sum(before.values())}; credits spent: 0"
            )
        finally:
            client.close()
    print(
        "\nDone. Next: open notebooks/quickstart.ipynb, or run "
        "`cleanlist-pandas enrich your_leads.csv --sandbox`."
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cleanlist-pandas`` console script.

    >>> main(["--help"])  # doctest: +SKIP
    """
    args = build_parser().parse_args(argv)
    if args.command == "sandbox":
        from cleanlist_pandas.sandbox.__main__ import run

        return run(args)
    from cleanlist_pandas.enrich.mapping import MappingError
    from cleanlist_pandas.errors import CleanlistError

    handlers = {
        "demo": cmd_demo,
        "enrich": cmd_enrich,
        "estimate": cmd_estimate,
        "validate-key": cmd_api,
        "balance": cmd_api,
        "status": cmd_api,
        "deliveries": cmd_api,
        "jobs": cmd_jobs,
        "cache": cmd_cache,
    }
    try:
        return handlers[args.command](args)
    except (MappingError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CleanlistError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
