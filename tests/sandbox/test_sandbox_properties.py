"""Property tests: the server's acceptance rule is exactly spec §3.3's, and the oracle is a
pure function of the contact and the seed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sandbox_helpers import client

from cleanlist_pandas.sandbox import Sandbox
from cleanlist_pandas.sandbox.oracle import decide

FIELDS = ("linkedin_url", "first_name", "last_name", "company_domain", "company_name")
VALUES = st.one_of(
    st.none(),
    st.sampled_from(["", "   ", "x", "Ann", "acme.com", "https://www.linkedin.com/in/a-b"]),
    st.text(max_size=12),
)
CONTACT = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=5)


def _present(contact: dict[str, Any], key: str) -> bool:
    value = contact.get(key)
    return isinstance(value, str) and value.strip() != ""


def spec_rule(contact: dict[str, Any]) -> bool:
    return _present(contact, "linkedin_url") or (
        _present(contact, "first_name")
        and _present(contact, "last_name")
        and (_present(contact, "company_domain") or _present(contact, "company_name"))
    )


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[httpx.Client]:
    sandbox.config.rate_limit_enabled = False
    with client(sandbox) as c:
        yield c


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(contact=CONTACT)
def test_acceptance_is_exactly_the_spec_rule(api: httpx.Client, contact: dict[str, Any]) -> None:
    r = api.post("/enrich/bulk", json={"enrichment_type": "none", "contacts": [contact]})
    if spec_rule(contact):
        assert r.status_code == 200, (contact, r.text)
    else:
        assert r.status_code == 422, (contact, r.text)
        assert r.json()["detail"][0]["loc"][:3] == ["body", "contacts", 0]


@settings(max_examples=200, deadline=None)
@given(contact=CONTACT, seed=st.integers(0, 2**31))
def test_oracle_is_pure(contact: dict[str, Any], seed: int) -> None:
    a = decide(contact, seed)
    assert a == decide(dict(reversed(list(contact.items()))), seed)
    if a.primary_email is None:
        assert a.primary_email_status is None
    else:
        assert a.primary_email_status in ("reliable", "risky", "unknown")
    assert all(p.startswith("+") and p[1:].isdigit() for p in a.phones)
    assert len(a.discovered) <= 5
