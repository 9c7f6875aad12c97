"""The sandbox's HTTP face: the five API routes (FastAPI, so validation errors have the real
``{"detail": [...]}`` shape), the ``/_sandbox`` control routes, and an outer ASGI layer that
applies injected faults and counts requests. One module: the routes are thin and share the
error shapes and the body reader.

>>> from cleanlist_pandas.sandbox.config import SandboxConfig
>>> from cleanlist_pandas.sandbox.state import SandboxState
>>> asgi = create_app(SandboxState(SandboxConfig()))
>>> type(asgi).__name__
'SandboxASGI'
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.message
import http
import json
import logging
import math
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from cleanlist_pandas._constants import API_PREFIX, is_loopback_host
from cleanlist_pandas.sandbox.config import NULLABLE
from cleanlist_pandas.sandbox.state import ApiError, Fault, Principal, SandboxState

__all__ = ["ROUTES", "SandboxASGI", "create_app"]

#: (method, path) -> (fault endpoint name, stats key)
ROUTES: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", API_PREFIX + "/auth/validate-key"): ("validate-key", "GET /auth/validate-key"),
    ("GET", API_PREFIX + "/credits/balance"): ("balance", "GET /credits/balance"),
    ("POST", API_PREFIX + "/enrich/bulk"): ("bulk", "POST /enrich/bulk"),
    ("GET", API_PREFIX + "/enrich/status"): ("status", "GET /enrich/status"),
    ("GET", API_PREFIX + "/webhooks/deliveries"): ("deliveries", "GET /webhooks/deliveries"),
}

EnrichmentType = Literal["none", "partial", "phone_only", "full", "prospecting_only"]
#: The 422 ``msg`` for a contact with no usable identity, in the documentation's words [doc].
CONTACT_RULE = (
    "Each contact must include linkedin_url OR first_name + last_name + "
    "(company_domain or company_name)"
)


def _has(value: str | None) -> bool:
    return value is not None and value.strip() != ""


class ContactIn(BaseModel):
    """One contact of ``POST /enrich/bulk`` (five optional strings, §3.3's rule).

    >>> ContactIn(linkedin_url="https://www.linkedin.com/in/x").first_name is None
    True
    """

    linkedin_url: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company_domain: str | None = None
    company_name: str | None = None

    @model_validator(mode="after")
    def _rule(self) -> ContactIn:
        if _has(self.linkedin_url):
            return self
        if (
            _has(self.first_name)
            and _has(self.last_name)
            and (_has(self.company_domain) or _has(self.company_name))
        ):
            return self
        # a custom error keeps FastAPI's {type, loc, msg, input} with the documented text
        # as ``msg`` (a ValueError would prefix it with "Value error, ")
        raise PydanticCustomError("value_error", CONTACT_RULE)


class BulkIn(BaseModel):
    """The body of ``POST /enrich/bulk``.

    >>> BulkIn(contacts=[ContactIn(linkedin_url="x")]).enrichment_type
    'partial'
    """

    enrichment_type: EnrichmentType = "partial"
    webhook_url: str | None = None
    contacts: list[ContactIn]

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook_url must be an absolute https:// URL")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError("webhook_url must use https:// (http:// only for loopback hosts)")
        return v


_PARSE_ERROR = "There was an error parsing the body"
_NOT_AN_OBJECT = "Input should be a valid dictionary or object to extract fields from"
#: ``input`` of a validation error is cut below this depth (see :func:`_printable`).
_INPUT_DEPTH = 32


def _is_json_content_type(value: str | None) -> bool:
    """FastAPI's test: ``application/json`` or ``application/*+json`` (parameters allowed).

    >>> _is_json_content_type("application/json; charset=utf-8"), _is_json_content_type(None)
    (True, False)
    """
    if not value:
        return False
    message = email.message.Message()
    message["content-type"] = value
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _read_json_body(raw: bytes, content_type: str | None) -> Any:
    """The request body as FastAPI reads it for a JSON-model parameter (spec §1).

    No body -> ``None``. A body whose ``Content-Type`` is not JSON (also a missing one:
    FastAPI's ``strict_content_type``) is not parsed: 422 ``model_attributes_type`` at
    ``["body"]``. Invalid JSON: 422 ``json_invalid``. JSON the parser cannot handle (e.g.
    100,000 nested brackets, invalid UTF-8): 400 "There was an error parsing the body".

    >>> _read_json_body(b'{"a": 1}', "application/json")
    {'a': 1}
    >>> try:
    ...     _read_json_body(b"a=1", "application/x-www-form-urlencoded")
    ... except RequestValidationError as exc:
    ...     print(exc.errors()[0]["type"])
    model_attributes_type
    """
    if not raw:
        return None
    if not _is_json_content_type(content_type):
        text = raw.decode("utf-8", "replace")
        error = {"type": "model_attributes_type", "loc": ("body",), "msg": _NOT_AN_OBJECT}
        raise RequestValidationError([{**error, "input": text}])
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ]
        ) from None
    except Exception:  # RecursionError, UnicodeDecodeError, ...: FastAPI's 400
        raise ApiError(400, _PARSE_ERROR) from None


def _printable(value: Any, depth: int = 0) -> Any:
    """``value`` with what strict JSON cannot carry replaced: a non-finite float becomes
    its literal as a string (``"NaN"``, ``"Infinity"``, ``"-Infinity"``) and anything nested
    deeper than ``_INPUT_DEPTH`` levels becomes ``"..."``.

    >>> _printable({"a": [float("nan"), 1.5, float("-inf")]})
    {'a': ['NaN', 1.5, '-Infinity']}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict | list | tuple):
        if depth >= _INPUT_DEPTH:
            return "..."
        if isinstance(value, dict):
            return {k: _printable(v, depth + 1) for k, v in value.items()}
        return [_printable(v, depth + 1) for v in value]
    return value


async def _principal(request: Request) -> Principal:
    state: SandboxState = request.app.state.sandbox
    return state.admit(request.headers.get("authorization"))


Auth = Annotated[Principal, Depends(_principal)]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # ensure_ascii: valid JSON even for lone surrogates a client may have sent as \uXXXX
    data = json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return Response(data, status_code=status, headers=headers, media_type="application/json")


def _control_fault(body: dict[str, Any]) -> Fault:
    allowed = {"endpoint", "kind", "times", "probability", "status", "delay_s", "retry_after"}
    unknown = set(body) - allowed
    if unknown:
        raise ApiError(422, f"unknown fault fields: {sorted(unknown)}")
    if "endpoint" not in body or "kind" not in body:
        raise ApiError(422, "a fault needs 'endpoint' and 'kind'")
    times = body.get("times", 1)
    if "times" not in body and body.get("probability") is not None:
        times = None
    return Fault(
        endpoint=body["endpoint"],
        kind=body["kind"],
        times=times,
        probability=body.get("probability"),
        status=body.get("status"),
        delay_s=body.get("delay_s"),
        retry_after=body.get("retry_after"),
    )


def build_fastapi(state: SandboxState) -> FastAPI:
    """The FastAPI app (routes only; :func:`create_app` adds the fault/stats layer).

    >>> from cleanlist_pandas.sandbox.config import SandboxConfig
    >>> build_fastapi(SandboxState(SandboxConfig())).title
    'Cleanlist API sandbox'
    """
    app = FastAPI(
        title="Cleanlist API sandbox",
        docs_url="/_sandbox/docs",
        redoc_url=None,
        openapi_url="/_sandbox/openapi.json",
    )

    app.state.sandbox = state

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _json({"detail": exc.detail}, exc.status, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own shape, but an ``input`` that plain JSON cannot carry (NaN, Infinity,
        # absurd nesting) is made printable instead of failing the answer with a 500
        errors = [
            {**e, "input": _printable(e["input"])} if "input" in e else e for e in exc.errors()
        ]
        return _json({"detail": jsonable_encoder(errors)}, 422)

    @app.get(API_PREFIX + "/auth/validate-key")
    async def validate_key(p: Auth) -> Response:
        return _json({"valid": True, "user_id": p.user_id, "organization_id": p.organization_id})

    @app.get(API_PREFIX + "/credits/balance")
    async def credits_balance(p: Auth) -> Response:
        return _json(state.balance_body(p))

    @app.post(API_PREFIX + "/enrich/bulk")
    async def enrich_bulk(request: Request, p: Auth) -> Response:
        body = _read_json_body(await request.body(), request.headers.get("content-type"))
        if isinstance(body, dict) and isinstance(body.get("contacts"), list):
            state.check_count(len(body["contacts"]))  # 400 before 422 (spec §3.3)
        if body is None:
            raise RequestValidationError(
                [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
            )
        try:
            req = BulkIn.model_validate(body)
        except ValidationError as exc:
            errors = [
                {**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)
            ]
            raise RequestValidationError(errors) from None
        # the contacts exactly as received (for the fingerprint and the echoed input)
        contacts = [
            {k: v for k, v in c.items() if k in ContactIn.model_fields} for c in body["contacts"]
        ]
        fail = bool(request.scope.get("sandbox.fail_workflow"))
        out = state.submit(p, req.enrichment_type, contacts, req.webhook_url, fail=fail)
        return _json(out)

    @app.get(API_PREFIX + "/enrich/status")
    async def enrich_status(request: Request, p: Auth) -> Response:
        wid = request.query_params.get("workflow_id") or None
        tid = request.query_params.get("task_id") or None
        if (wid is None) == (tid is None):
            raise ApiError(400, "Provide exactly one of workflow_id or task_id")
        if wid is not None:
            data = state.workflow_status_json(p, wid)
            return Response(data, media_type="application/json")
        assert tid is not None
        return _json(state.task_status(p, tid))

    @app.get(API_PREFIX + "/webhooks/deliveries")
    async def webhook_deliveries(p: Auth, workflow_id: Annotated[str, Query()]) -> Response:
        return _json(state.deliveries_body(p, workflow_id))

    # --- control routes (no key) ---------------------------------------------------------
    @app.get("/_sandbox/stats")
    async def control_stats() -> Response:
        return _json(state.stats())

    @app.get("/_sandbox/schedule")
    async def control_schedule() -> Response:
        return _json(state.schedule())

    @app.get("/_sandbox/ledger")
    async def control_ledger() -> Response:
        return _json(state.ledger())

    @app.post("/_sandbox/reset")
    async def control_reset() -> Response:
        state.reset()
        return _json({"ok": True})

    @app.post("/_sandbox/credits")
    async def control_credits(request: Request) -> Response:
        body = await _control_body(request)
        credits: Any = body.get("credits")
        if not _finite_number(credits, minimum=0):
            raise ApiError(422, "credits must be a finite number >= 0")
        org = body.get("organization_id")
        try:
            state.set_credits(float(credits), org)
        except KeyError:
            raise ApiError(404, "Organization not found") from None
        return _json({"organization_id": org or state.organization_id, "credits": credits})

    @app.get("/_sandbox/faults")
    async def control_faults() -> Response:
        return _json(state.faults())

    @app.post("/_sandbox/faults")
    async def control_add_fault(request: Request) -> Response:
        body = await _control_body(request)
        try:
            state.inject_fault(_control_fault(body))
        except (ValueError, TypeError) as exc:
            raise ApiError(422, str(exc)) from None
        return _json(state.faults())

    @app.delete("/_sandbox/faults")
    async def control_clear_faults() -> Response:
        state.clear_faults()
        return _json([])

    @app.post("/_sandbox/organizations")
    async def control_add_org(request: Request) -> Response:
        body = await _control_body(request)
        credits = body.get("credits", 10_000.0)
        if not _finite_number(credits, minimum=0):
            raise ApiError(422, "credits must be a finite number >= 0")
        org, key = state.add_organization(float(credits), bool(body.get("api_access", True)))
        return _json({"organization_id": org, "api_key": key})

    @app.post("/_sandbox/keys")
    async def control_add_key(request: Request) -> Response:
        body = await _control_body(request)
        expires = body.get("expires_in_s")
        if expires is not None and not _finite_number(expires, minimum=0):
            raise ApiError(422, "expires_in_s must be a finite number >= 0")
        try:
            key = state.add_key(
                str(body.get("organization_id") or state.organization_id), expires
            )
        except KeyError:
            raise ApiError(404, "Organization not found") from None
        return _json({"api_key": key})

    @app.post("/_sandbox/keys/revoke")
    async def control_revoke_key(request: Request) -> Response:
        body = await _control_body(request)
        try:
            state.revoke_key(str(body.get("api_key")))
        except KeyError:
            raise ApiError(404, "Key not found") from None
        return _json({"ok": True})

    @app.get("/_sandbox/config")
    async def control_config() -> Response:
        return _json(dataclasses.asdict(state.config))

    @app.patch("/_sandbox/config")
    async def control_patch_config(request: Request) -> Response:
        body = await _control_body(request)
        names = {f.name: f for f in dataclasses.fields(state.config)}
        unknown = sorted(set(body) - set(names))
        if unknown:
            raise ApiError(422, f"unknown config fields: {unknown}")
        changes: dict[str, Any] = {}
        for name, value in body.items():
            current = getattr(state.config, name)
            if value is None and name in NULLABLE:
                pass  # null: back to the default meaning (unlimited, relative...)
            elif isinstance(current, tuple):
                if not isinstance(value, list):
                    raise ApiError(422, f"config field {name!r} has the wrong type")
                value = tuple(value)
            elif isinstance(current, bool) != isinstance(value, bool) or (
                isinstance(current, int | float) and not isinstance(value, int | float)
            ):
                raise ApiError(422, f"config field {name!r} has the wrong type")
            changes[name] = value
        # all or nothing: a change that makes no sense (time_scale -1, NaN...) is a 422
        problems = dataclasses.replace(state.config, **changes).problems()
        if problems:
            raise ApiError(422, "; ".join(problems))
        for name, value in changes.items():
            setattr(state.config, name, value)
        return _json(dataclasses.asdict(state.config))

    @app.get("/_sandbox/info")
    async def control_info() -> Response:
        # What a client reads to need no plumbing (cleanlist_pandas._sandbox_info): the
        # clock, the rate window (service seconds; times time_scale in real ones) and the
        # scratch directory for its cache, journal and spend ledger.
        cfg = state.config
        return _json(
            {
                "sandbox": True,
                "organization_id": state.organization_id,
                "api_prefix": API_PREFIX,
                "time_scale": cfg.time_scale,
                "seed": state.seed,
                "rate_limit_per_org": cfg.rate_limit_per_org,
                "rate_limit_window_s": cfg.rate_limit_window_s,
                "cache_dir": state.client_cache_dir,
            }
        )

    return app


def _finite_number(value: Any, minimum: float | None = None) -> bool:
    """True for an int or float (not a bool) that is finite and, if given, >= ``minimum``."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    if not math.isfinite(value):
        return False
    return minimum is None or value >= minimum


async def _control_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except Exception:  # ValueError, RecursionError (absurd nesting), ...
        raise ApiError(422, "body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "body must be a JSON object")
    return body


class _DropLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "sandbox: dropped connection" not in str(record.getMessage())


class _Dropped(Exception):
    """Raised to make the server close a connection mid-response (fallback path)."""

    def __str__(self) -> str:
        return "sandbox: dropped connection (injected fault)"


class SandboxASGI:
    """Outer ASGI layer: applies injected faults and counts API requests, then hands over
    to the FastAPI app (available as ``.app``).

    >>> from cleanlist_pandas.sandbox.config import SandboxConfig
    >>> SandboxASGI(SandboxState(SandboxConfig())).state.config.time_scale
    1.0
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.app = build_fastapi(state)
        logger = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, _DropLogFilter) for f in logger.filters):
            logger.addFilter(_DropLogFilter())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = ROUTES.get((scope["method"], scope["path"]))
        if route is None:
            await self.app(scope, receive, send)
            return
        name, stats_key = route
        generation = self.state.generation  # a request that spans a reset is not counted
        fault = self.state.take_fault(name)
        seen: list[int | str] = []
        gone: list[bool] = []  # the client went away before its body was read
        raw_receive = receive

        async def watching_receive() -> Any:
            message = await raw_receive()
            if message["type"] == "http.disconnect":
                gone.append(True)
            return message

        receive = watching_receive

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                # count before the client can see the answer, so stats() never lags; a
                # request whose client went away before it was answered (killed while
                # sending its body) arrived all the same: "aborted", not the 500 the
                # framework answers to nobody
                status = "aborted" if gone else message["status"]
                seen.append(status)
                self.state.record(stats_key, status, generation)
            await send(message)

        if fault is not None:
            if fault.kind == "slow":
                # read the whole body first, so a client that times out during the delay
                # still gets its request processed (the ambiguous time-out of spec §7)
                receive = await _buffered(receive)
                await asyncio.sleep(fault.delay_s or 0.0)
            elif fault.kind == "status":
                await self._fault_status(fault, counting_send)
                return
            elif fault.kind == "drop_before":
                self.state.record(stats_key, "dropped", generation)
                await _drop(send)
                return
            elif fault.kind == "drop_after":

                async def swallow(message: Any) -> None:
                    return None

                await self.app(scope, receive, swallow)
                self.state.record(stats_key, "dropped", generation)
                await _drop(send)
                return
            elif fault.kind == "fail_workflow":
                scope = dict(scope)
                scope["sandbox.fail_workflow"] = True
        await self.app(scope, receive, counting_send)
        if not seen:  # pragma: no cover - the app always answers
            self.state.record(stats_key, 500, generation)

    async def _fault_status(self, fault: Fault, send: Any) -> None:
        status = fault.status or 500
        headers: dict[str, str] = {}
        if status == 429:
            detail = "Rate limit exceeded"
            headers["Retry-After"] = str(max(1, int(fault.retry_after or 1)))
        else:
            try:
                detail = http.HTTPStatus(status).phrase
            except ValueError:
                detail = "Error"
        resp = _json({"detail": detail}, status, headers)
        await resp({"type": "http"}, _no_receive, send)


async def _buffered(receive: Any) -> Any:
    """Drain the request body now; return a ``receive`` that replays it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replay_receive() -> Any:
        if replay:
            return replay.pop()
        return await receive()

    return replay_receive


async def _no_receive() -> Any:  # pragma: no cover - never awaited by a plain Response
    return {"type": "http.disconnect"}


async def _drop(send: Any) -> None:
    """Close the connection without a (complete) response.

    With uvicorn's h11/httptools protocols ``send`` is a bound method of the request cycle,
    which holds the transport: close it before any byte of the response was written, and
    mark the cycle disconnected so uvicorn neither answers 500 nor logs. Otherwise, fall
    back to starting a response that promises a body and then failing, which makes the
    server abort the connection mid-body.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None and hasattr(transport, "close"):
        transport.close()
        with contextlib.suppress(Exception):
            cycle.disconnected = True  # type: ignore[union-attr]
        await asyncio.sleep(0)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        }
    )
    await send({"type": "http.response.body", "body": b"{", "more_body": True})
    raise _Dropped()


def create_app(state: SandboxState) -> SandboxASGI:
    """Build the full ASGI app (fault/stats layer around the FastAPI routes).

    >>> from cleanlist_pandas.sandbox.config import SandboxConfig
    >>> create_app(SandboxState(SandboxConfig())).app.title
    'Cleanlist API sandbox'
    """
    return SandboxASGI(state)
