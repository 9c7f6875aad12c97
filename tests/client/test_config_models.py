"""Settings resolution, key masking, local contact validation and the tolerant reader."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

import cleanlist_pandas.config as cfg
from cleanlist_pandas.client import AsyncClient, Client, validate_contacts
from cleanlist_pandas.errors import ConfigurationError, InputValidationError
from cleanlist_pandas.types import Balance, DeliveryLog, TaskResult, Workflow

KEY = "clapi_live_abcdefghijklmnop1a2b"


def test_mask_key() -> None:
    assert cfg.mask_key(KEY) == "clapi_…1a2b"
    assert cfg.mask_key("clext_abcdefgh12345678") == "clext_…5678"
    assert cfg.mask_key("clapi_x") == "…"
    assert cfg.mask_key("") == "<none>"


def test_precedence_argument_configure_env_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cfg.get_config().base_url == "https://api.cleanlist.ai/api/v1/public"
    assert cfg.get_config().api_key is None
    monkeypatch.setenv("CLEANLIST_API_KEY", "clapi_from_env_0000000")
    monkeypatch.setenv("CLEANLIST_BASE_URL", "http://localhost:8000")
    s = cfg.get_config()
    assert s.api_key == "clapi_from_env_0000000"
    assert s.base_url == "http://localhost:8000/api/v1/public"
    cfg.configure(api_key=KEY, rate=30)
    assert cfg.get_config().api_key == KEY and cfg.get_config().rate == 30
    assert cfg.get_config(api_key="clapi_argument_000000").api_key == "clapi_argument_000000"
    cfg.configure(api_key=None)  # remove the session default: env again
    assert cfg.get_config().api_key == "clapi_from_env_0000000"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.cleanlist.ai/api/v1/public", "https://api.cleanlist.ai/api/v1/public"),
        ("https://api.cleanlist.ai/api/v1/public/", "https://api.cleanlist.ai/api/v1/public"),
        ("https://proxy.example/cl/api/v1/public", "https://proxy.example/cl/api/v1/public"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123/api/v1/public"),
        ("http://localhost:1/api/v1/public", "http://localhost:1/api/v1/public"),
        ("http://[::1]:8000/", "http://[::1]:8000/api/v1/public"),
    ],
)
def test_base_url_accepted(url: str, expected: str) -> None:
    assert cfg.normalize_base_url(url) == expected


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://api.cleanlist.ai/api/v1/public", "unencrypted"),
        ("http://10.0.0.5:8000", "unencrypted"),
        ("ftp://api.cleanlist.ai/api/v1/public", "not an http"),
        ("https://api.cleanlist.ai/api/v2", "must end in"),
        ("https://user:pw@api.cleanlist.ai/api/v1/public", "credentials"),
        ("api.cleanlist.ai", "not an http"),
    ],
)
def test_base_url_refused(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        cfg.normalize_base_url(url)


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("clext_abcdefgh12345678", "browser-extension"),
        ("sk_live_123", "start with 'clapi_'"),
        ("   ", "empty"),
        ("clapi_abc\ndef", "whitespace"),
    ],
)
def test_bad_keys_refused_without_echo(key: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        cfg.validate_api_key(key)
    if len(key.strip()) > 6:
        assert key.strip() not in str(info.value)


def test_missing_key_says_where_to_put_it() -> None:
    with pytest.raises(ConfigurationError, match=r"CLEANLIST_API_KEY.*configure"):
        AsyncClient()


def test_configure_validates_and_rejects_unknown() -> None:
    with pytest.raises(ConfigurationError, match="Unknown option"):
        cfg.configure(api_kee=KEY)
    with pytest.raises(ConfigurationError):
        cfg.configure(base_url="http://example.com")
    with pytest.raises(ConfigurationError):
        cfg.configure(loop_strategy="gevent")
    with pytest.raises(ConfigurationError):
        cfg.configure(burst=60, rate=60)
    assert cfg.get_config().loop_strategy == "thread"  # nothing stored on failure


def test_session_default_is_used_by_clients() -> None:
    cfg.configure(api_key=KEY, base_url="http://127.0.0.1:9", timeout=3.0)
    client = Client()
    try:
        assert client.settings.timeout == 3.0
        assert client.base_url == "http://127.0.0.1:9/api/v1/public"
        for text in (repr(client), str(client), repr(client.settings), str(client.aio),
                     repr(client.aio._requests)):
            assert KEY not in text
            assert "clapi_…1a2b" in text
    finally:
        client.close()


# --- local validation ------------------------------------------------------------------


def test_validate_contacts_rules() -> None:
    ok = validate_contacts(
        [
            {"linkedin_url": "https://www.linkedin.com/in/x"},
            {"first_name": "A", "last_name": "B", "company_domain": "b.co"},
            {"first_name": "A", "last_name": "B", "company_name": "B Inc", "linkedin_url": ""},
        ],
        "full",
    )
    assert ok[2] == {"first_name": "A", "last_name": "B", "company_name": "B Inc"}


@pytest.mark.parametrize(
    ("contacts", "index", "field"),
    [
        ([{"linkedin_url": "x"}, {"first_name": "A", "last_name": "B"}], 1,
         "company_domain or company_name"),
        ([{"first_name": "A", "company_name": "C"}], 0, "last_name"),
        ([{"linkedin_url": "  "}], 0, "first_name"),
        ([{"linkedin_url": "x", "email": "a@b.co"}], 0, "email"),
        ([{"linkedin_url": 5}], 0, "linkedin_url"),
        (["https://linkedin.com/in/x"], 0, "*"),
    ],
)
def test_validate_contacts_names_index_and_field(
    contacts: list[object], index: int, field: str
) -> None:
    with pytest.raises(InputValidationError) as info:
        validate_contacts(contacts)  # type: ignore[arg-type]
    err = info.value
    assert isinstance(err, ValueError)
    assert (index, field) in [(i, f) for i, f, _ in err.problems]
    assert f"contact {index}" in str(err) and "nothing was sent" in str(err)
    assert err.indexes == (index,)


@pytest.mark.parametrize(
    ("contacts", "etype", "match"),
    [
        ([], "partial", "must not be empty"),
        ([{"linkedin_url": "x"}] * 251, "partial", "at most 250"),
        ([{"linkedin_url": "x"}], "everything", "Unknown enrichment_type"),
        ({"linkedin_url": "x"}, "partial", "not a single dict"),
    ],
)
def test_validate_request_level(contacts: object, etype: str, match: str) -> None:
    with pytest.raises(InputValidationError, match=match):
        validate_contacts(contacts, etype)  # type: ignore[arg-type]


def test_invalid_submit_sends_no_request() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    client = Client(api_key=KEY, base_url="http://127.0.0.1:9",
                    transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(InputValidationError):
            client.submit([{"first_name": "A"}])
        with pytest.raises(InputValidationError):
            client.submit([{"linkedin_url": "x"}], enrichment_type="bogus")
        with pytest.raises(InputValidationError, match="webhook_url"):
            client.submit([{"linkedin_url": "x"}], webhook_url="/relative")
    finally:
        client.close()
    assert sent == []


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # issue 7 item 11: was sent, and the 422 blamed contacts
        "http://10.0.0.5:8080/hook",
        "http://127.0.0.1.example.com/hook",
        "ftp://example.com/hook",
        "https:///hook",
        "hooks.example.com/cl",
        "https://example.com/ho ok",
        " https://example.com/hook",
        "https://example.com:99999999/hook",
        "",
    ],
)
def test_webhook_url_off_loopback_must_be_https_and_nothing_is_sent(url: str) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"workflow_id": "public_bulk_x", "task_ids": ["t"]})

    client = Client(api_key=KEY, base_url="http://127.0.0.1:9",
                    transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(InputValidationError, match="webhook_url"):
            client.submit([{"linkedin_url": "https://www.linkedin.com/in/x"}], webhook_url=url)
    finally:
        client.close()
    assert sent == []
    with pytest.raises(InputValidationError, match="webhook_url") as info:
        cfg.validate_webhook_url(url)
    assert info.value.problems[0][:2] == (None, "webhook_url")


def test_webhook_url_http_names_the_host_and_the_way_out() -> None:
    with pytest.raises(InputValidationError) as info:
        cfg.validate_webhook_url("http://example.com/hook")
    msg = str(info.value)
    assert "webhook_url" in msg and "'example.com'" in msg and "https://" in msg
    assert "loopback" in msg and "contacts" not in msg


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/cl",
        "https://hooks.example.com:8443/cl?token=abc",
        "http://127.0.0.1:9/cl",
        "http://localhost:9/cl",
        "http://[::1]:9/cl",
        "HTTPS://Hooks.Example.com/cl",
    ],
)
def test_webhook_url_accepted(url: str) -> None:
    assert cfg.validate_webhook_url(url) == url


# --- tolerant reader -------------------------------------------------------------------

RESULT = {
    "task_id": "t1", "status": "completed", "primary_email": "john@acme.com",
    "primary_email_status": "reliable", "other_emails": ["j@acme.com"],
    "personal_phone_numbers": ["+14155550123"],
    "prospect": {"first_name": "John", "full_name": "John Doe", "pronouns": "he/him"},
    "company": {"name": "Acme", "domain": "acme.com", "headcount": 250, "hq": "SF"},
    "credits_charged": 1, "error": None, "confidence": 0.93,
}
WF = {"workflow_id": "public_bulk_1", "status": "completed", "enrichment_type": "partial",
      "total_contacts": 1, "summary": {"total": 1, "completed": 1, "pending": 0,
                                        "successful": 1, "failed": 0, "emails_found": 1,
                                        "phones_found": 0, "retries": 2},
      "created_at": "2026-04-06T15:00:00Z", "completed_at": "2026-04-06T15:00:42Z",
      "region": "eu"}


@pytest.mark.parametrize(
    "body",
    [
        {"workflow": WF, "results": [RESULT]},            # the spec's shape
        {**WF, "results": [RESULT]},                      # flat
        {"workflow": {**WF, "results": [RESULT]}},        # results inside the workflow
    ],
    ids=["wrapped", "flat", "results-inside"],
)
def test_workflow_shapes(body: dict[str, object]) -> None:
    wf = Workflow.from_api(body)
    assert wf.workflow_id == "public_bulk_1" and wf.is_terminal
    assert wf.summary.completed == 1 and wf.summary.extra["retries"] == 2
    assert wf.extra["region"] == "eu"
    assert wf.completed_at is not None and wf.completed_at.tzinfo is not None
    assert wf.progress == (1, 1)
    (r,) = wf.results
    assert r.primary_email == "john@acme.com" and r.personal_phone_numbers == ("+14155550123",)
    assert r.extra["confidence"] == 0.93
    assert r.prospect is not None and r.prospect.extra["pronouns"] == "he/him"
    assert r.company is not None and r.company.headcount == 250 and r.company.extra["hq"] == "SF"


def test_results_are_immutable_and_keep_raw() -> None:
    r = TaskResult.from_api({"task": RESULT})
    assert r.task_id == "t1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.status = "failed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.raw["status"] = "x"  # type: ignore[index]
    assert r.raw["company"]["hq"] == "SF"
    assert isinstance(r.raw["other_emails"], tuple)
    assert hash(r) == hash(TaskResult.from_api(RESULT))


def test_deliveries_shapes_and_dataframe() -> None:
    row = {"id": "d1", "workflow_id": "wf", "webhook_url": "https://h", "attempt_number": 1,
           "status": "failed", "response_status_code": None, "duration_ms": 41,
           "error": "timeout", "attempted_at": "2026-04-06T15:00:43Z", "region": "eu"}
    a = DeliveryLog.from_api([row, {**row, "attempt_number": 2, "status": "success",
                                    "response_status_code": 200, "error": None}], "wf")
    b = DeliveryLog.from_api({"deliveries": [row, {**row, "attempt_number": 2,
                                                   "status": "success",
                                                   "response_status_code": 200,
                                                   "error": None}]}, "wf")
    assert a == b and len(a) == 2 and a.delivered and a[0].extra["region"] == "eu"
    df = a.to_dataframe()
    assert list(df["attempt_number"]) == [1, 2]
    assert str(df["response_status_code"].dtype) == "Int64"
    assert df["response_status_code"].isna().tolist() == [True, False]
    assert "region" in df.columns
    empty = DeliveryLog.from_api([], "wf").to_dataframe()
    assert len(empty) == 0 and "attempt_number" in empty.columns


@pytest.mark.parametrize(
    ("body", "organization_id"),
    [
        ({"organization_id": "org_1", "credits": 12.75}, "org_1"),
        ({"credits": 12, "timestamp_ms": 1_790_000_000_000,
          "agent_instructions": "Check the balance first."}, None),
    ],
)  # fmt: skip
def test_balance_both_documented_shapes(
    body: dict[str, object], organization_id: str | None
) -> None:
    """Spec §3.2: the tolerant reader takes both documented shapes of the balance."""
    bal = Balance.from_api(body)
    assert isinstance(bal.credits, float) and bal.credits == body["credits"]
    assert bal.organization_id == organization_id
    assert dict(bal.raw) == body
    if organization_id is None:
        assert bal.extra["timestamp_ms"] == 1_790_000_000_000
        assert bal.extra["agent_instructions"] == "Check the balance first."
