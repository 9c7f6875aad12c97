"""Issue 12 on Polars frames: ``where=`` as an expression or a boolean Series,
``only_missing=``, ``fill=`` and ``pilot()`` — Polars in, Polars out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pl = pytest.importorskip("polars")
pytest.importorskip("pyarrow")

import cleanlist_pandas as clp  # noqa: E402
from cleanlist_pandas.run.engine import PollPolicy  # noqa: E402
from cleanlist_pandas.sandbox import Sandbox  # noqa: E402

FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)


def frame(n: int) -> Any:
    i = np.arange(n)
    return pl.DataFrame(
        {
            "id": pl.Series(i.tolist(), dtype=pl.UInt16),
            "First Name": [f"Ann{k}" for k in i],
            "Last Name": [f"Lee{k}" for k in i],
            "Company": [f"Co{k % 9}" for k in i],
            "Work Email": [f"own{k}@co.com" if k % 3 == 0 else None for k in i],
            "Mobile": [None] * n,  # an all-null column: Polars' Null dtype
            "Country": ["DE" if k % 2 else "FR" for k in i],
        }
    )


def sent_names(sb: Sandbox) -> set[str]:
    return {t.contact["first_name"] for wf in sb.state.workflows.values() for t in wf.tasks}


def test_polars_where_only_missing_and_fill(sandbox: Sandbox, client: Any) -> None:
    df = frame(60)
    out = df.cleanlist.enrich(
        "full",
        where=pl.col("Country") == "DE",
        only_missing="email",
        fill=True,
        client=client,
        poll=FAST,
        progress=False,
    )
    assert isinstance(out, pl.DataFrame) and out.height == 60
    assert out.columns[: df.width] == df.columns
    assert out["id"].dtype == pl.UInt16 and out["Country"].equals(df["Country"])
    de = (df["Country"] == "DE").to_numpy()
    has = df["Work Email"].is_not_null().to_numpy()
    st = out["cl_status"].to_numpy()
    err = out["cl_error"].to_list()
    assert (st[~de] == "skipped").all() and {err[i] for i in np.flatnonzero(~de)} == {
        "excluded by where="
    }
    assert {err[i] for i in np.flatnonzero(de & has)} == {"has email (column 'Work Email')"}
    assert sent_names(sandbox) == set(df["First Name"].to_numpy()[de & ~has])
    # fill=: empty cells get the found value, existing ones are kept
    mail = out["Work Email"].to_list()
    found = out["cl_email"].to_list()
    for k in range(60):
        if has[k]:
            assert mail[k] == df["Work Email"][k]
        else:
            assert mail[k] == found[k]
    assert out["Work Email"].dtype == pl.String
    phones = out["Mobile"].to_list()
    assert phones == out["cl_phone"].to_list() and any(phones)  # the all-null column filled
    # a boolean Series and a function of the frame work the same; a bad mask is refused
    est = df.cleanlist.estimate("full", where=lambda d: d["Country"] == "DE")
    assert est.counts["excluded_by"]["where"] == 30
    with pytest.raises(clp.SelectionError, match="null"):
        df.cleanlist.estimate(where=pl.Series([True, None] * 30))
    with pytest.raises(clp.SelectionError, match="boolean"):
        df.cleanlist.estimate(where=pl.col("id"))


def test_polars_pilot_returns_the_sampled_rows_as_polars(sandbox: Sandbox, client: Any) -> None:
    df = frame(120)
    res = df.cleanlist.pilot(
        25, "partial", where=pl.col("Country") == "FR", client=client, poll=FAST, progress=False
    )
    sample = res.enriched
    assert isinstance(sample, pl.DataFrame) and sample.height == 25
    assert sample.columns[: df.width] == df.columns
    assert (sample["Country"] == "FR").all()
    assert sample["id"].to_list() == sorted(sample["id"].to_list())  # the input's order
    assert sent_names(sandbox) == set(sample["First Name"].to_list())
    assert res.population == 60 and res.rest == 35
