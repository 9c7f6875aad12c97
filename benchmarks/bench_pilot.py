"""Pilot, then commit, on a messy 5,000-row frame of type ``full`` (issue 12's numbers).

On a fresh sandbox and cache: the worst-case estimate, the pilot's expected credits for the
rest with its interval, what the rest then actually cost, and the total against one plain
``enrich()`` of the same frame on another fresh sandbox (same seed): the pilot must not cost
a credit more in total. Every credit is read from the sandbox's ledger too.

Run: ``.venv/bin/python benchmarks/bench_pilot.py [--rows 5000] [--pilot 200] [--seed 0]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import cleanlist_pandas as clp
from cleanlist_pandas.run.engine import PollPolicy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cpu import make_frame  # the same messy CRM export

TIME_SCALE = 0.02
RESULTS = Path(__file__).resolve().parent / "results"


def _fresh(seed: int) -> tuple[clp.Sandbox, clp.Client]:
    os.environ["CLEANLIST_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-pilot-")
    sb = clp.Sandbox(credits=1_000_000, time_scale=TIME_SCALE, seed=seed).start()
    client = clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=60 * TIME_SCALE)
    return sb, client


def _ledger(sb: clp.Sandbox) -> float:
    return float(sum(r["credits"] for r in sb.ledger()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--pilot", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="the sandbox's and the pilot's seed")
    args = ap.parse_args()
    df = make_frame(args.rows)
    poll = PollPolicy().scaled(TIME_SCALE)
    warnings.simplefilter("ignore")

    sb, client = _fresh(args.seed)
    est = df.cleanlist.estimate("full", client=client)
    pilot = df.cleanlist.pilot(args.pilot, "full", seed=args.seed, client=client, poll=poll,
                               progress=False)
    after_pilot = _ledger(sb)
    est2 = df.cleanlist.estimate("full", client=client)
    out = df.cleanlist.enrich("full", client=client, poll=poll, progress=False)
    rest = float(out["cl_credits"].fillna(0).sum())
    total = _ledger(sb)
    client.close()
    sb.stop()

    sb, client = _fresh(args.seed)
    plain = df.cleanlist.enrich("full", client=client, poll=poll, progress=False)
    plain_total = _ledger(sb)
    client.close()
    sb.stop()

    row: dict[str, Any] = {
        "rows": len(df),
        "unique_contacts": pilot.population,
        "worst_case": float(est.worst_case_credits),
        "pilot_n": args.pilot,
        "pilot_spent": after_pilot,
        "email_rate": pilot.email_rate.rate,
        "phone_rate": pilot.phone_rate.rate,
        "rest_contacts": pilot.rest,
        "expected_rest": pilot.expected_credits,
        "expected_low": pilot.expected_low,
        "expected_high": pilot.expected_high,
        "rest_worst_case": float(est2.worst_case_credits),
        "rest_actual": rest,
        "total_with_pilot": total,
        "total_plain_run": plain_total,
        "plain_cl_credits": float(plain["cl_credits"].fillna(0).sum()),
    }
    print(f"{row['rows']:,} rows ({row['unique_contacts']:,} distinct valid contacts), type full, "
          f"sandbox seed {args.seed}, pilot of {args.pilot}")
    print(f"  worst-case estimate (whole frame)   {row['worst_case']:>9,.0f} credits")
    print(f"  pilot spent                         {row['pilot_spent']:>9,.0f} credits "
          f"(email {row['email_rate']:.1%}, phone {row['phone_rate']:.1%})")
    print(f"  rest: {row['rest_contacts']:,} contacts; estimate() after the pilot: worst case "
          f"{row['rest_worst_case']:,.0f}")
    print(f"  expected for the rest (pilot)       {row['expected_rest']:>9,.0f} credits "
          f"(95% interval {row['expected_low']:,.0f}-{row['expected_high']:,.0f})")
    print(f"  actual for the rest                 {row['rest_actual']:>9,.0f} credits")
    print(f"  total pilot + rest (ledger)         {row['total_with_pilot']:>9,.0f} credits")
    print(f"  one plain enrich() (ledger)         {row['total_plain_run']:>9,.0f} credits")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_pilot.json").write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
