"""Shared builders for the REST transport tests (HTTP is mocked by pytest-httpx)."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from pytest_httpx import HTTPXMock

from airflow_client import conf
from airflow_client.transports.rest import RestTransport

BASE = "http://airflow.test"
UI = "https://airflow.example.org"
PASSWORD = "s3cret-pw"
VERSIONS = ("v1", "v2")


def jwt(exp: float | None = None) -> str:
    """An unsigned JWT-looking token whose payload holds ``exp`` (when given)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims: dict[str, Any] = {"sub": "admin"}
    if exp is not None:
        claims["exp"] = int(exp)
    return f"{part({'alg': 'HS512', 'typ': 'JWT'})}.{part(claims)}.signature"


TOKEN = jwt(time.time() + 3600)


def make_transport(version: str = "v2", sleeps: list[float] | None = None, **options: Any) -> RestTransport:
    settings = {
        "BASE_URL": BASE,
        "UI_URL": UI,
        "API_VERSION": version,
        "USERNAME": "admin",
        "PASSWORD": PASSWORD,
        **options,
    }
    transport = RestTransport("default", conf.environment(settings))
    transport.http.sleep = (sleeps if sleeps is not None else []).append
    return transport


def api_url(version: str, path: str) -> str:
    return f"{BASE}/api/{version}{path}"


def any_query(url: str) -> re.Pattern[str]:
    """Matches ``url`` with or without a query string."""
    return re.compile(re.escape(url) + r"(\?.*)?$")


def expect_token(httpx_mock: HTTPXMock, token: str = TOKEN, *, optional: bool = False) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/auth/token",
        match_json={"username": "admin", "password": PASSWORD},
        status_code=201,
        json={"access_token": token},
        is_optional=optional,
    )


def run_json(
    version: str,
    run_id: str = "dj_1",
    dag_id: str = "etl",
    when: str = "2026-11-25T19:42:03.607564",
    state: str = "queued",
) -> dict[str, Any]:
    """A DAG run as each API version sends it (fields as seen from Airflow 2.11 / 3.3)."""
    if version == "v2":
        return {
            "dag_run_id": run_id,
            "dag_id": dag_id,
            "logical_date": None,
            "queued_at": f"{when}Z",
            "start_date": None,
            "end_date": None,
            "run_after": f"{when}Z",
            "state": state,
            "run_type": "manual",
            "triggered_by": "rest_api",
            "triggering_user_name": "admin",
            "conf": {"record": 1},
            "note": "from django",
        }
    return {
        "dag_run_id": run_id,
        "dag_id": dag_id,
        "logical_date": f"{when}+00:00",
        "execution_date": f"{when}+00:00",
        "start_date": None,
        "end_date": None,
        "state": state,
        "run_type": "manual",
        "external_trigger": True,
        "conf": {"record": 1},
        "note": "from django",
    }


def error_json(version: str, status: int, detail: str) -> dict[str, Any]:
    """An error body: v1 problem JSON, v2 ``{"detail": ...}``."""
    if version == "v1":
        return {
            "type": "https://airflow.apache.org/docs",
            "title": "Error",
            "status": status,
            "detail": detail,
        }
    return {"detail": detail}


def requests_to(httpx_mock: HTTPXMock, fragment: str) -> list[Any]:
    return [request for request in httpx_mock.get_requests() if fragment in str(request.url)]
