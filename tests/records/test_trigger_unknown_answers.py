"""Issue 9, defects 3 and 15: what the trigger path records once the POST was sent.

Only Airflow's refusal (400/401/403/404/422) frees the record: any other answer
(garbage, 5xx, an unexpected status) may come from an Airflow that created the
run, so the outcome is unknown and settled by reading the run id back.
"""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from airflow_client import trigger
from airflow_client.exceptions import (
    AlreadyRunning,
    AuthenticationFailed,
    BadResponse,
    TriggerFailed,
)
from airflow_client.jobs import Job
from airflow_client.models import JobRun, JobSlot, JobTrigger
from airflow_client.transports import fake
from tests.testapp.airflow_jobs import IndexFindingAid
from tests.unit.rest_helpers import api_url, error_json, expect_token, run_json

pytestmark = pytest.mark.django_db

POST = api_url("v2", "/dags/etl/dagRuns")


def _unpaused(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), json={"dag_id": "etl", "is_paused": False})


# --- defect 3: a 2xx whose body does not parse ---------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"content": b"<html>Proxy says OK</html>"},
        {"json": {"unexpected": "shape"}},
        {"json": ["a", "list"]},
        {"content": b'{"dag_run_id": "x", "dag_id": "etl", "state": NaN}'},
    ],
    ids=["not-json", "wrong-shape", "a-list", "nan"],
)
def test_rest_unreadable_2xx_to_the_post_is_unknown_and_read_back(
    finding_aid: Any, rest_job: type[Job], httpx_mock: HTTPXMock, answer: dict[str, Any]
) -> None:
    expect_token(httpx_mock)
    _unpaused(httpx_mock)
    httpx_mock.add_response(method="POST", url=POST, status_code=200, **answer)
    with pytest.raises(TriggerFailed, match="may have started") as caught:
        trigger(rest_job, finding_aid)
    assert "did not start" not in str(caught.value)
    job_trigger = caught.value.job_trigger
    assert job_trigger.outcome == "unknown"
    assert JobSlot.objects.count() == 1

    # Airflow did create it: the next press reads the run id back instead of POSTing again.
    run = run_json("v2", run_id=job_trigger.run_id, state="running")
    httpx_mock.add_response(url=api_url("v2", f"/dags/etl/dagRuns/{job_trigger.run_id}"), json=run)
    with pytest.raises(AlreadyRunning) as again:
        trigger(rest_job, finding_aid)
    assert len(httpx_mock.get_requests(method="POST", url=POST)) == 1
    job_run = JobRun.objects.get()
    assert again.value.job_run == job_run
    assert job_run.state == "running"
    assert job_run.started_here
    assert job_run.records() == [finding_aid]


@pytest.mark.parametrize("status", [500, 502, 503, 405, 413, 418])
def test_rest_post_answered_with_a_non_refusal_status_is_unknown(
    finding_aid: Any, rest_job: type[Job], httpx_mock: HTTPXMock, status: int
) -> None:
    expect_token(httpx_mock)
    _unpaused(httpx_mock)
    httpx_mock.add_response(method="POST", url=POST, status_code=status, json=error_json("v2", status, "x"))
    with pytest.raises(TriggerFailed, match="may have started") as caught:
        trigger(rest_job, finding_aid)
    assert caught.value.job_trigger.outcome == "unknown"
    assert JobSlot.objects.count() == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_rest_post_refused_by_airflow_frees_the_record(
    finding_aid: Any, rest_job: type[Job], httpx_mock: HTTPXMock, status: int
) -> None:
    expect_token(httpx_mock)
    _unpaused(httpx_mock)
    httpx_mock.add_response(method="POST", url=POST, status_code=status, json=error_json("v2", status, "no"))
    if status in (401, 403):  # a token refused on the POST is renewed once and asked again
        expect_token(httpx_mock)
        httpx_mock.add_response(
            method="POST", url=POST, status_code=status, json=error_json("v2", status, "no")
        )
    with pytest.raises(TriggerFailed) as caught:
        trigger(rest_job, finding_aid)
    assert caught.value.job_trigger.outcome == "failed"
    assert not JobSlot.objects.exists()


def test_fake_answer_lost_as_bad_response_starts_one_run_for_three_presses(
    finding_aid: Any, fake_airflow: fake.FakeAirflow
) -> None:
    fake_airflow.lose_next_answer("trigger", BadResponse("Airflow answered with something that is not JSON."))
    with pytest.raises(TriggerFailed, match="may have started") as caught:
        trigger(IndexFindingAid, finding_aid)
    assert caught.value.job_trigger.outcome == "unknown"
    for _press in range(2):
        with pytest.raises((TriggerFailed, AlreadyRunning)) as again:
            trigger(IndexFindingAid, finding_aid)
        assert "did not start" not in str(again.value)
    assert len(fake_airflow.runs("index_finding_aid")) == 1
    assert fake_airflow.call_count("trigger") == 1
    # Read back by the second press: the one run is recorded and linked.
    job_run = JobRun.objects.get()
    assert job_run.dag_run_id == caught.value.job_trigger.run_id
    assert job_run.records() == [finding_aid]


def test_fake_bad_response_before_the_post_is_a_plain_failure(
    finding_aid: Any, fake_airflow: fake.FakeAirflow
) -> None:
    fake_airflow.fail_next(BadResponse("garbage"))  # the paused check: nothing was sent
    with pytest.raises(TriggerFailed, match="did not start"):
        trigger(IndexFindingAid, finding_aid)
    assert fake_airflow.call_count("trigger") == 0
    assert JobTrigger.objects.get().outcome == "failed"
    assert trigger(IndexFindingAid, finding_aid).state == "queued"


def test_unexpected_exception_after_the_post_is_unknown(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = fake.FakeTransport.trigger

    def created_then_crashed(self: fake.FakeTransport, dag_id: str, **kwargs: Any) -> Any:
        original(self, dag_id, **kwargs)
        raise RecursionError("maximum recursion depth exceeded while decoding")

    monkeypatch.setattr(fake.FakeTransport, "trigger", created_then_crashed)
    with pytest.raises(TriggerFailed, match="may have started") as caught:
        trigger(IndexFindingAid, finding_aid)
    assert caught.value.job_trigger.outcome == "unknown"
    assert JobSlot.objects.count() == 1


def test_conflict_then_unreadable_run_is_unknown(finding_aid: Any, fake_airflow: fake.FakeAirflow) -> None:
    fake_airflow.lose_next_answer("get_run", BadResponse("garbage"))
    job = IndexFindingAid()
    job_trigger = None
    # An earlier attempt of this very trigger got through: the POST says 409, the read-back is garbage.
    original = fake.FakeTransport.trigger

    def conflict(self: fake.FakeTransport, dag_id: str, **kwargs: Any) -> Any:
        original(self, dag_id, **kwargs)
        from airflow_client.exceptions import Conflict

        raise Conflict("exists", status_code=409)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fake.FakeTransport, "trigger", conflict)
        with pytest.raises(TriggerFailed, match="may have started") as caught:
            trigger(job, finding_aid)
        job_trigger = caught.value.job_trigger
    assert job_trigger.outcome == "unknown"
    assert JobSlot.objects.count() == 1


# --- defect 15: refused credentials are said so --------------------------------------------------


def test_refused_credentials_say_so_in_the_trigger_error(
    finding_aid: Any, fake_airflow: fake.FakeAirflow
) -> None:
    fake_airflow.fail_next(AuthenticationFailed("Unauthorized", status_code=401))
    with pytest.raises(TriggerFailed) as caught:
        trigger(IndexFindingAid, finding_aid)
    message = str(caught.value)
    assert "refused this site's credentials" in message
    assert "reach" not in message
    assert "refused" in caught.value.job_trigger.error
