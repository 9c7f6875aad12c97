"""What differs between pandas 2.2 and 3, covered on both (scripts/test.sh runs this twice).

- the default string dtype: ``object`` in 2.2 (``str`` with ``future.infer_string``), ``str``
  in 3; plus ``string`` (python or pyarrow storage) and ``dtype_backend=`` frames;
- copy-on-write: off by default in 2.2 (on with ``mode.copy_on_write``), always on in 3;
  the output must never share writable memory with the input, in any mode;
- accessor caching: 2.2 caches ``df.cleanlist`` on the frame, 3 builds a new one on every
  access; the accessor must hold nothing, so both behave alike.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import cleanlist_pandas as clp
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.sandbox import Sandbox

PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3
FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)
CSV = (
    "First Name,Last Name,Company,Website,LinkedIn,Employees,Notes\n"
    "Ada,Lovelace,Analytical,https://www.analytical.co.uk/about,,12,\n"
    " Alan ,Turing,Bletchley,bletchley.org,,,n/a\n"
    ",,,,https://www.linkedin.com/in/Grace-Hopper/?utm=x,3,LinkedIn only\n"
    "Barbara,,Liskov Labs,liskov.example.com,,,missing last name\n"
    "Ada,Lovelace,Analytical,analytical.co.uk,,12,duplicate\n"
    "Zoë,Müller,Ünïcode GmbH,https://ünï.de/x,,7,\n"
    "123,456,Numbers,numbers.io,,,digits\n"
    "Ken,Thompson,Bell Labs,,,,\n"
)


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[clp.Client]:
    sandbox.config.task_failure_rate = 0.0
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, per=0.12)
    yield c
    c.close()


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    p = tmp_path / "leads.csv"
    p.write_text(CSV, encoding="utf-8")
    return p


def run(df: pd.DataFrame, client: clp.Client, **kw: Any) -> pd.DataFrame:
    out = df.cleanlist.enrich(client=client, progress=False, poll=FAST, **kw)
    assert isinstance(out, pd.DataFrame)
    return out


@contextlib.contextmanager
def pandas_options(**options: Any) -> Iterator[None]:
    """``pd.option_context`` that tolerates the options pandas 3 deprecated (no-ops)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        args = [x for kv in options.items() for x in kv]
        with pd.option_context(*args) if args else contextlib.nullcontext():
            yield


# -- the string dtype ------------------------------------------------------------------------
READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "default": lambda p: pd.read_csv(p),
    "infer_string": lambda p: _with_infer_string(p),
    "string[python]": lambda p: _string_storage(p, "python"),
    "string[pyarrow]": lambda p: _string_storage(p, "pyarrow"),
    "numpy_nullable": lambda p: pd.read_csv(p, dtype_backend="numpy_nullable"),
    "pyarrow": lambda p: pd.read_csv(p, dtype_backend="pyarrow"),
    "object": lambda p: pd.read_csv(p, dtype=object),
}


def _with_infer_string(p: Path) -> pd.DataFrame:
    with pandas_options(**{"future.infer_string": True}):
        return pd.read_csv(p)


def _string_storage(p: Path, storage: str) -> pd.DataFrame:
    return pd.read_csv(p, dtype=pd.StringDtype(storage))


@pytest.mark.parametrize("reader", list(READERS))
def test_every_string_dtype_maps_and_enriches_alike(
    reader: str, csv: Path, client: clp.Client
) -> None:
    if "pyarrow" in reader and not _has_pyarrow():
        pytest.skip("pyarrow is not installed")
    df = READERS[reader](csv)
    reference = pd.read_csv(csv, dtype=object)
    before = df.copy(deep=True)
    m, ref = df.cleanlist.mapping(), reference.cleanlist.mapping()
    assert m.mapping == ref.mapping
    assert m.valid.tolist() == [True, True, True, False, True, True, False, True]
    pd.testing.assert_frame_equal(m.contacts, ref.contacts)
    out = run(df, client)
    pd.testing.assert_frame_equal(df, before)
    # the input columns come back with their own dtypes, whatever they are (the labels'
    # Index may change dtype: pandas 2.2 with infer_string gives a str one, the output's is
    # object, as pd.concat makes it)
    pd.testing.assert_frame_equal(out[df.columns], df, check_column_type=False)
    expected = run(reference, client)  # from the cache: the same values
    cl = [c for c in out.columns if c.startswith("cl_") and c != "cl_credits"]
    pd.testing.assert_frame_equal(out[cl], expected[cl])
    assert out["cl_status"].tolist()[3] == "skipped" and out["cl_status"].tolist()[6] == "skipped"


def test_output_dtypes_are_the_same_nullable_ones_on_every_pandas(
    csv: Path, client: clp.Client
) -> None:
    out = run(pd.read_csv(csv), client, enrichment_type="full")
    for col in ("cl_email", "cl_email_status", "cl_phone", "cl_status", "cl_error"):
        assert isinstance(out[col].dtype, pd.StringDtype), (col, out[col].dtype)
        assert out[col].dtype.na_value is pd.NA, col  # not the NaN-variant "str" of pandas 3
    assert out["cl_company_headcount"].dtype == "Int64"
    assert str(out["cl_credits"].dtype) in ("Int64", "Float64")
    skipped = out["cl_status"] == "skipped"
    assert out.loc[skipped, "cl_email"].isna().all()
    assert out.loc[skipped, "cl_email"].iloc[0] is pd.NA


# -- copy-on-write ---------------------------------------------------------------------------
COW_MODES = [None] if PANDAS_3 else [None, True, "warn"]


@pytest.mark.parametrize("cow", COW_MODES, ids=lambda m: f"cow={m}")
def test_output_never_shares_writes_with_the_input(cow: Any, client: clp.Client) -> None:
    cow_on = PANDAS_3 or cow is True  # "warn" behaves as off, and warns
    with pandas_options(**({} if cow is None else {"mode.copy_on_write": cow})):
        big = pd.DataFrame(
            {
                "First Name": ["Ada", "Alan", "Grace", "Ken"],
                "Last Name": ["Lovelace", "Turing", "Hopper", "Thompson"],
                "Company": ["A", "B", "C", "D"],
                "n": np.arange(4, dtype=np.int64),
            }
        )
        df = big.iloc[1:]  # a slice of another frame (a view without copy-on-write)
        before = df.copy(deep=True)
        with warnings.catch_warnings():
            # no SettingWithCopyWarning / copy-on-write warning comes from our code
            warnings.simplefilter("error", FutureWarning)
            for name in ("SettingWithCopyWarning", "ChainedAssignmentError"):
                if hasattr(pd.errors, name):
                    warnings.simplefilter("error", getattr(pd.errors, name))
            out = run(df, client)
        pd.testing.assert_frame_equal(df, before)
        if not cow_on:
            assert not np.shares_memory(out["n"].to_numpy(), df["n"].to_numpy())
        # writing to the output leaves the input alone, and the other way round
        out.iloc[0, out.columns.get_loc("First Name")] = "Changed"
        out.loc[:, "n"] = -1
        pd.testing.assert_frame_equal(df, before)
        snapshot = out.copy(deep=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the user's own write to a slice
            df.iloc[0, df.columns.get_loc("Last Name")] = "Other"
        pd.testing.assert_frame_equal(out, snapshot)


# -- accessor caching ------------------------------------------------------------------------
def test_accessor_holds_nothing_whether_or_not_pandas_caches_it(client: clp.Client) -> None:
    df = pd.DataFrame({"col_a": ["Ada", "Alan"], "Surname": ["L", "T"], "col_c": ["A", "B"]})
    acc = df.cleanlist
    # pandas 2.2 hands back the same object, pandas 3 a new one: nothing may depend on it
    assert (df.cleanlist is acc) == (not PANDAS_3)
    assert list(vars(acc)) == ["_obj"] and acc._obj is df
    assert acc.mapping().mapping == {"last_name": "Surname"}
    # the frame changes in place after the accessor was made: every access sees the change
    df.columns = ["First Name", "Surname", "Company"]
    assert acc.mapping().mapping == df.cleanlist.mapping().mapping
    assert acc.mapping().mapping["first_name"] == "First Name"
    out = run(df, client)
    del df["Company"]
    df["LinkedIn"] = ["linkedin.com/in/ada", None]
    assert "linkedin_url" in acc.mapping().mapping and "company_name" not in acc.mapping().mapping
    assert out["Company"].tolist() == ["A", "B"]  # the earlier result is its own frame
    # a copy has its own accessor; the frame still pickles and deep-copies
    twin = df.copy()
    assert twin.cleanlist._obj is twin
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(df)), df)
    pd.testing.assert_frame_equal(copy.deepcopy(df), df)
    assert "cleanlist" not in pickle.loads(pickle.dumps(df)).__dict__
