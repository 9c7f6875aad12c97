"""The sandbox's settings: one mutable dataclass, read at the moment each value is used.

>>> from cleanlist_pandas.sandbox import SandboxConfig
>>> cfg = SandboxConfig(time_scale=0.01)
>>> cfg.scaled(60.0)
0.6
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

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

__all__ = [
    "BALANCE_SHAPES",
    "DELIVERIES_SHAPES",
    "NULLABLE",
    "BalanceShape",
    "CreditRule",
    "DeliveriesShape",
    "SandboxConfig",
]

CreditRule = Literal["worst_case", "positive"]
#: ``GET /credits/balance`` (spec §3.2): ``organization`` = ``{"organization_id", "credits":
#: <float>}``; ``agent`` = the agent/MCP pages' ``{"credits": <int>, "timestamp_ms",
#: "agent_instructions"}``.
BalanceShape = Literal["organization", "agent"]
BALANCE_SHAPES: tuple[BalanceShape, ...] = ("organization", "agent")
#: ``GET /webhooks/deliveries`` (spec §3.5): ``list`` = a bare list (the quickstart's
#: reading); ``object`` = ``{"deliveries": [...]}``, which the tolerant reader also accepts.
DeliveriesShape = Literal["list", "object"]
DELIVERIES_SHAPES: tuple[DeliveriesShape, ...] = ("list", "object")


@dataclass
class SandboxConfig:
    """Every knob of the sandbox. Durations are in *service* seconds and are multiplied by
    ``time_scale`` when used (processing, webhook timeout and backoff, rate-limit window).

    >>> SandboxConfig().rate_limit_per_org
    60
    """

    #: Multiplies every duration below (``0.01`` = a hundred times faster than the service).
    time_scale: float = 1.0

    # --- the workflow clock (the service model) -----------------------------------------
    #: Delay between submission and the moment the workflow's tasks may start (tasks are
    #: ``pending`` before, ``processing`` after). Any length: minutes are fine.
    workflow_start_delay_s: float = 0.5
    #: Per-workflow spread of the start delay: each workflow's delay is
    #: ``workflow_start_delay_s`` x a lognormal factor of median 1 and this sigma (0 = every
    #: workflow waits exactly ``workflow_start_delay_s``).
    workflow_start_delay_sigma: float = 0.0
    #: Per-task processing time: lognormal with this median and sigma, clipped to
    #: :meth:`task_time_bounds`.
    task_time_median_s: float = 3.0
    task_time_sigma: float = 0.35
    #: Absolute clip of a task's time; ``None`` (default) = relative to the median and sigma,
    #: about 5 sigma either side of the median (see :meth:`task_time_bounds`), so any median
    #: and sigma behave without touching these.
    task_time_min_s: float | None = None
    task_time_max_s: float | None = None
    #: Per-workflow speed: a lognormal factor of median 1 and this sigma, drawn per workflow,
    #: multiplies all its task times (0 = every workflow alike).
    workflow_speed_sigma: float = 0.0
    #: Workers per organization: ``None`` (default) = unlimited, every task starts when its
    #: workflow does; a number = an organization's tasks share that many workers, and a
    #: task waits (``pending``) in the organization's queue until a worker takes it.
    workers_per_org: int | None = None
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

    # --- the shapes of documented variants ------------------------------------------------
    #: Which documented shape ``GET /credits/balance`` answers in (spec §3.2).
    balance_shape: BalanceShape = "organization"
    #: Whether ``GET /webhooks/deliveries`` answers a bare list or ``{"deliveries": [...]}``.
    deliveries_shape: DeliveriesShape = "list"

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

    def problems(self) -> list[str]:
        """Every value that makes no sense (a negative duration, NaN, a rate above 1, an
        unknown choice...), as messages; empty when the config is sound.

        >>> SandboxConfig(time_scale=-1, task_failure_rate=0.5).problems()
        ['time_scale must be a finite number > 0']
        """
        out: list[str] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            rule = _RULES[f.name]
            message = rule(value)
            if message:
                out.append(f"{f.name} {message}")
        if not out:
            low, high = self.task_time_bounds()
            if high < low:
                out.append(
                    f"task_time_max_s must be >= task_time_min_s (the clip is [{low:g}, {high:g}])"
                )
        return out

    def task_time_bounds(self) -> tuple[float, float]:
        """The clip ``[low, high]`` of a task's time (service seconds, before the workflow's
        speed factor and ``time_scale``).

        ``task_time_min_s`` / ``task_time_max_s`` when set; otherwise relative to the
        median: ``median x (1/6) ** (sigma / 0.35)`` and ``median x (20/3) ** (sigma /
        0.35)``, about 5.1 and 5.4 sigma either side of it. At the defaults (3 s, 0.35) that
        is exactly [0.5, 20] s; at a 10 min median it is [100 s, 4000 s]; at any sigma it
        clips practically no draw (a clip that must not defeat a long median or a heavy
        tail, only absurd outliers).

        >>> SandboxConfig().task_time_bounds()
        (0.5, 20.0)
        >>> SandboxConfig(task_time_median_s=600.0).task_time_bounds()
        (100.0, 4000.0)
        >>> SandboxConfig(task_time_max_s=30.0).task_time_bounds()
        (0.5, 30.0)
        """
        median, spread = self.task_time_median_s, self.task_time_sigma / _REFERENCE_SIGMA
        low = self.task_time_min_s
        high = self.task_time_max_s
        if low is None:
            low = median * _LOW_AT_REFERENCE**spread
        if high is None:
            high = median * _HIGH_AT_REFERENCE**spread
        return float(low), float(high)

    def check(self) -> None:
        """Raise ``ValueError`` listing :meth:`problems`, if any.

        >>> SandboxConfig(webhook_attempts=0).check()
        Traceback (most recent call last):
        ...
        ValueError: webhook_attempts must be an integer >= 1
        """
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def scaled(self, seconds: float) -> float:
        """Return ``seconds`` multiplied by ``time_scale``.

        >>> SandboxConfig(time_scale=0.5).scaled(2.0)
        1.0
        """
        return seconds * self.time_scale


#: The relative clip of a task's time: at sigma 0.35 (the default), [median / 6, median x
#: 20 / 3] — the absolute [0.5, 20] s the sandbox always had at its 3 s median.
_REFERENCE_SIGMA = 0.35
_LOW_AT_REFERENCE = 1 / 6
_HIGH_AT_REFERENCE = 20 / 3


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> str | None:
    return None if _number(value) and value > 0 else "must be a finite number > 0"


def _non_negative(value: Any) -> str | None:
    return None if _number(value) and value >= 0 else "must be a finite number >= 0"


def _rate(value: Any) -> str | None:
    return None if _number(value) and 0 <= value <= 1 else "must be a number within [0, 1]"


def _count(minimum: int) -> Any:
    def rule(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        return None if ok else f"must be an integer >= {minimum}"

    return rule


def _optional(rule: Any) -> Any:
    def optional(value: Any) -> str | None:
        message = rule(value)
        return None if value is None or message is None else f"{message}, or null"

    return optional


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _choice(*allowed: str) -> Any:
    def rule(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {list(allowed)}"

    return rule


def _waits(value: Any) -> str | None:
    ok = isinstance(value, tuple) and all(_non_negative(v) is None for v in value)
    return None if ok else "must be a list of finite numbers >= 0"


#: The fields that may be ``None`` (``PATCH /_sandbox/config`` accepts ``null`` for them).
NULLABLE = frozenset({"task_time_min_s", "task_time_max_s", "workers_per_org"})

#: One rule per field (a test checks that none is missing).
_RULES: dict[str, Any] = {
    "time_scale": _positive,
    "workflow_start_delay_s": _non_negative,
    "workflow_start_delay_sigma": _non_negative,
    "task_time_median_s": _positive,
    "task_time_sigma": _non_negative,
    "task_time_min_s": _optional(_non_negative),
    "task_time_max_s": _optional(_non_negative),
    "workflow_speed_sigma": _non_negative,
    "workers_per_org": _optional(_count(1)),
    "tick_s": _positive,
    "task_failure_rate": _rate,
    "email_found_rate": _rate,
    "phone_found_rate": _rate,
    "prospecting_discovery_cap": _count(0),
    "credit_rule": _choice("worst_case", "positive"),
    "balance_shape": _choice(*BALANCE_SHAPES),
    "deliveries_shape": _choice(*DELIVERIES_SHAPES),
    "webhook_timeout_s": _positive,
    "webhook_timeout_floor_s": _non_negative,
    "webhook_attempts": _count(1),
    "webhook_backoff_s": _waits,
    "webhook_duplicate_probability": _rate,
    "results_limit": _count(1),
    "rate_limit_enabled": _flag,
    "rate_limit_per_org": _count(1),
    "rate_limit_per_key_enabled": _flag,
    "rate_limit_per_key": _count(1),
    "rate_limit_window_s": _positive,
}
