"""The long fault matrix: ``--runs`` seeded runs (default 20) of every fault family, each a
faulted ``enrich()`` and a recovery run, checked against the sandbox's ledger.

Prints one table: fault family × runs × rows lost × contacts charged twice × other failures
(plus rows left unsettled and rows ``unknown``), and writes it as JSON.

Run: ``.venv/bin/python benchmarks/bench_faults.py [--runs 20] [--rows 600] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fault_matrix import FAMILIES, run_once, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rows", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument("--family", action="append", help="only these families (repeatable)")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/faults.json"))
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    families = args.family or list(FAMILIES)
    results = []
    started = time.monotonic()
    for family in families:
        for k in range(args.runs):
            res = run_once(family, seed=args.seed + k, n=args.rows)
            results.append(res)
            for err in res.errors:
                print(f"  {family} seed {res.seed}: {err}", file=sys.stderr)
    frame = table(results)
    print(frame.to_string(index=False))
    print(f"\n{len(results)} runs in {time.monotonic() - started:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(frame.to_dict(orient="records"), indent=2))
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
