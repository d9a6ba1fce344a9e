"""What the REST and MWAA transports share: Airflow's REST API, whatever carries it.

Both send the same requests to the same endpoints. They differ in how a request
travels (httpx with Airflow's own credentials, or boto3's ``invoke_rest_api``
with IAM), in how the API version is learnt, and in a few endpoints where the
carrier forces another choice (MWAA's 64-character path cap). A subclass
implements :meth:`ApiTransport._call` and the version hooks; the rest is here.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar

from django.core import checks

from airflow_client.conf import get_settings
from airflow_client.exceptions import AirflowClientError, BadRequest, ConfigurationError, Conflict, NotFound
from airflow_client.transports import payloads
from airflow_client.transports.base import (
    Capabilities,
    Dag,
    DagRun,
    LogChunk,
    RunQuery,
    TaskInstance,
    Transport,
    check_error,
    option_text,
    settable_state,
)

__all__ = ["API_VERSION_CHOICES", "ApiTransport", "configured_version"]

#: What API_VERSION may say: "auto" asks Airflow once, "v1" is Airflow 2, "v2" Airflow 3.
API_VERSION_CHOICES = ("auto", *payloads.API_VERSIONS)


def configured_version(alias: str, options: Mapping[str, Any]) -> str | None:
    """The API version that API_VERSION sets, or None for "auto" (ask Airflow).

    Raises ConfigurationError for any other value (system check E006 says so first).
    """
    value = options.get("API_VERSION")
    if value is None or value == "":
        value = "auto"
    if value not in API_VERSION_CHOICES:
        raise ConfigurationError(
            f"API_VERSION of Airflow environment {alias!r} is {value!r}: use 'auto', 'v1' or 'v2'."
        )
    return None if value == "auto" else str(value)


def dag_path(dag_id: str) -> str:
    return f"/dags/{payloads.api_segment(dag_id)}"


def run_path(dag_id: str, run_id: str) -> str:
    return f"{dag_path(dag_id)}/dagRuns/{payloads.api_segment(run_id)}"


def readable(runs: Iterable[DagRun | None]) -> Iterator[DagRun]:
    """The runs of a listing parsed with parse_run_page, the unreadable ones (None) left out."""
    return (run for run in runs if run is not None)


def distinct(runs: Iterable[DagRun], limit: int) -> Iterator[DagRun]:
    """``runs`` without repeats, up to ``limit`` of them.

    A run created while we page shifts the next page by one, so the last run
    of a page can come again at the top of the next one.
    """
    seen: set[tuple[str, str]] = set()
    for run in runs:
        key = (run.dag_id, run.run_id)
        if key in seen:
            continue
        seen.add(key)
        yield run
        if len(seen) >= limit:
            return


class ApiTransport(Transport):
    """A transport that speaks Airflow's REST API (v1 for Airflow 2, v2 for Airflow 3)."""

    #: Both versions: see payloads.trigger_body.
    defers_runs: ClassVar[bool] = True

    #: Airflow caps pages at [api] maximum_page_limit, 100 by default: never ask for more.
    page_size: ClassVar[int] = 100
    #: After a failed version probe, links and capabilities do without the version this
    #: long before asking again.
    version_probe_pause: ClassVar[float] = 60.0
    #: Whether task_log sends ``map_index=-1`` (Airflow's default) rather than leaving it out.
    sends_default_map_index: ClassVar[bool] = False
    #: Whether clear_run always goes through ``/dags/{dag_id}/clearTaskInstances`` (whose
    #: path holds no run id) and reads the run back; else only where the run's own clear
    #: cannot leave the successful tasks alone (Airflow 2, only_failed).
    clears_through_task_instances: ClassVar[bool] = False

    @classmethod
    def check(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        errors = super().check(alias, options)
        try:
            configured_version(alias, options)
        except ConfigurationError:
            errors.append(
                check_error(
                    6,
                    f"AIRFLOW_ENVIRONMENTS[{alias!r}]['API_VERSION'] is {options.get('API_VERSION')!r}.",
                    "Use 'auto' (ask Airflow once), 'v1' (Airflow 2) or 'v2' (Airflow 3).",
                )
            )
        return errors

    def __init__(self, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias, options)
        #: where browsers are linked to (conf.environment() fills it from BASE_URL).
        self.ui_url = option_text(options, "UI_URL")
        self._probe_lock = threading.Lock()
        self._probe_failed_at: float | None = None

    # --- what a subclass provides ------------------------------------------------------------

    @abc.abstractmethod
    def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """Airflow's decoded JSON answer to one request, or the matching AirflowError.

        ``path`` is below the API root (``/dags/...``, without ``/api/v1``).
        """

    def _call_prefix(self, path: str, query: Mapping[str, Any], max_bytes: int) -> tuple[Any, bool]:
        """A GET's decoded answer and False, or the text of its first ``max_bytes`` and True.

        By default the whole answer (MWAA's are capped at 6 MB by AWS anyway).
        """
        return self._call("GET", path, query), False

    @abc.abstractmethod
    def api_version(self, *, retries: int | None = None) -> str:
        """ "v1" or "v2": configured, or asked of Airflow once; raises while Airflow cannot say."""

    @property
    @abc.abstractmethod
    def known_api_version(self) -> str | None:
        """The API version when configured or already learnt; never asks Airflow."""

    @abc.abstractmethod
    def _capabilities_for(self, version: str) -> Capabilities:
        """What this transport can do against an Airflow of API ``version``."""

    # --- the version, for callers that must not fail ---------------------------------------------

    def _probe_version(self) -> str | None:
        """The API version, or None while it cannot be learnt quickly.

        Links and capabilities must not fail a page or a sync, nor make either
        wait: a page holds many links, and each would wait TIMEOUT x RETRIES. So
        a probe is one attempt without retries and, when it fails, no probe is
        made for ``version_probe_pause`` seconds. The lock lets concurrent
        callers wait for one probe instead of each sending their own.
        """
        known = self.known_api_version
        if known is not None:
            return known
        with self._probe_lock:
            failed_at = self._probe_failed_at
            if failed_at is not None and time.monotonic() - failed_at < self.version_probe_pause:
                return None
            try:
                return self.api_version(retries=0)
            except AirflowClientError:
                self._probe_failed_at = time.monotonic()
                return None

    @property
    def capabilities(self) -> Capabilities:
        version = self._probe_version()
        # Nothing is promised until Airflow tells its version.
        return Capabilities() if version is None else self._capabilities_for(version)

    # --- DAGs and runs ---------------------------------------------------------------------------

    def get_dag(self, dag_id: str) -> Dag:
        return payloads.parse_dag(self._call("GET", dag_path(dag_id)))

    def trigger(
        self,
        dag_id: str,
        *,
        run_id: str,
        conf: Mapping[str, Any],
        note: str | None = None,
        run_after: datetime | None = None,
    ) -> DagRun:
        version = self.api_version()
        body = payloads.trigger_body(run_id, conf, note, version, run_after)
        try:
            data = self._call("POST", f"{dag_path(dag_id)}/dagRuns", body=body)
        except Conflict as exc:
            # Airflow 3's words are a generic database error: say what happened first.
            # (We send no logical date, so the clash can only be the run id; a deferred run
            # on Airflow 2 has one, unique to the microsecond: see payloads.trigger_body.)
            raise Conflict(
                f"The DAG {dag_id!r} already has a run with id {run_id!r} (Airflow: {exc.detail}).",
                status_code=exc.status_code,
                body=exc.body,
            ) from exc
        return payloads.parse_dag_run(data, version)

    def get_run(self, dag_id: str, run_id: str) -> DagRun:
        version = self.api_version()
        return payloads.parse_dag_run(self._call("GET", run_path(dag_id, run_id)), version)

    @staticmethod
    def _order_by(version: str) -> str:
        """Newest first: Airflow 3 sorts on run_after, Airflow 2 on execution_date."""
        return "-run_after" if version == "v2" else "-execution_date"

    def _listing_params(self, query: RunQuery, version: str) -> dict[str, Any]:
        """The filters of ``query`` as parameters of the GET run listing."""
        params: dict[str, Any] = {"order_by": self._order_by(version)}
        if query.updated_since is not None:
            params["updated_at_gte"] = payloads.query_datetime(query.updated_since)
        return params

    def _listed_runs(
        self,
        dag_id: str,
        params: Mapping[str, Any],
        limit: int | None,
        version: str,
        on_unreadable: Callable[[Exception], None] | None = None,
    ) -> Iterator[DagRun]:
        """The GET run listing of one DAG ("~": every DAG), page after page."""
        path = f"{dag_path(dag_id)}/dagRuns"

        def fetch(offset: int, size: int) -> tuple[list[DagRun | None], int]:
            data = self._call("GET", path, query={**params, "limit": size, "offset": offset})
            return payloads.parse_run_page(data, version, on_unreadable)

        try:
            yield from readable(payloads.follow_pages(fetch, limit, self.page_size))
        except NotFound:
            if dag_id == "~":
                raise
            # Airflow 2 lists no runs for an unknown DAG; Airflow 3 says 404. Same answer here.

    # --- operators' controls ----------------------------------------------------------------------
    # Writes: _call never repeats them once Airflow may have seen them (see retries.py).
    # Setting a state twice would do no harm, but one rule for every write is easier to trust.

    def set_run_state(self, dag_id: str, run_id: str, state: str) -> DagRun:
        state = settable_state(state)
        version = self.api_version()
        data = self._call("PATCH", run_path(dag_id, run_id), body=payloads.run_state_body(state))
        return payloads.parse_dag_run(data, version)

    def clear_run(self, dag_id: str, run_id: str, *, only_failed: bool = False) -> DagRun:
        """See :meth:`Transport.clear_run`.

        Through clearTaskInstances, Airflow answers with the cleared tasks, so the
        run is read back with a GET (retried like any read); should that read
        fail, the tasks were cleared all the same.
        """
        version = self.api_version()
        if self.clears_through_task_instances or (version == "v1" and only_failed):
            body = payloads.clear_task_instances_body(run_id, only_failed, version)
            self._call("POST", f"{dag_path(dag_id)}/clearTaskInstances", body=body)
            return self.get_run(dag_id, run_id)
        data = self._call(
            "POST", f"{run_path(dag_id, run_id)}/clear", body=payloads.clear_run_body(only_failed, version)
        )
        return payloads.parse_dag_run(data, version)

    # --- tasks -----------------------------------------------------------------------------------

    def _task_instance_page(self, dag_id: str, run_id: str, offset: int, size: int) -> Any:
        """One page of a run's task instances, as Airflow sends it."""
        return self._call(
            "GET", f"{run_path(dag_id, run_id)}/taskInstances", {"limit": size, "offset": offset}
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]:
        def fetch(offset: int, size: int) -> tuple[list[TaskInstance], int]:
            return payloads.parse_task_instances(self._task_instance_page(dag_id, run_id, offset, size))

        return list(payloads.follow_pages(fetch, None, self.page_size))

    def task_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        *,
        map_index: int = -1,
        continuation_token: str | None = None,
    ) -> LogChunk:
        version = self.api_version()
        path = (
            f"{run_path(dag_id, run_id)}/taskInstances/{payloads.api_segment(task_id)}/logs/{int(try_number)}"
        )
        query: dict[str, Any] = {}
        if map_index >= 0 or self.sends_default_map_index:
            query["map_index"] = map_index
        if continuation_token:
            if len(continuation_token) > payloads.MAX_TOKEN_LENGTH:
                raise BadRequest(
                    f"This log continuation token is longer than {payloads.MAX_TOKEN_LENGTH} characters: "
                    "Airflow never sends one so long."
                )
            query["token"] = continuation_token
        # JSON on both versions (v2 refuses text/plain; MWAA only carries JSON). A log can be
        # huge (Airflow 3 sends it whole): read up to AIRFLOW_MAX_LOG_BYTES of it.
        data, truncated = self._call_prefix(path, query, get_settings().max_log_bytes)
        if truncated:
            return payloads.parse_log_prefix(data, version)
        return payloads.parse_log(data, version)

    # --- XCom ------------------------------------------------------------------------------------

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str, *, map_index: int = -1) -> Any:
        version = self.api_version()
        path = (
            f"{run_path(dag_id, run_id)}/taskInstances/{payloads.api_segment(task_id)}"
            f"/xcomEntries/{payloads.api_segment(key)}"
        )
        query: dict[str, Any] = {}
        if map_index >= 0:
            query["map_index"] = map_index
        if version == "v1":
            query["stringify"] = "false"  # v1 sends str(value) by default: ask for the JSON value
        return payloads.parse_xcom(self._call("GET", path, query or None))

    # --- links -----------------------------------------------------------------------------------

    def _link_version(self) -> str:
        # Without a version, links take Airflow 3's shapes (the current major).
        return self._probe_version() or "v2"

    def run_url(self, dag_id: str, run_id: str) -> str:
        return payloads.run_url(self.ui_url, dag_id, run_id, self._link_version())

    def log_url(
        self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None, map_index: int = -1
    ) -> str:
        return payloads.log_url(
            self.ui_url, dag_id, run_id, task_id, self._link_version(), try_number, map_index
        )
