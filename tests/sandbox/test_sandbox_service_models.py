"""The sandbox's service models (issue 23): worker capacity per organization, per-workflow
speed and start-delay spreads, any task-time median and sigma — and the state on an
injected clock, driven as plain method calls with no HTTP, thread or sleep (the way a
discrete-event simulator drives it), giving the very schedule the server gives."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sandbox_helpers import client, contacts, submit

import cleanlist_pandas.sandbox.state as state_module
from cleanlist_pandas.sandbox import ApiError, Sandbox, SandboxConfig, SandboxState
from cleanlist_pandas.sandbox.state import Principal

TERMINAL = {"completed", "completed_with_errors", "failed"}


class FakeClock:
    """A virtual clock: reads ``t``, moves only when told."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def virtual(config: SandboxConfig, seed: int = 0, credits: float = 1e9) -> tuple[
    SandboxState, FakeClock, Principal
]:  # fmt: skip
    """A state on a fake clock starting at 0 (epoch 0: ISO times read as offsets)."""
    clock = FakeClock()
    st = SandboxState(config, seed=seed, credits=credits, clock=clock, epoch=0.0)
    return st, clock, st.admit("Bearer " + st.api_key)


def drive(st: SandboxState, clock: FakeClock, p: Principal, ids: list[str]) -> int:
    """Jump the clock from event to event, reading every open workflow's status at each,
    until all are terminal; return the number of status reads."""
    open_ = list(ids)
    reads = 0
    while open_:
        nxt = st.next_event_at()
        assert nxt is not None, "open workflows but nothing scheduled"
        clock.t = max(clock.t, nxt)
        still = []
        for wid in open_:
            reads += 1
            if st.workflow_status(p, wid)["workflow"]["status"] not in TERMINAL:
                still.append(wid)
        open_ = still
    return reads


@contextmanager
def no_real_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Inside: the state module cannot read real time at all, and this thread cannot sleep."""

    class NoRealTime:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the state read real time: time.{name}")

    me = threading.current_thread()
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if threading.current_thread() is me:
            raise AssertionError(f"slept {seconds} s")
        real_sleep(seconds)

    with monkeypatch.context() as m:
        m.setattr(state_module, "time", NoRealTime())
        m.setattr(time, "sleep", sleep)
        yield


def durations(st: SandboxState, wid: str) -> list[float]:
    return [t.duration for t in st.workflows[wid].tasks]


# --- the default model is unchanged ---------------------------------------------------------


def test_default_schedule_is_unchanged() -> None:
    """The default config's schedule, to the last bit, as the sandbox drew it before the
    service-model knobs existed (benchmarks and tests rely on it): seed 0, five workflows
    submitted at 0, 1, 2, 3, 4 s; each task ends at its submission + 0.5 s + its lognormal
    draw. (Five, not one: a stray draw on the task stream can hide for a workflow or two,
    since the normal sampler eats its stream in pairs and rejects some.)"""
    st, clock, p = virtual(SandboxConfig(), seed=0)
    ids = []
    for k, (n, prefix) in enumerate([(4, "a"), (3, "b"), (5, "c"), (1, "d"), (2, "e")]):
        clock.t = float(k)
        ids.append(st.submit(p, "partial", contacts(n, prefix))["workflow_id"])
    ends = [[t.finish_at for t in st.workflows[w].tasks] for w in ids]
    expected = [
        [3.31301935850742, 3.5343242090770466, 4.331291609917399, 3.400501180471201],
        [6.420154907067806, 3.254510207263589, 4.7984086209623555],
        [4.467325987932297, 5.44471729840375, 5.210230790875691, 5.207766696124858,
         3.934801273321173],
        [6.590304033777862],
        [8.23611350357871, 9.899887388806384],
    ]  # fmt: skip
    assert ends == [pytest.approx(row, rel=1e-12) for row in expected]


# --- one model of the API: the virtual clock replays the real one ---------------------------

MODELS: dict[str, dict[str, Any]] = {
    "default": {},
    "queued, spread": {
        "workers_per_org": 3,
        "workflow_speed_sigma": 0.6,
        "workflow_start_delay_sigma": 0.8,
        "task_time_sigma": 0.9,
    },
}
BATCHES = [
    ("partial", contacts(20, "a")),
    ("full", contacts(7, "b")),
    ("prospecting_only", contacts(12, "c")),
    ("none", contacts(1, "d")),
    ("partial", contacts(30, "e")),
]


def _without_ids(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "task_id"} for r in body["results"]]


@pytest.mark.parametrize("model", list(MODELS))
def test_virtual_clock_replays_the_real_clocks_schedule(
    make_sandbox: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """The server (real clock, HTTP, background ticker) and a bare state driven on a fake
    clock through submit -> advance -> status, with the same seed and config and the
    submissions at the same instants, give the same schedule, task by task, and the same
    results — and the fake-clock run never reads real time nor sleeps."""
    cfg = SandboxConfig(time_scale=0.002, rate_limit_enabled=False, **MODELS[model])
    sb = make_sandbox(config=cfg, seed=11)
    with client(sb) as c:
        ids = [
            submit(c, {"enrichment_type": e, "contacts": cs})["workflow_id"] for e, cs in BATCHES
        ]
        assert sb.wait_idle(30)
        real_bodies = [c.get("/enrich/status", params={"workflow_id": w}).json() for w in ids]
    real = sb.schedule()["workflows"]
    real_tasks = [[(t.start_at, t.finish_at) for t in sb.state.workflows[w].tasks] for w in ids]
    sb.stop()
    if model != "default":  # the model is in play: tasks waited for workers
        assert any(t.start_at != sb.state.workflows[w].start_at
                   for w in ids for t in sb.state.workflows[w].tasks)  # fmt: skip

    with no_real_time(monkeypatch):
        clock = FakeClock()
        st = SandboxState(cfg, seed=11, credits=10_000.0, clock=clock, epoch=0.0)
        p = st.admit("Bearer " + st.api_key)
        vids = []
        for (etype, cs), row in zip(BATCHES, real, strict=True):
            clock.t = row["submitted"]
            vids.append(st.submit(p, etype, cs)["workflow_id"])
        drive(st, clock, p, vids)
        bodies = [st.workflow_status(p, w) for w in vids]
        sched = st.schedule()["workflows"]

    assert [(r["submitted"], r["finishes"], r["completed"]) for r in sched] == [
        (r["submitted"], r["finishes"], r["completed"]) for r in real
    ]
    assert [[(t.start_at, t.finish_at) for t in st.workflows[w].tasks] for w in vids] == real_tasks
    assert [_without_ids(b) for b in bodies] == [_without_ids(b) for b in real_bodies]
    assert st.balance() == sb.balance()


def test_every_time_the_state_reads_is_its_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workflow times, ISO wall times, the rate-limit window, key expiry and the agent
    balance's timestamp all come from the injected clock; nothing sleeps."""
    with no_real_time(monkeypatch):
        cfg = SandboxConfig(rate_limit_per_org=2, balance_shape="agent")
        st, clock, _ = virtual(cfg)  # admit() opened a window at 0 s
        clock.t = 100.0
        key = st.add_key(st.organization_id, expires_in_s=50)
        p = st.admit("Bearer " + key)  # the window [0, 60) is over: a new one opens at 100 s
        wid = st.submit(p, "partial", contacts(2))["workflow_id"]
        clock.t = 149.0
        body = st.workflow_status(p, wid)["workflow"]
        (row,) = st.schedule()["workflows"]
        assert body["created_at"] == "1970-01-01T00:01:40.000Z" and row["submitted"] == 100.0
        assert 100.5 < row["completed"] <= 120.5
        assert body["completed_at"] == st.iso(row["completed"])
        assert st.balance_body(p)["timestamp_ms"] == 149_000
        st.admit("Bearer " + key)  # the window opened at 100 s holds 2 requests now
        with pytest.raises(ApiError) as over:
            st.admit("Bearer " + key)
        assert over.value.status == 429 and over.value.headers == {"Retry-After": "11"}
        clock.t = 150.0  # the key expires (50 s after it was made)
        with pytest.raises(ApiError) as expired:
            st.admit("Bearer " + key)
        assert expired.value.status == 401


def test_plain_methods_return_the_routes_bodies(sandbox: Sandbox) -> None:
    """Submit, status, balance and deliveries as plain calls answer exactly what the HTTP
    routes answer (the routes only parse, validate and serialize)."""
    sandbox.config.balance_shape = "agent"
    sandbox.config.deliveries_shape = "object"
    st = sandbox.state
    p = st.admit("Bearer " + sandbox.api_key)
    with client(sandbox) as c:
        wid = st.submit(p, "full", contacts(3))["workflow_id"]
        assert sandbox.wait_idle(10)
        for route, params, plain in [
            ("/enrich/status", {"workflow_id": wid}, lambda: st.workflow_status(p, wid)),
            ("/webhooks/deliveries", {"workflow_id": wid}, lambda: st.deliveries_body(p, wid)),
            ("/credits/balance", {}, lambda: st.balance_body(p)),
        ]:
            over_http = c.get(route, params=params).json()
            here = plain()
            if route == "/credits/balance":  # the timestamp moves on
                assert abs(over_http.pop("timestamp_ms") - here.pop("timestamp_ms")) < 5000
            assert over_http == here, route
        r = c.post("/enrich/bulk", json={"contacts": contacts(251)})
        with pytest.raises(ApiError) as too_many:
            st.submit(p, "partial", contacts(251))
        assert (r.status_code, r.json()["detail"]) == (400, too_many.value.detail)


# --- worker capacity ------------------------------------------------------------------------


def test_workers_per_org_queue_fifo() -> None:
    """Two workers per organization, every task exactly 10 s, start delay 1 s. A (3 tasks)
    at 0 s, B (2 tasks) at 0.5 s in one organization, C (1 task) at 0.5 s in another:
    A0, A1 run 1 -> 11; A2 then B0 run 11 -> 21; B1 runs 21 -> 31; C runs 1.5 -> 11.5,
    untouched by the first organization's queue. Queued tasks are pending."""
    cfg = SandboxConfig(
        workers_per_org=2, workflow_start_delay_s=1.0, task_time_median_s=10.0,
        task_time_sigma=0.0, task_failure_rate=0.0, rate_limit_enabled=False,
    )  # fmt: skip
    st, clock, p = virtual(cfg)
    other_org, other_key = st.add_organization()
    q = st.admit("Bearer " + other_key)
    a = st.submit(p, "partial", contacts(3, "a"))
    clock.t = 0.5
    b = st.submit(p, "partial", contacts(2, "b"))
    c = st.submit(q, "partial", contacts(1, "c"))

    def state_at(t: float) -> tuple[Any, ...]:
        clock.t = t
        summaries = [
            st.workflow_status(who, out["workflow_id"])["workflow"]["summary"]
            for who, out in ((p, a), (p, b), (q, c))
        ]
        tasks = [
            st.task_status(who, tid)["task"]["status"]
            for who, out in ((p, a), (p, b), (q, c))
            for tid in out["task_ids"]
        ]
        return [(s["completed"], s["pending"]) for s in summaries], tasks

    assert state_at(5.0) == (
        [(0, 3), (0, 2), (0, 1)],
        ["processing", "processing", "pending", "pending", "pending", "processing"],
    )
    assert st.next_event_at() == 11.0
    assert state_at(11.0) == (
        [(2, 1), (0, 2), (0, 1)],
        ["completed", "completed", "processing", "processing", "pending", "processing"],
    )
    assert state_at(21.0)[0] == [(3, 0), (1, 1), (1, 0)]
    assert state_at(31.0)[0] == [(3, 0), (2, 0), (1, 0)]
    rows = {r["workflow_id"]: r for r in st.schedule()["workflows"]}
    ends = [rows[out["workflow_id"]]["finishes"] for out in (a, b, c)]
    assert ends == [21.0, 31.0, 11.5]
    assert st.workflow_status(p, b["workflow_id"])["workflow"]["completed_at"] == (
        "1970-01-01T00:00:31.000Z"
    )
    assert other_org != st.organization_id and st.all_terminal()


def test_schedule_finishes_is_null_while_a_task_waits() -> None:
    cfg = SandboxConfig(workers_per_org=1, task_time_sigma=0.0, rate_limit_enabled=False)
    st, clock, p = virtual(cfg)
    wid = st.submit(p, "partial", contacts(2))["workflow_id"]
    (row,) = st.schedule()["workflows"]
    assert row["finishes"] is None
    clock.t = 0.5 + 3.0  # the first task ends, the second starts
    (row,) = st.schedule()["workflows"]
    assert row["finishes"] == 0.5 + 3.0 + 3.0 and row["completed"] is None
    assert st.workflow_status(p, wid)["workflow"]["summary"]["pending"] == 1


def test_advancing_at_any_moments_gives_one_schedule() -> None:
    """Same seed and config, same submissions: the schedule does not depend on when the
    state is advanced or read (event by event, every 0.37 s, or once at the end)."""
    cfg = SandboxConfig(
        workers_per_org=4, workflow_speed_sigma=0.7, workflow_start_delay_sigma=1.0,
        task_time_sigma=1.2, rate_limit_enabled=False,
    )  # fmt: skip

    def run(reads: str) -> list[tuple[Any, ...]]:
        st, clock, p = virtual(cfg, seed=5)
        ids = []
        for k in range(8):
            clock.t = 0.3 * k
            ids.append(st.submit(p, "full", contacts(9 + k, f"w{k}"))["workflow_id"])
        if reads == "events":
            drive(st, clock, p, ids)
        elif reads == "steps":
            while not st.all_terminal():
                clock.t += 0.37
                st.advance()
        else:
            clock.t = 1e6
        return [
            (r["submitted"], r["finishes"], r["completed"], st.workflow_status(p, r["workflow_id"])
             ["workflow"]["summary"]["successful"])
            for r in st.schedule()["workflows"]
        ]  # fmt: skip

    once = run("once")
    assert run("events") == once and run("steps") == once
    assert all(row[1] is not None and row[2] == row[1] for row in once)


# --- per-workflow spreads -------------------------------------------------------------------


def test_workflow_speed_factor_multiplies_all_its_tasks() -> None:
    """A lognormal factor of median 1 and sigma ``workflow_speed_sigma``, drawn per
    workflow, multiplies all its task times; the task draws themselves do not move."""
    base_cfg = SandboxConfig(task_time_sigma=0.35, rate_limit_enabled=False)
    fast_cfg = SandboxConfig(task_time_sigma=0.35, workflow_speed_sigma=1.0,
                             rate_limit_enabled=False)  # fmt: skip

    def draw(cfg: SandboxConfig, seed: int) -> list[list[float]]:
        st, _, p = virtual(cfg, seed=seed)
        return [
            durations(st, st.submit(p, "none", contacts(3, f"s{k}"))["workflow_id"])
            for k in range(400)
        ]

    base, spread = draw(base_cfg, 3), draw(fast_cfg, 3)
    factors = []
    for plain, slowed in zip(base, spread, strict=True):
        ratios = [s / b for s, b in zip(slowed, plain, strict=True)]
        assert max(ratios) == pytest.approx(min(ratios), rel=1e-9)  # one factor per workflow
        factors.append(ratios[0])
    logs = [math.log(f) for f in factors]
    assert abs(statistics.fmean(logs)) < 0.15  # median 1
    assert 0.85 < statistics.stdev(logs) < 1.15  # sigma 1
    assert draw(fast_cfg, 3) == spread  # deterministic per seed
    assert draw(fast_cfg, 4) != spread


def test_start_delay_spread_and_minutes_long_delays() -> None:
    """Each workflow's start delay is ``workflow_start_delay_s`` x a lognormal factor of
    median 1 and sigma ``workflow_start_delay_sigma``; a delay of minutes is not capped."""
    cfg = SandboxConfig(workflow_start_delay_s=300.0, workflow_start_delay_sigma=0.5,
                        rate_limit_enabled=False)  # fmt: skip
    st, clock, p = virtual(cfg, seed=2)
    delays = []
    for k in range(400):
        wid = st.submit(p, "none", contacts(1, f"d{k}"))["workflow_id"]
        delays.append(st.workflows[wid].start_at - st.workflows[wid].created_at)
    logs = [math.log(d / 300.0) for d in delays]
    assert abs(statistics.fmean(logs)) < 0.08 and 0.42 < statistics.stdev(logs) < 0.58

    st, clock, p = virtual(SandboxConfig(workflow_start_delay_s=600.0, time_scale=1.0))
    out = st.submit(p, "partial", contacts(1))
    clock.t = 599.999
    assert st.task_status(p, out["task_ids"][0])["task"]["status"] == "pending"
    clock.t = 600.0
    assert st.task_status(p, out["task_ids"][0])["task"]["status"] == "processing"
    clock.t = 600.0 + 20.0  # the longest a task takes at the default median and sigma
    assert st.workflow_status(p, out["workflow_id"])["workflow"]["status"] in TERMINAL


# --- task-time medians and sigmas ------------------------------------------------------------


@pytest.mark.parametrize(
    ("median", "sigma"), [(0.3, 0.1), (0.3, 1.5), (3.0, 0.35), (600.0, 0.1), (600.0, 1.5)]
)
def test_any_task_time_median_and_sigma_behave(median: float, sigma: float) -> None:
    """Medians from 0.3 s to 10 min and sigmas from 0.1 to 1.5 give that lognormal: the
    default clip is relative (about 5 sigma either side of the median), so it clips
    practically nothing and never pins a 10-minute median to a fixed maximum."""
    cfg = SandboxConfig(task_time_median_s=median, task_time_sigma=sigma,
                        rate_limit_enabled=False)  # fmt: skip
    assert cfg.problems() == []
    st, _, p = virtual(cfg, seed=1)
    times: list[float] = []
    for k in range(12):
        times += durations(st, st.submit(p, "none", contacts(250, f"m{k}"))["workflow_id"])
    logs = [math.log(t / median) for t in times]
    assert abs(statistics.median(logs)) < 0.1 * max(sigma, 0.35)
    assert statistics.stdev(logs) == pytest.approx(sigma, rel=0.06)
    low, high = cfg.task_time_bounds()
    assert sum(t in (low, high) for t in times) <= 1  # the clip touches (almost) nothing


def test_absolute_clip_still_applies_and_null_restores_the_relative_one(
    sandbox: Sandbox,
) -> None:
    cfg = SandboxConfig(task_time_median_s=600.0, task_time_max_s=30.0, task_time_min_s=10.0)
    assert cfg.task_time_bounds() == (10.0, 30.0)
    st, _, p = virtual(cfg)
    assert set(durations(st, st.submit(p, "none", contacts(50))["workflow_id"])) == {30.0}
    with httpx.Client(base_url=sandbox.root_url + "/_sandbox", trust_env=False) as ctl:
        # a max below the relative min (600 / 6 = 100 s) makes no sense: refused, naming it
        r = ctl.patch("/config", json={"task_time_median_s": 600, "task_time_max_s": 30})
        assert r.status_code == 422 and "[100, 30]" in r.json()["detail"]
        r = ctl.patch(
            "/config",
            json={"task_time_median_s": 600, "task_time_min_s": 10, "task_time_max_s": 30},
        )
        assert r.status_code == 200 and r.json()["task_time_max_s"] == 30
        assert sandbox.config.task_time_bounds() == (10.0, 30.0)
        r = ctl.patch("/config", json={"task_time_min_s": None, "task_time_max_s": None})
        assert r.status_code == 200 and r.json()["task_time_max_s"] is None
    assert sandbox.config.task_time_bounds() == (100.0, 4000.0)


# --- throughput -------------------------------------------------------------------------------


def test_virtual_clock_throughput() -> None:
    """10,000 contacts (40 workflows of 250) submitted and read to completion on a virtual
    clock, every open workflow read at every virtual second: a fraction of a second of
    CPU (the benchmark ``benchmarks/bench_sandbox_virtual.py`` reports the number). The
    bound here is loose, for a loaded CI machine."""
    st, clock, p = virtual(SandboxConfig(rate_limit_enabled=False), seed=0)
    t0 = time.thread_time()
    ids = [st.submit(p, "partial", contacts(250, f"t{k}"))["workflow_id"] for k in range(40)]
    open_ = set(ids)
    while open_:
        clock.t += 1.0
        open_ = {w for w in open_
                 if st.workflow_status(p, w)["workflow"]["status"] not in TERMINAL}  # fmt: skip
    cpu = time.thread_time() - t0
    assert sum(len(st.workflows[w].tasks) for w in ids) == 10_000
    assert len(st.ledger()) > 5_000
    assert cpu < 4.0, f"{cpu:.2f} s of CPU for 10,000 contacts on a virtual clock"
