"""The sandbox's settings: one mutable dataclass, read at the moment each value is used.

>>> from cleanlist_pandas.sandbox import SandboxConfig
>>> cfg = SandboxConfig(time_scale=0.01)
>>> cfg.scaled(60.0)
0.6
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cleanlist_pandas._constants import (
    PROSPECTING_DISCOVERY_CAP,
    RATE_LIMIT_PER_KEY,
    RATE_LIMIT_PER_ORG,
    RATE_LIMIT_WINDOW_S,
    WEBHOOK_ATTEMPTS,
    WEBHOOK_BACKOFF_S,
    WEBHOOK_RESULTS_LIMIT,
    WEBHOOK_TIMEOUT_S,
)

__all__ = ["CreditRule", "SandboxConfig"]

CreditRule = Literal["worst_case", "positive"]


@dataclass
class SandboxConfig:
    """Every knob of the sandbox. Durations are in *service* seconds and are multiplied by
    ``time_scale`` when used (processing, webhook timeout and backoff, rate-limit window).

    >>> SandboxConfig().rate_limit_per_org
    60
    """

    #: Multiplies every duration below (``0.01`` = a hundred times faster than the service).
    time_scale: float = 1.0

    # --- the workflow clock ------------------------------------------------------------
    #: Delay between submission and the moment the workflow's tasks start (tasks are
    #: ``pending`` before, ``processing`` after).
    workflow_start_delay_s: float = 0.5
    #: Per-task processing time: lognormal with this median and sigma, clipped to
    #: [min, max]. All tasks of a workflow run in parallel.
    task_time_median_s: float = 3.0
    task_time_sigma: float = 0.35
    task_time_min_s: float = 0.5
    task_time_max_s: float = 20.0
    #: Real seconds between two ticks of the background clock (not scaled).
    tick_s: float = 0.01

    # --- the oracle --------------------------------------------------------------------
    task_failure_rate: float = 0.02
    email_found_rate: float = 0.7
    phone_found_rate: float = 0.5
    prospecting_discovery_cap: int = PROSPECTING_DISCOVERY_CAP

    # --- credits -----------------------------------------------------------------------
    #: ``worst_case``: a bulk request needs balance >= contacts x max unit cost;
    #: ``positive``: it needs balance > 0. (A request whose worst case is 0 always passes.)
    credit_rule: CreditRule = "worst_case"

    # --- webhooks ----------------------------------------------------------------------
    webhook_timeout_s: float = WEBHOOK_TIMEOUT_S
    #: The scaled webhook timeout never drops below this many real seconds, so a loaded
    #: machine does not turn slow loopback answers into failures. Set 0 to disable.
    webhook_timeout_floor_s: float = 0.5
    webhook_attempts: int = WEBHOOK_ATTEMPTS
    #: Waits between attempts; the last value repeats when there are more attempts.
    webhook_backoff_s: tuple[float, ...] = WEBHOOK_BACKOFF_S
    #: Chance that a successful delivery is sent (and logged) a second time.
    webhook_duplicate_probability: float = 0.0
    results_limit: int = WEBHOOK_RESULTS_LIMIT

    # --- rate limit (fixed window) -------------------------------------------------------
    rate_limit_enabled: bool = True
    rate_limit_per_org: int = RATE_LIMIT_PER_ORG
    rate_limit_per_key_enabled: bool = False
    rate_limit_per_key: int = RATE_LIMIT_PER_KEY
    rate_limit_window_s: float = RATE_LIMIT_WINDOW_S

    def scaled(self, seconds: float) -> float:
        """Return ``seconds`` multiplied by ``time_scale``.

        >>> SandboxConfig(time_scale=0.5).scaled(2.0)
        1.0
        """
        return seconds * self.time_scale
