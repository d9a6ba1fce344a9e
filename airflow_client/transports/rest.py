"""The transport for Airflow's REST API: Airflow 3 (``/api/v2``) and Airflow 2 (``/api/v1``).

The endpoints are those of :class:`.api.ApiTransport`, shared with MWAA;
:mod:`._http` carries each request (credentials, retries, error mapping). Only
the run listing and the health check are this transport's own.

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
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_client.transports import payloads
from airflow_client.transports._http import ApiSession
from airflow_client.transports.api import ApiTransport, distinct
from airflow_client.transports.base import Capabilities, DagRun, Health, RunQuery

__all__ = ["RestTransport"]

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


class RestTransport(ApiTransport):
    """Airflow 2 or 3 over HTTP, with one connection pool per environment alias."""

    def __init__(self, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias, options)
        #: the HTTP session (tests replace ``http.sleep`` to skip the backoff pauses).
        self.http = ApiSession(alias, options)
        self.ui_url = str(options.get("UI_URL") or options.get("BASE_URL") or "")

    def close(self) -> None:
        self.http.close()

    def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        return self.http.request(method, path, params=query, json=body)

    def api_version(self, *, retries: int | None = None) -> str:
        return self.http.version(retries=retries)

    @property
    def known_api_version(self) -> str | None:
        return self.http.known_version

    def _capabilities_for(self, version: str) -> Capabilities:
        return _CAPABILITIES[version]

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
        version = self.api_version()
        params = self._listing_params(query, version)
        dag_ids = list(dict.fromkeys(query.dag_ids))
        runs: Iterator[DagRun]
        if len(dag_ids) > 1:
            runs = heapq.merge(
                *(self._listed_runs(dag_id, params, query.limit, version) for dag_id in dag_ids),
                key=lambda run: run.run_after or run.logical_date or _EPOCH,
                reverse=True,
            )
        else:
            runs = self._listed_runs(dag_ids[0] if dag_ids else "~", params, query.limit, version)
        yield from distinct(runs, query.limit)

    def health(self) -> Health:
        version = self.api_version()
        report = self.http.get("/monitor/health" if version == "v2" else "/health", auth=False)
        health = payloads.parse_health(report)  # read before asking for the release
        return dataclasses.replace(health, version=self.http.airflow_release())
