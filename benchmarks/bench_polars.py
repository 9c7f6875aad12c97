"""Polars vs pandas on a 1,000,000-row messy lead frame: peak memory and CPU of the frame layer.

Run by hand (not collected by pytest)::

    .venv/bin/python benchmarks/bench_polars.py               # 1,000,000 rows
    .venv/bin/python benchmarks/bench_polars.py --rows 200000

The frame is ``bench_cpu.make_frame`` (a messy CRM export, ~30% duplicates), stored once as
Parquet; the simulated API results of its unique contacts are pickled once. Each variant
then runs in a fresh process that loads the frame (pandas or Polars) and the results, and
measures one "enrich without the network": convert in, map + plan + merge (the pandas
path every variant shares), convert out. Measured per variant:

- CPU seconds (``time.process_time``: every thread of the process, so Polars' and Arrow's
  thread pools are counted) and wall seconds;
- peak extra memory: the kernel's high-water mark of resident memory (``VmHWM``, reset
  through ``/proc/self/clear_refs`` just before the step) minus the resident memory before
  it. RSS and not tracemalloc, because Arrow and Polars allocate outside Python's
  allocator.

Variants:

``pandas``          the pandas frame straight into the pandas path (the reference);
``polars-arrow``    what ``pl_df.cleanlist`` does: only the columns the run reads go to
                    pandas, Arrow-backed without a copy; the ``cl_*`` columns come back
                    through Arrow and are ``hstack``-ed onto the caller's frame;
``polars-numpy``    the same column subset, but ``to_pandas()`` with numpy/object columns;
``polars-full``     the naive wrap: the whole frame ``to_pandas()``, the whole result
                    ``pl.from_pandas()``;
``narwhals``        the naive wrap written with narwhals (``nw.from_native(df).to_pandas()``,
                    then ``to_polars()``), if narwhals is installed.
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

VARIANTS = ("pandas", "polars-arrow", "polars-numpy", "polars-full", "narwhals")


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def prepare(n: int, workdir: Path) -> dict[str, Any]:
    """Build the frame (Parquet) and the results of its unique contacts (pickle), once."""
    from bench_cpu import make_frame, simulate_results

    from cleanlist_pandas.frame.mapping import map_contacts
    from cleanlist_pandas.frame.plan import plan

    df = make_frame(n)
    # Parquet (like Polars) wants one type per column: the numeric first names become text,
    # which the mapping still rejects as "a name made of digits"
    df["First Name"] = df["First Name"].astype(str)
    df.to_parquet(workdir / "leads.parquet", index=False)
    p = plan(map_contacts(df), "full")
    results = simulate_results(p.unique_contacts)
    with open(workdir / "results.pickle", "wb") as f:
        pickle.dump(results, f, protocol=pickle.HIGHEST_PROTOCOL)
    return {"rows": n, "unique": p.n_unique, "duplicates": p.n_duplicates}


def child(variant: str, workdir: Path) -> dict[str, Any]:
    """One variant in this (fresh) process; returns its measurements."""
    import pandas as pd
    import polars as pl

    import cleanlist_pandas  # noqa: F401  (registers the namespaces)
    from cleanlist_pandas.frame.mapping import _extractor, map_contacts
    from cleanlist_pandas.frame.merge import build_output
    from cleanlist_pandas.frame.plan import plan
    from cleanlist_pandas.polars import source_columns, to_pandas_input, with_output_columns

    nw: Any = None
    if variant == "narwhals":
        import narwhals as nw

    with open(workdir / "results.pickle", "rb") as f:
        results = pickle.load(f)
    if variant == "pandas":
        frame: Any = pd.read_parquet(workdir / "leads.parquet")
        in_bytes = int(frame.memory_usage(deep=True).sum())
    else:
        frame = pl.read_parquet(workdir / "leads.parquet")
        in_bytes = int(frame.estimated_size())
    _extractor()
    # warm up once on 1,000 rows (imports, first-call caches), as bench_cpu does
    warm = frame.head(1000)
    if variant != "pandas":
        warm = to_pandas_input(warm)
    build_output(
        warm, plan(map_contacts(warm), "full"), [None] * plan(map_contacts(warm), "full").n_unique
    )
    del warm
    gc.collect()

    steps: dict[str, float] = {}
    clocks = (time.perf_counter, time.process_time)

    peaks: dict[str, float] = {}

    def mark(name: str, t: list[float]) -> list[float]:
        now = [c() for c in clocks]
        steps[name] = now[1] - t[1]
        steps[name + "_wall"] = now[0] - t[0]
        peaks[name] = (_status_kib("VmHWM") - rss0) / 1024  # this step's own high-water mark
        _reset_peak()
        return [c() for c in clocks]

    rss0 = _status_kib("VmRSS")
    _reset_peak()
    start = [c() for c in clocks]
    t = start
    if variant == "pandas":
        pdf = frame
    elif variant == "polars-arrow":
        pdf = to_pandas_input(frame)
    elif variant == "polars-numpy":
        pdf = frame.select(source_columns(frame)).to_pandas()
    elif variant == "polars-full":
        pdf = frame.to_pandas()
    else:
        pdf = nw.from_native(frame, eager_only=True).to_pandas()
    t = mark("in", t)
    m = map_contacts(pdf)
    t = mark("map", t)
    p = plan(m, "full")
    t = mark("plan", t)
    out = build_output(pdf, p, results)
    t = mark("merge", t)
    if variant == "pandas":
        final: Any = out
    elif variant in ("polars-arrow", "polars-numpy"):
        final = with_output_columns(frame, out, pdf.shape[1])
    elif variant == "polars-full":
        final = pl.from_pandas(out)
    else:
        final = nw.from_native(out, eager_only=True).to_polars()
    t = mark("out", t)
    total = [c() for c in clocks]
    assert final.shape[0] == len(frame)
    assert list(final.columns[: frame.shape[1]]) == list(frame.columns)
    if variant != "pandas":
        assert isinstance(final, pl.DataFrame)
        assert final.select(frame.columns).equals(frame)  # the input columns came back as-is
    return {
        "variant": variant,
        "input_mib": in_bytes / 2**20,
        "rss_before_mib": rss0 / 1024,
        "peak_extra_mib": max(peaks.values()),
        "peak_step": max(peaks, key=lambda k: peaks[k]),
        "peaks": peaks,
        "cpu": total[1] - start[1],
        "wall": total[0] - start[0],
        "steps": steps,
        "out_cols": final.shape[1],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--repeat", type=int, default=2, help="runs per variant (least CPU kept)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.workdir))))
        return

    import pandas as pd
    import polars as pl

    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        print(f"building a {args.rows:,}-row frame ...", flush=True)
        info = prepare(args.rows, work)
        rows = []
        for v in args.variants.split(","):
            if v == "narwhals":
                try:
                    import narwhals  # noqa: F401
                except ImportError:
                    print("narwhals: not installed, skipped")
                    continue
            print(f"running {v} ...", flush=True)
            runs = []
            for _ in range(args.repeat):
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", v, "--workdir", str(work)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if proc.returncode != 0:
                    print(proc.stderr[-2000:])
                    break
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            if runs:
                rows.append(min(runs, key=lambda r: r["cpu"]))

    print()
    print(
        f"rows {info['rows']:,}  unique contacts {info['unique']:,}  duplicates "
        f"{info['duplicates']:,}  (pandas {pd.__version__}, polars {pl.__version__})"
    )
    print()
    head = (
        f"{'variant':<14}{'input MiB':>10}{'peak+ MiB':>10}{'(in step)':>10}{'cpu s':>8}"
        f"{'wall s':>8}{'in':>7}{'map':>7}{'plan':>7}{'merge':>7}{'out':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        s = r["steps"]
        print(
            f"{r['variant']:<14}{r['input_mib']:>10,.0f}{r['peak_extra_mib']:>10,.0f}"
            f"{r['peak_step']:>10}{r['cpu']:>8.2f}{r['wall']:>8.2f}"
            + "".join(f"{s[k]:>7.2f}" for k in ("in", "map", "plan", "merge", "out"))
        )
    print()
    print("cpu s: process CPU (all threads) of convert in + map + plan + merge + convert out,")
    print("the least of --repeat runs (the machine may be shared); steps from that run;")
    print("peak+: the process's resident-memory high-water mark during those steps, minus")
    print("its resident memory before them (the loaded frame and the results); (in step):")
    print("the step where it was reached.")


if __name__ == "__main__":
    main()
