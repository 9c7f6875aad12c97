"""After the engine: merge the run's results onto the caller's rows, and report what is
left over (warn, raise or stay quiet, per ``errors=``). Also the pre-run balance check.

``cl_credits`` is what *this run* paid for a row: a duplicate row shares its first
occurrence's look-up, a cache hit and a result an earlier run already collected cost nothing,
so the column sums to the run's spend in the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cleanlist_pandas._constants import MAX_UNIT_COST
from cleanlist_pandas.errors import (
    AuthenticationError,
    CleanlistError,
    InsufficientCreditsError,
    PermissionDeniedError,
    warn_user,
)
from cleanlist_pandas.frame.merge import build_output, discovered_contacts_frame, fill_found
from cleanlist_pandas.run.engine import EngineOutcome
from cleanlist_pandas.run.options import call_text
from cleanlist_pandas.run.prepare import Prepared
from cleanlist_pandas.store.journal import AWAITING_CREDITS

log = logging.getLogger(__name__)

__all__ = [
    "abalance_or_none",
    "balance_or_none",
    "check_balance",
    "counts_text",
    "finalize",
    "left_over",
    "report",
]


def finalize(
    df: pd.DataFrame, prep: Prepared, outcome: EngineOutcome, in_flight_note: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, int]]:
    """Merge cache hits and fresh results onto ``df`` (by unique contact, then by row)."""
    p = prep.plan
    # cache hits pre-filled (decoded in one pass); fresh results go in by unique id
    results, workflow_ids, statuses = p.initial_results()
    errors: list[str | None] = [None] * p.n_unique
    index = prep.fp_index
    fresh_ids = np.fromiter(
        (index[fp] for fp in outcome.results), dtype=np.int64, count=len(outcome.results)
    )
    for u, (res, wf) in zip(fresh_ids.tolist(), outcome.results.values(), strict=True):
        results[u], workflow_ids[u] = res, wf
    for fp, (status, error) in outcome.missing.items():
        u = index[fp]
        if results[u] is None:
            statuses[u], errors[u] = status, error
    # what is left was never submitted (or was in flight when the run was interrupted)
    for u in np.flatnonzero(
        np.fromiter((r is None for r in results), bool, count=p.n_unique)
    ).tolist():
        if statuses[u] is None:
            if outcome.interrupted and in_flight_note:
                statuses[u], errors[u] = "pending", in_flight_note
            else:
                reason = outcome.stop_reason or "the run stopped"
                statuses[u] = "not_submitted"
                errors[u] = f"not submitted: {reason}. Re-run the same call to continue."
    out = build_output(
        df,
        p,
        results,
        statuses=statuses,
        errors=errors,
        workflow_ids=workflow_ids,
        prefix=prep.options.prefix,
        flat=prep.flat,
    )
    # cl_credits is what *this run* paid for the row: a duplicate row shares its first
    # occurrence's lookup and a cache hit costs nothing, so both show 0 and the column sums
    # to the run's spend.
    credits_col = prep.options.prefix + "credits"
    if credits_col in out.columns and len(out):
        paid_once = np.zeros(len(out), dtype=bool)
        paid_ids = np.fromiter(
            (index[fp] for fp in outcome.results if fp not in outcome.prepaid), dtype=np.int64
        )
        paid_once[p.first_rows[paid_ids]] = True
        col = out[credits_col].copy()
        col[~paid_once & col.notna().to_numpy()] = 0
        out[credits_col] = col
    # fill=: found values into the empty cells of the user's own email/phone columns
    out = fill_found(out, prep.selection.fill_columns, prep.options.prefix)
    prospects = None
    if p.enrichment_type == "prospecting_only":
        prospects = discovered_contacts_frame(df, results, p.row_codes)
    counts = {str(k): int(v) for k, v in out[prep.options.prefix + "status"].value_counts().items()}
    return out, prospects, counts


def left_over(counts: Mapping[str, int]) -> int:
    return sum(
        counts.get(s, 0) for s in ("not_submitted", "awaiting_credits", "unknown", "pending")
    )


def report(
    prep: Prepared, outcome: EngineOutcome, frame: pd.DataFrame, counts: Mapping[str, int]
) -> None:
    """Warn or raise (per ``errors=``) when rows are left over; finish the journal job.

    When over a third of the rows were skipped for a missing field that unused columns look
    like (:meth:`~cleanlist_pandas.frame.mapping.MappedContacts.hint`), the message names
    them and the ``columns=`` call that maps them; that alone is a warning, also with
    ``errors="raise"`` (skipped rows are the input's, not a failure of the run)."""
    left = left_over(counts)
    if not left and not outcome.ambiguous_chunks:
        # finished once the cache writer has written what it still holds (Prepared.close)
        prep.finish_job_when_cached()
    if prep.options.errors == "ignore":
        return
    exc = outcome.stop_error
    hint = prep.mapped.hint(prep.selection.kept)
    if not left and exc is None:
        if hint is not None:
            head = f"Cleanlist job {prep.job_id}: {counts_text(counts)}."
            warn_user(f"{head} {hint.message}", cli_message=f"{head} {hint.cli_message}")
        return
    parts = [f"Cleanlist job {prep.job_id}: {counts_text(counts)}."]
    if exc is not None:
        parts.append(f"Stopped by {type(exc).__name__}: {exc}")
    if counts.get("not_submitted"):
        parts.append(
            f"{counts['not_submitted']} rows were not submitted; fix the cause, then run the "
            "same call again: finished rows come from the cache and cost nothing."
        )
    if counts.get("awaiting_credits"):
        n = counts["awaiting_credits"]
        parts.append(
            f"{n} rows are 'awaiting_credits': the organization could not pay for them and "
            f"nothing was charged. They need at most {awaiting_worst(prep, outcome):,.0f} "
            "credits (the worst case). Top up, then run the same call again "
            f"({call_text(prep.options)}): it sends exactly these rows and pays for nothing "
            "twice."
        )
    if counts.get("unknown"):
        parts.append(
            f"{counts['unknown']} rows are 'unknown' (a submission whose outcome is not known, "
            "never resent automatically); see cl_error, then re-run with resend_unknown=True "
            "if they were not processed."
        )
    if counts.get("pending"):
        parts.append(
            f"{counts['pending']} rows are 'pending': submitted, but their results were not "
            "read back; run the same call again to collect them (no new charge)."
        )
    cli_parts = [*parts, hint.cli_message] if hint is not None else parts
    if hint is not None:
        parts.append(hint.message)
    message = " ".join(parts)
    if prep.options.errors == "raise":
        message += (
            " The rows so far: clp.last_result() (or this exception's .partial_result)."
        )
        if exc is not None:
            exc.add_note(message)
            if isinstance(exc, CleanlistError):
                exc.partial_result, exc.job_id = frame, prep.job_id
            raise exc
        err = CleanlistError(message)
        err.partial_result, err.job_id = frame, prep.job_id
        raise err
    warn_user(message, cli_message=" ".join(cli_parts))


def awaiting_worst(prep: Prepared, outcome: EngineOutcome) -> float:
    n = sum(1 for st, _ in outcome.missing.values() if st == AWAITING_CREDITS)
    return float(n * MAX_UNIT_COST[prep.options.enrichment_type])


def counts_text(counts: Mapping[str, int]) -> str:
    order = [
        "enriched",
        "not_found",
        "failed",
        "skipped",
        "not_submitted",
        "awaiting_credits",
        "unknown",
        "pending",
    ]
    return ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k))



def _balance_failed(exc: CleanlistError) -> None:
    """The balance pre-check is advisory (the server's 402 still guards the spend): a key or
    plan problem stops the run before anything is sent; a 429 storm or an outage of the
    balance endpoint does not."""
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        raise exc
    log.warning(
        "balance not read (%s: %s); submitting without the pre-check", type(exc).__name__, exc
    )


def balance_or_none(read: Any) -> float | None:
    try:
        return float(read().credits)
    except CleanlistError as exc:
        _balance_failed(exc)
        return None


async def abalance_or_none(read: Any) -> float | None:
    try:
        return float((await read()).credits)
    except CleanlistError as exc:
        _balance_failed(exc)
        return None


def check_balance(prep: Prepared, credits: float | None) -> None:
    """Before the first request: warn (or raise, with ``errors="raise"``) when the balance
    cannot cover the run's worst case, saying the server's rule and what to do. The
    warning names the user's line (:func:`~cleanlist_pandas.errors.warn_user`)."""
    worst = prep.worst_case
    if credits is None or worst <= credits:
        return
    from cleanlist_pandas._advice import balance_warning  # the server's rule, what to do

    msg = balance_warning(
        prep.options.enrichment_type, balance=credits, worst_case=worst, to_send=len(prep.to_send)
    )
    if prep.options.errors == "raise":
        raise InsufficientCreditsError(
            "Nothing was submitted (errors='raise'). " + msg,
            status_code=402,
            detail="worst case exceeds balance",
        )
    if prep.options.errors == "warn":
        warn_user(msg)


