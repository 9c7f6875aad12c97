"""The progress bar: it draws the run's state, from the thread that calls refresh()."""

from __future__ import annotations

import io
import re
import threading
from typing import Any

import pytest

from cleanlist_pandas.events import (
    ChunkSubmitted,
    ContactsDone,
    Event,
    JobFinished,
    JobPlanned,
    RunStopped,
    Waiting,
    WorkflowProgress,
)
from cleanlist_pandas.run.state import RunState
from cleanlist_pandas.views.progress import ProgressBar


def planned(to_send: int = 500, cached: int = 0) -> JobPlanned:
    return JobPlanned("job_1", rows=600, unique=500, cached=cached, to_send=to_send, chunks=2,
                      worst_case_credits=500.0)


def viewed(**kw: Any) -> tuple[ProgressBar, Any]:
    """A bar on a fresh state, and a feed that updates the state, then the bar (the order in
    which a run subscribes them)."""
    state = RunState()
    bar = ProgressBar(state, **kw)

    def feed(event: Event) -> None:
        state(event)
        bar(event)

    return bar, feed


def test_text_bar_draws_the_state() -> None:
    out = io.StringIO()
    bar, feed = viewed(file=out, mininterval=0)
    feed(planned(cached=100))
    assert "100 from cache" in out.getvalue()
    feed(Waiting(2.0, "rate-limited (HTTP 429), waiting 2s"))
    assert "waiting 2s" in out.getvalue()
    feed(ContactsDone(done=250, total=500, found=200, credits=200.0, in_flight=1))
    text = out.getvalue()
    # the 100 cached rows count as done
    assert "350/600" in text and "found 200" in text and "credits 200" in text
    feed(ContactsDone(done=500, total=500, found=390, credits=390.0, in_flight=0))
    feed(JobFinished("job_1", counts={"enriched": 390}, credits=390.0))
    assert bar.closed and "600/600" in out.getvalue()
    size = len(out.getvalue())
    bar.refresh()  # closed: no new bar
    assert len(out.getvalue()) == size


def test_draws_only_in_the_refreshing_thread() -> None:
    out = io.StringIO()
    bar, feed = viewed(file=out, mininterval=0, draw_on_event=False)
    t = threading.Thread(target=lambda: feed(planned()))
    t.start()
    t.join()
    assert out.getvalue() == ""  # the loop thread only updated the state
    bar.refresh()
    assert "0/500" in out.getvalue()


def test_stopped_run_and_disabled_bar() -> None:
    bar, feed = viewed(disable=True)
    feed(planned())
    feed(RunStopped("InsufficientCreditsError (402)", not_submitted=250))
    assert "stopped" in bar.postfix() and bar.state.snapshot().stopped
    bar.close()
    bar.close()


def test_a_run_served_from_the_cache_reads_n_of_n_and_says_no_request_was_sent() -> None:
    out = io.StringIO()
    _bar, feed = viewed(file=out, mininterval=0)
    feed(planned(to_send=0, cached=3))
    feed(JobFinished("job_1", counts={"enriched": 3}, credits=0.0))
    text = out.getvalue()
    assert "3/3" in text and "3 from cache" in text and "no request sent" in text


def test_the_bar_moves_with_the_status_summaries_and_names_the_phase() -> None:
    out = io.StringIO()
    bar, feed = viewed(file=out, mininterval=0)
    feed(planned(to_send=500))
    assert "submitting 0/2 chunks" in bar.postfix()
    feed(ChunkSubmitted(number=0, workflow_id="wf1", contacts=250))
    feed(ChunkSubmitted(number=1, workflow_id="wf2", contacts=250))
    assert "2 workflows running" in bar.postfix()
    assert "waiting for the first results" in bar.postfix()
    feed(WorkflowProgress("wf1", completed=120, total=250, status="processing"))
    assert "120/500" in out.getvalue()  # before any workflow has ended
    # an end is extrapolated only once every running workflow has finished tasks
    assert "left" not in bar.postfix() and "waiting" not in bar.postfix()
    feed(WorkflowProgress("wf2", completed=250, total=500, status="processing"))
    assert re.search(r"2 workflows running, ~\d+s left", bar.postfix())
    feed(WorkflowProgress("wf2", completed=500, total=500, status="completed"))
    feed(ContactsDone(done=250, total=500, found=200, credits=200.0, in_flight=1))
    assert re.search(r"1 workflow running, ~\d+s left", bar.postfix())


def test_refresh_redraws_so_the_elapsed_clock_ticks() -> None:
    out = io.StringIO()
    bar, feed = viewed(file=out, mininterval=0, draw_on_event=False)
    feed(planned())
    bar.refresh()
    size = len(out.getvalue())
    bar.refresh()  # nothing changed in the run, the bar is drawn again (a new elapsed time)
    assert len(out.getvalue()) > size


def test_a_stopped_bar_leaves_its_text_without_terminal_colour_codes() -> None:
    """A stopped run's bar is red; in a notebook its final text must not read "[31m"."""
    pytest.importorskip("ipywidgets")
    from tqdm.notebook import tqdm as notebook_tqdm

    from cleanlist_pandas.views.bars import close_bar

    bar = notebook_tqdm(total=4, display=False)
    bar.update(3)
    seen: list[dict[str, str]] = []

    class Handle:
        def update(self, bundle: dict[str, str], raw: bool) -> None:
            seen.append(bundle)

    close_bar(bar, Handle(), failed=True)
    (bundle,) = seen
    assert "3/4" in bundle["text/plain"], bundle
    assert "\x1b" not in bundle["text/plain"] and "\x1b" not in bundle["text/html"], bundle
