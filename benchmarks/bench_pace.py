"""Pace to the window: ``enrich()`` against what a user would write instead (issue 10).

For each N, three ways, each on a fresh sandbox process (``python -m
cleanlist_pandas.sandbox``; ``--in-process`` for a thread of this one) with the same seed and
scaled clock:

* **quickstart loop** — the API quickstart's shape: submit a chunk, poll it every 5 s until
  it is done, then the next chunk;
* **careful script** — submit every chunk at once, sleep ``Retry-After`` on a 429, poll all
  unfinished workflows every 5 s;
* **enrich()** — ``df.cleanlist.enrich()``.

For each run: wall time (seconds of scaled time), requests the sandbox answered, 429s, and
the **physical bound**: the best schedule that respects "at most 60 requests in any 60 s",
knowing each workflow's real processing time from the sandbox's own schedule after the run —
submissions as early as the window allows, one status read per workflow as soon as both its
results and a slot exist. Ratios: wall / bound, and requests / 2·⌈N/250⌉.

What the bound leaves out, and every way pays: the sandbox handles one request at a time,
so 20 submissions of 250 contacts take ~0.1 s (scaled) to be accepted, not 0; and the
client's own CPU (mapping the frame, merging the results: ~0.1 s at 5,000 rows) is not
scaled, so at ``time_scale`` 0.1 it weighs ten times what it does against the real service.

Run: ``.venv/bin/python benchmarks/bench_pace.py [--sizes 250 1000 5000 10000 50000]
[--time-scale 0.1] [--seed 3 | --seeds 3 4 5 6 7 8] [--json benchmarks/results/pace.json]``

With several seeds (other workflow durations, same sizes), it also prints, per size and
way, the mean and the worst wall / bound, and in how many seeds ``enrich()`` beat the
careful script: one run can be lucky.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
import pandas as pd

import cleanlist_pandas as clp
from cleanlist_pandas._constants import RATE_LIMIT_PER_ORG, RATE_LIMIT_WINDOW_S
from cleanlist_pandas.client.http import shared_ssl_context
from cleanlist_pandas.run.engine import PollPolicy

CHUNK = 250
TERMINAL = {"completed", "completed_with_errors", "failed"}


def leads(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "First Name": [f"Ann{k}" for k in range(n)],
            "Last Name": [f"Lee{k}" for k in range(n)],
            "Website": [f"https://co{k % 997}.com" for k in range(n)],
        }
    )


def contacts(n: int) -> list[dict[str, str]]:
    return [
        {"first_name": f"Ann{k}", "last_name": f"Lee{k}", "company_domain": f"co{k % 997}.com"}
        for k in range(n)
    ]


# -- the bound -----------------------------------------------------------------------------
def physical_bound(durations: list[float], window: float, limit: int) -> float:
    """Makespan of the best greedy schedule: submissions first, as early as "``limit``
    requests in any ``window``" allows; a status read per workflow as soon as it is done and
    a slot is free. ``durations[i]`` is the i-th submission's processing time.

    >>> physical_bound([5.0, 5.0], window=60.0, limit=60)
    5.0
    >>> physical_bound([1.0] * 40, window=60.0, limit=60)   # 40 + 20 in window 1, 20 later
    60.0
    """
    sent: list[float] = []

    def slot(at: float) -> float:
        t = at
        while True:
            k = len(sent) - bisect.bisect_right(sent, t - window)
            if k < limit:
                return t
            t = sent[len(sent) - limit] + window

    ready: list[float] = []
    t = 0.0
    for d in durations:
        t = slot(t)
        bisect.insort(sent, t)
        heapq.heappush(ready, t + d)
    end = 0.0
    while ready:
        at = heapq.heappop(ready)
        t = slot(max(at, sent[-1]))
        bisect.insort(sent, t)
        end = max(end, t)
    return end


# -- the sandbox -------------------------------------------------------------------------
class Service(Protocol):
    """What a way needs from the sandbox it runs against."""

    @property
    def base_url(self) -> str: ...

    @property
    def api_key(self) -> str: ...

    def stats(self) -> dict[str, Any]: ...

    def schedule(self) -> dict[str, Any]: ...


class SandboxProcess:
    """``python -m cleanlist_pandas.sandbox`` in its own process, as the real API is on its
    own machine: the server's CPU (building 250-result bodies) does not share the client's
    interpreter lock. The control routes give its stats and schedule."""

    def __init__(self, *, time_scale: float, seed: int, credits: float = 1e9) -> None:
        cmd = [sys.executable, "-m", "cleanlist_pandas.sandbox", "--port", "0",
               "--time-scale", str(time_scale), "--seed", str(seed), "--credits", str(credits)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        seen: dict[str, str] = {}
        assert self._proc.stdout is not None
        while len(seen) < 2:
            line = self._proc.stdout.readline()
            if not line:
                raise RuntimeError("the sandbox process ended before printing its address")
            name, _, value = line.partition(": ")
            if name in ("base_url", "api_key"):
                seen[name] = value.strip()
        self.base_url, self.api_key = seen["base_url"], seen["api_key"]
        self._root = self.base_url.split("/api/")[0]

    def _get(self, route: str) -> dict[str, Any]:
        out: dict[str, Any] = httpx.get(f"{self._root}/_sandbox/{route}", trust_env=False).json()
        return out

    def stats(self) -> dict[str, Any]:
        return self._get("stats")

    def schedule(self) -> dict[str, Any]:
        return self._get("schedule")

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.terminate()
        self._proc.wait(10)


# -- the three ways ------------------------------------------------------------------------
def _http(sb: Service) -> httpx.Client:
    return httpx.Client(
        base_url=sb.base_url,
        headers={"Authorization": f"Bearer {sb.api_key}"},
        timeout=60,
        trust_env=False,
        # the process's TLS context, as enrich() uses: building one costs ~20 ms of CPU,
        # which time_scale 0.1 would turn into 0.2 s of service time for the scripts
        verify=shared_ssl_context(),
    )


def _send(c: httpx.Client, method: str, path: str, **kw: Any) -> dict[str, Any]:
    """One request; on a 429, sleep Retry-After and send it again (what a careful script does)."""
    while True:
        r = c.request(method, path, **kw)
        if r.status_code == 429:
            time.sleep(float(r.headers.get("retry-after", "1")))
            continue
        r.raise_for_status()
        out: dict[str, Any] = r.json()
        return out


def quickstart_loop(sb: Service, n: int, ts: float) -> None:
    people = contacts(n)
    with _http(sb) as c:
        for i in range(0, n, CHUNK):
            body = {"enrichment_type": "partial", "contacts": people[i : i + CHUNK]}
            wf = _send(c, "POST", "/enrich/bulk", json=body)["workflow_id"]
            while True:
                time.sleep(5.0 * ts)
                st = _send(c, "GET", "/enrich/status", params={"workflow_id": wf})
                if st["workflow"]["status"] in TERMINAL:
                    break


def careful_script(sb: Service, n: int, ts: float) -> None:
    people = contacts(n)
    with _http(sb) as c:
        open_ids = [
            _send(
                c,
                "POST",
                "/enrich/bulk",
                json={"enrichment_type": "partial", "contacts": people[i : i + CHUNK]},
            )["workflow_id"]
            for i in range(0, n, CHUNK)
        ]
        while open_ids:
            time.sleep(5.0 * ts)
            still = []
            for wf in open_ids:
                st = _send(c, "GET", "/enrich/status", params={"workflow_id": wf})
                if st["workflow"]["status"] not in TERMINAL:
                    still.append(wf)
            open_ids = still


def with_enrich(sb: Service, n: int, ts: float) -> None:
    client = clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=RATE_LIMIT_WINDOW_S * ts)
    poll = PollPolicy().scaled(ts)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = leads(n).cleanlist.enrich(client=client, poll=poll, progress=False)
        assert not out["cl_status"].isin(["not_submitted", "unknown", "pending"]).any()
    finally:
        client.close()


WAYS: dict[str, Callable[[Service, int, float], None]] = {
    "quickstart loop": quickstart_loop,
    "careful script": careful_script,
    "enrich()": with_enrich,
}


def measure(way: str, n: int, ts: float, seed: int, in_process: bool = False) -> dict[str, Any]:
    os.environ["CLEANLIST_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-pace-")
    sandbox: Any = (
        clp.Sandbox(credits=1e9, time_scale=ts, seed=seed)
        if in_process
        else SandboxProcess(time_scale=ts, seed=seed)
    )
    with sandbox as sb:
        t0 = time.perf_counter()
        WAYS[way](sb, n, ts)
        wall = time.perf_counter() - t0
        stats = sb.stats()
        sched = sorted(sb.schedule()["workflows"], key=lambda r: r["submitted"])
    durations = [r["finishes"] - r["submitted"] for r in sched]
    bound = physical_bound(durations, RATE_LIMIT_WINDOW_S * ts, RATE_LIMIT_PER_ORG)
    throttled = sum(v.get("429", 0) for v in stats["by_endpoint"].values())
    lower = 2 * math.ceil(n / CHUNK)
    return {
        "contacts": n,
        "way": way,
        "wall_s": round(wall, 3),
        "requests": stats["total"],
        "429s": throttled,
        "bound_s": round(bound, 3),
        "wall_vs_bound": round(wall / bound, 3),
        "requests_vs_2ceil": round(stats["total"] / lower, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 5000, 10000, 50000])
    ap.add_argument("--time-scale", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", help="several seeds (overrides --seed)")
    ap.add_argument("--ways", nargs="+", default=list(WAYS), choices=list(WAYS))
    ap.add_argument(
        "--in-process",
        action="store_true",
        help="run the sandbox in this process (a thread) instead of its own process",
    )
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/pace.json"))
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    # The package's one-time start-up in a process (imports, tldextract's suffix trie, the
    # loop thread, the TLS context, SQLite's first open: ~0.3 s of CPU) is paid before
    # timing, by one small run on a throwaway sandbox, as it is before a notebook's second
    # call; at time_scale 0.1 it would otherwise count as 3 s of service time.
    seeds = args.seeds or [args.seed]
    os.environ["CLEANLIST_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-pace-")
    with clp.Sandbox(credits=1e9, time_scale=0.01, seed=seeds[0] + 1) as warm:
        with_enrich(warm, 300, 0.01)

    rows = []
    for seed in seeds:
        for n in args.sizes:
            for way in args.ways:
                row = measure(way, n, args.time_scale, seed, args.in_process)
                row["seed"] = seed
                rows.append(row)
                print(json.dumps(row), flush=True)
    frame = pd.DataFrame(rows)
    best = frame[frame["way"] == "careful script"].set_index(["seed", "contacts"])["wall_s"]
    frame["vs_careful"] = [
        round(best.get((r.seed, r.contacts), math.nan) / r.wall_s, 2)
        for r in frame.itertuples()
    ]
    print(f"\ntime_scale {args.time_scale} (multiply seconds by {1 / args.time_scale:g} "
          "for real time), seed" + ("s" if len(seeds) > 1 else ""), *seeds)
    shown = frame if len(seeds) > 1 else frame.drop(columns="seed")
    print(shown.to_string(index=False))
    if len(seeds) > 1:
        spread = frame.groupby(["contacts", "way"], sort=False).agg(
            mean_vs_bound=("wall_vs_bound", "mean"),
            worst_vs_bound=("wall_vs_bound", "max"),
            beat_careful=("vs_careful", lambda v: int((v > 1).sum())),
            max_429s=("429s", "max"),
        )
        print(f"\nover {len(seeds)} seeds")
        print(spread.round(3).to_string())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
