"""REST transport: operators' controls (mark a run, re-run it), request by request.

The bodies are those Airflow 3.3 and 2.11 accept (their route and schema code);
tests/contract/test_controls_contract.py runs the same calls against both.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from airflow_client.exceptions import AirflowTimeout, AirflowUnavailable, BadRequest, NotFound
from airflow_client.transports.rest import RestTransport
from tests.unit.rest_helpers import api_url, error_json, make_transport, run_json

RUN = "/dags/etl/dagRuns/dj_1"


@pytest.fixture(params=["v1", "v2"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def transport(version: str, sleeps: list[float]) -> Any:
    # A static token: no /auth/token request among those the tests count.
    transport = make_transport(version, sleeps, TOKEN="static", USERNAME="", PASSWORD="")
    yield transport
    transport.close()


def _sent(httpx_mock: HTTPXMock) -> list[tuple[str, str, bytes, Any]]:
    """Each request as (method, path, query, JSON body)."""
    return [
        (request.method, request.url.path, request.url.query, _json(request))
        for request in httpx_mock.get_requests()
    ]


def _json(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


# --- set_run_state -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["success", "failed", "queued"])
def test_set_run_state_patches_the_state_alone(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str, state: str
) -> None:
    httpx_mock.add_response(method="PATCH", url=api_url(version, RUN), json=run_json(version, state=state))

    run = transport.set_run_state("etl", "dj_1", state)

    assert (run.run_id, run.state, run.note) == ("dj_1", state, "from django")
    # The state alone (no note key, no update_mask): Airflow 3 leaves the note as it was.
    assert _sent(httpx_mock) == [("PATCH", f"/api/{version}{RUN}", b"", {"state": state})]


@pytest.mark.parametrize("state", ["running", "skipped", "SUCCESS", ""])
def test_set_run_state_refuses_other_states_without_asking(
    httpx_mock: HTTPXMock, transport: RestTransport, state: str
) -> None:
    with pytest.raises(BadRequest, match="success, failed, queued") as caught:
        transport.set_run_state("etl", "dj_1", state)

    assert caught.value.status_code is None
    assert httpx_mock.get_requests() == []


def test_set_run_state_escapes_the_run_id(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str
) -> None:
    run_id = "manual__2026-01-01T00:00:00+00:00"
    httpx_mock.add_response(method="PATCH", json=run_json(version, run_id=run_id, state="failed"))

    transport.set_run_state("etl", run_id, "failed")

    (request,) = httpx_mock.get_requests()
    assert request.url.raw_path.decode() == (
        f"/api/{version}/dags/etl/dagRuns/manual__2026-01-01T00%3A00%3A00%2B00%3A00"
    )


def test_set_run_state_of_an_unknown_run_is_not_found(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str
) -> None:
    detail = "Dag Run id dj_1 not found in dag etl"
    httpx_mock.add_response(method="PATCH", status_code=404, json=error_json(version, 404, detail))

    with pytest.raises(NotFound, match="dj_1 not found") as caught:
        transport.set_run_state("etl", "dj_1", "failed")
    assert caught.value.status_code == 404


def test_set_run_state_rejected_value_is_bad_request(httpx_mock: HTTPXMock) -> None:
    # Should an Airflow know fewer states than we do, its validation error arrives as is.
    transport = make_transport("v2", TOKEN="static", USERNAME="", PASSWORD="")
    body = {"detail": [{"loc": ["body", "state"], "msg": "Input should be 'queued', 'success' or 'failed'"}]}
    httpx_mock.add_response(method="PATCH", status_code=422, json=body)

    with pytest.raises(BadRequest, match="state: Input should be"):
        transport.set_run_state("etl", "dj_1", "queued")


# --- clear_run -----------------------------------------------------------------------------------


@pytest.mark.parametrize("only_failed", [False, True])
def test_v2_clear_posts_to_the_runs_clear(httpx_mock: HTTPXMock, only_failed: bool) -> None:
    transport = make_transport("v2", TOKEN="static", USERNAME="", PASSWORD="")
    httpx_mock.add_response(method="POST", url=api_url("v2", f"{RUN}/clear"), json=run_json("v2"))

    run = transport.clear_run("etl", "dj_1", only_failed=only_failed)

    assert (run.run_id, run.state) == ("dj_1", "queued")
    # dry_run must be said: Airflow defaults to a dry run.
    assert _sent(httpx_mock) == [
        ("POST", f"/api/v2{RUN}/clear", b"", {"dry_run": False, "only_failed": only_failed})
    ]


def test_v1_clear_of_every_task_posts_to_the_runs_clear(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1")
    httpx_mock.add_response(method="POST", url=api_url("v1", f"{RUN}/clear"), json=run_json("v1"))

    run = transport.clear_run("etl", "dj_1")

    assert (run.run_id, run.state) == ("dj_1", "queued")
    # v1's run clear takes dry_run alone: another key would be a 400.
    assert _sent(httpx_mock) == [("POST", f"/api/v1{RUN}/clear", b"", {"dry_run": False})]


def test_v1_clear_of_failed_tasks_goes_through_clear_task_instances(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1")
    httpx_mock.add_response(
        method="POST",
        url=api_url("v1", "/dags/etl/clearTaskInstances"),
        json={"task_instances": [{"task_id": "boom", "dag_run_id": "dj_1"}]},
    )
    httpx_mock.add_response(method="GET", url=api_url("v1", RUN), json=run_json("v1"))

    run = transport.clear_run("etl", "dj_1", only_failed=True)

    assert (run.run_id, run.state) == ("dj_1", "queued")
    body = {
        "dry_run": False,
        "dag_run_id": "dj_1",
        "only_failed": True,
        "reset_dag_runs": True,
        "include_subdags": True,
        "include_parentdag": True,
    }
    assert _sent(httpx_mock) == [
        ("POST", "/api/v1/dags/etl/clearTaskInstances", b"", body),
        ("GET", f"/api/v1{RUN}", b"", None),
    ]


def test_v1_clear_task_instances_takes_the_run_id_in_the_body_unescaped(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1")
    run_id = "manual__2026-01-01T00:00:00+00:00"
    httpx_mock.add_response(method="POST", json={"task_instances": []})
    httpx_mock.add_response(method="GET", json=run_json("v1", run_id=run_id))

    transport.clear_run("etl", run_id, only_failed=True)

    post, get = httpx_mock.get_requests()
    assert _json(post)["dag_run_id"] == run_id
    assert get.url.raw_path.decode().endswith("/dagRuns/manual__2026-01-01T00%3A00%3A00%2B00%3A00")


@pytest.mark.parametrize("only_failed", [False, True])
def test_clear_of_an_unknown_run_is_not_found(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str, only_failed: bool
) -> None:
    detail = "Dag Run id dj_1 not found in dag etl"
    httpx_mock.add_response(method="POST", status_code=404, json=error_json(version, 404, detail))

    with pytest.raises(NotFound, match="dj_1 not found"):
        transport.clear_run("etl", "dj_1", only_failed=only_failed)
    assert [request.method for request in httpx_mock.get_requests()] == ["POST"]  # no read-back


@pytest.mark.parametrize("only_failed", [False, True])
@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_clear_is_not_retried_after_a_server_error(
    httpx_mock: HTTPXMock,
    transport: RestTransport,
    version: str,
    only_failed: bool,
    status: int,
    sleeps: list[float],
) -> None:
    httpx_mock.add_response(method="POST", status_code=status, text="busy")

    with pytest.raises(AirflowUnavailable) as caught:
        transport.clear_run("etl", "dj_1", only_failed=only_failed)

    assert caught.value.status_code == status
    assert len(httpx_mock.get_requests()) == 1
    assert sleeps == []


@pytest.mark.parametrize("exception", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("closed")])
def test_writes_are_not_sent_again_once_airflow_may_have_seen_them(
    httpx_mock: HTTPXMock, transport: RestTransport, exception: Exception, sleeps: list[float]
) -> None:
    httpx_mock.add_exception(exception, method="PATCH")
    httpx_mock.add_exception(exception, method="POST")

    with pytest.raises(AirflowUnavailable):
        transport.set_run_state("etl", "dj_1", "failed")
    with pytest.raises(AirflowUnavailable):
        transport.clear_run("etl", "dj_1")

    assert [request.method for request in httpx_mock.get_requests()] == ["PATCH", "POST"]
    assert sleeps == []


def test_set_run_state_is_not_retried_after_a_server_error(
    httpx_mock: HTTPXMock, transport: RestTransport, sleeps: list[float]
) -> None:
    # Setting a state twice would do no harm, but every write follows the one rule.
    httpx_mock.add_response(method="PATCH", status_code=503, text="busy")

    with pytest.raises(AirflowUnavailable):
        transport.set_run_state("etl", "dj_1", "success")
    assert len(httpx_mock.get_requests()) == 1
    assert sleeps == []


def test_v1_read_back_after_clearing_is_retried_like_any_read(
    httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    transport = make_transport("v1", sleeps)
    httpx_mock.add_response(method="POST", json={"task_instances": []})
    httpx_mock.add_response(method="GET", status_code=503, text="busy")
    httpx_mock.add_response(method="GET", json=run_json("v1", state="queued"))

    assert transport.clear_run("etl", "dj_1", only_failed=True).state == "queued"
    assert [request.method for request in httpx_mock.get_requests()] == ["POST", "GET", "GET"]
    assert sleeps == [0.2]


def test_v1_read_back_that_times_out_is_reported(httpx_mock: HTTPXMock) -> None:
    # The tasks were cleared; only the run's new state could not be read.
    transport = make_transport("v1")
    httpx_mock.add_response(method="POST", json={"task_instances": []})
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), method="GET")

    with pytest.raises(AirflowTimeout):
        transport.clear_run("etl", "dj_1", only_failed=True)
