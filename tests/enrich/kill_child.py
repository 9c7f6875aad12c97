"""A child process for the kill-and-resume tests: runs one ``enrich()`` against a sandbox and
SIGKILLs itself at a chosen point (no clean-up, no ``finally``: what a crash or an OOM kill
leaves behind).

    python kill_child.py BASE_URL API_KEY CACHE_DIR N POINT OUT.pkl [RATE PER]

POINT is one of ``none`` (run to the end and pickle the frame to OUT), ``before_submit``
(the plan is made, nothing sent), ``pacer_wait`` (right after the first chunk was accepted,
while the others wait for the pacer), ``after_submit`` (right after a chunk was accepted),
``mid_poll`` (on the first status answer) and ``mid_merge`` (while the results are merged).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import numpy as np
import pandas as pd


def leads(n: int) -> pd.DataFrame:
    """n distinct valid leads, the same in every process."""
    i = np.arange(n)
    return pd.DataFrame(
        {
            "First Name": [f"Kim{k}" for k in i],
            "Last Name": [f"Park{k}" for k in i],
            "Company Website": [f"https://www.firm{k % 89}.com" for k in i],
        }
    )


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    base_url, api_key, cache_dir, n, point, out = argv[:6]
    rate, per = (int(argv[6]), float(argv[7])) if len(argv) > 7 else (60, 0.6)
    os.environ["CLEANLIST_CACHE_DIR"] = cache_dir
    import cleanlist_pandas as clp
    from cleanlist_pandas.events import ChunkSubmitted, JobPlanned, WorkflowProgress
    from cleanlist_pandas.run import job as job_module
    from cleanlist_pandas.run import report as report_module
    from cleanlist_pandas.run.engine import PollPolicy

    def hook(event: Any) -> None:
        if (
            (point == "before_submit" and isinstance(event, JobPlanned))
            or (point in ("pacer_wait", "after_submit") and isinstance(event, ChunkSubmitted))
            or (point == "mid_poll" and isinstance(event, WorkflowProgress))
        ):
            _die()

    if point == "mid_merge":
        real = report_module.build_output

        def dying_build_output(*args: Any, **kwargs: Any) -> Any:
            real(*args, **kwargs)
            _die()

        report_module.build_output = dying_build_output  # type: ignore[assignment]

    client = clp.Client(api_key=api_key, base_url=base_url, rate=rate, per=per, burst=1)
    frame = job_module.enrich(
        leads(int(n)),
        job_module.Options(
            progress=False, errors="ignore", poll=PollPolicy(0.05, 0.02, 0.2)
        ),
        client=client,
        listeners=[hook],
    )
    assert isinstance(frame, pd.DataFrame)
    frame.to_pickle(out)
    client.close()


if __name__ == "__main__":
    main(sys.argv[1:])
