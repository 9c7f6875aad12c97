"""Benchmark of ``df.cleanlist.enrich()`` against the sandbox (not part of the pytest run).

10,000 distinct contacts, default processing times of the sandbox (a few seconds per task,
tasks of a workflow in parallel) and the real rate limit (60 requests / 60 s per
organization). ``--time-scale`` shrinks every duration of the sandbox *and* the client's
rate window together, so the ratios below do not depend on it (0.1 runs ten times faster).

Reported:
* requests used (every API request the sandbox answered) ÷ the lower bound 2·⌈N/250⌉
  (one submission and one final poll per chunk) — target ≤ 1.15;
* wall time ÷ (rate bound + processing tail) — target ≤ 1.15, where the rate bound is the
  time the lower-bound number of requests takes at the limit's steady rate of one request per
  second, (2·⌈N/250⌉ − 1)·window/limit, and the tail is the processing time of the last
  workflow (from its submission to its last task's end, as the sandbox scheduled it);
* 429s seen (target 0: the pacer keeps a normal run under the limit).

Run: ``.venv/bin/python benchmarks/bench_enrich.py [--rows 10000] [--time-scale 0.1]``
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import warnings

import pandas as pd

import cleanlist_pandas as clp
from cleanlist_pandas._constants import RATE_LIMIT_PER_ORG, RATE_LIMIT_WINDOW_S
from cleanlist_pandas.run.engine import PollPolicy


def leads(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "First Name": [f"Ann{k}" for k in range(n)],
            "Last Name": [f"Lee{k}" for k in range(n)],
            "Website": [f"https://co{k % 997}.com" for k in range(n)],
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--time-scale", type=float, default=0.1)
    args = ap.parse_args()
    ts = args.time_scale
    os.environ["CLEANLIST_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-enrich-")
    df = leads(args.rows)
    with clp.Sandbox(credits=1e9, time_scale=ts, seed=3) as sb:
        client = clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=RATE_LIMIT_WINDOW_S * ts)
        poll = PollPolicy(first=5.0 * ts, min_interval=1.0 * ts, max_interval=30.0 * ts)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = df.cleanlist.enrich(client=client, poll=poll, progress=False)
        wall = time.perf_counter() - t0
        stats = sb.stats()
        client.close()
    by = stats["by_endpoint"]
    total = stats["total"]
    bulk = sum(by.get("POST /enrich/bulk", {}).values())
    polls = sum(by.get("GET /enrich/status", {}).values())
    throttled = sum(v.get("429", 0) for v in by.values())
    chunks = math.ceil(args.rows / 250)
    lower = 2 * chunks
    step = RATE_LIMIT_WINDOW_S / RATE_LIMIT_PER_ORG * ts
    rate_bound = (lower - 1) * step
    # processing tail, from the sandbox's default task-time distribution: the slowest of 250
    # lognormal draws (median 3 s, sigma 0.35; the 99.8th percentile is z = 2.88) plus the
    # 0.5 s workflow start delay, about 8.7 s of real-service time.
    tail = (3.0 * math.exp(0.35 * 2.88) + 0.5) * ts
    statuses = out["cl_status"].value_counts().to_dict()
    print(f"rows {args.rows:,}, time_scale {ts}, statuses {statuses}")
    print(
        f"requests: {total} (bulk {bulk}, status {polls}, other {total - bulk - polls}); "
        f"lower bound {lower}; ratio {total / lower:.3f}  (target <= 1.15)"
    )
    print(f"429s: {throttled}")
    print(
        f"wall {wall:.2f} s (= {wall / ts:.1f} s of real-service time); rate bound "
        f"{rate_bound:.2f} s + tail {tail:.2f} s = {rate_bound + tail:.2f} s; ratio "
        f"{wall / (rate_bound + tail):.3f}  (target <= 1.15)"
    )


if __name__ == "__main__":
    main()
