"""Session settings: API key, base URL, timeouts, pacing, loop strategy, retention.

Every client option is resolved in this order: the argument given to the client, then the
session default set with :func:`configure`, then the environment (``CLEANLIST_API_KEY``,
``CLEANLIST_BASE_URL``), then the built-in default.

>>> import cleanlist_pandas.config as cfg
>>> cfg.configure(rate=30)
>>> cfg.get_config().rate
30
>>> cfg.reset_config()
>>> mask_key("clapi_live_0123456789ab1a2b")
'clapi_…1a2b'
"""

from __future__ import annotations

import dataclasses
import os
import threading
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

from cleanlist_pandas._constants import (
    API_KEY_PREFIX,
    API_PREFIX,
    DEFAULT_BASE_URL,
    DEFAULT_BURST,
    DEFAULT_CACHE_MAX_AGE,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_RATE_LIMIT_PATIENCE,
    DEFAULT_TIMEOUT,
    ENV_API_KEY,
    ENV_BASE_URL,
    EXTENSION_KEY_PREFIX,
    RATE_LIMIT_PER_ORG,
    RATE_LIMIT_WINDOW_S,
    is_loopback_host,
)
from cleanlist_pandas.errors import ConfigurationError, InputValidationError

__all__ = [
    "LoopStrategy",
    "Settings",
    "configure",
    "get_config",
    "key_fingerprint",
    "mask_key",
    "normalize_base_url",
    "reset_config",
    "resolve_api_key",
    "retention_seconds",
    "session_base_url",
    "session_cache_dir",
    "validate_api_key",
    "validate_webhook_url",
]

LoopStrategy = Literal["thread", "nest_asyncio"]
_LOOP_STRATEGIES: Final = ("thread", "nest_asyncio")


def mask_key(key: str | None) -> str:
    """Show an API key safely: prefix and last four characters only.

    >>> mask_key("clapi_abcdef123456"), mask_key(None), mask_key("short")
    ('clapi_…3456', '<none>', '…')
    """
    if not key:
        return "<none>"
    for prefix in (API_KEY_PREFIX, EXTENSION_KEY_PREFIX):
        if key.startswith(prefix) and len(key) >= len(prefix) + 8:
            return f"{prefix}…{key[-4:]}"
    return "…"


def key_fingerprint(key: str) -> str:
    """A key's fingerprint: a keyed hash (32 hex characters) that names the key in local
    files — which organization a key belongs to is remembered under it — and that cannot be
    turned back into the key. The key itself is never stored.

    >>> key_fingerprint("clapi_abcdef123456") == key_fingerprint("clapi_abcdef123456")
    True
    >>> len(key_fingerprint("clapi_abcdef123456")), "abcdef" in key_fingerprint("clapi_abcdef")
    (32, False)
    """
    import hashlib

    return hashlib.blake2b(key.encode(), digest_size=16, person=b"cleanlist-key-v1").hexdigest()


def validate_api_key(key: str) -> str:
    """Check a key's shape locally (no request) and return it stripped.

    >>> validate_api_key("  clapi_abc123  ")
    'clapi_abc123'
    """
    key = key.strip()
    if not key:
        raise ConfigurationError(
            f"The API key is empty. Pass api_key=..., set {ENV_API_KEY}, or call "
            "cleanlist_pandas.configure(api_key=...)."
        )
    if key.startswith(EXTENSION_KEY_PREFIX):
        raise ConfigurationError(
            f"{mask_key(key)} is a browser-extension key ({EXTENSION_KEY_PREFIX}…); the API "
            f"refuses it. Create an API key ({API_KEY_PREFIX}…) in the Cleanlist portal."
        )
    if not key.startswith(API_KEY_PREFIX):
        raise ConfigurationError(
            f"This does not look like a Cleanlist API key: keys start with {API_KEY_PREFIX!r}. "
            "Copy the key again from the Cleanlist portal."
        )
    if any(ch.isspace() or ord(ch) < 32 for ch in key):
        raise ConfigurationError(
            f"The API key {mask_key(key)} contains whitespace or control characters."
        )
    return key


def normalize_base_url(url: str) -> str:
    """Validate a base URL and return it without a trailing slash.

    https is required, except for loopback hosts (the sandbox). A bare host is completed with
    ``/api/v1/public``; any other path must end with it.

    >>> normalize_base_url("http://127.0.0.1:8000")
    'http://127.0.0.1:8000/api/v1/public'
    >>> normalize_base_url("https://api.cleanlist.ai/api/v1/public/")
    'https://api.cleanlist.ai/api/v1/public'
    """
    raw = url.strip()
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"Base URL {raw!r} is not an http(s) URL; expected e.g. {DEFAULT_BASE_URL!r}."
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigurationError(
            "The base URL must not carry credentials, a query or a fragment; "
            f"expected e.g. {DEFAULT_BASE_URL!r}."
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigurationError(
            f"Refusing plain http:// for {parts.hostname!r}: the API key would travel "
            "unencrypted. Use https:// (http:// is allowed only for loopback hosts such as "
            "127.0.0.1, the local sandbox)."
        )
    path = parts.path.rstrip("/")
    if path == "":
        path = API_PREFIX
    elif not path.endswith(API_PREFIX):
        raise ConfigurationError(
            f"Base URL {raw!r} must end in {API_PREFIX!r} (e.g. {DEFAULT_BASE_URL!r})."
        )
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def validate_webhook_url(url: str) -> str:
    """Check a ``webhook_url`` locally (no request) and return it unchanged.

    The rule is the API's: an absolute ``https://`` URL; plain ``http://`` only for loopback
    hosts (a local :class:`~cleanlist_pandas.webhooks.WebhookReceiver`, the sandbox), as for
    the base URL. Anything else raises :class:`~cleanlist_pandas.errors.InputValidationError`
    (a ``ValueError``) naming ``webhook_url``, before anything is sent or paid for.

    >>> validate_webhook_url("https://hooks.example.com/cleanlist")
    'https://hooks.example.com/cleanlist'
    >>> validate_webhook_url("http://example.com/hook")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InputValidationError: webhook_url 'http://example.com/hook': refusing plain http:// ...
    """
    if not isinstance(url, str):
        raise InputValidationError(
            f"webhook_url must be a str URL, not {type(url).__name__}.",
            [(None, "webhook_url", "not a string")],
        )
    if not url or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise InputValidationError(
            f"webhook_url {url!r} is empty or contains whitespace or control characters.",
            [(None, "webhook_url", "whitespace or control characters")],
        )
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        host = None
        parts = urllib.parse.SplitResult("", "", "", "", "")
    if parts.scheme not in ("http", "https") or not host:
        raise InputValidationError(
            f"webhook_url {url!r} must be an absolute https:// URL, e.g. "
            "'https://hooks.example.com/cleanlist'.",
            [(None, "webhook_url", "not an absolute http(s) URL")],
        )
    if parts.scheme == "http" and not is_loopback_host(host):
        raise InputValidationError(
            f"webhook_url {url!r}: refusing plain http:// for {host!r}, Cleanlist would "
            "refuse it too (the results would travel unencrypted). Use https:// (http:// is "
            "allowed only for loopback hosts such as 127.0.0.1, e.g. a local "
            "WebhookReceiver). Nothing was sent.",
            [(None, "webhook_url", "http:// off loopback")],
        )
    return url


@dataclass(frozen=True)
class Settings:
    """Resolved options of one client. ``repr`` masks the key.

    ``rate`` requests per ``per`` seconds is the pacer's limit, counted in a sliding window so
    a job's first requests may all leave at once; left ``None`` (the default) it is the API's
    (60 per 60 s per organization), or, for a local sandbox, the sandbox's own window as it
    reports it (scaled by its ``time_scale``: see :meth:`AsyncClient.sandbox_info
    <cleanlist_pandas.client.AsyncClient.sandbox_info>`). ``burst``, if set, also spaces
    requests evenly after ``burst`` back-to-back ones.
    ``timeout`` is per request; ``connect_timeout`` for opening a connection.
    ``loop_strategy`` is how the sync :class:`~cleanlist_pandas.Client` runs inside an
    already running event loop. ``max_age`` (seconds or a ``timedelta``) is the retention of
    local personal data: cached results and finished journal jobs older than it are
    ignored and purged (see :func:`retention_seconds`). ``cache_dir`` is where the cache,
    the journal and the spend ledger live (see
    :func:`cleanlist_pandas.store.files.default_cache_dir`).
    """

    api_key: str | None = None
    base_url: str = DEFAULT_BASE_URL
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    rate_limit_patience: float = DEFAULT_RATE_LIMIT_PATIENCE
    rate: int | None = None
    per: float | None = None
    burst: int | None = DEFAULT_BURST
    loop_strategy: LoopStrategy = "thread"
    progress: bool = False
    max_age: float | timedelta = DEFAULT_CACHE_MAX_AGE
    cache_dir: str | None = None

    @property
    def rate_or_default(self) -> int:
        """``rate``, or the API's 60 requests per window when it was left unset."""
        return RATE_LIMIT_PER_ORG if self.rate is None else self.rate

    @property
    def per_or_default(self) -> float:
        """``per``, or the API's 60-second window when it was left unset."""
        return RATE_LIMIT_WINDOW_S if self.per is None else self.per

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{f.name}={mask_key(self.api_key) if f.name == 'api_key' else getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
        )
        return f"Settings({fields})"

    __str__ = __repr__

    def validated(self) -> Settings:
        """Return a copy with the base URL normalized; raise ConfigurationError if invalid."""
        if self.timeout <= 0 or self.connect_timeout <= 0:
            raise ConfigurationError("timeout and connect_timeout must be > 0 seconds")
        if self.max_retries < 0:
            raise ConfigurationError("max_retries must be >= 0")
        if self.max_retry_after < 0:
            raise ConfigurationError("max_retry_after must be >= 0 seconds")
        if not self.rate_limit_patience >= 0:
            raise ConfigurationError("rate_limit_patience must be >= 0 seconds")
        if (self.rate is not None and self.rate < 1) or (
            self.per is not None and not self.per > 0
        ):
            raise ConfigurationError("rate must be >= 1 and per > 0 seconds")
        if self.burst is not None and not 1 <= self.burst < max(self.rate_or_default, 2):
            raise ConfigurationError("burst must be >= 1 and smaller than rate")
        if not _age_seconds(self.max_age) > 0:
            raise ConfigurationError(
                f"max_age must be > 0 seconds (or a positive timedelta), got {self.max_age!r}"
            )
        if self.loop_strategy not in _LOOP_STRATEGIES:
            raise ConfigurationError(
                f"loop_strategy must be one of {_LOOP_STRATEGIES}, not {self.loop_strategy!r}"
            )
        if self.cache_dir is not None and not isinstance(self.cache_dir, str | os.PathLike):
            raise ConfigurationError(
                "cache_dir must be a path (str or os.PathLike), not "
                f"{type(self.cache_dir).__name__}"
            )
        key = validate_api_key(self.api_key) if self.api_key is not None else None
        cache_dir = None if self.cache_dir is None else os.fspath(self.cache_dir)
        return dataclasses.replace(
            self, api_key=key, base_url=normalize_base_url(self.base_url), cache_dir=cache_dir
        )


_lock = threading.Lock()
_session: dict[str, Any] = {}
_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(Settings))


def _check_known(options: dict[str, Any]) -> None:
    unknown = set(options) - _FIELDS
    if unknown:
        raise ConfigurationError(
            f"Unknown option(s) {sorted(unknown)}; known: {sorted(_FIELDS)}"
        )


def configure(**options: Any) -> None:
    """Set session-level defaults, e.g. once at the top of a notebook.

    Accepts any :class:`Settings` field: ``api_key``, ``base_url``, ``timeout``,
    ``connect_timeout``, ``max_retries``, ``max_retry_after``, ``rate_limit_patience`` (how
    long an enrichment run waits out 429s with no successful request before it stops),
    ``rate``, ``per``, ``burst``,
    ``loop_strategy`` (``"thread"`` or the opt-in ``"nest_asyncio"``), ``progress``,
    ``max_age`` — the retention of this machine's cached results and finished journal jobs
    (seconds or a ``timedelta``; default 30 days), applied when a file is first opened in
    the process and by ``cleanlist-pandas cache purge-expired`` — and ``cache_dir``, the
    directory of the cache, the journal and the spend ledger (default
    ``$CLEANLIST_CACHE_DIR``, else the platform's user cache directory).
    Passing ``None`` removes a session default. Clients created afterwards use them.

    >>> import cleanlist_pandas as clp
    >>> clp.configure(api_key="clapi_0123456789abcdef", rate=30)
    >>> s = clp.get_config()
    >>> s.api_key, s.rate, s
    ('clapi_0123456789abcdef', 30, Settings(api_key='clapi_…cdef', ...))
    >>> clp.configure(api_key="clext_0123456789abcdef")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ConfigurationError: clext_…cdef is a browser-extension key (clext_…); the API refuses it. ...
    >>> clp.reset_config()
    """
    _check_known(options)
    with _lock:
        merged = dict(_session)
        for name, value in options.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        # validate the merged picture now, so a typo fails at configure() time
        _build(merged, env=False).validated()
        _session.clear()
        _session.update(merged)


def reset_config() -> None:
    """Forget every session default set with :func:`configure`."""
    with _lock:
        _session.clear()


def _build(values: dict[str, Any], *, env: bool) -> Settings:
    merged: dict[str, Any] = {}
    if env:
        env_key = os.environ.get(ENV_API_KEY)
        env_url = os.environ.get(ENV_BASE_URL)
        if env_key:
            merged["api_key"] = env_key
        if env_url:
            merged["base_url"] = env_url
    merged.update(values)
    return Settings(**merged)


def get_config(**overrides: Any) -> Settings:
    """The resolved, validated settings: ``overrides`` > :func:`configure` > env > defaults.

    Overrides equal to ``None`` are ignored (so client arguments can default to None).

    >>> get_config(rate=10, per=1.0).rate
    10
    """
    _check_known(overrides)
    with _lock:
        values = dict(_session)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _build(values, env=True).validated()


def _age_seconds(value: Any) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"max_age must be seconds (a number) or a timedelta, got {type(value).__name__}"
        )
    return float(value)


def session_cache_dir() -> str | None:
    """The ``cache_dir`` set with :func:`configure`, or None. Reads only that session
    default (never the key), so finding the cache cannot fail on a bad key.

    >>> configure(cache_dir="/tmp/cl"); session_cache_dir()
    '/tmp/cl'
    >>> reset_config(); session_cache_dir() is None
    True
    """
    with _lock:
        value = _session.get("cache_dir")
    return None if value is None else os.fspath(value)


def session_base_url() -> str:
    """The base URL a client would use with no argument: ``configure(base_url=...)``, else
    ``$CLEANLIST_BASE_URL``, else the real API. Not validated, and never reads the key.

    >>> reset_config(); session_base_url() == (os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL)
    True
    """
    with _lock:
        value = _session.get("base_url")
    return str(value or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL)


def retention_seconds() -> float:
    """The retention in seconds: ``configure(max_age=...)``, else 30 days. Reads only the
    session default (never the key), so opening the cache cannot fail on a bad key.

    >>> retention_seconds() == 30 * 86400
    True
    >>> configure(max_age=timedelta(days=7)); retention_seconds() == 7 * 86400
    True
    >>> reset_config()
    """
    with _lock:
        value = _session.get("max_age", DEFAULT_CACHE_MAX_AGE)
    return _age_seconds(value)


def resolve_api_key(settings: Settings) -> str:
    """The settings' key, or a ConfigurationError that says where to put one."""
    if not settings.api_key:
        raise ConfigurationError(
            f"No Cleanlist API key. Pass api_key=..., set the {ENV_API_KEY} environment "
            "variable, or call cleanlist_pandas.configure(api_key=...) once per session."
        )
    return settings.api_key
