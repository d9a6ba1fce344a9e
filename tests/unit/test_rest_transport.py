"""REST transport: credentials, version detection, triggering, links and capabilities."""

from __future__ import annotations

import base64
import os
import threading
import time
from typing import Any

import certifi
import httpx
import pytest
from pytest_httpx import HTTPXMock

from airflow_client.exceptions import (
    AirflowUnavailable,
    AuthenticationFailed,
    BadResponse,
    ConfigurationError,
    Conflict,
    NotFound,
)
from airflow_client.transports import transport_class
from airflow_client.transports._http import _ssl_context
from airflow_client.transports.api import LISTING_CAPABILITIES
from airflow_client.transports.base import Capabilities
from airflow_client.transports.rest import RestTransport
from tests.unit.rest_helpers import (
    BASE,
    PASSWORD,
    TOKEN,
    UI,
    api_url,
    expect_token,
    jwt,
    make_transport,
    run_json,
)


def _dag(paused: bool = False) -> dict[str, Any]:
    return {"dag_id": "etl", "is_paused": paused, "is_stale": False}


def _auth_headers(httpx_mock: HTTPXMock, fragment: str = "/api/") -> list[str | None]:
    return [
        request.headers.get("Authorization")
        for request in httpx_mock.get_requests()
        if fragment in str(request.url)
    ]


def test_rest_is_the_transport_named_rest() -> None:
    assert transport_class("rest") is RestTransport


# --- credentials -------------------------------------------------------------------------------


def test_v2_token_fetched_once_for_many_requests(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2")
    expect_token(httpx_mock)  # not reusable: a second /auth/token call would fail the test
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), json=_dag(), is_reusable=True)

    for _ in range(3):
        transport.get_dag("etl")

    assert _auth_headers(httpx_mock) == [f"Bearer {TOKEN}"] * 3


def test_v2_token_renewed_after_its_expiry(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2")
    expired, fresh = jwt(time.time() - 10), jwt(time.time() + 3600)
    expect_token(httpx_mock, expired)
    expect_token(httpx_mock, fresh)
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), json=_dag(), is_reusable=True)

    transport.get_dag("etl")
    transport.get_dag("etl")
    transport.get_dag("etl")

    assert _auth_headers(httpx_mock) == [f"Bearer {expired}", f"Bearer {fresh}", f"Bearer {fresh}"]


def test_v2_token_renewed_shortly_before_expiry(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2")
    expiring, fresh = jwt(time.time() + 30), jwt(time.time() + 3600)
    expect_token(httpx_mock, expiring)
    expect_token(httpx_mock, fresh)
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), json=_dag(), is_reusable=True)

    transport.get_dag("etl")
    transport.get_dag("etl")

    assert _auth_headers(httpx_mock) == [f"Bearer {expiring}", f"Bearer {fresh}"]


def test_v2_unreadable_token_kept_until_refused(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2")
    expect_token(httpx_mock, "opaque-token")
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), json=_dag())
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), json=_dag())
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), status_code=401, json={"detail": "Token Expired"})
    expect_token(httpx_mock, "second-token")
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), json=_dag())

    for _ in range(3):
        transport.get_dag("etl")

    assert _auth_headers(httpx_mock) == ["Bearer opaque-token"] * 3 + ["Bearer second-token"]


def test_v2_token_refused_by_airflow(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2")
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/auth/token",
        status_code=401,
        json={"detail": "Invalid credentials", "input": {"password": PASSWORD}},
    )

    with pytest.raises(AuthenticationFailed, match="Invalid credentials") as caught:
        transport.get_dag("etl")
    assert caught.value.status_code == 401
    assert caught.value.body is None
    assert PASSWORD not in str(caught.value)


def test_v2_token_endpoint_failure_not_retried(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2")
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/token", status_code=500, text="oops")

    with pytest.raises(AirflowUnavailable, match="API token"):
        transport.get_dag("etl")


@pytest.mark.parametrize("answer", [{}, {"access_token": 12}, ["token"]])
def test_v2_token_answer_without_token(httpx_mock: HTTPXMock, answer: Any) -> None:
    transport = make_transport("v2")
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/token", status_code=201, json=answer)

    with pytest.raises(BadResponse, match="access_token"):
        transport.get_dag("etl")


def test_concurrent_threads_share_one_token(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2")
    expect_token(httpx_mock)
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), json=_dag(), is_reusable=True)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            transport.get_dag("etl")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert _auth_headers(httpx_mock) == [f"Bearer {TOKEN}"] * 8


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_static_token_sent_as_is(httpx_mock: HTTPXMock, version: str) -> None:
    transport = make_transport(version, TOKEN="static-token", USERNAME="", PASSWORD="")
    httpx_mock.add_response(url=api_url(version, "/dags/etl"), json=_dag())

    transport.get_dag("etl")

    assert _auth_headers(httpx_mock) == ["Bearer static-token"]


def test_static_token_refused_is_not_renewed(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2", TOKEN="static-token")
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), status_code=401, json={"detail": "Token Expired"})

    with pytest.raises(AuthenticationFailed, match="Token Expired"):
        transport.get_dag("etl")


def test_v1_basic_auth(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1")
    httpx_mock.add_response(url=api_url("v1", "/dags/etl"), json=_dag())

    transport.get_dag("etl")

    expected = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert _auth_headers(httpx_mock) == [f"Basic {expected}"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_no_credentials_no_authorization(httpx_mock: HTTPXMock, version: str) -> None:
    transport = make_transport(version, USERNAME="", PASSWORD="")
    httpx_mock.add_response(url=api_url(version, "/dags/etl"), json=_dag())

    transport.get_dag("etl")

    assert _auth_headers(httpx_mock) == [None]


# --- version detection -------------------------------------------------------------------------


def test_auto_detects_v2_once(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("auto")
    httpx_mock.add_response(url=api_url("v2", "/version"), json={"version": "3.3.2"})
    expect_token(httpx_mock)
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), json=_dag(), is_reusable=True)

    transport.get_dag("etl")
    transport.get_dag("etl")

    assert transport.capabilities.updated_since_filter is True
    version_requests = httpx_mock.get_requests(url=api_url("v2", "/version"))
    assert len(version_requests) == 1
    assert "Authorization" not in version_requests[0].headers


def test_auto_detects_v1(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("auto")
    httpx_mock.add_response(url=api_url("v2", "/version"), status_code=404, json={"detail": "Not Found"})
    httpx_mock.add_response(url=api_url("v1", "/version"), json={"version": "2.11.2", "git_version": ""})
    httpx_mock.add_response(url=api_url("v1", "/dags/etl"), json=_dag())

    transport.get_dag("etl")

    assert transport.capabilities == LISTING_CAPABILITIES
    assert _auth_headers(httpx_mock, "/dags/")[0].startswith("Basic ")  # type: ignore[union-attr]


def test_auto_unreachable_is_unavailable_and_asked_again(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("auto", RETRIES=0)
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=api_url("v2", "/version"))
    httpx_mock.add_response(url=api_url("v2", "/version"), json={"version": "3.3.2"})
    expect_token(httpx_mock)
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), json=_dag())

    with pytest.raises(AirflowUnavailable):
        transport.get_dag("etl")
    assert transport.get_dag("etl").dag_id == "etl"


def test_auto_server_error_is_not_read_as_airflow_2(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("auto", RETRIES=0)
    httpx_mock.add_response(url=api_url("v2", "/version"), status_code=503, text="maintenance")

    with pytest.raises(AirflowUnavailable, match="maintenance") as caught:
        transport.get_dag("etl")
    assert caught.value.status_code == 503


def test_auto_without_airflow_api(httpx_mock: HTTPXMock) -> None:
    # A front end that answers any path with its HTML page is not Airflow.
    transport = make_transport("auto")
    httpx_mock.add_response(url=api_url("v2", "/version"), text="<html>app</html>")
    httpx_mock.add_response(url=api_url("v1", "/version"), status_code=404, text="Not Found")

    with pytest.raises(BadResponse, match="API_VERSION"):
        transport.get_dag("etl")


def test_unknown_api_version_setting(httpx_mock: HTTPXMock) -> None:
    with pytest.raises(ConfigurationError, match="'v3'"):
        make_transport("v3").get_dag("etl")


def test_missing_base_url() -> None:
    with pytest.raises(ConfigurationError, match="BASE_URL"):
        make_transport("v2", BASE_URL="").get_dag("etl")


# --- requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_path_segments_are_escaped(httpx_mock: HTTPXMock, version: str) -> None:
    transport = make_transport(version, TOKEN="t")
    httpx_mock.add_response(json=run_json(version, run_id="a/b+c:d e", dag_id="my.dag"))

    transport.get_run("my.dag", "a/b+c:d e")

    assert httpx_mock.get_requests()[0].url.raw_path == (
        f"/api/{version}/dags/my.dag/dagRuns/a%2Fb%2Bc%3Ad%20e".encode()
    )


def test_timeout_option_applies_to_requests(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1", TIMEOUT=3)
    httpx_mock.add_response(url=api_url("v1", "/dags/etl"), json=_dag())

    transport.get_dag("etl")

    timeouts = httpx_mock.get_requests()[0].extensions["timeout"]
    assert set(timeouts.values()) == {3}


@pytest.mark.parametrize("verify", [False, certifi.where()])
def test_verify_option(httpx_mock: HTTPXMock, verify: Any) -> None:
    transport = make_transport("v1", VERIFY=verify, BASE_URL="https://airflow.test")
    httpx_mock.add_response(url="https://airflow.test/api/v1/dags/etl", json=_dag())

    assert transport.get_dag("etl").dag_id == "etl"


def test_close_then_reuse(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1")
    httpx_mock.add_response(url=api_url("v1", "/dags/etl"), json=_dag(), is_reusable=True)

    transport.get_dag("etl")
    transport.close()
    transport.close()
    assert transport.get_dag("etl").dag_id == "etl"


def test_redirect_is_not_followed(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1")
    httpx_mock.add_response(
        url=api_url("v1", "/dags/etl"), status_code=302, headers={"Location": f"{BASE}/login/"}
    )

    with pytest.raises(BadResponse) as caught:
        transport.get_dag("etl")
    assert caught.value.status_code == 302


# --- trigger -----------------------------------------------------------------------------------


def test_v2_trigger_sends_null_logical_date(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2")
    expect_token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=api_url("v2", "/dags/etl/dagRuns"),
        match_json={"dag_run_id": "dj_1", "conf": {"record": 1}, "logical_date": None, "note": "from django"},
        json=run_json("v2"),
    )

    run = transport.trigger("etl", run_id="dj_1", conf={"record": 1}, note="from django")

    assert (run.run_id, run.state, run.triggered_by, run.triggering_user) == (
        "dj_1",
        "queued",
        "rest_api",
        "admin",
    )
    assert run.logical_date is None
    assert run.run_after is not None
    assert run.run_after.utcoffset() is not None


def test_v1_trigger_has_no_logical_date_nor_empty_note(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1")
    httpx_mock.add_response(
        method="POST",
        url=api_url("v1", "/dags/etl/dagRuns"),
        match_json={"dag_run_id": "dj_1", "conf": {"record": 1}},
        json=run_json("v1"),
    )

    run = transport.trigger("etl", run_id="dj_1", conf={"record": 1})

    assert run.logical_date is not None
    assert run.logical_date.isoformat().startswith("2026-11-25T19:42:03")
    assert run.triggered_by is None  # Airflow 2 does not say
    assert run.run_after is None


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_trigger_sends_no_referer(httpx_mock: HTTPXMock, version: str) -> None:
    transport = make_transport(version)
    expect_token(httpx_mock, optional=version == "v1")
    httpx_mock.add_response(method="POST", url=api_url(version, "/dags/etl/dagRuns"), json=run_json(version))

    transport.trigger("etl", run_id="dj_1", conf={})

    requests = httpx_mock.get_requests()
    assert len(requests) == (2 if version == "v2" else 1)
    assert all("referer" not in request.headers for request in requests)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_trigger_of_unknown_dag(httpx_mock: HTTPXMock, version: str) -> None:
    transport = make_transport(version, TOKEN="t")
    httpx_mock.add_response(
        method="POST",
        url=api_url(version, "/dags/etl/dagRuns"),
        status_code=404,
        json={"detail": "not found"},
    )

    with pytest.raises(NotFound):
        transport.trigger("etl", run_id="dj_1", conf={})
    assert [request.method for request in httpx_mock.get_requests()] == ["POST"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_trigger_of_an_existing_run_id(httpx_mock: HTTPXMock, version: str) -> None:
    transport = make_transport(version, TOKEN="t")
    body = {"detail": {"reason": "Unique constraint violation", "statement": "hidden"}}
    httpx_mock.add_response(
        method="POST", url=api_url(version, "/dags/etl/dagRuns"), status_code=409, json=body
    )

    with pytest.raises(Conflict, match="The DAG 'etl' already has a run with id 'dj_1'") as caught:
        transport.trigger("etl", run_id="dj_1", conf={})
    assert (caught.value.status_code, caught.value.body) == (409, body)


def test_trigger_is_one_post(httpx_mock: HTTPXMock) -> None:
    # Whether the DAG is paused is the service's question, asked before (triggering._send).
    transport = make_transport("v1")
    httpx_mock.add_response(method="POST", url=api_url("v1", "/dags/etl/dagRuns"), json=run_json("v1"))

    assert transport.trigger("etl", run_id="dj_1", conf={}).run_id == "dj_1"
    assert [request.method for request in httpx_mock.get_requests()] == ["POST"]


# --- capabilities and links --------------------------------------------------------------------


def test_capabilities_of_both_versions() -> None:
    # The batch listing (several DAGs, states, end date) exists on both; the GET one has updated_at.
    assert (
        Capabilities(batch_listing=True, updated_since_filter=True, state_filters=True)
        == LISTING_CAPABILITIES
    )
    assert make_transport("v2").capabilities == LISTING_CAPABILITIES
    assert make_transport("v1").capabilities == LISTING_CAPABILITIES


def test_capabilities_unknown_while_airflow_is_unreachable(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("auto", RETRIES=0)
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=api_url("v2", "/version"))

    assert transport.capabilities == Capabilities()


def test_v2_links() -> None:
    transport = make_transport("v2")

    assert transport.run_url("etl", "dj_1") == f"{UI}/dags/etl/runs/dj_1"
    assert transport.log_url("etl", "dj_1", "greet") == f"{UI}/dags/etl/runs/dj_1/tasks/greet"
    assert (
        transport.log_url("etl", "dj_1", "greet", try_number=2, map_index=3)
        == f"{UI}/dags/etl/runs/dj_1/tasks/greet/mapped/3?try_number=2"
    )


def test_v1_links() -> None:
    transport = make_transport("v1", UI_URL=f"{UI}/")

    assert transport.run_url("etl", "dj 1") == f"{UI}/dags/etl/grid?dag_run_id=dj+1"
    assert (
        transport.log_url("etl", "dj_1", "greet", try_number=2, map_index=3)
        == f"{UI}/dags/etl/grid?dag_run_id=dj_1&task_id=greet&map_index=3&tab=logs"
    )


def test_links_default_to_base_url() -> None:
    transport = make_transport("v2", UI_URL="")

    assert transport.run_url("etl", "dj_1") == f"{BASE}/dags/etl/runs/dj_1"


def test_links_detect_the_version_once(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("auto")
    httpx_mock.add_response(url=api_url("v2", "/version"), status_code=404)
    httpx_mock.add_response(url=api_url("v1", "/version"), json={"version": "2.11.2"})

    assert transport.run_url("etl", "dj_1") == f"{UI}/dags/etl/grid?dag_run_id=dj_1"
    assert transport.log_url("etl", "dj_1", "t").endswith("task_id=t&tab=logs")


def test_links_fall_back_to_v2_without_asking_again(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("auto")  # RETRIES=2, but links probe once
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=api_url("v2", "/version"))

    assert transport.run_url("etl", "dj_1") == f"{UI}/dags/etl/runs/dj_1"
    assert transport.run_url("etl", "dj_2") == f"{UI}/dags/etl/runs/dj_2"
    assert len(httpx_mock.get_requests()) == 1


def test_capabilities_share_the_link_probe_pause(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = make_transport("auto")  # RETRIES=2, but the probe is one attempt
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=api_url("v2", "/version"))

    assert transport.capabilities == Capabilities()
    assert transport.run_url("etl", "dj_1") == f"{UI}/dags/etl/runs/dj_1"
    assert transport.capabilities == Capabilities()
    assert len(httpx_mock.get_requests()) == 1

    monkeypatch.setattr(RestTransport, "version_probe_pause", 0.0)  # the pause is over
    httpx_mock.add_response(url=api_url("v2", "/version"), json={"version": "3.3.2"})
    assert transport.capabilities.updated_since_filter is True
    assert len(httpx_mock.get_requests()) == 2


def test_capabilities_with_a_wrong_api_version_do_not_raise() -> None:
    # The setting is reported by the system checks and by every call; capabilities stay quiet.
    assert make_transport("v3").capabilities == Capabilities()


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR", None])
def test_verify_honours_the_environment_like_httpx(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch, variable: str | None
) -> None:
    bundle = certifi.where()
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    if variable is not None:
        monkeypatch.setenv(variable, bundle if variable == "SSL_CERT_FILE" else os.path.dirname(bundle))
    _ssl_context.cache_clear()
    transport = make_transport("v1", BASE_URL="https://airflow.test")
    httpx_mock.add_response(url="https://airflow.test/api/v1/dags/etl", json=_dag())

    try:
        assert transport.get_dag("etl").dag_id == "etl"
    finally:
        _ssl_context.cache_clear()  # the next tests get the default context again


def test_verify_with_a_certificate_folder(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1", VERIFY=os.path.dirname(certifi.where()), BASE_URL="https://airflow.test")
    httpx_mock.add_response(url="https://airflow.test/api/v1/dags/etl", json=_dag())

    assert transport.get_dag("etl").dag_id == "etl"


def test_get_retried_after_a_lost_connection(httpx_mock: HTTPXMock) -> None:
    sleeps: list[float] = []
    transport = make_transport("v1", sleeps)
    httpx_mock.add_exception(httpx.RemoteProtocolError("peer closed"), url=api_url("v1", "/dags/etl"))
    httpx_mock.add_response(url=api_url("v1", "/dags/etl"), json=_dag())

    assert transport.get_dag("etl").dag_id == "etl"
    assert sleeps == [0.2]
