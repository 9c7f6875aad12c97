"""Which rows a run sends — ``where=`` and ``only_missing=`` — and where ``fill=`` writes.

Decided from the frame before any request ("check before paying"): a ``where=`` mask that
is not boolean, not aligned with the rows or has missing values raises
:class:`~cleanlist_pandas.errors.SelectionError`; an ``only_missing=``/``fill=`` column that
cannot be found (or is ambiguous) raises :class:`~cleanlist_pandas.errors.MappingError`,
found the way the contact columns are (:func:`~cleanlist_pandas.frame.mapping.value_column`).
The :class:`Selection` is by row position like everything else: the plan leaves the excluded
rows out *before* it dedupes (a duplicate of an excluded row that is itself selected is still
sent, once) and never fingerprints them into the job key.

Rules (the issue left them open):

- ``where=`` first: a row it leaves out counts for ``where`` even if it also has its email.
- ``only_missing=["email", "phone"]`` leaves out a row only when it has *every* listed value
  (a row that lacks one of them is sent, since the run can find it).
- A cell "has a value" unless it is missing (None, NaN, <NA>), blank or whitespace, or a
  placeholder the mapping also reads as blank (``n/a``, ``null``, ``-`` …).
- ``fill=`` writes only into cells that are missing, blank or whitespace: any text, even a
  placeholder like ``n/a``, is an input value and is never overwritten.

>>> import pandas as pd
>>> df = pd.DataFrame({"LinkedIn": ["linkedin.com/in/a", "linkedin.com/in/b", "linkedin.com/in/c"],
...                    "E-mail": ["a@x.io", " ", None], "Country": ["DE", "FR", "DE"]})
>>> s = select(df, where=df["Country"] == "DE", only_missing="email")
>>> s.kept.tolist(), s.excluded_by
([False, False, True], {'where': 1, 'only_missing': 1})
>>> s.reasons().tolist()
["has email (column 'E-mail')", 'excluded by where=', None]
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from cleanlist_pandas._constants import FOUND_COSTS
from cleanlist_pandas.errors import MappingError, SelectionError, UserValueError, did_you_mean
from cleanlist_pandas.frame.mapping import (
    VALUE_FIELD_EXAMPLES,
    VALUE_FIELDS,
    _detected_position,
    _factorize,
    value_column,
)

__all__ = [
    "EXCLUSION_KINDS",
    "FOUND_VALUES",
    "WHERE_REASON",
    "OnlyMissing",
    "Selection",
    "Where",
    "check_selection",
    "empty_cells",
    "has_value",
    "select",
    "where_mask",
]

#: What ``where=`` takes: a boolean Series aligned on the frame's index, a boolean array of
#: the frame's length (by position), or a function of the frame returning one of them.
Where: TypeAlias = pd.Series | np.ndarray | Sequence[bool] | Callable[[pd.DataFrame], Any]
#: What ``only_missing=`` takes: ``"email"``, ``"phone"``, a list of them, or
#: ``{field: column}`` naming the columns.
OnlyMissing: TypeAlias = str | Sequence[str] | Mapping[str, Hashable]

#: The reasons a row is left out, in the order they are applied (the keys of
#: ``Selection.excluded_by`` and ``Plan.excluded_by``).
EXCLUSION_KINDS: tuple[str, ...] = ("where", "only_missing")
#: ``cl_error`` of a row ``where=`` left out.
WHERE_REASON = "excluded by where="

#: Of :data:`~cleanlist_pandas.frame.mapping.VALUE_FIELDS`, what each type finds.
FOUND_VALUES: dict[str, tuple[str, ...]] = {
    t: tuple(f for f in VALUE_FIELDS if f in costs) for t, costs in FOUND_COSTS.items()
}


@dataclass(frozen=True, eq=False)
class Selection:
    """The rows a run leaves out and why, and the columns ``fill=`` writes to.

    Attributes:
        why: int8 per row: 0 = sent (if valid), 1 = left out by ``where=``, 2 = left out by
            ``only_missing=`` (codes index :data:`EXCLUSION_KINDS` from 1).
        only_missing_reason: the ``cl_error`` of rows ``only_missing=`` left out.
        value_columns: ``only_missing`` field → the column label it read.
        fill_columns: field → the position of the column ``fill=`` writes found values to.
    """

    why: np.ndarray = field(repr=False)
    only_missing_reason: str | None = None
    value_columns: dict[str, Hashable] = field(default_factory=dict)
    fill_columns: dict[str, int] = field(default_factory=dict)

    @property
    def kept(self) -> np.ndarray:
        """Bool per row: True where the row may be sent."""
        return np.asarray(self.why == 0)

    @property
    def excluded_by(self) -> dict[str, int]:
        """Rows left out, by reason (``where``, ``only_missing``; both keys always there)."""
        counts = np.bincount(self.why.astype(np.int64), minlength=len(EXCLUSION_KINDS) + 1)
        return {k: int(counts[i + 1]) for i, k in enumerate(EXCLUSION_KINDS)}

    @property
    def n_excluded(self) -> int:
        """Rows left out."""
        return int((self.why != 0).sum())

    def reasons(self) -> np.ndarray:
        """Per row, the ``cl_error`` of a row left out (object array; None where sent)."""
        texts = np.array([None, WHERE_REASON, self.only_missing_reason], dtype=object)
        return texts.take(self.why.astype(np.intp))


# --------------------------------------------------------------------------- where=
def _bool_values(s: pd.Series, df_index: pd.Index, what: str) -> np.ndarray:
    """The values of a positional mask as a numpy bool array, or SelectionError."""
    na = np.asarray(s.isna(), dtype=bool)
    if na.any():
        i = int(np.flatnonzero(na)[0])
        raise SelectionError(
            f"{what} has {int(na.sum())} missing value(s) (NaN/<NA>), e.g. at row {i} "
            f"(index label {df_index[i]!r}): each row must be either sent or not. Decide "
            "with .fillna(False) (or .fillna(True)); nothing was sent."
        )
    dtype = s.dtype
    is_object = pd.api.types.is_object_dtype(dtype)
    if pd.api.types.is_bool_dtype(dtype) and not is_object:
        return s.to_numpy(dtype=bool)
    values = s.to_numpy(dtype=object)
    if is_object and all(isinstance(v, bool | np.bool_) for v in values.tolist()):
        return values.astype(bool)
    bad = next(
        (i for i, v in enumerate(values.tolist()) if not isinstance(v, bool | np.bool_)), 0
    )
    example = f" (e.g. {values[bad]!r} at row {bad})" if len(values) else ""
    raise SelectionError(
        f"{what} must be boolean (True/False per row), got dtype {dtype}{example}. Build it "
        "with a comparison, e.g. where=df['Country'] == 'DE', or .astype(bool) if 0/1 is "
        "meant; nothing was sent."
    )


def _aligned(df: pd.DataFrame, mask: pd.Series, what: str) -> pd.Series:
    """``mask`` by row position of ``df``: the same index (any order, when both are unique)."""
    n = len(df)
    if mask.index.equals(df.index):
        return mask.reset_index(drop=True)
    if len(mask) == n and df.index.is_unique and mask.index.is_unique:
        at = mask.index.get_indexer(df.index)
        if (at >= 0).all():
            return mask.iloc[at].reset_index(drop=True)
    fix = (
        "Pass a Series with exactly the frame's index (e.g. computed from df itself), or a "
        "boolean numpy array of len(df), read by position; nothing was sent."
    )
    if not df.index.is_unique:
        raise SelectionError(
            f"{what}: its index is not the frame's, and the frame has duplicate index labels, "
            f"so it cannot be aligned by label. {fix}"
        )
    outside = df.index[~df.index.isin(mask.index)]
    example = f"; e.g. the frame's label {outside[0]!r} is not in it" if len(outside) else ""
    raise SelectionError(
        f"{what}: its index is not the frame's ({len(mask)} labels for {n} rows{example}). "
        f"Align it first (mask.reindex(df.index)). {fix}"
    )


def where_mask(df: pd.DataFrame, where: Where | None) -> np.ndarray | None:
    """``where=`` as a numpy bool array by row position (True = may be sent), None for None.

    A Series is aligned on the frame's index: the very same index (duplicate labels and
    MultiIndex included), or the same unique labels in another order. An array, list or
    pandas array of the frame's length is read by position. A function is called with the
    frame and its result read the same way. Not boolean, missing values (NaN, <NA>) or
    another index raise :class:`~cleanlist_pandas.errors.SelectionError`.

    >>> df = pd.DataFrame({"x": [1, 2, 3]}, index=["a", "b", "c"])
    >>> where_mask(df, df["x"] > 1).tolist(), where_mask(df, lambda d: d["x"] == 1).tolist()
    ([False, True, True], [True, False, False])
    >>> where_mask(df, pd.Series([True, False, True], index=["c", "b", "a"])).tolist()
    [True, False, True]
    >>> where_mask(df, df["x"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    cleanlist_pandas.errors.SelectionError: where= must be boolean (True/False per row), ...
    """
    if where is None:
        return None
    what = "where="
    if callable(where) and not isinstance(where, pd.Series | pd.Index | np.ndarray):
        where = where(df)
        what = "where= (what your function returned)"
    n = len(df)
    if isinstance(where, pd.DataFrame):
        raise SelectionError(
            f"{what} must be one True/False per row; got a DataFrame with "
            f"{where.shape[1]} columns. Use one boolean column or a comparison, e.g. "
            "where=df['Country'] == 'DE'; nothing was sent."
        )
    if isinstance(where, pd.Series):
        s = _aligned(df, where, what)
    else:
        given: Any = where
        if isinstance(given, str | bytes | Mapping) or np.ndim(given) != 1:
            raise SelectionError(
                f"{what} must be a boolean Series aligned on the frame's index, a boolean "
                f"array of its {n} rows, or a function of the frame returning one; got "
                f"{type(where).__name__}. Nothing was sent."
            )
        s = pd.Series(where, copy=False)
        if len(s) != n:
            raise SelectionError(
                f"{what} has {len(s)} values for the frame's {n} rows (an array is read by "
                "position); nothing was sent."
            )
    return _bool_values(s, df.index, what)


# --------------------------------------------------------------------------- values
def has_value(col: pd.Series) -> np.ndarray:
    """Bool per row: the cell holds a value — not missing, blank, whitespace or a
    placeholder the mapping reads as blank (``n/a``, ``null``, ``-`` …).

    >>> has_value(pd.Series(["a@x.io", "  ", None, float("nan"), "n/a", 7])).tolist()
    [True, False, False, False, False, True]
    """
    codes, values, kinds = _factorize(col)
    present = ~pd.isna(values)
    if kinds is not None:
        present |= kinds != 0  # an unusable cell (a list, ...) is not blank
    return np.append(present, False).take(codes)


def empty_cells(col: pd.Series) -> np.ndarray:
    """Bool per row: the cell is missing, or text of only whitespace — the cells ``fill=``
    may write to. Any other text (``n/a`` too) is an input value, never overwritten.

    >>> empty_cells(pd.Series(["a@x.io", "  ", None, float("nan"), "n/a"])).tolist()
    [False, True, True, True, False]
    """
    codes, values, kinds = _factorize(col, clean=False)
    blank = np.fromiter(
        (isinstance(v, str) and not v.strip() for v in values.tolist()), bool, len(values)
    )
    if kinds is not None:
        blank &= kinds == 0
    return np.append(blank, True).take(codes)


def _only_missing_fields(only_missing: OnlyMissing | None) -> dict[str, Hashable | None]:
    """``only_missing=`` as ``{field: column label or None (detect)}``; UserValueError on
    a field that is not one of ``VALUE_FIELDS`` (with the closest one)."""
    if only_missing is None:
        return {}
    if isinstance(only_missing, str):
        given: dict[str, Hashable | None] = {only_missing: None}
    elif isinstance(only_missing, Mapping):
        given = dict(only_missing)
    elif isinstance(only_missing, Sequence) and all(isinstance(f, str) for f in only_missing):
        given = dict.fromkeys(only_missing)
    else:
        raise UserValueError(
            f"only_missing={only_missing!r}: use 'email', 'phone', a list of them, or "
            "{'email': 'Work Email'} to name the column"
        )
    bad = [f for f in given if f not in VALUE_FIELDS]
    if bad or not given:
        raise UserValueError(
            f"only_missing={only_missing!r}: {'fields are' if bad else 'name a field:'} "
            f"{' or '.join(repr(f) for f in VALUE_FIELDS)} (e.g. only_missing='email', or "
            "only_missing={'email': 'Work Email'} to name the column)"
            + (did_you_mean(bad[0], VALUE_FIELDS) if bad else "")
        )
    return given


def _fill_fields(fill: bool | Mapping[str, Hashable], enrichment_type: str) -> dict[
    str, Hashable | None
]:
    """``fill=`` as ``{field: column label or None (detect)}`` ({} for False)."""
    if fill is False or fill is None:
        return {}
    found = FOUND_VALUES.get(enrichment_type, ())
    if fill is True:
        if not found:
            raise UserValueError(
                f"fill=True: enrichment_type={enrichment_type!r} finds no email or phone to "
                "fill in"
            )
        return dict.fromkeys(found)
    if not isinstance(fill, Mapping):
        raise UserValueError(
            f"fill={fill!r}: use True (the detected email/phone columns) or "
            "{'email': 'Work Email', 'phone': 'Mobile'} to name them"
        )
    given = dict(fill)
    bad = [f for f in given if f not in VALUE_FIELDS]
    if bad:
        raise UserValueError(
            f"fill={fill!r}: fields are 'email' and 'phone', not {bad!r}"
            + did_you_mean(bad[0], VALUE_FIELDS)
        )
    never = [f for f in given if f not in found]
    if never:
        raise UserValueError(
            f"fill={fill!r}: enrichment_type={enrichment_type!r} finds no {never[0]}"
        )
    return given


def check_selection(
    where: Any, only_missing: Any, fill: Any, enrichment_type: str
) -> None:
    """The checks that need no frame (run with the other option checks).

    >>> check_selection(None, ["email", "phone"], True, "full")
    >>> check_selection(None, "mail", False, "full")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    cleanlist_pandas.errors.UserValueError: only_missing='mail': fields are 'email' or ...
    """
    if where is not None and isinstance(where, str | bytes | int | float | Mapping):
        raise SelectionError(
            f"where={where!r}: use a boolean Series aligned on the frame's index (e.g. "
            "where=df['Country'] == 'DE'), a boolean array of its length, or a function of "
            "the frame (where=lambda d: d['Country'] == 'DE')"
        )
    _only_missing_fields(only_missing)
    _fill_fields(fill, enrichment_type)


def _columns_text(labels: Sequence[Hashable]) -> str:
    """``column 'E-mail'`` or ``columns 'E-mail', 'Phone'``."""
    return ("column " if len(labels) == 1 else "columns ") + ", ".join(repr(c) for c in labels)


def select(
    df: pd.DataFrame,
    *,
    where: Where | None = None,
    only_missing: OnlyMissing | None = None,
    fill: bool | Mapping[str, Hashable] = False,
    columns: Mapping[str, Hashable | None] | None = None,
    enrichment_type: str = "partial",
) -> Selection:
    """Decide which rows of ``df`` may be sent and where ``fill=`` writes (no network).

    ``columns`` is the run's mapping: an ``email`` column named there is the one
    ``only_missing="email"`` and ``fill=`` use, unless they name their own.

    >>> df = pd.DataFrame({"LinkedIn": ["linkedin.com/in/a"] * 2, "Work Email": ["a@x.io", None],
    ...                    "Mobile": [None, "+1 555"]})
    >>> s = select(df, only_missing=["email", "phone"], fill=True, enrichment_type="full")
    >>> s.kept.tolist(), s.value_columns, s.fill_columns
    ([True, True], {'email': 'Work Email', 'phone': 'Mobile'}, {'email': 1, 'phone': 2})
    """
    check_selection(where, only_missing, fill, enrichment_type)
    n = len(df)
    why = np.zeros(n, dtype=np.int8)
    keep = where_mask(df, where)
    if keep is not None:
        why[~keep] = 1
    named_email = (columns or {}).get("email")
    positions: dict[str, int] = {}
    for f, label in _only_missing_fields(only_missing).items():
        if label is None and f == "email" and named_email is not None:
            label = named_email
        positions[f] = value_column(df, f, label, option="only_missing", flag="--only-missing")
    reason: str | None = None
    value_columns: dict[str, Hashable] = {f: df.columns[p] for f, p in positions.items()}
    if positions:
        has = np.logical_and.reduce([has_value(df.iloc[:, p]) for p in positions.values()])
        why[(why == 0) & has] = 2
        reason = (
            f"has {' and '.join(positions)} ({_columns_text(list(value_columns.values()))})"
        )
    fill_columns: dict[str, int] = {}
    for f, label in _fill_fields(fill, enrichment_type).items():
        if label is None and f in positions:
            fill_columns[f] = positions[f]
        elif label is not None or fill is not True:
            fill_columns[f] = value_column(df, f, label, option="fill", flag="--fill")
        elif f == "email" and named_email is not None:
            fill_columns[f] = value_column(df, f, named_email, option="fill", flag="--fill")
        else:  # fill=True: fill the columns there are; detected like the mapping
            found = _detected_position(df, f, None, "fill", "--fill")
            if found is not None:
                fill_columns[f] = found
    if fill is True and not fill_columns:
        fields = FOUND_VALUES[enrichment_type]
        looked = "; ".join(f"{f}: {VALUE_FIELD_EXAMPLES[f]}" for f in fields)
        name = ", ".join(f"{f!r}: 'COLUMN'" for f in fields)
        raise MappingError(
            f"fill=True: no {' or '.join(fields)} column to fill (looked for a header like "
            f"{looked}; case, accents, spaces and punctuation ignored); columns are "
            f"{list(df.columns)!r}. Name it with fill={{{name}}}",
            cli_message=f"--fill: no {' or '.join(fields)} column to fill (looked for a "
            f"header like {looked}); columns are {list(df.columns)!r}. Name it with "
            + " ".join(f"--fill {f}=COLUMN" for f in fields),
        )
    return Selection(
        why=why,
        only_missing_reason=reason,
        value_columns=value_columns,
        fill_columns=fill_columns,
    )
