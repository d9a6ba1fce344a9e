"""Issue 9, defect 4: out-of-range values from Airflow are refused where they are read.

A date outside 1900-2200 (UTC) or one that overflows, and NaN/Infinity anywhere
in a run, are a BadResponse at parse time; one bad run in a listing is reported
and the others are recorded; nothing unreadable is ever stored. These run on
SQLite and, with DAC_POSTGRES_PORT, on PostgreSQL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import IntegrityError
from pytest_httpx import HTTPXMock

from airflow_client import sync, widget
from airflow_client.exceptions import AirflowClientError, AirflowUnavailable, BadResponse
from airflow_client.jobs import Job, register, unregister
from airflow_client.models import JobRun, JobRunQuerySet, content_key
from airflow_client.refreshing import refresh
from airflow_client.transports import get_transport, payloads
from airflow_client.transports.base import DagRun
from tests.unit.rest_helpers import api_url, expect_token, run_json

pytestmark = pytest.mark.django_db

BAD_DATES = [
    "9999-12-31T23:59:59-05:00",  # overflows once converted to UTC
    "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00+01:00",  # underflows once converted to UTC
    "0001-01-01T00:00:00Z",
    "1899-12-31T23:59:59Z",
    "2201-01-01T00:00:00Z",
]
NON_FINITE = ["NaN", "Infinity", "-Infinity"]


# --- parse time ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", BAD_DATES)
def test_out_of_range_dates_are_a_bad_response(text: str) -> None:
    with pytest.raises(BadResponse, match="date"):
        payloads.parse_datetime(text)
    with pytest.raises(BadResponse):
        payloads.parse_dag_run({**run_json("v2"), "start_date": text}, "v2")


@pytest.mark.parametrize(
    "text", ["1900-01-01T05:00:00+05:00", "2026-11-29T23:00:00-05:00", "2199-12-31T00:00:00Z"]
)
def test_dates_within_range_are_read(text: str) -> None:
    assert payloads.parse_datetime(text) is not None


@pytest.mark.parametrize(
    "conf",
    [
        {"x": math.nan},
        {"x": math.inf},
        {"deep": [{"y": -math.inf}]},
    ],
)
def test_non_finite_numbers_in_a_conf_are_a_bad_response(conf: dict[str, Any]) -> None:
    with pytest.raises(BadResponse):
        payloads.parse_dag_run({**run_json("v2"), "conf": conf}, "v2")


# --- through the REST transport ------------------------------------------------------------------


class RestIndex(Job):
    dag_id = "etl"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    environment = "rest"

    def get_objects(self, conf: Any) -> list[Any]:
        return []


@pytest.fixture
def rest_job(rest_environment: None) -> Iterator[type[Job]]:
    register(RestIndex)
    yield RestIndex
    unregister(RestIndex)


def _listing(httpx_mock: HTTPXMock, **page: Any) -> None:
    """A sync's two batch listings: the page given (runs going on), then nothing (runs ended)."""
    listing = api_url("v2", "/dags/~/dagRuns/list")
    httpx_mock.add_response(method="POST", url=listing, **page)
    httpx_mock.add_response(method="POST", url=listing, json={"dag_runs": [], "total_entries": 0})


def _raw(value: dict[str, Any], nan_in_conf: str | None = None) -> str:
    text = json.dumps(value)
    if nan_in_conf is not None:
        text = text.replace('"conf": {"record": 1}', f'"conf": {{"record": {nan_in_conf}}}')
        assert nan_in_conf in text
    return text


@pytest.mark.parametrize("constant", NON_FINITE)
def test_rest_answer_holding_nan_is_a_bad_response(
    rest_job: type[Job], httpx_mock: HTTPXMock, constant: str
) -> None:
    expect_token(httpx_mock)
    body = _raw({**run_json("v2", run_id="r1"), "note": None}, nan_in_conf=constant)
    httpx_mock.add_response(url=api_url("v2", "/dags/etl/dagRuns/r1"), content=body.encode())
    with pytest.raises(BadResponse):
        get_transport("rest").get_run("etl", "r1")


def _stored_run(run_id: str, state: str = "running") -> JobRun:
    dag_run = DagRun(dag_id="etl", run_id=run_id, state=state)
    job_run, _old = JobRun.objects.store_dag_run("rest", dag_run)
    JobRun.objects.filter(pk=job_run.pk).update(refreshed_at=None)
    job_run.refresh_from_db()
    return job_run


@pytest.mark.parametrize("start_date", ["9999-12-31T23:59:59-05:00", None])
def test_poll_of_a_run_with_bad_values_keeps_the_last_known_state(
    rest_job: type[Job], httpx_mock: HTTPXMock, finding_aid: Any, start_date: str | None
) -> None:
    job_run = _stored_run("r1")
    content_type, object_id = content_key(finding_aid)
    job_run.link_record(content_type.pk, object_id)
    expect_token(httpx_mock)
    answer = {**run_json("v2", run_id="r1", state="success"), "start_date": start_date}
    body = _raw(answer, nan_in_conf="NaN" if start_date is None else None)
    httpx_mock.add_response(url=api_url("v2", "/dags/etl/dagRuns/r1"), content=body.encode())
    with pytest.raises(AirflowUnavailable):
        refresh(job_run)
    job_run.refresh_from_db()
    assert job_run.state == "running"
    assert job_run.start_date is None
    assert job_run.conf == {}
    assert job_run.refresh_error

    # The widget's poll answers with the run as it was (no exception).
    JobRun.objects.filter(pk=job_run.pk).update(refreshed_at=None)
    httpx_mock.add_response(url=api_url("v2", "/dags/etl/dagRuns/r1"), content=body.encode())
    run, starting = widget.poll(rest_job(), finding_aid, str(job_run.pk))
    assert run == job_run
    assert starting is None
    assert run is not None
    assert run.state == "running"


def test_one_bad_run_never_stops_a_sync(rest_job: type[Job], httpx_mock: HTTPXMock) -> None:
    expect_token(httpx_mock)
    good = run_json("v2", run_id="good", state="success")
    bad_date = {**run_json("v2", run_id="bad_date"), "start_date": "9999-12-31T23:59:59-05:00"}
    bad_conf = run_json("v2", run_id="bad_conf")
    page = (
        '{"dag_runs": ['
        + ", ".join([json.dumps(bad_date), _raw(bad_conf, nan_in_conf="NaN"), json.dumps(good)])
        + '], "total_entries": 3}'
    )
    _listing(httpx_mock, content=page.encode())
    # Known active runs with the same ids keep their state; the good one is refreshed.
    report = sync(environment="rest")
    assert report.environments == ("rest",)
    assert report.failed_environments == ()
    assert {run.dag_run_id for run in JobRun.objects.all()} == {"good"}
    assert len(report.errors) == 2
    assert any("bad_date" in error for error in report.errors)
    assert any("bad_conf" in error for error in report.errors)


def test_known_runs_with_bad_values_keep_their_state_in_a_sync(
    rest_job: type[Job], httpx_mock: HTTPXMock
) -> None:
    _stored_run("bad_date")
    _stored_run("good")
    expect_token(httpx_mock)
    good = run_json("v2", run_id="good", state="success")
    bad_date = {**run_json("v2", run_id="bad_date", state="success"), "end_date": "0001-01-01T00:00:00+01:00"}
    page = {"dag_runs": [bad_date, good], "total_entries": 2}
    _listing(httpx_mock, json=page)
    # The run left unread by the listing is refreshed on its own: Airflow still sends it bad.
    httpx_mock.add_response(url=api_url("v2", "/dags/etl/dagRuns/bad_date"), json=bad_date)
    report = sync(environment="rest")
    assert JobRun.objects.get(dag_run_id="good").state == "success"
    assert JobRun.objects.get(dag_run_id="bad_date").state == "running"
    assert report.failed_environments == ()
    assert any("bad_date" in error for error in report.errors)


# --- storing -------------------------------------------------------------------------------------


def test_only_the_unique_constraint_means_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    first, old = JobRun.objects.store_dag_run("rest", DagRun(dag_id="etl", run_id="r", state="queued"))
    assert old is None
    again, old = JobRun.objects.store_dag_run("rest", DagRun(dag_id="etl", run_id="r", state="running"))
    assert again == first
    assert old == "queued"

    # Any other integrity error is not "recorded already": it is the package's error.
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise IntegrityError("NOT NULL constraint failed: airflow_client_jobrun.state")

    monkeypatch.setattr(JobRunQuerySet, "create", broken)
    with pytest.raises(AirflowClientError, match="cannot be stored"):
        JobRun.objects.store_dag_run("rest", DagRun(dag_id="etl", run_id="new", state="queued"))


def test_a_run_that_cannot_be_stored_is_reported_by_sync(
    rest_job: type[Job], httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    expect_token(httpx_mock)
    page = {"dag_runs": [run_json("v2", run_id="a"), run_json("v2", run_id="b")], "total_entries": 2}
    _listing(httpx_mock, json=page)
    original = JobRun.objects.store_dag_run

    def store(environment: str, dag_run: DagRun, **extra: Any) -> Any:
        if dag_run.run_id == "a":
            raise BadResponse("Airflow's run etl/a cannot be stored: value too long")
        return original(environment, dag_run, **extra)

    monkeypatch.setattr(JobRun.objects, "store_dag_run", store)
    report = sync(environment="rest")
    assert [run.dag_run_id for run in JobRun.objects.all()] == ["b"]
    assert any("etl/a" in error for error in report.errors)
    assert report.failed_environments == ()


def test_unreachable_is_not_reported_for_an_unreadable_listing(
    rest_job: type[Job], httpx_mock: HTTPXMock
) -> None:
    expect_token(httpx_mock)
    httpx_mock.add_response(method="POST", url=api_url("v2", "/dags/~/dagRuns/list"), content=b"<html>")
    report = sync(environment="rest")
    assert report.failed_environments == ()
    assert report.errors
