"""The sandbox's state on a virtual clock: how fast a simulator can run the API's model.

No server, no thread, no sleep: ``SandboxState(config, clock=...)`` is driven by plain calls
(submit, status) while the clock jumps. For each service model, N contacts are submitted in
workflows of 250 at time 0, then every open workflow's status is read once per read step
of virtual time (the model's own: 1 s for 3 s tasks, 60 s for 10 min tasks) until all are
terminal. Reported: CPU seconds (this thread) of a cold run (the oracle's outcomes not yet
cached) and of the best of the next runs (cached: a simulator runs the same contacts
thousands of times), the virtual time the run spans, the status reads, and how many small
runs (``--small`` contacts) a second of CPU holds.

Run: ``.venv/bin/python benchmarks/bench_sandbox_virtual.py [--contacts 10000] [--runs 3]``
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from cleanlist_pandas.sandbox import SandboxConfig, SandboxState
from cleanlist_pandas.sandbox.state import _OUTCOMES

TERMINAL = {"completed", "completed_with_errors", "failed"}

#: name -> (config fields, virtual seconds between two reads of every open workflow)
MODELS: dict[str, tuple[dict[str, Any], float]] = {
    "default (3 s tasks, all at once)": ({}, 1.0),
    "queued (20 workers per org)": ({"workers_per_org": 20}, 5.0),
    "slow (10 min median, sigma 1.5, spreads, 500 workers)": (
        {
            "task_time_median_s": 600.0,
            "task_time_sigma": 1.5,
            "workflow_speed_sigma": 0.5,
            "workflow_start_delay_s": 60.0,
            "workflow_start_delay_sigma": 1.0,
            "workers_per_org": 500,
        },
        60.0,
    ),
}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def contacts(n: int) -> list[dict[str, str]]:
    return [
        {"first_name": f"Ann{k}", "last_name": f"Lee{k}", "company_domain": f"co{k % 997}.com"}
        for k in range(n)
    ]


def run(fields: dict[str, Any], step: float, people: list[dict[str, str]]) -> dict[str, Any]:
    """One run: submit ``people`` in workflows of 250 at time 0, read every open workflow
    every ``step`` virtual seconds until all are terminal."""
    clock = Clock()
    cfg = SandboxConfig(rate_limit_enabled=False, **fields)
    t0 = time.thread_time()
    st = SandboxState(cfg, seed=0, credits=1e9, clock=clock, epoch=0.0)
    p = st.admit("Bearer " + st.api_key)
    ids = [
        st.submit(p, "partial", people[i : i + 250])["workflow_id"]
        for i in range(0, len(people), 250)
    ]
    open_ = set(ids)
    reads = 0
    while open_:
        clock.t += step
        still = set()
        for wid in open_:
            reads += 1
            if st.workflow_status(p, wid)["workflow"]["status"] not in TERMINAL:
                still.add(wid)
        open_ = still
    return {"cpu_s": time.thread_time() - t0, "virtual_s": clock.t, "reads": reads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contacts", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3, help="runs per model (the first is cold)")
    ap.add_argument("--small", type=int, default=500, help="contacts of a small run")
    args = ap.parse_args()
    people = contacts(args.contacts)
    small = contacts(args.small)
    for name, (fields, step) in MODELS.items():
        _OUTCOMES.clear()  # the first run is cold
        results = [run(fields, step, people) for _ in range(args.runs)]
        cold, warm = results[0], min(results[1:] or results, key=lambda r: r["cpu_s"])
        t0, n = time.thread_time(), 0
        while time.thread_time() - t0 < 1.0:
            run(fields, step, small)
            n += 1
        per_s = n / (time.thread_time() - t0)
        print(
            f"{name}: {args.contacts:,} contacts, {cold['reads']} reads over "
            f"{cold['virtual_s']:,.0f} s of virtual time: CPU {cold['cpu_s']:.3f} s cold, "
            f"{warm['cpu_s']:.3f} s warm; {per_s:,.0f} runs/s of {args.small} contacts"
        )


if __name__ == "__main__":
    main()
