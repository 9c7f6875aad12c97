"""The fault matrix: seeded ``enrich()`` runs under each fault family, then a recovery run
(faults cleared, credits topped up, the same call again), checked against the sandbox's
ledger. Shared by the short CI version (``tests/enrich/test_fault_matrix.py``) and the long
one (``benchmarks/bench_faults.py``).

Per run it counts:

* **rows lost**: rows missing from the output, plus contacts the ledger charged whose row
  shows no result after the recovery run (and is not ``unknown``);
* **charged twice**: contacts with more than one charge in the ledger;
* **unsettled**: rows still ``pending``/``not_submitted``/``awaiting_credits`` after the
  recovery run;
* **unknown**: rows left ``unknown`` (an ambiguous submission, never resent on its own);
  each must belong to a chunk the sandbox really received;
* **errors**: exceptions other than the warnings a fault is expected to cause.
"""

from __future__ import annotations

import random
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import cleanlist_pandas as clp
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.run.job import enrich
from cleanlist_pandas.run.options import Options
from cleanlist_pandas.sandbox import Sandbox
from cleanlist_pandas.webhooks import WebhookReceiver

POLL = PollPolicy(first=0.02, min_interval=0.01, max_interval=0.2)
SETTLED = ("enriched", "not_found", "failed", "skipped")


@dataclass
class Setup:
    """What a family changes for the faulted run."""

    client: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    receiver: WebhookReceiver | None = None
    #: real seconds a slow fault may still hold a request inside the sandbox after the run
    settle_s: float = 0.0


Inject = Callable[[Sandbox, random.Random, int], Setup]


def _storm(sb: Sandbox, rng: random.Random, n: int) -> Setup:
    # longer than the client's own retries: the run must wait, not give up
    sb.inject_fault("*", "status", status=429, times=rng.randint(3, 5), retry_after=1)
    return Setup(client={"max_retries": 1})


def _submit_5xx(sb: Sandbox, rng: random.Random, n: int) -> Setup:
    for _ in range(rng.randint(1, 3)):
        sb.inject_fault("bulk", "status", status=rng.choice([500, 502, 503, 504]), times=1)
    return Setup()


def _status_5xx(sb: Sandbox, rng: random.Random, n: int) -> Setup:
    code = rng.choice([500, 502, 503, 504])
    sb.inject_fault("status", "status", status=code, probability=0.4)
    return Setup(client={"max_retries": 1})


def _drop_before(sb: Sandbox, rng: random.Random, n: int) -> Setup:
    sb.inject_fault(rng.choice(["bulk", "status"]), "drop_before", probability=0.4)
    return Setup(client={"max_retries": 2})


def _drop_after(sb: Sandbox, rng: random.Random, n: int) -> Setup:
    sb.inject_fault("bulk", "drop_after", times=1)
    sb.inject_fault("status", "drop_after", probability=0.3)
    return Setup()


def _slow(sb: Sandbox, rng: random.Random, n: int) -> Setup:
    # one answer slower than the client's time-out: the POST is processed anyway (ambiguous)
    sb.inject_fault("bulk", "slow", delay_s=0.6, times=1)
    sb.inject_fault("status", "slow", delay_s=0.1, probability=0.3)
    return Setup(client={"timeout": 0.4}, settle_s=0.7)


def _failed_workflow(sb: Sandbox, rng: random.Random, n: int) -> Setup:
    sb.inject_fault("bulk", "fail_workflow", times=rng.randint(1, 2))
    return Setup()


def _with_errors(sb: Sandbox, rng: random.Random, n: int) -> Setup:
    sb.config.task_failure_rate = 0.3
    return Setup()


def _webhooks(sb: Sandbox, rng: random.Random, n: int) -> Setup:
    if rng.random() < 0.5:  # nobody listens: every delivery fails and is retried
        return Setup(options={"webhook_url": "http://127.0.0.1:9/hook"})
    sb.config.webhook_duplicate_probability = 1.0
    rx = WebhookReceiver().start()
    return Setup(options={"webhook_url": rx.url}, receiver=rx)


def _credits_402(sb: Sandbox, rng: random.Random, n: int) -> Setup:
    sb.config.credit_rule = "positive"
    sb.set_credits(float(rng.randint(n // 5, n // 2)))
    return Setup()


def _max_credits(sb: Sandbox, rng: random.Random, n: int) -> Setup:
    return Setup(options={"max_credits": float(rng.randint(n // 5, n // 2))})


FAMILIES: dict[str, Inject] = {
    "429 storm": _storm,
    "5xx on submit": _submit_5xx,
    "5xx on status": _status_5xx,
    "dropped before processing": _drop_before,
    "dropped after processing": _drop_after,
    "slow answers, POST time-out": _slow,
    "failed workflow": _failed_workflow,
    "completed_with_errors": _with_errors,
    "webhooks failed/duplicated": _webhooks,
    "402 mid-run": _credits_402,
    "max_credits cap": _max_credits,
}


@dataclass
class RunResult:
    """One seeded run of one family."""

    family: str
    seed: int
    rows: int
    lost: int = 0
    charged_twice: int = 0
    unsettled: int = 0
    unknown: int = 0
    unknown_not_received: int = 0
    errors: list[str] = field(default_factory=list)


def leads(n: int, seed: int) -> pd.DataFrame:
    """n distinct valid leads; the seed shifts the names so runs do not share contacts."""
    i = np.arange(n) + seed * 100_000
    return pd.DataFrame(
        {
            "First Name": [f"Eve{k}" for k in i],
            "Last Name": [f"Ng{k}" for k in i],
            "Company Website": [f"https://www.corp{k % 83}.io/team" for k in i],
        }
    )


def run_once(family: str, seed: int, *, n: int = 600, time_scale: float = 0.002) -> RunResult:
    """One faulted run and one recovery run of ``family`` on a fresh sandbox."""
    rng = random.Random(f"{family}/{seed}")
    res = RunResult(family, seed, n)
    sb = Sandbox(credits=1_000_000.0, time_scale=time_scale, seed=seed).start()
    setup = Setup()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            setup = FAMILIES[family](sb, rng, n)
            df = leads(n, seed)
            base = {"poll": POLL, "progress": False, "errors": "ignore", "cache_dir": Path(tmp)}
            client = clp.Client(
                api_key=sb.api_key,
                base_url=sb.base_url,
                per=60 * time_scale,
                **setup.client,
            )
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    enrich(df, Options(**base, **setup.options), client=client)
            except clp.CleanlistError as exc:
                res.errors.append(f"faulted run: {type(exc).__name__}: {exc}"[:300])
            finally:
                client.close()
            # recovery: faults gone, credits topped up, the same call again
            sb.clear_faults()
            sb.config.task_failure_rate = 0.02
            sb.config.credit_rule = "worst_case"
            sb.set_credits(1_000_000.0)
            client = clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=60 * time_scale)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out = enrich(df, Options(**base), client=client)
            finally:
                client.close()
            assert isinstance(out, pd.DataFrame)
            time.sleep(setup.settle_s)
            received = Counter(sb.stats()["by_endpoint"].get("POST /enrich/bulk", {}))
            _score(res, sb, df, out, received)
    except Exception as exc:  # a harness or package bug: count it, keep the matrix going
        res.errors.append(f"{type(exc).__name__}: {exc}"[:300])
    finally:
        if setup.receiver is not None:
            setup.receiver.stop()
        sb.stop()
    return res


def _score(
    res: RunResult, sb: Sandbox, df: pd.DataFrame, out: pd.DataFrame, received: Counter[str]
) -> None:
    if len(out) != len(df) or not out.index.equals(df.index):
        res.lost += abs(len(df) - len(out)) or len(df)
    status = out["cl_status"].astype(str)
    charged = Counter(r["fingerprint"] for r in sb.ledger())
    res.charged_twice = sum(1 for k in charged.values() if k > 1)
    enriched = int((status == "enriched").sum())
    res.unknown = int((status == "unknown").sum())
    res.lost += max(0, len(charged) - enriched - res.unknown)
    res.unsettled = int((~status.isin([*SETTLED, "unknown"])).sum())
    # an unknown chunk must have reached the sandbox: of all bulk requests it took in both
    # runs (refusals aside), the ones not behind a known workflow are the unknown chunks
    reached = sum(v for k, v in received.items() if k not in ("402", "429", "503", "401"))
    accepted_known = out.loc[status != "unknown", "cl_workflow_id"].dropna().nunique()
    in_doubt_chunks = -(-res.unknown // 250)
    if in_doubt_chunks > max(0, reached - accepted_known):
        res.unknown_not_received = res.unknown


def table(results: list[RunResult]) -> pd.DataFrame:
    """Family × runs × rows lost × charged twice × other failures (and more)."""
    frame = pd.DataFrame(
        [
            {
                "family": r.family,
                "rows": r.rows,
                "lost": r.lost,
                "charged_twice": r.charged_twice,
                "unsettled": r.unsettled,
                "unknown": r.unknown,
                "unknown_not_received": r.unknown_not_received,
                "errors": len(r.errors),
            }
            for r in results
        ]
    )
    return (
        frame.groupby("family", sort=False)
        .agg(
            runs=("rows", "size"),
            rows=("rows", "sum"),
            rows_lost=("lost", "sum"),
            charged_twice=("charged_twice", "sum"),
            unsettled=("unsettled", "sum"),
            unknown=("unknown", "sum"),
            unknown_not_received=("unknown_not_received", "sum"),
            other_failures=("errors", "sum"),
        )
        .reset_index()
    )
