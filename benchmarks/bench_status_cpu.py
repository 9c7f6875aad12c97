"""Client CPU of one status read (``GET /enrich/status``) of 250 results, stage by stage.

At the sandbox's ``time_scale`` 0.1 every CPU millisecond the client spends on a status read
counts as ten of service time, and in ``bench_pace.py`` the sandbox serves from the same
process. This measures what the *client* spends on one read, end to end and per stage:

* ``http`` — ``httpx.AsyncClient.get`` of the body over a real loopback socket (keep-alive),
  the HTTP library's floor;
* ``request loop (incl. decode)`` — ``RequestLoop.request`` (pacer, events, ``json.loads``);
  ``decode`` — the JSON decode alone;
* ``snapshot`` — ``StatusSnapshot.from_api`` of the decoded body;
* ``status_snapshot()`` — ``AsyncClient.status_snapshot``: all of the above as the engine
  reads a workflow (a running workflow's results are not decoded);
* ``collect`` — the engine's ``_collect`` (results by task id, echo check, found, credits);
* ``cache`` — the results' cache write (``put_many_later``, written by the cache's own
  thread; each round waits for it, so its CPU is counted in the process column);
* ``flatten add`` / ``flatten flush (amortized)`` — ``FlattenedResults.add``, and one flush
  of ``batch`` results divided by the reads that fill it (the merge's work, done while the
  run waits);
* ``journal`` — ``Journal.record_done``; ``events`` — ``WorkflowProgress`` and
  ``ContactsDone`` through the run's ``RunState``;
* ``end to end`` — ``Engine._poll_workflow`` of one workflow (everything above, as run), with
  and without the cyclic GC.

Two kinds of read: a **terminal** workflow (250 results, the engine collects them) and a
**running** one (about half of the results so far; the engine only reads the summary). The
server is a tiny HTTP/1.1 server in a *child process* serving bodies made by the sandbox's
own state, so its CPU is not counted; the cache already holds ``--cache-rows`` results, as
in a long run. CPU is the least of several rounds of ``--reads`` reads (the machine may be
shared; the minimum is the cost, the rest is noise): ``time.process_time`` (every thread of
the process, the cache writer's included) and, for terminal reads, the loop thread's own
``time.thread_time``. A ``careful script`` row is the reference: ``httpx.Client.get`` +
``response.json()`` + reading the status. Runs on older versions of the package too
(without ``put_many_later`` the cache write is ``put_many``, on the loop thread).

Run: ``.venv/bin/python benchmarks/bench_status_cpu.py [--reads 30] [--rounds 7]
[--cache-rows 25000] [--json benchmarks/results/status_cpu.json] [--profile terminal|running]``
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import logging
import math
import pstats
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cleanlist_pandas as clp
from cleanlist_pandas.events import ContactsDone, WorkflowProgress, emit
from cleanlist_pandas.frame.merge import flatten_results
from cleanlist_pandas.run.engine import Engine, PollPolicy
from cleanlist_pandas.run.options import Options
from cleanlist_pandas.run.prepare import Prepared
from cleanlist_pandas.run.state import RunState
from cleanlist_pandas.sandbox.config import SandboxConfig
from cleanlist_pandas.sandbox.state import SandboxState
from cleanlist_pandas.store.provenance import Scope
from cleanlist_pandas.types import StatusSnapshot

CHUNK = 250
API_KEY = "clapi_bench_status_cpu_0123456789abcdef"

# A minimal keep-alive HTTP/1.1 server: GET ...?workflow_id=ID answers the body stored for
# ID. Run in a child process so its CPU is not this process's.
SERVER = textwrap.dedent(
    """
    import asyncio, json, sys, urllib.parse
    bodies = {k: v.encode("ascii") for k, v in json.load(open(sys.argv[1])).items()}

    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\\r\\n\\r\\n")
                target = head.split(b" ", 2)[1].decode()
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
                body = bodies[query["workflow_id"][0]]
                writer.write(
                    b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\n"
                    b"content-length: " + str(len(body)).encode() + b"\\r\\n\\r\\n" + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
    """
)


def leads(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "First Name": [f"Ann{k}" for k in range(n)],
            "Last Name": [f"Lee{k}" for k in range(n)],
            "Website": [f"https://co{k % 997}.com" for k in range(n)],
        }
    )


class Fixture:
    """``workflows`` workflows of 250 contacts: a prepared run (cache, journal, flattened
    results) whose chunks the sandbox's state processed; the status bodies of each, running
    (about half done) and terminal."""

    def __init__(
        self, workflows: int, enrichment_type: str, seed: int = 3, cache_rows: int = 0
    ) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-status-cpu-"))
        n = workflows * CHUNK
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.prep = Prepared(
                leads(n),
                Options(enrichment_type=enrichment_type, cache_dir=self.tmp),
                scope=Scope("http://127.0.0.1", "org_bench"),
            )
            self.prep.open_job(create=True)
        assert self.prep.journal is not None and self.prep.cache is not None
        if cache_rows:
            # a cache that already holds results (random keys, as fingerprints are): each
            # insert then dirties about one B-tree page, as in a long run or a used cache
            filler = {"status": "completed", "primary_email": None, "other_emails": [],
                      "prospect": {"first_name": "x" * 40, "headline": "y" * 80}}
            self.prep.cache.put_many(
                ((uuid.uuid4().hex, filler, "wf", None) for _ in range(cache_rows)),
                enrichment_type,
            )
        self.journal = self.prep.journal
        self.job_id = self.prep.job_id
        state = SandboxState(SandboxConfig(time_scale=1.0), seed=seed, api_key=API_KEY)
        principal = state.authenticate("Bearer " + API_KEY)
        self.chunks: list[tuple[int, str, tuple[str, ...], tuple[str, ...], tuple[Any, ...]]] = []
        t0 = state.now()
        for k in range(workflows):
            part = self.prep.to_send[k * CHUNK : (k + 1) * CHUNK]
            fps = tuple(fp for fp, _ in part)
            contacts = tuple(c for _, c in part)
            sub = state.submit(principal, enrichment_type, [dict(c) for c in contacts])
            wid = sub["workflow_id"]
            self.journal.record_sending(self.job_id, k, fps)
            self.journal.record_submitted(self.job_id, k, wid, sub["task_ids"])
            self.chunks.append((k, wid, fps, tuple(sub["task_ids"]), contacts))
        # half-way: the median task has finished (processing starts after 0.5 s)
        state.advance(t0 + 0.5 + 3.0)
        self.bodies: dict[str, str] = {}
        for _, wid, *_ in self.chunks:
            self.bodies["run:" + wid] = state.workflow_status_json(principal, wid).decode()
        state.advance(t0 + 1e6)
        for _, wid, *_ in self.chunks:
            self.bodies[wid] = state.workflow_status_json(principal, wid).decode()
        running = json.loads(self.bodies["run:" + self.chunks[0][1]])
        self.running_results = len(running["results"])
        assert running["workflow"]["status"] == "processing", running["workflow"]["status"]
        path = self.tmp / "bodies.json"
        path.write_text(json.dumps(self.bodies))
        self.server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert self.server.stdout is not None
        port = int(self.server.stdout.readline())
        self.base_url = f"http://127.0.0.1:{port}/api/v1/public"
        with socket.create_connection(("127.0.0.1", port)):
            pass

    def close(self) -> None:
        self.server.terminate()
        self.server.wait()
        self.prep.close()


def cpu_ms_per_read(
    fn: Callable[[int], Any],
    reads: int,
    rounds: int,
    loop: asyncio.AbstractEventLoop | None,
    settle: Callable[[], Any] | None = None,
    gc_off: bool = False,
) -> tuple[float, float]:
    """The least CPU ms per call of ``fn(i)`` over ``rounds`` rounds of ``reads`` calls
    (awaited on ``loop`` when ``fn`` returns an awaitable; ``settle()`` ends each round, e.g.
    waits for background writes): (process CPU, this thread's CPU)."""
    best, best_thread = math.inf, math.inf
    for _ in range(rounds):
        gc.collect()
        if gc_off:
            gc.disable()
        t0, th0 = time.process_time(), time.thread_time()
        try:
            for i in range(reads):
                out = fn(i)
                if loop is not None and isinstance(out, Awaitable):
                    loop.run_until_complete(out)  # type: ignore[arg-type]
            if settle is not None:
                settle()
        finally:
            gc.enable()
        best = min(best, (time.process_time() - t0) * 1000 / reads)
        best_thread = min(best_thread, (time.thread_time() - th0) * 1000 / reads)
    return best, best_thread


def measure(fx: Fixture, reads: int, rounds: int) -> dict[str, dict[str, float]]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    client = clp.AsyncClient(api_key=API_KEY, base_url=fx.base_url, rate=10**6, per=1.0)
    rl = client._requests
    http = loop.run_until_complete(_http_client(rl))
    state = RunState()
    listeners = [state]
    engine = Engine(
        client=client,
        journal=fx.journal,
        job_id=fx.job_id,
        enrichment_type=fx.prep.options.enrichment_type,
        poll=PollPolicy(first=0.0, min_interval=0.0, max_interval=0.0, eager=0.0),
        listeners=listeners,
        on_results=fx.prep.on_results,
    )
    loop.run_until_complete(_engine_ready(engine))
    chunks = fx.chunks
    w = len(chunks)
    params = [{"workflow_id": c[1]} for c in chunks]
    run_params = [{"workflow_id": "run:" + c[1]} for c in chunks]
    raw = [fx.bodies[c[1]].encode() for c in chunks]
    raw_run = [fx.bodies["run:" + c[1]].encode() for c in chunks]
    decoded = [json.loads(b) for b in raw]
    decoded_run = [json.loads(b) for b in raw_run]
    snaps = [StatusSnapshot.from_api(d) for d in decoded]
    t = fx.prep.options.enrichment_type

    async def get(p: dict[str, str]) -> None:
        r = await http.get("/enrich/status", params=p)
        r.read()

    def collect(i: int) -> None:
        _, wid, fps, tids, contacts = chunks[i % w]
        hook, engine.on_results = engine.on_results, None  # the hook is timed apart
        try:
            engine._collect(wid, fps, tids, snaps[i % w], contacts)
        finally:
            engine.on_results = hook

    collected = []
    saved_hook, engine.on_results = engine.on_results, None
    for i in range(w):
        _, wid, fps, tids, contacts = chunks[i]
        engine.on_results = lambda _w, fresh: collected.append(fresh)
        engine._collect(wid, fps, tids, snaps[i], contacts)
    engine.on_results = None
    cache = fx.prep.cache
    assert cache is not None
    flat = fx.prep.flat
    index = fx.prep.fp_index

    # the engine's hook queues the writes on the cache's own thread (put_many_later) where
    # there is one; every round waits for them (settle), so their CPU is counted
    later = getattr(cache, "put_many_later", None)
    settle = getattr(cache, "flush", None)

    def put(i: int) -> None:
        wid = chunks[i % w][1]
        entries = [(fp, res, wid, res.get("task_id")) for fp, res in collected[i % w]]
        if later is not None:
            later(entries, t)
        else:
            cache.put_many(entries, t)

    def flatten(i: int) -> None:
        fresh = collected[i % w]
        flat.add([index[fp] for fp, _ in fresh], [res for _, res in fresh])

    batch = [res for fresh in collected for _, res in fresh]
    batch = (batch * (-(-flat.batch // len(batch))))[: flat.batch]
    per_flush = flat.batch / CHUNK  # reads per flush

    def flush(i: int) -> None:
        # one flush flattens `flat.batch` results; divided by per_flush below
        flatten_results(batch, enrichment_type=t, prefix=flat.prefix)

    def journal(i: int) -> None:
        fx.journal.record_done(fx.job_id, chunks[i % w][0])

    def events(i: int) -> None:
        wid = chunks[i % w][1]
        emit(listeners, WorkflowProgress(wid, CHUNK, CHUNK, "completed"))
        emit(listeners, ContactsDone(done=i, total=10**6, found=i, credits=float(i), in_flight=3))

    def events_running(i: int) -> None:
        emit(listeners, WorkflowProgress(chunks[i % w][1], 125, CHUNK, "processing"))

    def end_to_end(i: int) -> Awaitable[None]:
        k, wid, fps, tids, contacts = chunks[i % w]
        return engine._poll_workflow(k, wid, fps, tids, time.monotonic(), 0.0, contacts)

    def careful() -> Callable[[int], Any]:
        c = httpx.Client(base_url=fx.base_url, headers={"Authorization": f"Bearer {API_KEY}"})

        def read(i: int) -> bool:
            st = c.get("/enrich/status", params=params[i % w]).json()
            return st["workflow"]["status"] in ("completed", "completed_with_errors", "failed")

        return read

    def careful_running() -> Callable[[int], Any]:
        c = httpx.Client(base_url=fx.base_url, headers={"Authorization": f"Bearer {API_KEY}"})
        return lambda i: c.get("/enrich/status", params=run_params[i % w]).json()

    def request(ps: list[dict[str, str]]) -> Callable[[int], Awaitable[Any]]:
        return lambda i: rl.request("GET", "/enrich/status", params=ps[i % w])

    def snapshot_read(ps: list[dict[str, str]]) -> Callable[[int], Awaitable[Any]]:
        return lambda i: client.status_snapshot(ps[i % w]["workflow_id"])

    engine.on_results = saved_hook
    terminal: dict[str, Callable[[int], Any]] = {
        "http": lambda i: get(params[i % w]),
        "request loop (incl. decode)": request(params),
        "decode": lambda i: json.loads(raw[i % w]),
        "snapshot": lambda i: StatusSnapshot.from_api(decoded[i % w]),
        "status_snapshot() (client, all of the above)": snapshot_read(params),
        "collect": collect,
        "cache": put,
        "flatten add": flatten,
        "flatten flush (amortized)": flush,
        "journal": journal,
        "events": events,
        "end to end (_poll_workflow)": end_to_end,
        "end to end, GC paused": end_to_end,
        "careful script (httpx + json)": careful(),
    }
    running: dict[str, Callable[[int], Any]] = {
        "http": lambda i: get(run_params[i % w]),
        "request loop (incl. decode)": request(run_params),
        "decode": lambda i: json.loads(raw_run[i % w]),
        "snapshot": lambda i: StatusSnapshot.from_api(decoded_run[i % w]),
        "status_snapshot() (client, all of the above)": snapshot_read(run_params),
        "events": events_running,
        "careful script (httpx + json)": careful_running(),
    }
    out: dict[str, dict[str, float]] = {}
    for kind, stages in (("terminal", terminal), ("running", running)):
        for name, fn in stages.items():
            # warm up (connections, caches), then measure
            cpu_ms_per_read(fn, 3, 1, loop, settle)
            if fn is flush:
                best, _ = cpu_ms_per_read(fn, 2, rounds, loop)
                best /= per_flush  # amortized over the reads of one batch
                thread = best
            else:
                best, thread = cpu_ms_per_read(
                    fn, reads, rounds, loop, settle, gc_off=name.endswith("GC paused")
                )
            out.setdefault(kind, {})[name] = round(best, 3)
            if kind == "terminal":
                out.setdefault("terminal, loop thread", {})[name] = round(thread, 3)
    loop.run_until_complete(client.aclose())
    loop.close()
    return out


async def _http_client(rl: Any) -> httpx.AsyncClient:
    client: httpx.AsyncClient = rl._client()
    return client


async def _engine_ready(engine: Engine) -> None:
    engine._changed = asyncio.Condition()
    engine._learned = asyncio.Event()


def profile(fx: Fixture, kind: str, reads: int, callers: str | None = None) -> None:
    """cProfile of ``reads`` end-to-end reads (terminal: _poll_workflow; running: the
    client's status_snapshot), by cumulative time."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    client = clp.AsyncClient(api_key=API_KEY, base_url=fx.base_url, rate=10**6, per=1.0)
    engine = Engine(
        client=client,
        journal=fx.journal,
        job_id=fx.job_id,
        enrichment_type=fx.prep.options.enrichment_type,
        poll=PollPolicy(first=0.0, min_interval=0.0, max_interval=0.0, eager=0.0),
        listeners=[RunState()],
        on_results=fx.prep.on_results,
    )
    loop.run_until_complete(_engine_ready(engine))

    async def run() -> None:
        for i in range(reads):
            k, wid, fps, tids, contacts = fx.chunks[i % len(fx.chunks)]
            if kind == "terminal":
                await engine._poll_workflow(k, wid, fps, tids, time.monotonic(), 0.0, contacts)
            else:
                await client.status_snapshot("run:" + wid)

    loop.run_until_complete(run())  # warm up
    prof = cProfile.Profile(time.thread_time)  # this thread: not the cache writer
    prof.enable()
    loop.run_until_complete(run())
    prof.disable()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(30)
    if callers:
        stats.print_callers(callers)
    loop.run_until_complete(client.aclose())
    loop.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reads", type=int, default=30, help="reads per round")
    ap.add_argument("--rounds", type=int, default=7, help="rounds (the least is kept)")
    ap.add_argument("--workflows", type=int, default=8)
    ap.add_argument(
        "--cache-rows", type=int, default=25_000, help="results already in the cache"
    )
    ap.add_argument("--type", default="partial", help="enrichment type")
    ap.add_argument("--profile", choices=["terminal", "running"], default=None)
    ap.add_argument("--callers", default=None, help="with --profile: who calls this")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/status_cpu.json"))
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    fx = Fixture(args.workflows, args.type, cache_rows=args.cache_rows)
    try:
        if args.profile:
            profile(fx, args.profile, args.reads, args.callers)
            return
        out = measure(fx, args.reads, args.rounds)
    finally:
        fx.close()
    body = len(fx.bodies[fx.chunks[0][1]])
    body_run = len(fx.bodies["run:" + fx.chunks[0][1]])
    print(
        f"CPU ms per status read ({args.type}; least of {args.rounds} rounds of {args.reads}); "
        f"terminal: {CHUNK} results, {body / 1024:.0f} KiB; running: "
        f"{fx.running_results} results, {body_run / 1024:.0f} KiB; cache holds "
        f"{args.cache_rows:,} results"
    )
    names = list(out["terminal"])
    table = pd.DataFrame({kind: [out[kind].get(n) for n in names] for kind in out}, index=names)
    print(table.to_string(na_rep="-"))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "enrichment_type": args.type,
                "reads": args.reads,
                "rounds": args.rounds,
                "body_bytes": {"terminal": body, "running": body_run},
                "running_results": fx.running_results,
                "cache_rows": args.cache_rows,
                "python": sys.version.split()[0],
                "httpx": httpx.__version__,
                "cpu_ms": out,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
