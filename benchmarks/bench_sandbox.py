"""Benchmark of the sandbox (not part of the pytest run).

1. 10,000 contacts submitted in 40 bulk requests of 250 (time_scale 0.01), then polled until
   every workflow is terminal: wall time from the first submission to the last terminal
   status (target < 10 s).
2. Status-poll throughput: ``GET /enrich/status?workflow_id=`` on a finished 250-contact
   workflow (full result set each time) and ``?task_id=``, sequential and with 4 threads;
   and on a 250-contact workflow still processing (body rebuilt on every poll).

The rate limit is disabled via ``SandboxConfig(rate_limit_enabled=False)`` so the numbers
measure the server, not the 60/min budget.

Run: ``.venv/bin/python benchmarks/bench_sandbox.py [--time-scale 0.01] [--seconds 3]``
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import time
from typing import Any

import httpx

from cleanlist_pandas.sandbox import Sandbox, SandboxConfig

TERMINAL = {"completed", "completed_with_errors", "failed"}


def _contacts(n: int, offset: int) -> list[dict[str, str]]:
    return [
        {
            "first_name": f"First{offset + i}",
            "last_name": f"Last{offset + i}",
            "company_domain": f"company{(offset + i) % 997}.com",
        }
        for i in range(n)
    ]


def bench_workflows(sb: Sandbox, n_requests: int = 40, per_request: int = 250) -> dict[str, Any]:
    """Submit ``n_requests`` x ``per_request`` contacts; poll until all are terminal."""
    headers = {"Authorization": f"Bearer {sb.api_key}"}
    with httpx.Client(base_url=sb.base_url, headers=headers, trust_env=False, timeout=30) as c:
        t0 = time.perf_counter()
        ids: list[str] = []
        for k in range(n_requests):
            r = c.post(
                "/enrich/bulk",
                json={"enrichment_type": "partial", "contacts": _contacts(per_request, k * 1000)},
            )
            r.raise_for_status()
            ids.append(r.json()["workflow_id"])
        t_submitted = time.perf_counter() - t0
        pending = set(ids)
        polls = 0
        results = 0
        while pending:
            for wid in list(pending):
                body = c.get("/enrich/status", params={"workflow_id": wid}).json()
                polls += 1
                if body["workflow"]["status"] in TERMINAL:
                    pending.discard(wid)
                    results += len(body["results"])
            if pending:
                time.sleep(0.01)
        wall = time.perf_counter() - t0
    return {
        "contacts": n_requests * per_request,
        "bulk_requests": n_requests,
        "submit_s": round(t_submitted, 3),
        "wall_s": round(wall, 3),
        "status_polls": polls,
        "results": results,
        "credits_spent": 10_000_000 - sb.balance(),
    }


def _hammer(url: str, params: dict[str, str], key: str, seconds: float, threads: int) -> float:
    def worker() -> int:
        n = 0
        with httpx.Client(
            headers={"Authorization": f"Bearer {key}"}, trust_env=False, timeout=30
        ) as c:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                c.get(url, params=params).raise_for_status()
                n += 1
        return n

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda _: worker(), range(threads)))
    return total / (time.perf_counter() - t0)


def bench_polls(sb: Sandbox, seconds: float) -> dict[str, Any]:
    """Requests per second on the status endpoint (both modes, 1 and 4 client threads)."""
    headers = {"Authorization": f"Bearer {sb.api_key}"}
    with httpx.Client(base_url=sb.base_url, headers=headers, trust_env=False, timeout=30) as c:
        out = c.post("/enrich/bulk", json={"contacts": _contacts(250, 9_000_000)}).json()
    sb.wait_idle()
    url = sb.base_url + "/enrich/status"
    wf = {"workflow_id": out["workflow_id"]}
    task = {"task_id": out["task_ids"][0]}
    return {
        "workflow_250_results_rps_1_thread": round(_hammer(url, wf, sb.api_key, seconds, 1), 1),
        "workflow_250_results_rps_4_threads": round(_hammer(url, wf, sb.api_key, seconds, 4), 1),
        "task_rps_1_thread": round(_hammer(url, task, sb.api_key, seconds, 1), 1),
        "task_rps_4_threads": round(_hammer(url, task, sb.api_key, seconds, 4), 1),
    }


def bench_polls_processing(seconds: float) -> dict[str, Any]:
    """Requests per second on a 250-contact workflow that is still processing (its body is
    rebuilt on every poll; finished workflows serve a cached body)."""
    # a very wide processing-time spread: after 2 s most tasks are done, a few take minutes
    cfg = SandboxConfig(
        time_scale=1.0,
        workflow_start_delay_s=0.0,
        task_time_median_s=0.3,
        task_time_sigma=3.0,
        task_time_min_s=0.01,
        task_time_max_s=600.0,
        rate_limit_enabled=False,
    )
    with Sandbox(credits=10_000_000, config=cfg) as sb:
        headers = {"Authorization": f"Bearer {sb.api_key}"}
        with httpx.Client(base_url=sb.base_url, headers=headers, trust_env=False, timeout=30) as c:
            out = c.post("/enrich/bulk", json={"contacts": _contacts(250, 0)}).json()
            time.sleep(2.0)
            wf = {"workflow_id": out["workflow_id"]}
            body = c.get("/enrich/status", params=wf).json()
        url = sb.base_url + "/enrich/status"
        rps = _hammer(url, wf, sb.api_key, seconds, 1)
        return {
            "workflow_processing_results_in_body": len(body["results"]),
            "workflow_processing_rps_1_thread": round(rps, 1),
        }


def main() -> None:
    """Run both benchmarks and print a JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    cfg = SandboxConfig(time_scale=args.time_scale, rate_limit_enabled=False)
    with Sandbox(credits=10_000_000, config=cfg) as sb:
        report = {"time_scale": args.time_scale, "workflows": bench_workflows(sb)}
        report["status_polls"] = bench_polls(sb, args.seconds)
    report["status_polls"] |= bench_polls_processing(args.seconds)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
