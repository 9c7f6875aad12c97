"""The API's limits, unit costs and defaults: one place, shared by the client and the sandbox.

Every number here comes from ``shared/spec/cleanlist-public-api-v1.md``; the tag after each
says whether it is Cleanlist's documented fact ([doc]) or our decision ([ours]). The package's
own tunables (client defaults, the loop thread, local files) follow the API's numbers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

#: The package version, its one source: ``pyproject.toml`` reads it from here (a plain
#: assignment, so setuptools finds it without importing the package).
__version__ = "0.1.0"

#: Base URL of the real service [doc].
DEFAULT_BASE_URL: Final = "https://api.cleanlist.ai/api/v1/public"
#: The path every base URL ends in [doc].
API_PREFIX: Final = "/api/v1/public"

#: Key prefixes [doc]: API keys start ``clapi_``; ``clext_`` keys belong to the browser
#: extension and are refused.
API_KEY_PREFIX: Final = "clapi_"
EXTENSION_KEY_PREFIX: Final = "clext_"

#: Contacts per ``POST /enrich/bulk`` [doc].
MAX_CONTACTS_PER_REQUEST: Final = 250

#: The five contact fields [doc]. All strings.
CONTACT_FIELDS: Final = (
    "linkedin_url",
    "first_name",
    "last_name",
    "company_domain",
    "company_name",
)

#: Enrichment types [doc]; ``partial`` is the default.
ENRICHMENT_TYPES: Final = ("none", "partial", "phone_only", "full", "prospecting_only")
DEFAULT_ENRICHMENT_TYPE: Final = "partial"

#: Unit costs [doc]: charged only for what is found.
EMAIL_COST: Final = 1
PHONE_COST: Final = 10
PROSPECT_COST: Final = 1
#: [ours] the sandbox discovers at most this many contacts per ``prospecting_only`` input;
#: the worst case of a prospecting request is contacts x this cap.
PROSPECTING_DISCOVERY_CAP: Final = 5

#: Worst-case credits per contact by type [doc, ours for prospecting].
MAX_UNIT_COST: Final = {
    "none": 0,
    "partial": EMAIL_COST,
    "phone_only": PHONE_COST,
    "full": EMAIL_COST + PHONE_COST,
    "prospecting_only": PROSPECT_COST * PROSPECTING_DISCOVERY_CAP,
}

#: What a look-up of each type is charged for, per contact [doc]: the cost of each kind of
#: value found (``email``: a primary email; ``phone``: at least one phone; ``prospect``: per
#: discovered contact). The sum over kinds of (found rate x cost) is the expected cost per
#: contact; ``MAX_UNIT_COST`` is the worst case.
FOUND_COSTS: Final = {
    "none": {},
    "partial": {"email": EMAIL_COST},
    "phone_only": {"phone": PHONE_COST},
    "full": {"email": EMAIL_COST, "phone": PHONE_COST},
    "prospecting_only": {"prospect": PROSPECT_COST},
}

#: Workflow statuses [seed]/[ours].
WORKFLOW_PROCESSING: Final = "processing"
TERMINAL_WORKFLOW_STATUSES: Final = frozenset({"completed", "completed_with_errors", "failed"})
#: Task statuses [ours].
TASK_STATUSES: Final = ("pending", "processing", "completed", "failed")
#: ``primary_email_status`` values [doc].
EMAIL_STATUSES: Final = ("reliable", "risky", "unknown")

#: Rate limits [doc]: per organization, fixed 60 s window, all endpoints together; an
#: optional per-key limit (newer pages).
RATE_LIMIT_PER_ORG: Final = 60
RATE_LIMIT_PER_KEY: Final = 30
RATE_LIMIT_WINDOW_S: Final = 60.0

#: Webhook delivery [doc]/[ours]: any 2xx within the timeout is success; 5 attempts in all,
#: waiting 1, 2, 4, 8 s between them.
WEBHOOK_TIMEOUT_S: Final = 10.0
WEBHOOK_ATTEMPTS: Final = 5
WEBHOOK_BACKOFF_S: Final = (1.0, 2.0, 4.0, 8.0)
WEBHOOK_RESULTS_LIMIT: Final = 250
WEBHOOK_EVENT: Final = "enrichment.completed"

# ------------------------------------------------------------------ client defaults [ours]
#: Environment variables read by :func:`cleanlist_pandas.config.get_config`.
ENV_API_KEY: Final = "CLEANLIST_API_KEY"
ENV_BASE_URL: Final = "CLEANLIST_BASE_URL"
#: Per-request timeout (read/write/pool), seconds; separate from ``wait()``'s total timeout.
DEFAULT_TIMEOUT: Final = 60.0
#: Time allowed to open a connection, seconds.
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
#: Retries after the first attempt (connection errors, 429, 500/502/503/504).
DEFAULT_MAX_RETRIES: Final = 3
#: A ``Retry-After`` longer than this (seconds) raises RateLimitError instead of waiting.
DEFAULT_MAX_RETRY_AFTER: Final = 90.0
#: An enrichment run keeps waiting out 429s (another notebook of the organization may be
#: using the shared budget) until it has seen no successful request for this long (seconds).
DEFAULT_RATE_LIMIT_PATIENCE: Final = 600.0
#: Optional steady spacing on top of the sliding window (None: a job's first requests may all
#: leave at once, up to the window's limit).
DEFAULT_BURST: Final = None

# ------------------------------------------------------------------ the loop thread [ours]
#: How often a caller waiting on the loop thread wakes up (seconds): bounds the Ctrl-C
#: latency and the progress-bar refresh rate. Not a timing guarantee.
WAIT_TICK_S: Final = 0.1
#: How long a cancelled task may clean up after Ctrl-C before it is re-raised (seconds).
CANCEL_GRACE_S: Final = 5.0
LOOP_THREAD_NAME: Final = "cleanlist-loop"

# ------------------------------------------------------------------ local files [ours]
#: Overrides the directory of the result cache and the job journal.
CACHE_DIR_ENV: Final = "CLEANLIST_CACHE_DIR"
CACHE_FILENAME: Final = "results.sqlite3"
JOURNAL_FILENAME: Final = "journal.sqlite3"
#: The spend ledger (credits per run; no personal data, so retention never purges it).
SPEND_FILENAME: Final = "spend.sqlite3"
#: How long a SQLite call waits for another process's write lock (seconds).
SQLITE_BUSY_TIMEOUT_S: Final = 5.0
#: Default retention: the maximum age of a cache entry, and of a finished job in the journal
#: (``clp.configure(max_age=...)``).
DEFAULT_CACHE_MAX_AGE: Final = timedelta(days=30)
#: Parameters per ``IN (...)`` query (SQLite's oldest limit is 999).
SQLITE_IN_BATCH: Final = 900
#: The cache's background writer (``ResultCache.put_many_later``) writes once this many
#: results are queued, or this many seconds after the oldest was queued, or when flushed:
#: fingerprints are random keys, so every insert dirties about one B-tree page, and a
#: transaction of many results writes each page once (250 results into a cache of 25,000
#: cost about 9 ms of CPU in a transaction of their own, 5 ms in one of 2,500). The delay
#: is short: what is still queued when the run ends is written while the run's caller
#: waits (2 s left up to 2,500 results, ~20 ms, to the end of a small job).
CACHE_WRITE_BATCH: Final = 2_500
CACHE_WRITE_DELAY_S: Final = 0.25

#: Loopback hosts for which plain ``http://`` is allowed [ours].
LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback_host(host: str) -> bool:
    """Return True for ``localhost``, 127.0.0.0/8 and ``::1``.

    >>> is_loopback_host("127.0.0.5"), is_loopback_host("example.com")
    (True, False)
    """
    h = host.strip().lower().strip("[]")
    if h in {"localhost", "::1"}:
        return True
    parts = h.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() for p in parts)


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is a loopback host (a local sandbox, a local receiver).

    >>> is_loopback_url("http://127.0.0.1:8765/api/v1/public"), is_loopback_url("https://a.io")
    (True, False)
    """
    import urllib.parse

    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError:
        return False
    return bool(host) and is_loopback_host(host or "")


# -- tunables of the client and the engine [ours] ---------------------------------------
#: Backoff between retries of one request: 0.5 s doubling up to 8 s, with jitter.
INITIAL_RETRY_DELAY: Final = 0.5
MAX_RETRY_DELAY: Final = 8.0
#: ``Client.wait()`` (one workflow, a caller waiting): poll every 1 s, slowing by 1.5x to 15 s.
WAIT_POLL_INTERVAL_S: Final = 1.0
WAIT_MAX_POLL_INTERVAL_S: Final = 15.0
#: ``enrich()`` (many workflows sharing the rate window, ``PollPolicy``): the first read
#: before any workflow of the job has finished, the bounds between two reads of one workflow,
#: and the wait between reads of a due workflow while the window has room to spare.
RUN_POLL_FIRST_S: Final = 5.0
RUN_POLL_MIN_S: Final = 1.0
RUN_POLL_MAX_S: Final = 30.0
RUN_POLL_EAGER_S: Final = 0.5
#: Status reads of one workflow that may fail in a row (after the client's own retries)
#: before a run gives up on it; its rows end ``pending`` and the next run collects them.
MAX_POLL_FAILURES: Final = 5
#: On Ctrl-C, how long a submission already on the wire may take to answer (seconds).
SUBMIT_GRACE_S: Final = 3.0
