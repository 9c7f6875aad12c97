"""The short fault matrix (issue 7): every fault family once, seeded, with a recovery run.

The long version (20+ seeded runs per family, a printed table) is
``benchmarks/bench_faults.py``; both use ``benchmarks/fault_matrix.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from fault_matrix import FAMILIES, run_once


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fault_family_loses_no_row_and_charges_nothing_twice(family: str) -> None:
    res = run_once(family, seed=1, n=300)
    assert res.errors == []
    assert res.lost == 0
    assert res.charged_twice == 0
    assert res.unsettled == 0
    assert res.unknown_not_received == 0
