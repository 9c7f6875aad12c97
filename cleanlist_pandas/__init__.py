"""cleanlist-pandas: Cleanlist contact enrichment for pandas and Jupyter.

Importing the package registers the ``df.cleanlist`` accessor (and ``pl_df.cleanlist`` on
Polars frames when Polars is installed); everything else is imported lazily on first use, so
``import cleanlist_pandas`` stays cheap.

>>> import pandas as pd, cleanlist_pandas as clp
>>> clp.__version__
'0.1.0'
>>> hasattr(pd.DataFrame(), "cleanlist")
True
"""

from __future__ import annotations

import importlib as _importlib
import importlib.util as _importlib_util
from typing import TYPE_CHECKING

from cleanlist_pandas import accessor as _accessor  # noqa: F401  (registers df.cleanlist)
from cleanlist_pandas._constants import __version__
from cleanlist_pandas.views import bars as _bars  # noqa: F401  (how wait(progress=True) shows)

if _importlib_util.find_spec("polars") is not None:  # optional: the extra [polars]
    try:
        from cleanlist_pandas import polars as _polars  # noqa: F401  (pl_df.cleanlist)
    except ImportError as _exc:  # a broken Polars install must not break pandas users
        import warnings as _warnings

        _warnings.warn(f"pl_df.cleanlist is not available: {_exc}", RuntimeWarning, 2)

if TYPE_CHECKING:
    # What type checkers see: the names of ``_LAZY`` below with their real types (at run
    # time they are imported on first use). tests/test_public_api.py checks both agree.
    from cleanlist_pandas.client import AsyncClient, Client, validate_contacts
    from cleanlist_pandas.client.http import Pacer, PacerStats
    from cleanlist_pandas.client.runner import run_sync
    from cleanlist_pandas.config import configure, get_config, mask_key, reset_config
    from cleanlist_pandas.errors import (
        AmbiguousSubmissionError,
        APIConnectionError,
        APIError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        CleanlistError,
        CleanlistWarning,
        ConfigurationError,
        EnrichmentInterrupted,
        InputValidationError,
        InsufficientCreditsError,
        JobBusyError,
        LoopThreadError,
        MappingError,
        NotFoundError,
        OutputColumnCollision,
        PermissionDeniedError,
        RateLimitError,
        SelectionError,
        ServerError,
        UnexpectedResponseError,
        UserKeyError,
        UserTypeError,
        UserValueError,
        ValidationError,
        WaitTimeoutError,
    )
    from cleanlist_pandas.events import PacerWait, RequestSent, ResponseReceived, RetryScheduled
    from cleanlist_pandas.run.engine import PollPolicy
    from cleanlist_pandas.run.estimate import Estimate
    from cleanlist_pandas.run.job import EnrichmentJob, last_result, running_jobs
    from cleanlist_pandas.run.pilot import PilotResult
    from cleanlist_pandas.sandbox import Sandbox, SandboxConfig
    from cleanlist_pandas.store.cache import ResultCache
    from cleanlist_pandas.store.ledger import SpendChart, spend, spend_chart
    from cleanlist_pandas.store.privacy import Forgotten, forget
    from cleanlist_pandas.types import (
        Balance,
        Company,
        Delivery,
        DeliveryLog,
        KeyInfo,
        Prospect,
        Submission,
        TaskResult,
        Workflow,
        WorkflowSummary,
    )
    from cleanlist_pandas.views.widgets import Panel, panel
    from cleanlist_pandas.webhooks import WebhookPayload, WebhookReceiver

_ERRORS = "cleanlist_pandas.errors"
# name -> module that defines it
_LAZY: dict[str, str] = {
    "Client": "cleanlist_pandas.client",
    "AsyncClient": "cleanlist_pandas.client",
    "configure": "cleanlist_pandas.config",
    "reset_config": "cleanlist_pandas.config",
    "get_config": "cleanlist_pandas.config",
    "mask_key": "cleanlist_pandas.config",
    "run_sync": "cleanlist_pandas.client.runner",
    "Sandbox": "cleanlist_pandas.sandbox",
    "SandboxConfig": "cleanlist_pandas.sandbox",
    "WebhookReceiver": "cleanlist_pandas.webhooks",
    "WebhookPayload": "cleanlist_pandas.webhooks",
    "panel": "cleanlist_pandas.views.widgets",
    "Panel": "cleanlist_pandas.views.widgets",
    "ResultCache": "cleanlist_pandas.store.cache",
    "EnrichmentJob": "cleanlist_pandas.run.job",
    "Estimate": "cleanlist_pandas.run.estimate",
    "PilotResult": "cleanlist_pandas.run.pilot",
    "running_jobs": "cleanlist_pandas.run.job",
    "last_result": "cleanlist_pandas.run.job",
    "PollPolicy": "cleanlist_pandas.run.engine",
    "KeyInfo": "cleanlist_pandas.types",
    "Balance": "cleanlist_pandas.types",
    "Submission": "cleanlist_pandas.types",
    "Workflow": "cleanlist_pandas.types",
    "TaskResult": "cleanlist_pandas.types",
    "DeliveryLog": "cleanlist_pandas.types",
    "Delivery": "cleanlist_pandas.types",
    "WorkflowSummary": "cleanlist_pandas.types",
    "Prospect": "cleanlist_pandas.types",
    "Company": "cleanlist_pandas.types",
    "validate_contacts": "cleanlist_pandas.client",
    "Pacer": "cleanlist_pandas.client.http",
    "PacerStats": "cleanlist_pandas.client.http",
    "RetryScheduled": "cleanlist_pandas.events",
    "PacerWait": "cleanlist_pandas.events",
    "RequestSent": "cleanlist_pandas.events",
    "ResponseReceived": "cleanlist_pandas.events",
    "spend": "cleanlist_pandas.store.ledger",
    "spend_chart": "cleanlist_pandas.store.ledger",
    "SpendChart": "cleanlist_pandas.store.ledger",
    "forget": "cleanlist_pandas.store.privacy",
    "Forgotten": "cleanlist_pandas.store.privacy",
    **{
        name: _ERRORS
        for name in (
            "CleanlistError",
            "ConfigurationError",
            "InputValidationError",
            "APIError",
            "APIConnectionError",
            "APITimeoutError",
            "AmbiguousSubmissionError",
            "APIStatusError",
            "BadRequestError",
            "AuthenticationError",
            "InsufficientCreditsError",
            "PermissionDeniedError",
            "NotFoundError",
            "ValidationError",
            "RateLimitError",
            "ServerError",
            "WaitTimeoutError",
            "LoopThreadError",
            "UnexpectedResponseError",
            "CleanlistWarning",
            "EnrichmentInterrupted",
            "JobBusyError",
            "MappingError",
            "OutputColumnCollision",
            "SelectionError",
            "UserValueError",
            "UserTypeError",
            "UserKeyError",
        )
    },
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cleanlist_pandas' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [  # the names of _LAZY, spelled out for type checkers and linters
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousSubmissionError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Balance",
    "CleanlistError",
    "CleanlistWarning",
    "Client",
    "Company",
    "ConfigurationError",
    "Delivery",
    "DeliveryLog",
    "EnrichmentInterrupted",
    "EnrichmentJob",
    "Estimate",
    "Forgotten",
    "InputValidationError",
    "InsufficientCreditsError",
    "JobBusyError",
    "KeyInfo",
    "LoopThreadError",
    "MappingError",
    "NotFoundError",
    "OutputColumnCollision",
    "Pacer",
    "PacerStats",
    "PacerWait",
    "Panel",
    "PermissionDeniedError",
    "PilotResult",
    "PollPolicy",
    "Prospect",
    "RateLimitError",
    "RequestSent",
    "ResponseReceived",
    "ResultCache",
    "RetryScheduled",
    "Sandbox",
    "SandboxConfig",
    "SelectionError",
    "ServerError",
    "SpendChart",
    "Submission",
    "TaskResult",
    "UnexpectedResponseError",
    "UserKeyError",
    "UserTypeError",
    "UserValueError",
    "ValidationError",
    "WaitTimeoutError",
    "WebhookPayload",
    "WebhookReceiver",
    "Workflow",
    "WorkflowSummary",
    "__version__",
    "configure",
    "forget",
    "get_config",
    "last_result",
    "mask_key",
    "panel",
    "reset_config",
    "run_sync",
    "running_jobs",
    "spend",
    "spend_chart",
    "validate_contacts",
]
