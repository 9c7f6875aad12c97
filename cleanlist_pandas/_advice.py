"""Messages that tell the user what will happen and what to do, built from numbers the run
already has (no I/O).

>>> print(balance_warning("full", balance=100, worst_case=2_750, to_send=250))
... # doctest: +NORMALIZE_WHITESPACE
The balance (100.00 credits) does not cover the worst case of this run (2,750 credits). The
API accepts a request only if the balance covers that request's worst case: every contact
found, 11 credits each for 'full' (contacts x unit cost), although look-ups that find nothing
are free. So the first request (250 contacts, worst case 2,750) would be refused and nothing
enriched; rows the run cannot pay for come back 'awaiting_credits' (nothing charged for
them). Top up to at least 2,750 credits, or pass max_credits=100 to spend only the balance:
requests are then sized to it (9 contacts at a time) and the rows left over come back
'not_submitted', sent by the same call after a top-up.
"""

from __future__ import annotations

import math

from cleanlist_pandas._constants import MAX_UNIT_COST

#: Contacts per ``POST /enrich/bulk`` request (spec §3.3).
CHUNK_SIZE = 250


def balance_warning(
    enrichment_type: str,
    *,
    balance: float,
    worst_case: float,
    to_send: int,
    chunk_size: int = CHUNK_SIZE,
) -> str:
    """The pre-run warning when the worst case exceeds the balance: the server's rule (spec
    §3.3, §5: a request is refused with 402 unless the balance covers its worst case), what
    it means for this run, and the two ways out (top up, or ``max_credits=``).

    >>> "max_credits=40" in balance_warning("partial", balance=40.5, worst_case=41, to_send=41)
    True
    """
    unit = MAX_UNIT_COST.get(enrichment_type, 0)
    first = min(chunk_size, to_send)
    first_worst = first * unit
    rule = (
        f"The balance ({balance:,.2f} credits) does not cover the worst case of this run "
        f"({worst_case:,.0f} credits). The API accepts a request only if the balance covers "
        f"that request's worst case: every contact found, {unit:g} "
        f"credit{'' if unit == 1 else 's'} each for "
        f"{enrichment_type!r} (contacts x unit cost), although look-ups that find nothing "
        "are free."
    )
    if first_worst > balance:
        effect = (
            f"So the first request ({first:,} contacts, worst case {first_worst:,.0f}) would be "
            "refused and nothing enriched;"
        )
    else:
        effect = (
            f"So a request of {first:,} contacts is accepted only while the balance is at "
            f"least {first_worst:,.0f} when it is sent; once spending brings it lower, the "
            "remaining requests are refused;"
        )
    effect += (
        " rows the run cannot pay for come back 'awaiting_credits' (nothing charged for them)."
    )
    cap = math.floor(balance)
    per_request = math.floor(cap / unit) if unit else first
    todo = f"Top up to at least {worst_case:,.0f} credits"
    if per_request >= 1:
        todo += (
            f", or pass max_credits={cap} to spend only the balance: requests are then sized "
            f"to it ({min(per_request, chunk_size):,} contact{'' if per_request == 1 else 's'} "
            "at a time) and the rows left over "
            "come back 'not_submitted', sent by the same call after a top-up."
        )
    else:
        todo += "; the balance cannot pay for even one contact."
    return " ".join((rule, effect, todo))
