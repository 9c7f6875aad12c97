"""Spec §3.3: POST /enrich/bulk — the 400 → 422 → 402 order, ids, task order."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from sandbox_helpers import client, contacts, submit, wait_terminal

from cleanlist_pandas.sandbox import Sandbox, SandboxConfig

LI = {"linkedin_url": "https://www.linkedin.com/in/jane-roe"}
#: the documented words of the 422 for a contact with no usable identity [doc]
NO_IDENTITY = (
    "Each contact must include linkedin_url OR first_name + last_name + "
    "(company_domain or company_name)"
)


def test_empty_contacts_400(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json={"contacts": []})
    assert r.status_code == 400
    assert r.json() == {"detail": "contacts must not be empty"}


def test_more_than_250_400(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json={"contacts": contacts(251)})
    assert r.status_code == 400
    assert r.json() == {"detail": "Bulk enrichment supports up to 250 contacts per request"}


def test_exactly_250_ok(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        out = submit(c, {"contacts": contacts(250)})
    assert out["total_contacts"] == 250 and len(out["task_ids"]) == 250


def test_400_comes_before_422_and_402(sandbox: Sandbox) -> None:
    sandbox.set_credits(0)
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json={"enrichment_type": "bogus", "contacts": [{}] * 251})
    assert r.status_code == 400


def test_422_loc_points_at_contact_index(sandbox: Sandbox) -> None:
    body = {"contacts": [LI, LI, {"first_name": "Ann", "last_name": "Lee"}, LI]}
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json=body)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, list) and len(detail) == 1
    err = detail[0]
    # FastAPI's shape, the documented words as ``msg``
    assert err == {
        "type": "value_error",
        "loc": ["body", "contacts", 2],
        "msg": NO_IDENTITY,
        "input": {"first_name": "Ann", "last_name": "Lee"},
    }


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"first_name": "Ann"},
        {"first_name": "Ann", "last_name": "Lee"},
        {"first_name": "Ann", "company_domain": "acme.com"},
        {"last_name": "Lee", "company_name": "Acme"},
        {"first_name": "Ann", "last_name": "Lee", "company_domain": "   "},
        {"linkedin_url": ""},
        {"company_domain": "acme.com", "company_name": "Acme"},
    ],
)
def test_422_for_contacts_missing_required_fields(sandbox: Sandbox, bad: dict[str, str]) -> None:
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json={"contacts": [LI, bad]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:3] == ["body", "contacts", 1]
    assert r.json()["detail"][0]["msg"] == NO_IDENTITY


FIELDS = ("linkedin_url", "first_name", "last_name", "company_domain", "company_name")
FULL = {**LI, "first_name": "Ann", "last_name": "Lee", "company_domain": "acme.com",
        "company_name": "Acme"}  # fmt: skip


@pytest.mark.parametrize("value", [3, 1.5, True, ["x"], {"a": 1}])
@pytest.mark.parametrize("field", FIELDS)
def test_422_for_wrong_field_type(sandbox: Sandbox, field: str, value: object) -> None:
    """Spec §3.3: all five fields are strings; a wrong type is a 422 at its own ``loc``."""
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json={"contacts": [LI, {**FULL, field: value}, LI]})
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "contacts", 1, field]
    assert err["type"] == "string_type" and err["msg"] == "Input should be a valid string"
    assert err["input"] == value


@pytest.mark.parametrize(
    "good",
    [
        LI,
        {"first_name": "Ann", "last_name": "Lee", "company_domain": "acme.com"},
        {"first_name": "Ann", "last_name": "Lee", "company_name": "Acme"},
        {**LI, "first_name": "Ann", "last_name": "Lee", "company_domain": "acme.com"},
        {**LI, "first_name": "Ann"},
    ],
)
def test_valid_contact_shapes(sandbox: Sandbox, good: dict[str, str]) -> None:
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json={"contacts": [good]})
    assert r.status_code == 200, r.text


def test_unknown_enrichment_type_422(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json={"enrichment_type": "everything", "contacts": [LI]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "enrichment_type"]


def test_missing_contacts_and_bad_json_422(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        r1 = c.post("/enrich/bulk", json={"enrichment_type": "partial"})
        r2 = c.post(
            "/enrich/bulk", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        r3 = c.post("/enrich/bulk", json={"contacts": "nope"})
    assert r1.status_code == 422 and r1.json()["detail"][0]["loc"] == ["body", "contacts"]
    assert r2.status_code == 422 and r2.json()["detail"][0]["type"] == "json_invalid"
    assert r3.status_code == 422 and r3.json()["detail"][0]["loc"] == ["body", "contacts"]


def test_422_before_402(sandbox: Sandbox) -> None:
    sandbox.set_credits(0)
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json={"contacts": [{"first_name": "x"}]})
        assert r.status_code == 422
        r = c.post("/enrich/bulk", json={"contacts": [LI]})
        assert r.status_code == 402
        assert r.json() == {"detail": "Insufficient credits"}


@pytest.mark.parametrize(
    ("etype", "n", "needed"),
    [("partial", 3, 3), ("phone_only", 2, 20), ("full", 2, 22), ("prospecting_only", 2, 10)],
)
def test_402_worst_case_rule(sandbox: Sandbox, etype: str, n: int, needed: float) -> None:
    with client(sandbox) as c:
        sandbox.set_credits(needed - 0.5)
        r = c.post("/enrich/bulk", json={"enrichment_type": etype, "contacts": contacts(n)})
        assert r.status_code == 402, r.text
        sandbox.set_credits(needed)
        r = c.post("/enrich/bulk", json={"enrichment_type": etype, "contacts": contacts(n)})
        assert r.status_code == 200, r.text


def test_none_type_costs_nothing_and_passes_at_zero(sandbox: Sandbox) -> None:
    sandbox.set_credits(0)
    with client(sandbox) as c:
        out = submit(c, {"enrichment_type": "none", "contacts": contacts(5)})
        body = wait_terminal(c, out["workflow_id"])
    assert all(r["credits_charged"] == 0 for r in body["results"])
    assert all(r["primary_email"] is None for r in body["results"])
    assert sandbox.balance() == 0 and sandbox.ledger() == []
    # nothing is looked up: only the contact as normalized and stored comes back
    for r in body["results"]:
        if r["status"] == "completed":
            assert set(r["prospect"]) == {"first_name", "last_name", "full_name", "linkedin_url"}
            assert set(r["company"]) == {"name", "domain"}
            assert not r["personal_phone_numbers"] and not r["other_emails"]


def test_positive_credit_rule(make_sandbox: object) -> None:
    sb = make_sandbox(config=SandboxConfig(time_scale=0.002, credit_rule="positive"), credits=1)  # type: ignore[operator]
    with client(sb) as c:
        r = c.post("/enrich/bulk", json={"enrichment_type": "full", "contacts": contacts(10)})
        assert r.status_code == 200
        sb.set_credits(0)
        r = c.post("/enrich/bulk", json={"enrichment_type": "full", "contacts": contacts(1)})
        assert r.status_code == 402


def test_200_doc_shape(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json={"contacts": contacts(2)})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"workflow_id", "status", "message", "task_ids", "total_contacts"}
    m = re.fullmatch(r"public_bulk_(.+)", body["workflow_id"])
    assert m and uuid.UUID(m.group(1)).version == 4
    assert body["status"] == "processing"
    assert body["message"] == "Bulk enrichment started"
    assert body["total_contacts"] == 2
    assert all(uuid.UUID(t).version == 4 for t in body["task_ids"])
    assert len(set(body["task_ids"])) == 2


def test_task_ids_in_contact_order(sandbox: Sandbox) -> None:
    sent = contacts(40)
    with client(sandbox) as c:
        out = submit(c, {"contacts": sent})
        body = wait_terminal(c, out["workflow_id"])
        for i in (0, 17, 39):
            task = c.get("/enrich/status", params={"task_id": out["task_ids"][i]}).json()["task"]
            assert task["input"]["last_name"] == sent[i]["last_name"]
    by_id = {r["task_id"]: r for r in body["results"]}
    for tid, contact in zip(out["task_ids"], sent, strict=True):
        assert by_id[tid]["input"]["last_name"] == contact["last_name"]
    assert [r["task_id"] for r in body["results"]] == out["task_ids"]


def test_default_type_is_partial(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        out = submit(c, {"contacts": contacts(1)})
        body = wait_terminal(c, out["workflow_id"])
    assert body["workflow"]["enrichment_type"] == "partial"


def test_no_idempotency_same_contacts_bill_again(sandbox: Sandbox) -> None:
    one = [{"first_name": "Ada", "last_name": "Lovelace", "company_domain": "acme.com"}]
    with client(sandbox) as c:
        w1 = submit(c, {"contacts": one})
        w2 = submit(c, {"contacts": one})
        assert w1["workflow_id"] != w2["workflow_id"]
        b1 = wait_terminal(c, w1["workflow_id"])
        wait_terminal(c, w2["workflow_id"])
    ledger = sandbox.ledger()
    if b1["results"][0]["primary_email"]:
        assert len(ledger) == 2
        assert ledger[0]["fingerprint"] == ledger[1]["fingerprint"]
        assert sandbox.balance() == 10_000 - 2


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.example.com/cl", True),
        ("http://127.0.0.1:9/cl", True),
        ("http://localhost:9/cl", True),
        ("http://[::1]:9/cl", True),
        ("http://hooks.example.com/cl", False),
        ("ftp://hooks.example.com/cl", False),
        ("not a url", False),
    ],
)
def test_webhook_url_https_or_loopback(sandbox: Sandbox, url: str, ok: bool) -> None:
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json={"webhook_url": url, "contacts": [LI]})
    assert r.status_code == (200 if ok else 422), r.text
    if not ok:
        assert r.json()["detail"][0]["loc"] == ["body", "webhook_url"]


NOT_AN_OBJECT = "Input should be a valid dictionary or object to extract fields from"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        None,  # no header: FastAPI's strict_content_type does not guess
    ],
)
def test_body_that_is_not_json_is_422(sandbox: Sandbox, content_type: str | None) -> None:
    """Spec §1: the API is FastAPI; a body that is not sent as JSON is a 422 at ["body"]."""
    raw = json.dumps({"contacts": [LI]}).encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", content=raw, headers=headers)
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["type"] == "model_attributes_type" and err["loc"] == ["body"]
    assert err["msg"] == NOT_AN_OBJECT and err["input"] == raw.decode()
    assert sandbox.state.workflows == {}


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"]
)
def test_json_content_types_are_read(sandbox: Sandbox, content_type: str) -> None:
    with client(sandbox) as c:
        r = c.post(
            "/enrich/bulk",
            content=json.dumps({"contacts": [LI]}).encode(),
            headers={"Content-Type": content_type},
        )
    assert r.status_code == 200, r.text


JSON = {"Content-Type": "application/json"}


def test_deeply_nested_json_is_a_400_not_a_500(sandbox: Sandbox) -> None:
    """FastAPI answers a body its parser cannot handle with this 400."""
    with client(sandbox) as c:
        r1 = c.post("/enrich/bulk", content=b"[" * 100_000, headers=JSON)
        r2 = c.post("/enrich/bulk", content=b'{"contacts": ' + b"[" * 100_000, headers=JSON)
        r3 = c.post("/enrich/bulk", content=b'{"contacts": ["\xff\xfe"]}', headers=JSON)
    for r in (r1, r2, r3):
        assert (r.status_code, r.json()) == (400, {"detail": "There was an error parsing the body"})


@pytest.mark.parametrize("depth", [10, 600, 950])
@pytest.mark.parametrize(
    "template",
    [
        '{"contacts": [{"linkedin_url": V}]}',
        '{"contacts": [{"first_name": "A", "x": V}]}',
        '{"contacts": V}',
        '{"enrichment_type": V, "contacts": [{"linkedin_url": "u"}]}',
        '{"webhook_url": V, "contacts": [{"linkedin_url": "u"}]}',
    ],
)
def test_nested_values_in_fields_get_a_422(sandbox: Sandbox, template: str, depth: int) -> None:
    nested = "[" * depth + "1" + "]" * depth
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", content=template.replace("V", nested).encode(), headers=JSON)
    assert r.status_code in (400, 422), r.text
    assert isinstance(r.json()["detail"], list)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize(
    "field", ["linkedin_url", "first_name", "last_name", "company_domain", "company_name"]
)
def test_non_finite_numbers_get_a_422_at_their_loc(
    sandbox: Sandbox, literal: str, field: str
) -> None:
    raw = '{"contacts": [{"linkedin_url": "u"}, {"linkedin_url": "u", "FIELD": VALUE}]}'
    raw = raw.replace("FIELD", field).replace("VALUE", literal)
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", content=raw.encode(), headers=JSON)
        r2 = c.post(
            "/enrich/bulk", content=b'{"contacts": %s}' % literal.encode(), headers=JSON
        )
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "contacts", 1, field] and err["type"] == "string_type"
    assert err["input"] == ("-Infinity" if literal == "-Infinity" else
                            "NaN" if literal == "NaN" else "Infinity")  # fmt: skip
    assert r2.status_code == 422 and r2.json()["detail"][0]["loc"] == ["body", "contacts"]
