"""The private pandas and tldextract internals the data layer still uses, one test each.

Each is kept for a measured gain (see the notes next to them in merge.py and mapping.py)
and has a public fall-back that the run takes by itself if the internal disappears: correct,
only slower. These tests are what notices: they fail, naming the internal, when a new pandas
or tldextract release removes or changes one, so the speed is never lost silently.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cleanlist_pandas.frame import merge

mapping = importlib.import_module("cleanlist_pandas.frame.mapping")

RESULTS: list[dict[str, Any] | None] = [
    {
        "task_id": f"t{i}",
        "status": ["completed", "failed", "processing"][i % 3],
        "primary_email": None if i % 4 == 0 else f"p{i}@acme.com",
        "primary_email_status": ["reliable", "risky", "unknown"][i % 3],
        "other_emails": [f"o{i}@acme.com"] if i % 2 else [],
        "personal_phone_numbers": [f"+1415555{i:04d}"] if i % 5 == 0 else None,
        "prospect": {"first_name": f"F{i}", "headline": "VP"} if i % 3 else None,
        "company": {"name": "Acme", "headcount": [10, "51-200", None][i % 3]},
        "credits_charged": [0, 1, 1.5][i % 3],
        **({"new_field": i} if i % 7 == 0 else {}),
        **({"error": "boom"} if i % 3 == 1 else {}),
    }
    if i % 9
    else None
    for i in range(600)
]


# -- pandas: lib.dicts_to_array --------------------------------------------------------------
def test_pandas_dicts_to_array_is_there() -> None:
    assert merge._dicts_to_array is not None, (
        "pandas no longer has pandas._libs.lib.dicts_to_array: merge._table now runs its "
        "public fall-back (~7x slower flattening). Find the replacement or drop the helper."
    )
    dicts = [{"a": 1, "b": "x"}, {"b": None}, {}]
    arr = merge._dicts_to_array(dicts, ["a", "b"])
    assert arr.shape == (3, 2) and arr.dtype == object
    assert arr[0].tolist() == [1, "x"] and arr[1, 1] is None
    assert pd.isna(arr[1, 0]) and pd.isna(arr[2]).all()  # a missing key: NaN


def test_table_equals_its_public_fallback() -> None:
    dicts = [r for r in RESULTS if r is not None]
    keys = (*merge._TOP_ORDER, "new_field", "absent")
    fast = merge._table(dicts, keys)
    slow = merge._table_public(dicts, keys)
    assert fast.shape == slow.shape
    missing = pd.isna(slow)
    np.testing.assert_array_equal(pd.isna(fast), missing)
    assert fast[~missing].tolist() == slow[~missing].tolist()


@pytest.mark.parametrize("etype", ["partial", "full", "none"])
def test_flatten_is_the_same_without_dicts_to_array(
    etype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = merge.flatten_results(RESULTS, enrichment_type=etype)
    monkeypatch.setattr(merge, "_dicts_to_array", None)
    slow = merge.flatten_results(RESULTS, enrichment_type=etype)
    pd.testing.assert_frame_equal(fast, slow)


# -- pandas: ExtensionArray._concat_same_type ------------------------------------------------
def _batches() -> list[list[Any]]:
    frames = [
        merge.flatten_results(RESULTS[i : i + 250], enrichment_type="full")
        for i in range(0, 500, 250)
    ]
    assert list(frames[0].dtypes) == list(frames[1].dtypes)
    return [merge._column_arrays(f) for f in frames]


def test_concat_same_type_is_there_for_every_output_array() -> None:
    for arrays in zip(*_batches(), strict=True):
        kind = type(arrays[0])
        assert callable(getattr(kind, "_concat_same_type", None)), (
            f"{kind.__name__} has no _concat_same_type any more: FlattenedResults now "
            "joins per-workflow batches through pd.concat (~50x slower). See merge.py."
        )


def test_concat_equals_its_public_fallback() -> None:
    for arrays in zip(*_batches(), strict=True):
        parts = list(arrays)
        fast = merge._concat(parts)
        assert fast is not None and type(fast) is type(parts[0])
        pd.testing.assert_extension_array_equal(fast, merge._concat_public(parts))
        assert len(fast) == sum(len(a) for a in parts)


def test_gathered_frame_is_the_same_with_the_public_concat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def gather() -> pd.DataFrame:
        fr = merge.FlattenedResults(len(RESULTS), enrichment_type="full")
        for i in range(0, len(RESULTS), 100):
            ids = np.arange(i, min(i + 100, len(RESULTS)))
            fr.add(ids, [RESULTS[u] for u in ids.tolist()])
        return fr.frame(RESULTS)

    fast = gather()
    monkeypatch.setattr(merge, "_concat", merge._concat_public)
    pd.testing.assert_frame_equal(fast, gather())
    pd.testing.assert_frame_equal(fast, merge.flatten_results(RESULTS, enrichment_type="full"))


# -- tldextract: the suffix trie -------------------------------------------------------------
def test_tldextract_suffix_trie_is_there() -> None:
    mapping._suffix_trie.cache_clear()
    assert mapping._suffix_trie() is not None, (
        "tldextract's private suffix trie (_get_tld_extractor().tlds_excl_private_trie, "
        "nodes with .matches and .end) is gone: every host now goes through the public "
        "extract_str (~4x slower map step for hosts). See mapping._suffix_trie."
    )


@pytest.mark.parametrize(
    ("host", "want"),
    [
        ("www.acme.co.uk", "acme.co.uk"),
        ("a.b.acme.com", "acme.com"),
        ("co.uk", None),
        ("localhost", None),
        ("x.y.kawasaki.jp", "x.y.kawasaki.jp"),  # *.kawasaki.jp: y.kawasaki.jp is a suffix
        ("a.city.kawasaki.jp", "city.kawasaki.jp"),  # !city.kawasaki.jp: an exception
        ("x.blogspot.com", "blogspot.com"),  # a private-section rule is ignored
    ],
)
def test_trie_walk_agrees_with_the_public_api(host: str, want: str | None) -> None:
    trie = mapping._suffix_trie()
    assert trie is not None
    public = mapping._extractor().extract_str(host).top_domain_under_public_suffix or None
    assert public == want
    assert mapping._walk_suffix_trie(trie, host.split(".")) == want


# -- mapping: the blank-word pre-filter ------------------------------------------------------
def test_blank_word_length_filter_follows_the_list() -> None:
    assert max(len(w) for w in mapping._BLANK_WORDS) == mapping._BLANK_MAX_LEN
    words = sorted(mapping._BLANK_WORDS)
    variants = [v for w in words for v in (w, w.upper(), w.title(), f"  {w}\t")]
    assert mapping._clean_texts(variants).tolist() == [None] * len(variants)
    kept = [w + "x" for w in words] + ["x" + w for w in words if w.isalpha()]
    assert mapping._clean_texts(kept).tolist() == kept
