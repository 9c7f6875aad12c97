"""A poller's status read (``StatusSnapshot.from_json``, ``AsyncClient.status_snapshot``).

``from_json`` decodes only the ``workflow`` object of a running workflow's body (the results
so far are decoded if and when ``results`` is used) and the whole body otherwise. Whatever
the shape, it must read exactly what ``from_api(json.loads(body))`` reads: on fuzzed bodies
in every shape the tolerant reader accepts (workflow fields wrapped or at the top level,
results beside or inside the workflow object, missing and null fields, extra fields, odd
statuses, whitespace, a BOM, a repeated key) the two agree field for field.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import pytest

from cleanlist_pandas.client import AsyncClient
from cleanlist_pandas.errors import UnexpectedResponseError
from cleanlist_pandas.types import StatusSnapshot, Workflow, _ResultsOfBody

KEY = "clapi_live_abcdefghijklmnop1a2b"
STATUSES = [
    "processing", "pending", "completed", "completed_with_errors", "failed", None, "", 5,
    "PROCESSING", "queued",
]


def _maybe(rng: random.Random, value: Any) -> Any:
    roll = rng.random()
    return value if roll < 0.7 else (None if roll < 0.85 else "x")


def _result(rng: random.Random, k: int) -> Any:
    if rng.random() < 0.05:
        return rng.choice(["junk", 3, None, []])  # not a result object: skipped
    res: dict[str, Any] = {"task_id": _maybe(rng, f"t{k}"), "status": "completed"}
    if rng.random() < 0.5:
        res["primary_email"] = _maybe(rng, f"p{k}@x.io")
    if rng.random() < 0.3:
        res["input"] = {"first_name": "Ann", "note": "has \"workflow\": inside"}
    if rng.random() < 0.2:
        res["prospect"] = {"headline": "é 😀 ,\"]}", "x": [1, {"y": None}]}
    return res


def _body(rng: random.Random) -> Any:
    n = rng.randint(0, 8)
    results: Any = [_result(rng, k) for k in range(n)]
    if rng.random() < 0.05:
        results = rng.choice([None, {}, "x", 5])
    summary: Any = {
        "total": _maybe(rng, n), "completed": _maybe(rng, rng.randint(0, n)),
        "pending": 1, "emails_found": 2,
    }
    if rng.random() < 0.1:
        summary = rng.choice([None, [], "x"])
    wf: dict[str, Any] = {
        "workflow_id": _maybe(rng, "public_bulk_1"),
        "status": rng.choice(STATUSES),
        "enrichment_type": "partial",
        "total_contacts": _maybe(rng, n),
        "summary": summary,
        "completed_at": None,
        "unknown_field": {"a": [1, 2]},
    }
    for key in rng.sample(list(wf), rng.randint(0, 2)):
        del wf[key]  # missing fields
    shape = rng.random()
    if shape < 0.55:  # the spec's shape
        body: dict[str, Any] = {"workflow": wf, "results": results}
    elif shape < 0.65:  # results inside the workflow object
        body = {"workflow": {**wf, "results": results}}
    elif shape < 0.75:  # no wrapper
        body = {**wf, "results": results}
    elif shape < 0.8:  # results first
        body = {"results": results, "workflow": wf}
    elif shape < 0.85:  # a workflow that is not an object: the top level is read
        body = {"workflow": rng.choice([None, "x", [wf]]), **wf, "results": results}
    else:  # extra top-level fields
        body = {"workflow": wf, "results": results, "next": None, "meta": {"workflow": 1}}
    return body


def _dumps(rng: random.Random, body: Any) -> bytes:
    text = json.dumps(
        body,
        ensure_ascii=rng.random() < 0.5,
        indent=rng.choice([None, None, 2, "\t"]),
        separators=rng.choice([None, (",", ":"), (", ", ": ")]),
    )
    if rng.random() < 0.2:
        text = rng.choice([" ", "\n", "\r\n\t "]) + text + rng.choice(["", " ", "\n"])
    data = text.encode("utf-8")
    if rng.random() < 0.05:
        data = b"\xef\xbb\xbf" + data  # a BOM: json.loads(bytes) accepts it
    return data


def _fields(snap: StatusSnapshot) -> tuple[Any, ...]:
    return (snap.workflow_id, snap.status, snap.completed, snap.total, tuple(snap.results))


@pytest.mark.parametrize("seed", range(400))
def test_from_json_reads_what_from_api_reads(seed: int) -> None:
    rng = random.Random(seed)
    data = _dumps(rng, _body(rng))
    expected = StatusSnapshot.from_api(json.loads(data), workflow_id="wf_asked")
    got = StatusSnapshot.from_json(data, workflow_id="wf_asked")
    assert isinstance(got, StatusSnapshot)
    assert _fields(got) == _fields(expected)
    assert got == expected
    assert got.is_terminal == expected.is_terminal


def test_fuzzing_reaches_both_ways() -> None:
    lazy = whole = 0
    for seed in range(400):
        rng = random.Random(seed)
        got = StatusSnapshot.from_json(_dumps(rng, _body(rng)))
        if isinstance(got.results, _ResultsOfBody):
            lazy += 1
        else:
            whole += 1
    assert lazy > 80 and whole > 80


@pytest.mark.parametrize("results", [5, 2.5, True, "abc", {"task_id": "t"}, None])
def test_results_that_are_not_a_list_read_as_none(results: Any) -> None:
    body = {"workflow": {"status": "completed"}, "results": results}
    assert StatusSnapshot.from_api(body).results == ()
    assert Workflow.from_api(body).results == ()


def test_a_running_workflow_s_results_are_decoded_only_when_used() -> None:
    body = {
        "workflow": {"workflow_id": "w", "status": "processing",
                     "summary": {"total": 3, "completed": 2}},
        "results": [{"task_id": "t1"}, {"task_id": "t2"}],
    }
    snap = StatusSnapshot.from_json(json.dumps(body).encode())
    assert (snap.status, snap.completed, snap.total) == ("processing", 2, 3)
    assert isinstance(snap.results, _ResultsOfBody) and snap.results._items is None
    assert [r["task_id"] for r in snap.results] == ["t1", "t2"]
    assert len(snap.results) == 2 and snap.results[-1] == {"task_id": "t2"}
    assert snap.results == ({"task_id": "t1"}, {"task_id": "t2"})
    done = StatusSnapshot.from_json(json.dumps(
        {**body, "workflow": {**body["workflow"], "status": "completed"}}
    ).encode())
    assert isinstance(done.results, tuple) and len(done.results) == 2


def test_a_repeated_workflow_key_is_read_as_json_loads_reads_it() -> None:
    # the first says running, the last (which json.loads keeps) says completed
    text = (
        '{"workflow": {"status": "processing"}, "results": [{"task_id": "t"}],'
        ' "workflow": {"status": "completed", "summary": {"total": 1, "completed": 1}}}'
    )
    snap = StatusSnapshot.from_json(text)
    assert (snap.status, snap.total, len(snap.results)) == ("completed", 1, 1)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"x"', b"null", b"3"])
def test_a_body_that_is_not_an_object_comes_back_decoded(body: bytes) -> None:
    assert StatusSnapshot.from_json(body) == json.loads(body)


@pytest.mark.parametrize(
    "body", [b"", b"<html>", b'{"workflow": {"status": "completed"', b"{\"workflow\": nope}"]
)
def test_a_body_that_is_not_json_raises_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(ValueError):
        StatusSnapshot.from_json(body)


def test_text_after_a_running_workflow_is_checked_when_results_are_used() -> None:
    snap = StatusSnapshot.from_json(b'{"workflow": {"status": "processing"}, "results": [')
    assert snap.status == "processing"
    with pytest.raises(ValueError):
        list(snap.results)


# -- through the client ---------------------------------------------------------------------
def _read(body: bytes, status: int = 200) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["workflow_id"] == "public_bulk_1"
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    async def run() -> Any:
        client = AsyncClient(api_key=KEY, base_url="http://127.0.0.1:9",
                             transport=httpx.MockTransport(handler), rate=1000, per=1.0)
        try:
            return await client.status_snapshot("public_bulk_1")
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_status_snapshot_reads_a_running_and_a_finished_workflow() -> None:
    wf = {"workflow_id": "public_bulk_1", "status": "processing",
          "summary": {"total": 2, "completed": 1}}
    snap = _read(json.dumps({"workflow": wf, "results": [{"task_id": "a"}]}).encode())
    assert (snap.status, snap.completed, snap.total, snap.is_terminal) == (
        "processing", 1, 2, False
    )
    assert [r["task_id"] for r in snap.results] == ["a"]
    wf = {**wf, "status": "completed", "summary": {"total": 2, "completed": 2}}
    snap = _read(json.dumps({"workflow": wf, "results": [{"task_id": "a"}, {"task_id": "b"}]})
                 .encode())
    assert snap.is_terminal and [r["task_id"] for r in snap.results] == ["a", "b"]


def test_status_snapshot_refuses_what_is_not_a_json_object() -> None:
    with pytest.raises(UnexpectedResponseError, match="expected a JSON object"):
        _read(b"[1, 2]")
    with pytest.raises(UnexpectedResponseError, match="is not JSON"):
        _read(b"<html>oops</html>")
