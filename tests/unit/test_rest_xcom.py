"""REST transport: reading an XCom entry, and starting a run later (run_after), on both API versions."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pytest_httpx import HTTPXMock

from airflow_client.exceptions import BadResponse, NotFound
from airflow_client.transports import payloads
from tests.unit.rest_helpers import api_url, error_json, expect_token, make_transport, run_json

XCOM_PATH = "/dags/django_tasks/dagRuns/dj_1/taskInstances/run/xcomEntries/django_task"


@pytest.mark.parametrize(("version", "params"), [("v2", {}), ("v1", {"stringify": "false"})])
def test_xcom_reads_the_value_as_json(httpx_mock: HTTPXMock, version: str, params: dict[str, str]) -> None:
    """v1 sends str(value) unless asked for the JSON value; v2 sends the stored JSON by default."""
    if version == "v2":
        expect_token(httpx_mock)
    httpx_mock.add_response(
        url=api_url(version, XCOM_PATH),
        match_params=params,
        json={"key": "django_task", "task_id": "run", "value": {"status": "SUCCESSFUL", "n": [1, 2]}},
    )

    value = make_transport(version).xcom("django_tasks", "dj_1", "run", "django_task")

    assert value == {"status": "SUCCESSFUL", "n": [1, 2]}


def test_xcom_of_a_mapped_task_names_its_index(httpx_mock: HTTPXMock) -> None:
    expect_token(httpx_mock)
    httpx_mock.add_response(url=api_url("v2", XCOM_PATH), match_params={"map_index": "3"}, json={"value": 7})

    assert make_transport("v2").xcom("django_tasks", "dj_1", "run", "django_task", map_index=3) == 7


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_missing_xcom_is_not_found(httpx_mock: HTTPXMock, version: str) -> None:
    if version == "v2":
        expect_token(httpx_mock)
    httpx_mock.add_response(
        url=api_url(version, XCOM_PATH) + ("?stringify=false" if version == "v1" else ""),
        status_code=404,
        json=error_json(version, 404, "XCom entry not found"),
    )

    with pytest.raises(NotFound) as caught:
        make_transport(version).xcom("django_tasks", "dj_1", "run", "django_task")
    assert caught.value.status_code == 404


def test_an_xcom_answer_without_value_is_a_bad_response(httpx_mock: HTTPXMock) -> None:
    expect_token(httpx_mock)
    httpx_mock.add_response(url=api_url("v2", XCOM_PATH), json={"key": "django_task"})

    with pytest.raises(BadResponse):
        make_transport("v2").xcom("django_tasks", "dj_1", "run", "django_task")


WHEN = datetime(2030, 5, 1, 12, 0, tzinfo=timezone.utc)


def test_a_later_run_on_airflow_3_sends_run_after(httpx_mock: HTTPXMock) -> None:
    expect_token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=api_url("v2", "/dags/etl/dagRuns"),
        match_json={
            "dag_run_id": "dj_1",
            "conf": {},
            "logical_date": None,
            "run_after": "2030-05-01T12:00:00Z",
        },
        json=run_json("v2"),
    )

    make_transport("v2").trigger("etl", run_id="dj_1", conf={}, run_after=WHEN)


def test_a_later_run_on_airflow_2_has_that_logical_date_within_a_second() -> None:
    """Airflow 2's scheduler leaves a queued run alone until its logical date, unique per DAG."""
    body = payloads.trigger_body("dj_1", {}, None, "v1", WHEN)
    other = payloads.trigger_body("dj_2", {}, None, "v1", WHEN)

    moment = payloads.parse_datetime(body["logical_date"])
    assert moment is not None
    assert WHEN <= moment < WHEN.replace(second=1)
    assert body["logical_date"] != other["logical_date"]
    assert body == payloads.trigger_body("dj_1", {}, None, "v1", WHEN)  # the same run id, the same date
    assert "logical_date" not in payloads.trigger_body("dj_1", {}, None, "v1")
