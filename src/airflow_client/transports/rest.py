"""The transport for Airflow's REST API: Airflow 3 (``/api/v2``) and Airflow 2 (``/api/v1``).

Each method is one endpoint (or a short sequence of them) of the detected API
version; :mod:`._http` handles credentials, retries and error mapping, and
:mod:`.payloads` turns Airflow's JSON into the dataclasses of :mod:`.base`.

Options (one ``AIRFLOW_ENVIRONMENTS`` entry, defaults in ``conf.ENVIRONMENT_DEFAULTS``):
``BASE_URL`` (where this server reaches Airflow), ``UI_URL`` (what browsers are
linked to), ``API_VERSION`` ("auto" asks Airflow once), ``USERNAME``/``PASSWORD``
(v2: exchanged for a JWT at ``/auth/token``; v1: basic auth) or ``TOKEN`` (sent
as a bearer token as it is), ``TIMEOUT``, ``RETRIES`` (extra attempts of GETs)
and ``VERIFY``.
"""

from __future__ import annotations

import dataclasses
import heapq
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from airflow_client.exceptions import AirflowError, Conflict, DagPaused, NotFound
from airflow_client.transports import payloads
from airflow_client.transports._http import ApiSession
from airflow_client.transports.base import (
    Capabilities,
    Dag,
    DagRun,
    Health,
    LogChunk,
    RunQuery,
    TaskInstance,
    Transport,
)

__all__ = ["RestTransport"]

#: Airflow caps pages at [api] maximum_page_limit, 100 by default: never ask for more.
PAGE_SIZE = 100
#: After a failed version probe for a link, links use the v2 shape this long without asking again.
LINK_PROBE_PAUSE_SECONDS = 60.0
#: Oldest possible sort key, for a run without a date (should not happen).
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_CAPABILITIES = {
    "v2": Capabilities(
        # conf_contains exists from Airflow 3.2; 3.0/3.1 ignore the parameter, which
        # RunQuery allows (callers re-check conf themselves).
        conf_filter=True,
        # Several DAGs are listed with one request per DAG, merged (see list_runs).
        batch_listing=False,
        updated_since_filter=True,
        structured_logs=True,
        run_after=True,
    ),
    "v1": Capabilities(updated_since_filter=True),
}


def _segment(value: str) -> str:
    """``value`` escaped for one path segment of an API request ("/", "+", ":" included)."""
    return quote(value, safe="")


def _run_path(dag_id: str, run_id: str) -> str:
    return f"/dags/{_segment(dag_id)}/dagRuns/{_segment(run_id)}"


def _utc_z(value: datetime) -> str:
    """UTC ISO 8601 with ``Z``: a ``+`` in a query string can arrive as a space."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)  # Airflow and Django (USE_TZ) both mean UTC
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class RestTransport(Transport):
    """Airflow 2 or 3 over HTTP, with one connection pool per environment alias."""

    def __init__(self, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias, options)
        #: the HTTP session (tests replace ``http.sleep`` to skip the backoff pauses).
        self.http = ApiSession(alias, options)
        self.ui_url = str(options.get("UI_URL") or options.get("BASE_URL") or "")
        self._link_lock = threading.Lock()
        self._link_probe_failed_at: float | None = None

    def close(self) -> None:
        self.http.close()

    @property
    def capabilities(self) -> Capabilities:
        try:
            return _CAPABILITIES[self.http.version()]
        except AirflowError:
            return Capabilities()  # nothing promised until Airflow tells its version

    # --- DAGs and runs -------------------------------------------------------------------------

    def get_dag(self, dag_id: str) -> Dag:
        return payloads.parse_dag(self.http.get(f"/dags/{_segment(dag_id)}"))

    def trigger(
        self,
        dag_id: str,
        *,
        run_id: str,
        conf: Mapping[str, Any],
        note: str | None = None,
        check_paused: bool = True,
    ) -> DagRun:
        version = self.http.version()
        # A paused DAG accepts the run but leaves it queued until someone unpauses it.
        if check_paused and self.get_dag(dag_id).is_paused:
            raise DagPaused(
                f"The DAG {dag_id!r} is paused in Airflow, so a new run would wait in the queue. "
                "Unpause it in Airflow, then start the run again."
            )
        body = payloads.trigger_body(run_id, conf, note, version)
        try:
            data = self.http.post(f"/dags/{_segment(dag_id)}/dagRuns", body)
        except Conflict as exc:
            # Airflow 3's words are a generic database error; ours say what happened.
            # (We send no logical date, so the clash can only be the run id.)
            raise Conflict(
                f"The DAG {dag_id!r} already has a run with id {run_id!r}.",
                status_code=exc.status_code,
                body=exc.body,
            ) from exc
        return payloads.parse_dag_run(data, version)

    def get_run(self, dag_id: str, run_id: str) -> DagRun:
        version = self.http.version()
        return payloads.parse_dag_run(self.http.get(_run_path(dag_id, run_id)), version)

    def list_runs(self, query: RunQuery) -> Iterator[DagRun]:
        """Runs matching ``query``, newest first, following pages up to ``query.limit``.

        No single endpoint has every filter: the GET listings have ``state`` and
        ``updated_at_gte`` (and ``conf_contains`` on Airflow 3.2+) but take one DAG
        or all of them (``~``); the batch POSTs take ``dag_ids`` but ignore
        ``updated_at`` (v1) or lack it (v2). So one DAG or all DAGs is one GET
        listing, and several DAGs are one GET listing each, merged by date. Both
        listings sort newest first (v2 by run_after, v1 by execution_date).
        """
        if query.limit <= 0:
            return
        version = self.http.version()
        params = self._run_filters(query, version)
        dag_ids = list(dict.fromkeys(query.dag_ids))
        runs: Iterator[DagRun]
        if len(dag_ids) > 1:
            runs = heapq.merge(
                *(self._run_pages(dag_id, params, query.limit, version) for dag_id in dag_ids),
                key=lambda run: run.run_after or run.logical_date or _EPOCH,
                reverse=True,
            )
        else:
            runs = self._run_pages(dag_ids[0] if dag_ids else "~", params, query.limit, version)
        seen: set[tuple[str, str]] = set()
        for run in runs:
            # A run created while we page shifts the next page by one: skip the repeat.
            if (run.dag_id, run.run_id) in seen:
                continue
            seen.add((run.dag_id, run.run_id))
            yield run
            if len(seen) >= query.limit:
                return

    @staticmethod
    def _run_filters(query: RunQuery, version: str) -> dict[str, Any]:
        params: dict[str, Any] = {"order_by": "-run_after" if version == "v2" else "-execution_date"}
        if query.states:
            params["state"] = list(query.states)
        if query.updated_since is not None:
            params["updated_at_gte"] = _utc_z(query.updated_since)
        if query.conf_contains and version == "v2":
            params["conf_contains"] = query.conf_contains
        return params

    def _run_pages(self, dag_id: str, params: dict[str, Any], limit: int, version: str) -> Iterator[DagRun]:
        path = f"/dags/{_segment(dag_id)}/dagRuns"  # "~" (every DAG) is left as it is
        offset = 0
        while True:
            try:
                data = self.http.get(path, {**params, "limit": min(PAGE_SIZE, limit), "offset": offset})
            except NotFound:
                if dag_id == "~":
                    raise
                # Airflow 2 lists no runs for an unknown DAG; Airflow 3 says 404. Same answer here.
                return
            runs, total = payloads.parse_run_list(data, version)
            yield from runs
            offset += len(runs)
            if not runs or offset >= total:
                return

    def clear_run(self, dag_id: str, run_id: str, *, only_failed: bool = False) -> DagRun:
        version = self.http.version()
        if version == "v1" and only_failed:
            # v1's /clear takes only dry_run (anything else is a 400); clearing only
            # the failed tasks of one run goes through clearTaskInstances instead.
            self.http.post(
                f"/dags/{_segment(dag_id)}/clearTaskInstances",
                {"dry_run": False, "dag_run_id": run_id, "only_failed": True, "reset_dag_runs": True},
            )
            return self.get_run(dag_id, run_id)
        body: dict[str, Any] = {"dry_run": False}  # both APIs default to a dry run
        if version == "v2":
            body["only_failed"] = only_failed
        return payloads.parse_dag_run(self.http.post(f"{_run_path(dag_id, run_id)}/clear", body), version)

    # --- tasks ---------------------------------------------------------------------------------

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]:
        path = f"{_run_path(dag_id, run_id)}/taskInstances"
        found: list[TaskInstance] = []
        while True:
            page, total = payloads.parse_task_instances(
                self.http.get(path, {"limit": PAGE_SIZE, "offset": len(found)})
            )
            found.extend(page)
            if not page or len(found) >= total:
                return found

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
        version = self.http.version()
        path = f"{_run_path(dag_id, run_id)}/taskInstances/{_segment(task_id)}/logs/{int(try_number)}"
        params: dict[str, Any] = {}
        if map_index >= 0:
            params["map_index"] = map_index
        if continuation_token:
            params["token"] = continuation_token
        # JSON (the session's default Accept) on both versions: v2 refuses text/plain.
        return payloads.parse_log(self.http.get(path, params), version)

    # --- health --------------------------------------------------------------------------------

    def health(self) -> Health:
        version = self.http.version()
        report = self.http.get("/monitor/health" if version == "v2" else "/health", auth=False)
        health = payloads.parse_health(report)  # read before asking for the release
        return dataclasses.replace(health, version=self.http.airflow_release())

    # --- links ---------------------------------------------------------------------------------

    def _link_version(self) -> str:
        """The API version for building links, asking Airflow at most once a minute.

        A page can hold many links: if Airflow cannot be asked, each would wait for
        the timeout. So a failed probe (one attempt, no retries) makes links use the
        v2 shape (Airflow 3, the current major) for a minute before asking again.
        """
        known = self.http.known_version
        if known is not None:
            return known
        with self._link_lock:
            failed_at = self._link_probe_failed_at
            if failed_at is not None and time.monotonic() - failed_at < LINK_PROBE_PAUSE_SECONDS:
                return "v2"
            try:
                return self.http.version(retries=0)
            except AirflowError:
                self._link_probe_failed_at = time.monotonic()
                return "v2"

    def run_url(self, dag_id: str, run_id: str) -> str:
        return payloads.run_url(self.ui_url, dag_id, run_id, self._link_version())

    def log_url(
        self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None, map_index: int = -1
    ) -> str:
        return payloads.log_url(
            self.ui_url, dag_id, run_id, task_id, self._link_version(), try_number, map_index
        )
