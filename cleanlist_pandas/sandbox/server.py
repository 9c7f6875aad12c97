"""``Sandbox``: the emulator as a real uvicorn server in a background thread.

>>> from cleanlist_pandas.sandbox import Sandbox
>>> with Sandbox(time_scale=0.01) as sb:  # doctest: +SKIP
...     sb.base_url
'http://127.0.0.1:54321/api/v1/public'
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
import time
import warnings
from types import TracebackType
from typing import Any

import uvicorn

from cleanlist_pandas._constants import API_PREFIX, is_loopback_host
from cleanlist_pandas.sandbox.app import create_app
from cleanlist_pandas.sandbox.config import SandboxConfig
from cleanlist_pandas.sandbox.delivery import BackgroundWorker
from cleanlist_pandas.sandbox.state import Fault, SandboxState

__all__ = ["Sandbox"]

_UNSET: Any = object()


class Sandbox:
    """A local, stateful emulator of the Cleanlist Public API v1, served on a loopback port.

    ``time_scale`` (when given) overrides ``config.time_scale``; ``config`` is copied.

    Its clients need no plumbing: a client pointed at it reads ``GET /_sandbox/info`` and
    paces itself to the sandbox's window (``60 s × time_scale``), reads at its speed, and
    keeps its cache, journal and spend ledger in ``cache_dir`` — by default a scratch
    directory made when the sandbox starts and deleted when it stops, so the sandbox's
    invented results never mix with real ones. Pass ``cache_dir=`` to keep them somewhere
    (it is then never deleted); ``clp.configure(cache_dir=...)`` or ``CLEANLIST_CACHE_DIR``
    on the client side win over both.

    >>> sb = Sandbox(credits=100.0, time_scale=0.01, seed=1)
    >>> sb.api_key.startswith("clapi_")
    True
    >>> with sb:  # doctest: +SKIP
    ...     import httpx
    ...     httpx.get(sb.base_url + "/credits/balance",
    ...               headers={"Authorization": f"Bearer {sb.api_key}"}).json()["credits"]
    100.0
    """

    def __init__(
        self,
        credits: float = 10_000.0,
        time_scale: float | None = None,
        seed: int = 0,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SandboxConfig | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        cfg = dataclasses.replace(config) if config is not None else SandboxConfig()
        if time_scale is not None:
            cfg.time_scale = float(time_scale)
        cfg.check()
        self.config = cfg
        self.state = SandboxState(cfg, seed=seed, credits=credits, api_key=api_key)
        self.host = host
        self.port = port
        if not is_loopback_host(host):
            warnings.warn(
                f"the sandbox binds {host!r}, not a loopback address: anyone who can reach "
                "this machine can use it (it has no real security)",
                stacklevel=2,
            )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._worker = BackgroundWorker(self.state)
        #: the directory chosen by the caller (kept), or None: a scratch one while running
        self._chosen_cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        self._scratch: str | None = None
        self.state.client_cache_dir = self._chosen_cache_dir

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> Sandbox:
        """Start the server and the background worker; return once the port is bound.

        >>> Sandbox().start().stop()  # doctest: +SKIP
        """
        if self._thread is not None:
            return self
        if self._chosen_cache_dir is None and self._scratch is None:
            # 0700 (mkdtemp): the clients' cache holds (invented) personal data
            self._scratch = tempfile.mkdtemp(prefix="cleanlist-sandbox-")
            self.state.client_cache_dir = self._scratch
        self._worker.start()
        config = uvicorn.Config(
            create_app(self.state),
            host=self.host,
            port=self.port,
            http="h11",
            ws="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="cleanlist-sandbox-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                self._worker.stop()
                self._drop_scratch()
                raise RuntimeError(f"the sandbox server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        sockets = [s for srv in server.servers for s in (srv.sockets or ())]
        self.port = int(sockets[0].getsockname()[1])
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and the background worker (idempotent).

        >>> Sandbox().stop()
        """
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = self._thread = None
        self._worker.stop()
        self._drop_scratch()

    def _drop_scratch(self) -> None:
        scratch, self._scratch = self._scratch, None
        if scratch is not None:
            self.state.client_cache_dir = self._chosen_cache_dir
            shutil.rmtree(scratch, ignore_errors=True)

    @property
    def cache_dir(self) -> str | None:
        """Where this sandbox's clients keep their cache, journal and spend ledger: the
        ``cache_dir`` given, else the scratch directory while it runs (None when stopped).

        >>> Sandbox(cache_dir="/tmp/sb-cache").cache_dir
        '/tmp/sb-cache'
        """
        return self.state.client_cache_dir

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the server thread is serving.

        >>> Sandbox().running
        False
        """
        return self._thread is not None and self._thread.is_alive()

    # --- addresses and identity -------------------------------------------------------------
    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` (a wildcard bind is reported as 127.0.0.1).

        >>> Sandbox(port=8123).root_url
        'http://127.0.0.1:8123'
        """
        host = self.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``root_url`` + ``/api/v1/public``.

        >>> Sandbox(port=8123).base_url
        'http://127.0.0.1:8123/api/v1/public'
        """
        return self.root_url + API_PREFIX

    @property
    def api_key(self) -> str:
        """The default organization's key (``clapi_...``)."""
        return self.state.api_key

    @property
    def organization_id(self) -> str:
        """The default organization's id."""
        return self.state.organization_id

    @property
    def seed(self) -> int:
        """The oracle's seed."""
        return self.state.seed

    # --- control --------------------------------------------------------------------------
    def set_credits(self, credits: float, organization_id: str | None = None) -> None:
        """Set an organization's balance (default organization when None).

        >>> sb = Sandbox(); sb.set_credits(5); sb.balance()
        5.0
        """
        self.state.set_credits(credits, organization_id)

    def balance(self, organization_id: str | None = None) -> float:
        """The organization's balance now (tasks due by now are charged first).

        >>> Sandbox(credits=7).balance()
        7.0
        """
        return self.state.balance(organization_id)

    def ledger(self) -> list[dict[str, Any]]:
        """Every charge: organization_id, workflow_id, task_id, fingerprint, credits, at.

        >>> Sandbox().ledger()
        []
        """
        return self.state.ledger()

    def schedule(self) -> dict[str, Any]:
        """Each workflow's submission and scheduled completion time (sandbox clock, s).

        >>> Sandbox().schedule()["workflows"]
        []
        """
        return self.state.schedule()

    def stats(self) -> dict[str, Any]:
        """Requests answered by API route and status code.

        >>> Sandbox().stats()["total"]
        0
        """
        return self.state.stats()

    def reset(self) -> None:
        """Back to the initial state (credits, config, keys), no workflows/faults/stats.

        >>> sb = Sandbox(credits=3); sb.set_credits(0); sb.reset(); sb.balance()
        3.0
        """
        self.state.reset()

    def add_organization(
        self, credits: float = 10_000.0, api_access: bool = True
    ) -> tuple[str, str]:
        """Create an organization with one key: ``(organization_id, api_key)``.

        >>> org, key = Sandbox().add_organization(credits=50, api_access=False)
        """
        return self.state.add_organization(credits, api_access)

    def add_key(self, organization_id: str, expires_in_s: float | None = None) -> str:
        """Add a key (a new user) to an organization; ``expires_in_s`` (service seconds,
        scaled) makes it expire, after which it answers 401 like an unknown key.

        >>> sb = Sandbox(); sb.add_key(sb.organization_id).startswith("clapi_")
        True
        """
        return self.state.add_key(organization_id, expires_in_s)

    def revoke_key(self, key: str) -> None:
        """Revoke a key (it answers 401 from now on).

        >>> sb = Sandbox(); sb.revoke_key(sb.api_key)
        """
        self.state.revoke_key(key)

    def set_api_access(self, organization_id: str, api_access: bool) -> None:
        """Grant or withdraw an organization's API access (without it: 403).

        >>> sb = Sandbox(); sb.set_api_access(sb.organization_id, False)
        """
        self.state.set_api_access(organization_id, api_access)

    def deliveries(self, workflow_id: str) -> list[dict[str, Any]]:
        """The webhook delivery attempts logged for a workflow (any organization).

        >>> Sandbox().deliveries("public_bulk_x")
        []
        """
        with self.state.lock:
            return [dict(r) for r in self.state.deliveries.get(workflow_id, [])]

    def inject_fault(
        self,
        endpoint: str,
        kind: str,
        *,
        times: int | None = _UNSET,
        probability: float | None = None,
        status: int | None = None,
        delay_s: float | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Queue a fault on ``endpoint`` (``validate-key``, ``balance``, ``bulk``, ``status``,
        ``deliveries`` or ``*``).

        Kinds: ``status`` (answer ``status`` without processing; 429 carries
        ``Retry-After: retry_after or 1``), ``slow`` (sleep ``delay_s`` real seconds, then
        process), ``drop_before`` (close the connection, nothing processed), ``drop_after``
        (process fully, then close without a response), ``fail_workflow`` (bulk: 200, but
        the workflow ends ``failed``). ``times`` defaults to 1, or to unlimited when
        ``probability`` is given; queued faults apply in order (scripted sequences).

        >>> sb = Sandbox()
        >>> sb.inject_fault("bulk", "status", status=503, times=2)
        >>> sb.inject_fault("status", "status", status=500, probability=0.1)
        """
        if times is _UNSET:
            times = None if probability is not None else 1
        self.state.inject_fault(
            Fault(endpoint, kind, times, probability, status, delay_s, retry_after)
        )

    def clear_faults(self) -> None:
        """Remove every queued fault.

        >>> Sandbox().clear_faults()
        """
        self.state.clear_faults()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no workflow is processing (True) or ``timeout`` real seconds pass.

        >>> Sandbox().wait_idle(0.1)
        True
        """
        deadline = time.monotonic() + timeout
        while not self.state.all_terminal():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Sandbox {self.base_url} {state} time_scale={self.config.time_scale}>"
