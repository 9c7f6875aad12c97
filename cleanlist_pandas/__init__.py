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

import importlib
import importlib.util
from typing import Any

from cleanlist_pandas import accessor as _accessor  # noqa: F401  (registers df.cleanlist)

if importlib.util.find_spec("polars") is not None:  # optional: the extra [polars]
    try:
        from cleanlist_pandas import polars as _polars  # noqa: F401  (pl_df.cleanlist)
    except ImportError as _exc:  # a broken Polars install must not break pandas users
        import warnings as _warnings

        _warnings.warn(f"pl_df.cleanlist is not available: {_exc}", RuntimeWarning, 2)

__version__ = "0.1.0"

_ERRORS = "cleanlist_pandas.errors"
# name -> module that defines it
_LAZY: dict[str, str] = {
    "Client": "cleanlist_pandas.client",
    "AsyncClient": "cleanlist_pandas.client",
    "configure": "cleanlist_pandas.config",
    "reset_config": "cleanlist_pandas.config",
    "get_config": "cleanlist_pandas.config",
    "mask_key": "cleanlist_pandas.config",
    "run_sync": "cleanlist_pandas.runner",
    "Sandbox": "cleanlist_pandas.sandbox",
    "SandboxConfig": "cleanlist_pandas.sandbox",
    "WebhookReceiver": "cleanlist_pandas.webhooks",
    "WebhookPayload": "cleanlist_pandas.webhooks",
    "panel": "cleanlist_pandas.widgets",
    "Panel": "cleanlist_pandas.widgets",
    "ResultCache": "cleanlist_pandas.cache",
    "EnrichmentJob": "cleanlist_pandas.enrich.job",
    "EnrichmentInterrupted": "cleanlist_pandas.enrich.job",
    "CleanlistWarning": "cleanlist_pandas.enrich.job",
    "JobBusyError": "cleanlist_pandas.enrich.job",
    "Estimate": "cleanlist_pandas.enrich.job",
    "running_jobs": "cleanlist_pandas.enrich.job",
    "PollPolicy": "cleanlist_pandas.enrich.engine",
    "MappingError": "cleanlist_pandas.enrich.mapping",
    "KeyInfo": "cleanlist_pandas.models",
    "Balance": "cleanlist_pandas.models",
    "Submission": "cleanlist_pandas.models",
    "Workflow": "cleanlist_pandas.models",
    "TaskResult": "cleanlist_pandas.models",
    "DeliveryLog": "cleanlist_pandas.models",
    "Delivery": "cleanlist_pandas.models",
    "WorkflowSummary": "cleanlist_pandas.models",
    "Prospect": "cleanlist_pandas.models",
    "Company": "cleanlist_pandas.models",
    "validate_contacts": "cleanlist_pandas.client",
    "Pacer": "cleanlist_pandas._http",
    "PacerStats": "cleanlist_pandas._http",
    "RetryScheduled": "cleanlist_pandas.events",
    "PacerWait": "cleanlist_pandas.events",
    "RequestSent": "cleanlist_pandas.events",
    "ResponseReceived": "cleanlist_pandas.events",
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
        )
    },
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cleanlist_pandas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["__version__", *_LAZY]
