"""The progress bar: counters from events, drawing from the thread that calls refresh()."""

from __future__ import annotations

import io
import threading

from cleanlist_pandas.enrich.events import (
    ContactsDone,
    JobFinished,
    JobPlanned,
    RunStopped,
    Waiting,
)
from cleanlist_pandas.progress import ProgressBar


def planned(to_send: int = 500, cached: int = 0) -> JobPlanned:
    return JobPlanned("job_1", rows=600, unique=500, cached=cached, to_send=to_send, chunks=2,
                      worst_case_credits=500.0)


def test_counters_and_text_bar() -> None:
    out = io.StringIO()
    bar = ProgressBar(file=out, mininterval=0)
    bar(planned(cached=100))
    bar(Waiting(2.0, "rate limit (60 requests/min)"))
    bar(ContactsDone(done=250, total=500, found=200, credits=200.0, in_flight=1))
    text = out.getvalue()
    assert "250/500" in text and "found 200" in text and "credits 200" in text
    assert "waiting 2s: rate limit" in text and "100 from cache" in text
    bar(ContactsDone(done=500, total=500, found=390, credits=390.0, in_flight=0))
    bar(JobFinished("job_1", counts={"enriched": 390}, credits=390.0))
    assert bar.finished and "500/500" in out.getvalue()
    size = len(out.getvalue())
    bar.refresh()  # closed: no new bar
    assert len(out.getvalue()) == size


def test_draws_only_in_the_refreshing_thread() -> None:
    out = io.StringIO()
    bar = ProgressBar(file=out, mininterval=0, draw_on_event=False)
    t = threading.Thread(target=lambda: bar(planned()))
    t.start()
    t.join()
    assert out.getvalue() == ""  # the loop thread only counted
    bar.refresh()
    assert "0/500" in out.getvalue()


def test_stopped_run_and_disabled_bar() -> None:
    bar = ProgressBar(disable=True)
    bar(planned())
    bar(RunStopped("InsufficientCreditsError (402)", not_submitted=250))
    assert bar.failed and "stopped" in bar.note
    bar.close()
    bar.close()
