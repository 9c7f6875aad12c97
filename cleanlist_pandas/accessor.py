"""``df.cleanlist``: the pandas accessor. Thin and stateless; it delegates to ``enrich.job``.

pandas 3 builds a new accessor object on every attribute access, so nothing is kept here:
state lives in the returned :class:`~cleanlist_pandas.run.job.EnrichmentJob` and in the
journal. The caller's frame is never modified; every method returns a new object.

What a notebook tooltip shows (the signatures and docstrings of the methods) is written for
the user: annotations are evaluated (no ``from __future__ import annotations`` here), so
``enrichment_type`` and ``errors`` show their allowed values as ``Literal`` types, and the
method docstrings are plain text (no reST markup).

>>> import pandas as pd, cleanlist_pandas
>>> hasattr(pd.DataFrame(), "cleanlist")
True
"""

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from cleanlist_pandas.types import EnrichmentType, ErrorsMode

if TYPE_CHECKING:
    from cleanlist_pandas.frame.mapping import MappedContacts
    from cleanlist_pandas.frame.select import OnlyMissing, Where
    from cleanlist_pandas.run.engine import PollPolicy
    from cleanlist_pandas.run.estimate import Estimate
    from cleanlist_pandas.run.job import EnrichmentJob
    from cleanlist_pandas.run.pilot import PilotResult


_OPTION_NAMES = (
    "enrichment_type",
    "columns",
    "prefix",
    "max_credits",
    "cache",
    "progress",
    "webhook_url",
    "errors",
    "resend_unknown",
    "poll",
    "where",
    "only_missing",
    "fill",
)


def _option_args(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The run options among a method's arguments (``Options`` fields)."""
    return {name: arguments[name] for name in _OPTION_NAMES if name in arguments}


def _prospects(
    df: pd.DataFrame, columns: "Mapping[str, Hashable | None] | None", kwargs: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A ``prospecting_only`` run: the frame ``enrich()`` returns (``clp.last_result()``)
    and the long frame of discovered contacts (``prospects()``'s)."""
    from cleanlist_pandas.run.job import enrich
    from cleanlist_pandas.run.options import Options
    from cleanlist_pandas.views.progress import progress_view

    kwargs = dict(kwargs)
    kwargs.pop("wait", None)
    conn = {k: kwargs.pop(k) for k in ("api_key", "base_url", "client") if k in kwargs}
    options = Options(enrichment_type="prospecting_only", columns=columns, **kwargs)
    out: list[pd.DataFrame | None] = []
    wide = enrich(df, options, prospects_out=out, view=progress_view, **conn)
    assert isinstance(wide, pd.DataFrame)
    result = out[0] if out else None
    return wide, result if result is not None else pd.DataFrame()


@pd.api.extensions.register_dataframe_accessor("cleanlist")
class CleanlistAccessor:
    """Cleanlist enrichment for a DataFrame of leads: `df.cleanlist.enrich()`."""

    def __init__(self, pandas_obj: pd.DataFrame) -> None:
        self._obj = pandas_obj

    def enrich(
        self,
        enrichment_type: EnrichmentType = "partial",
        columns: "Mapping[str, Hashable | None] | None" = None,
        *,
        prefix: str = "cl_",
        max_credits: float | None = None,
        where: "Where | None" = None,
        only_missing: "OnlyMissing | None" = None,
        fill: "bool | Mapping[str, Hashable]" = False,
        cache: bool = True,
        progress: bool = True,
        webhook_url: str | None = None,
        wait: bool = True,
        errors: ErrorsMode = "warn",
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        resend_unknown: bool = False,
        poll: "PollPolicy | None" = None,
    ) -> "pd.DataFrame | EnrichmentJob":
        """Enrich the rows; return a NEW frame with `cl_*` columns (same index and order).

        Args:
            enrichment_type: `partial` (email, default), `phone_only`, `full`,
                `prospecting_only` or `none` (free: normalizes only).
            columns: `{field: column}` to override the auto-detected mapping, field first
                (the reverse of `DataFrame.rename(columns={old: new})`), e.g.
                `{"first_name": "Vorname"}`; fields are `first_name`, `last_name`,
                `company_domain`, `company_name`, `linkedin_url`, `email` (domain source)
                and `full_name`.
            prefix: prefix of the new columns.
            max_credits: never spend more, counting the worst case of what is in flight;
                rows left over get `cl_status="not_submitted"`.
            where: send only the rows where this is True: a boolean Series aligned on
                the index, a boolean numpy array of len(df) (by position), or a function
                of the frame, e.g. `where=lambda d: d["Country"] == "DE"`. Other rows come
                back unchanged with `cl_status="skipped"`, `cl_error="excluded by where="`.
            only_missing: `"email"`, `"phone"` or `["email", "phone"]`: do not send rows
                that already have it (all of them) in their own column (detected like the
                mapping: `Email`, `E-mail`, `Work Email`; `Phone`, `Mobile`…), or
                `{"email": "Work Email"}` to name the column.
            fill: write the found email/phone into the empty cells of your own
                email/phone column (an existing value always wins); `{"phone": "Mobile"}`
                names the column. Default: only new `cl_*` columns.
            cache: reuse and store results locally (a re-run costs nothing).
            progress: show a progress bar (a widget in Jupyter, text in a terminal).
            webhook_url: also ask Cleanlist to POST each workflow's results there.
            wait: `False` returns an EnrichmentJob at once.
            errors: when the run stops early (401/402/403, budget) or rows are left over:
                `"warn"` (default) returns the frame and warns, `"raise"` raises with
                `.partial_result`, `"ignore"` just returns the frame.
            api_key, base_url: default to `cleanlist_pandas.configure(...)`, then the
                `CLEANLIST_API_KEY` / `CLEANLIST_BASE_URL` environment variables.
            client: a Client to use (its pacer and settings).
            resend_unknown: resend rows whose earlier submission was ambiguous.
            poll: a PollPolicy (advanced).

        Interrupted (Kernel → Interrupt, Ctrl-C)? Nothing paid for is lost:
        `clp.last_result()` returns the rows so far, and the same call again resumes.
        What each `cl_status` / `cl_email_status` value means: README, "Status columns".

        >>> out = df.cleanlist.enrich()                       # doctest: +SKIP
        >>> out[["cl_email", "cl_email_status", "cl_status"]]  # doctest: +SKIP
        """
        from cleanlist_pandas.run.job import enrich
        from cleanlist_pandas.run.options import Options
        from cleanlist_pandas.views.progress import progress_view, show_job

        options = Options(**_option_args(locals()))
        try:
            return enrich(
                self._obj,
                options,
                api_key=api_key,
                base_url=base_url,
                client=client,
                wait=wait,
                view=progress_view,
                job_view=show_job,
            )
        except KeyboardInterrupt:
            # uncaught in a plain script, EnrichmentInterrupted ends it as Ctrl-C does (130)
            from cleanlist_pandas._interrupt import die_by_sigint_if_uncaught

            die_by_sigint_if_uncaught()
            raise

    async def aenrich(
        self,
        enrichment_type: EnrichmentType = "partial",
        columns: "Mapping[str, Hashable | None] | None" = None,
        *,
        prefix: str = "cl_",
        max_credits: float | None = None,
        where: "Where | None" = None,
        only_missing: "OnlyMissing | None" = None,
        fill: "bool | Mapping[str, Hashable]" = False,
        cache: bool = True,
        progress: bool = True,
        webhook_url: str | None = None,
        errors: ErrorsMode = "warn",
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        resend_unknown: bool = False,
        poll: "PollPolicy | None" = None,
    ) -> pd.DataFrame:
        """`await df.cleanlist.aenrich()`: enrich for async code.

        `client` must then be an AsyncClient (or None).

        >>> out = await df.cleanlist.aenrich("full")          # doctest: +SKIP
        """
        from cleanlist_pandas.run.job import aenrich
        from cleanlist_pandas.run.options import Options
        from cleanlist_pandas.views.progress import progress_view

        options = Options(**_option_args(locals()))
        return await aenrich(
            self._obj, options, api_key=api_key, base_url=base_url, client=client,
            view=progress_view,
        )

    def estimate(
        self,
        enrichment_type: EnrichmentType = "partial",
        columns: "Mapping[str, Hashable | None] | None" = None,
        *,
        max_credits: float | None = None,
        where: "Where | None" = None,
        only_missing: "OnlyMissing | None" = None,
        fill: "bool | Mapping[str, Hashable]" = False,
        cache: bool = True,
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
    ) -> "Estimate":
        """What enrich would do: rows, rows left out by where=/only_missing= and the
        credits that saves, valid, invalid by reason, duplicates, cached, to send, chunks,
        worst-case credits, the expected credits when a pilot of the same type and
        mapping was run, the balance and whether it suffices.

        Takes enrich's arguments. Spends nothing and sends no bulk request (one free
        balance read).

        >>> df.cleanlist.estimate("full")                     # doctest: +SKIP
        Cleanlist estimate
          rows                10,000 ...
        """
        from cleanlist_pandas.run.estimate import estimate
        from cleanlist_pandas.run.options import Options

        options = Options(
            enrichment_type=enrichment_type,
            columns=columns,
            max_credits=max_credits,
            cache=cache,
            where=where,
            only_missing=only_missing,
            fill=fill,
        )
        return estimate(self._obj, options, api_key=api_key, base_url=base_url, client=client)

    def pilot(
        self,
        n: int = 200,
        enrichment_type: EnrichmentType = "partial",
        columns: "Mapping[str, Hashable | None] | None" = None,
        *,
        seed: int = 0,
        max_credits: float | None = None,
        where: "Where | None" = None,
        only_missing: "OnlyMissing | None" = None,
        prefix: str = "cl_",
        cache: bool = True,
        progress: bool = True,
        errors: ErrorsMode = "warn",
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        poll: "PollPolicy | None" = None,
    ) -> "PilotResult":
        """Enrich a random sample of `n` contacts first, to measure the find rates and
        what the rest will cost — before you commit to the whole frame.

        The sample is drawn among the contacts enrich would send (valid, not left out by
        where=/only_missing=, one per distinct contact); the same `seed` draws the same
        sample, so running it again is free. `max_credits` defaults to the sample's worst
        case. The results go to the cache, so the full `enrich()` afterwards never pays
        for them again; the rates are kept locally (rates and counts only), and
        `estimate()` then shows the expected credits beside the worst case.

        Returns a PilotResult: find rates with 95% Wilson score intervals, the credits
        the sample cost, the expected credits for the rest (with an interval) and the
        worst case; `.enriched` is the enriched sample, `.to_frame()` the rates.

        >>> p = df.cleanlist.pilot(200, "full")                 # doctest: +SKIP
        >>> p.expected_credits, p.worst_case_credits            # doctest: +SKIP
        """
        from cleanlist_pandas.run.options import Options
        from cleanlist_pandas.run.pilot import pilot
        from cleanlist_pandas.views.progress import progress_view

        options = Options(
            enrichment_type=enrichment_type,
            columns=columns,
            max_credits=max_credits,
            where=where,
            only_missing=only_missing,
            prefix=prefix,
            cache=cache,
            progress=progress,
            errors=errors,
            poll=poll,
        )
        return pilot(
            self._obj,
            options,
            n=n,
            seed=seed,
            api_key=api_key,
            base_url=base_url,
            client=client,
            view=progress_view,
        )

    def mapping(
        self, columns: "Mapping[str, Hashable | None] | None" = None
    ) -> "MappedContacts":
        """The detected column mapping and the normalized contacts (no network).

        >>> print(df.cleanlist.mapping().describe())          # doctest: +SKIP
        """
        from cleanlist_pandas.frame.mapping import map_contacts

        return map_contacts(self._obj, columns)

    def prospects(
        self,
        columns: "Mapping[str, Hashable | None] | None" = None,
        **kwargs: Any,
    ) -> pd.DataFrame:
        """`prospecting_only`: the discovered contacts as a long frame, one row per
        (input row, contact), linked by `input_position` and the input's index label(s).

        Takes the keyword arguments of enrich (except `wait`).

        >>> df.cleanlist.prospects(max_credits=100)           # doctest: +SKIP
        """
        return _prospects(self._obj, columns, kwargs)[1]

    def resume(self, job_id: str, **kwargs: Any) -> "pd.DataFrame | EnrichmentJob":
        """Resume journaled job `job_id` on this frame (the same rows it was started on).

        Submitted workflows are polled, never submitted again. Takes enrich's
        keyword arguments; the enrichment type comes from the journal.

        >>> out = df.cleanlist.resume("job_3f2a9c...")        # doctest: +SKIP
        """
        from cleanlist_pandas.errors import UserTypeError
        from cleanlist_pandas.run.prepare import journaled_type

        if "cache_dir" in kwargs:  # the job is looked up where enrich() runs it
            raise UserTypeError(
                "resume() takes no cache_dir=: the journal is in the cache directory, "
                "$CLEANLIST_CACHE_DIR or the platform's user cache dir, as for enrich()"
            )
        from cleanlist_pandas.errors import ConfigurationError
        from cleanlist_pandas.run.prepare import sync_client_for

        try:
            client, owned = sync_client_for(
                kwargs.get("api_key"), kwargs.get("base_url"), kwargs.get("client")
            )
        except ConfigurationError:  # no key: the job is looked up all the same, first
            client, owned = None, False
        try:
            kwargs["enrichment_type"] = journaled_type(
                self._obj,
                job_id,
                kwargs.get("columns"),
                where=kwargs.get("where"),
                only_missing=kwargs.get("only_missing"),
                client=client,
            )
            if client is not None:
                kwargs["client"] = client
            return self.enrich(**kwargs)
        finally:
            if owned and kwargs.get("wait") is not False:  # a background job keeps it
                client.close()
