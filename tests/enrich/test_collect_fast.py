"""The engine's collect step (``Engine._collect``) read the plain way and the fast way agree.

``_collect`` takes a terminal workflow's results: it matches them to the contacts by task id,
sets aside the ones that failed for lack of credits, cross-checks the echoed input, counts
credits and "found", and hands the fresh results to the run. Its fast path decides the
common cases inline (an echo equal to what was sent, a completed task) and copies only the
results it keeps. ``_slow_collect`` below is the plain reading it replaced, kept verbatim:
on fuzzed status bodies — missing fields, nulls, extra fields, results missing or repeated,
task ids as numbers, echoes that differ in case, spaces or content, odd statuses, credits as
strings — both must leave the same outcome, counters and hook calls.
"""

from __future__ import annotations

import copy
import pathlib
import random
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from cleanlist_pandas.run.engine import (
    Engine,
    _ambiguous_message,
    _awaiting_message,
    _echo_mismatch,
    is_credit_failure,
)
from cleanlist_pandas.store.journal import AWAITING_CREDITS, Journal
from cleanlist_pandas.types import StatusSnapshot, is_found

TYPES = ["partial", "phone_only", "full", "prospecting_only", "none"]


def _slow_echo_mismatch(echo: Any, sent: Mapping[str, str] | None) -> bool:
    if not isinstance(echo, Mapping) or sent is None:
        return False
    for key, value in sent.items():
        got = echo.get(key)
        if got is not None and str(got).strip().lower() != str(value).strip().lower():
            return True
    return False


def _slow_collect(
    self: Engine,
    workflow_id: str,
    fingerprints: Sequence[str],
    task_ids: Sequence[str],
    status: StatusSnapshot,
    contacts: Sequence[Mapping[str, str]] = (),
    prepaid: bool = False,
    skip: frozenset[str] = frozenset(),
) -> list[str]:
    """``Engine._collect`` as it was before the fast path (verbatim but for names)."""
    by_task: dict[str, dict[str, Any]] = {}
    unpaid: list[str] = []
    for item in status.results:
        row = dict(item)
        tid = row.get("task_id")
        if tid is not None:
            by_task[str(tid)] = row
    wf_status = status.status
    fresh: list[tuple[str, dict[str, Any]]] = []
    for i, fp in enumerate(fingerprints):
        if fp in skip:
            continue
        tid = task_ids[i] if i < len(task_ids) else None
        result = by_task.get(str(tid)) if tid is not None else None
        if result is not None and is_credit_failure(result):
            unpaid.append(fp)
            self.outcome.missing[fp] = (
                AWAITING_CREDITS,
                _awaiting_message(f"task {tid} of workflow {workflow_id} could not be paid"),
            )
            continue
        if result is None:
            why = "the workflow failed" if wf_status == "failed" else "no result returned"
            self.outcome.missing[fp] = ("failed", f"{why} (workflow {workflow_id})")
            continue
        echo = result.pop("input", None)
        if _slow_echo_mismatch(echo, contacts[i] if i < len(contacts) else None):
            self.outcome.missing[fp] = (
                "failed",
                f"the result of task {tid} does not match the contact sent (workflow "
                f"{workflow_id}); not merged, to avoid attaching it to the wrong row",
            )
            continue
        self.outcome.results[fp] = (result, workflow_id)
        self.outcome.missing.pop(fp, None)
        fresh.append((fp, result))
        if prepaid:
            self.outcome.prepaid.add(fp)
        else:
            self.outcome.credits += float(result.get("credits_charged") or 0)
        if is_found(result, self.enrichment_type):
            self._found += 1
    self._done += len(fingerprints)
    if fresh and self.on_results is not None:
        self.on_results(workflow_id, fresh)
    return unpaid


# -- fuzzed bodies -----------------------------------------------------------------------
FIELDS = ["first_name", "last_name", "company_domain", "company_name", "linkedin_url"]


def _contact(rng: random.Random, k: int) -> dict[str, str]:
    keys = rng.sample(FIELDS, rng.randint(1, 4))
    return {key: f"{key[:3]}{k}" for key in keys}


def _echo(rng: random.Random, sent: dict[str, str], other: dict[str, str]) -> Any:
    roll = rng.random()
    if roll < 0.35:  # exactly as sent, maybe with nulls and extra fields
        echo: dict[str, Any] = dict(sent)
        if rng.random() < 0.5:
            echo.update({f: None for f in FIELDS if f not in sent})
        if rng.random() < 0.2:
            echo["extra"] = [1, {"x": None}]
        return echo
    if roll < 0.5:  # case and spaces differ: the same contact
        return {k: f"  {v.upper()} " for k, v in sent.items()}
    if roll < 0.6:  # another contact: a mismatch
        return dict(other)
    if roll < 0.7:  # a field left out or nulled: not compared
        echo = dict(sent)
        key = rng.choice(list(echo))
        if rng.random() < 0.5:
            del echo[key]
        else:
            echo[key] = None
        return echo
    if roll < 0.75:  # not an object at all
        return rng.choice(["x", 3, [sent], True])
    if roll < 0.8:  # a number where a string was sent
        return {k: 7 for k in sent}
    return None  # no echo (absent below)


def _result(rng: random.Random, tid: Any, sent: dict[str, str], other: dict[str, str]) -> Any:
    status = rng.choice(
        ["completed"] * 6 + ["failed", "failed", "pending", None, "", "COMPLETED", 3]
    )
    res: dict[str, Any] = {"task_id": tid}
    if status is not None:
        res["status"] = status
    if rng.random() < 0.6:
        res["primary_email"] = rng.choice(["a@b.io", None, "", "x@y.co"])
    if rng.random() < 0.5:
        res["personal_phone_numbers"] = rng.choice([[], ["+1555"], None, "+1555"])
    if rng.random() < 0.3:
        res["discovered_contacts"] = rng.choice([[], [{"first_name": "Z"}], None])
    if rng.random() < 0.7:
        res["credits_charged"] = rng.choice(
            [0, 1, 10, 11, 0.1, 0.7, None, "1", "2.5", False, 0, 1, "n/a"]
        )
    if rng.random() < 0.3:
        res["error"] = rng.choice(
            [
                "Insufficient credits to deliver this result",
                "NOT ENOUGH CREDITS",
                "upstream provider timeout",
                None,
                5,
            ]
        )
    if rng.random() < 0.3:
        res["prospect"] = {"first_name": "A", "unknown": {"deep": [1, 2]}}
    if rng.random() < 0.2:
        res["new_field"] = rng.choice([1, "v", None, {"a": [None]}])
    echo = _echo(rng, sent, other)
    if echo is not None:
        res["input"] = echo
    return res


def _workflow(rng: random.Random, n: int) -> dict[str, Any]:
    """A chunk of ``n`` contacts and the terminal status body the API might answer."""
    fps = [f"fp{k}" for k in range(n)]
    if rng.random() < 0.15:  # a fingerprint twice in one chunk
        fps[-1] = fps[0]
    contacts = [_contact(rng, k) for k in range(n)]
    task_ids: list[str] = [f"t{k}" for k in range(n)]
    if rng.random() < 0.2:  # fewer task ids than contacts
        task_ids = task_ids[: rng.randint(0, n)]
    if rng.random() < 0.1 and len(task_ids) > 1:  # a task id twice (an API bug)
        task_ids[-1] = task_ids[0]
    results: list[Any] = []
    for k, tid in enumerate(task_ids):
        roll = rng.random()
        if roll < 0.1:
            continue  # no result for this task (truncated)
        sent = contacts[k]
        other = contacts[(k + 1) % n]
        wire_tid: Any = tid
        if roll < 0.15:
            wire_tid = int(tid[1:]) if rng.random() < 0.5 else None  # a number, or no id
            if isinstance(wire_tid, int):
                task_ids[k] = str(wire_tid)
        results.append(_result(rng, wire_tid, sent, other))
        if rng.random() < 0.05:  # the same task twice: the last one counts
            results.append(_result(rng, wire_tid, sent, other))
    rng.shuffle(results)
    if rng.random() < 0.1:
        results.append(rng.choice(["junk", 5, None, ["t0"]]))  # not result objects
    if rng.random() < 0.1:  # results with a task id nobody sent
        results.append({"task_id": "stray", "status": "completed", "primary_email": "s@t.io"})
    body = {
        "workflow": {
            "workflow_id": "wf",
            "status": rng.choice(["completed", "completed_with_errors", "failed"]),
            "summary": {"total": n, "completed": n},
        },
        "results": results,
    }
    prepaid = rng.random() < 0.2
    skip = frozenset(rng.sample(fps, rng.randint(0, 2))) if rng.random() < 0.2 else frozenset()
    if rng.random() < 0.2:
        contacts = contacts[: rng.randint(0, n)]  # echoes with nothing to compare against
    return {
        "fps": fps,
        "task_ids": task_ids,
        "contacts": contacts,
        "body": body,
        "prepaid": prepaid,
        "skip": skip,
    }


def _engine(journal: Journal, enrichment_type: str) -> tuple[Engine, list[Any]]:
    calls: list[Any] = []
    engine = Engine(client=None, journal=journal, job_id="job", enrichment_type=enrichment_type,
                    on_results=lambda wf, fresh: calls.append((wf, copy.deepcopy(fresh))))
    # earlier workflows of the run left some state
    engine.outcome.credits = 0.3
    engine.outcome.missing["fp1"] = ("pending", "earlier")
    engine._found, engine._done = 2, 5
    return engine, calls


def _state(engine: Engine, calls: list[Any], unpaid: list[str]) -> dict[str, Any]:
    o = engine.outcome
    return {
        "unpaid": unpaid,
        "results": list(o.results.items()),
        "missing": list(o.missing.items()),
        "credits": o.credits,
        "prepaid": sorted(o.prepaid),
        "found": engine._found,
        "done": engine._done,
        "calls": calls,
    }


@pytest.fixture(scope="module")
def journal() -> Journal:
    return Journal(pathlib.Path(tempfile.mkdtemp()) / "j.sqlite3")


@pytest.mark.parametrize("seed", range(300))
def test_fast_collect_matches_the_plain_reading(seed: int, journal: Journal) -> None:
    rng = random.Random(seed)
    enrichment_type = TYPES[seed % len(TYPES)]
    wf = _workflow(rng, rng.randint(1, 12))
    outs = []
    for collect in (Engine._collect, _slow_collect):
        engine, calls = _engine(journal, enrichment_type)
        body = copy.deepcopy(wf["body"])
        snap = StatusSnapshot.from_api(body)
        try:
            unpaid = collect(
                engine, "wf", wf["fps"], wf["task_ids"], snap, wf["contacts"], wf["prepaid"],
                wf["skip"],
            )
        except ValueError as exc:  # credits_charged that is not a number: both refuse it
            outs.append(("raised", type(exc)))
            continue
        # the decoded body is never modified (the fast path copies what it keeps)
        assert body == wf["body"]
        outs.append(_state(engine, calls, unpaid))
    assert outs[0] == outs[1]


def test_fuzzing_reaches_every_branch(journal: Journal) -> None:
    """The fuzzer produces every case the collect step tells apart."""
    seen: set[str] = set()
    for seed in range(300):
        rng = random.Random(seed)
        wf = _workflow(rng, rng.randint(1, 12))
        engine, _calls = _engine(journal, TYPES[seed % len(TYPES)])
        try:
            Engine._collect(
                engine, "wf", wf["fps"], wf["task_ids"], StatusSnapshot.from_api(wf["body"]),
                wf["contacts"], wf["prepaid"], wf["skip"],
            )
        except ValueError:
            seen.add("bad credits")
            continue
        for status, error in engine.outcome.missing.values():
            if status == AWAITING_CREDITS:
                seen.add("unpaid")
            elif "does not match" in error:
                seen.add("echo mismatch")
            elif "no result returned" in error:
                seen.add("no result")
            elif "the workflow failed" in error:
                seen.add("workflow failed")
        if engine.outcome.results:
            seen.add("kept")
        if engine.outcome.prepaid:
            seen.add("prepaid")
    assert seen >= {
        "unpaid", "echo mismatch", "no result", "workflow failed", "kept", "prepaid",
        "bad credits",
    }


@pytest.mark.parametrize(
    ("echo", "sent", "mismatch"),
    [
        ({"first_name": "Ada"}, {"first_name": "Ada"}, False),
        ({"first_name": " ada "}, {"first_name": "Ada"}, False),
        ({"first_name": "Bob"}, {"first_name": "Ada"}, True),
        ({"first_name": None}, {"first_name": "Ada"}, False),
        ({}, {"first_name": "Ada"}, False),
        ({"first_name": 1}, {"first_name": "1"}, False),
        ({"first_name": "Ada", "x": 1}, {"first_name": "Ada", "last_name": "L"}, False),
        ({"first_name": "Ada", "last_name": "M"}, {"first_name": "Ada", "last_name": "L"}, True),
        ("Ada", {"first_name": "Ada"}, False),
        ({"first_name": "Bob"}, None, False),
    ],
)
def test_echo_mismatch(echo: Any, sent: Any, mismatch: bool) -> None:
    assert _echo_mismatch(echo, sent) is mismatch
    assert _slow_echo_mismatch(echo, sent) is mismatch


def test_messages_unchanged() -> None:
    # the helpers the collect step builds its messages with are the engine's own
    assert "resend_unknown=True" in _ambiguous_message(1, None)
