"""The transport for Airflow's REST API: Airflow 3 (``/api/v2``) and Airflow 2 (``/api/v1``).

The endpoints are those of :class:`.api.ApiTransport`, shared with MWAA, the
run listings included; :mod:`._http` carries each request (credentials,
retries, error mapping). Only the checks of its options are this transport's own.

Options (one ``AIRFLOW_ENVIRONMENTS`` entry, defaults in ``conf.ENVIRONMENT_DEFAULTS``):
``BASE_URL`` (where this server reaches Airflow), ``UI_URL`` (what browsers are
linked to), ``API_VERSION`` ("auto" asks Airflow once), ``USERNAME``/``PASSWORD``
(v2: exchanged for a JWT at ``/auth/token``; v1: basic auth) or ``TOKEN`` (sent
as a bearer token as it is), ``TIMEOUT``, ``RETRIES`` (extra attempts of GETs)
and ``VERIFY``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core import checks

from airflow_client.transports._http import ApiSession
from airflow_client.transports.api import ApiTransport
from airflow_client.transports.base import check_error, is_http_url

__all__ = ["RestTransport"]


class RestTransport(ApiTransport):
    """Airflow 2 or 3 over HTTP, with one connection pool per environment alias."""

    @classmethod
    def check(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        where = f"AIRFLOW_ENVIRONMENTS[{alias!r}]"
        errors = super().check(alias, options)
        base_url = options.get("BASE_URL", "")
        if not is_http_url(base_url):
            errors.append(
                check_error(
                    4,
                    f"{where}['BASE_URL'] is {base_url!r}: an http(s) URL is required.",
                    "The address the server uses to reach Airflow's API, e.g. 'http://127.0.0.1:8080'.",
                )
            )
        username, password, token = (options.get(k) or "" for k in ("USERNAME", "PASSWORD", "TOKEN"))
        if token and (username or password):
            errors.append(
                check_error(
                    7,
                    f"{where} sets both TOKEN and USERNAME/PASSWORD.",
                    "Use TOKEN for a static bearer token, or USERNAME and PASSWORD, not both.",
                )
            )
        elif not token and not (username and password):
            errors.append(
                check_error(
                    7,
                    f"{where} has no credentials: set USERNAME and PASSWORD (Airflow 3 token login or "
                    "Airflow 2 basic auth), or TOKEN.",
                    "Airflow 3 always needs credentials; Airflow 2 needs the basic_auth API backend enabled.",
                )
            )
        return errors

    def __init__(self, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias, options)
        #: the HTTP session (tests replace ``http.sleep`` to skip the backoff pauses).
        self.http = ApiSession(alias, options)

    def close(self) -> None:
        self.http.close()

    def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        *,
        read: bool | None = None,
    ) -> Any:
        return self.http.request(method, path, params=query, json=body, read=read)

    def _call_prefix(self, path: str, query: Mapping[str, Any], max_bytes: int) -> tuple[Any, bool]:
        return self.http.request_prefix("GET", path, params=query, max_bytes=max_bytes)

    def api_version(self, *, retries: int | None = None) -> str:
        return self.http.version(retries=retries)

    @property
    def known_api_version(self) -> str | None:
        return self.http.known_version
