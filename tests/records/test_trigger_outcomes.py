"""What a trigger records when Airflow does not answer as hoped, and how an open outcome is settled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from airflow_client import sync, trigger, triggering
from airflow_client.exceptions import AirflowTimeout, AirflowUnavailable, ConfigurationError, TriggerFailed
from airflow_client.jobs import Job
from airflow_client.models import JobRun, JobSlot, JobTrigger
from airflow_client.transports import fake
from tests.testapp.airflow_jobs import IndexFindingAid
from tests.unit.rest_helpers import BASE, api_url, expect_token, run_json

pytestmark = pytest.mark.django_db


def _age(job_trigger: JobTrigger, seconds: float = 3600) -> None:
    """Make ``job_trigger`` older than any in-flight POST and than the last check of it."""
    earlier = job_trigger.created_at - timedelta(seconds=seconds)
    sent = job_trigger.sent_at and job_trigger.sent_at - timedelta(seconds=seconds)
    JobTrigger.objects.filter(pk=job_trigger.pk).update(created_at=earlier, sent_at=sent, checked_at=None)
    job_trigger.refresh_from_db()


@pytest.fixture
def timeout_without_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The POST is sent, but neither an answer nor a run ever appears."""

    def time_out(self: fake.FakeTransport, dag_id: str, **kwargs: Any) -> Any:
        raise AirflowTimeout("Airflow did not answer within 10 s.")

    monkeypatch.setattr(fake.FakeTransport, "trigger", time_out)


# --- D5: only the POST itself can leave the outcome unknown ---------------------------------------


def test_timeout_before_the_post_is_a_plain_failure(finding_aid: Any, fake_airflow: fake.FakeAirflow) -> None:
    fake_airflow.fail_next(AirflowTimeout("no answer"))  # the paused check, asked before the POST
    with pytest.raises(TriggerFailed, match="did not start"):
        trigger(IndexFindingAid, finding_aid)
    assert fake_airflow.call_count("trigger") == 0
    job_trigger = JobTrigger.objects.get()
    assert job_trigger.outcome == "failed"
    assert triggering.pending_trigger(IndexFindingAid(), finding_aid) is None
    # The record is free again at once.
    assert trigger(IndexFindingAid, finding_aid).state == "queued"


def test_rest_token_timeout_is_a_failure(
    finding_aid: Any, rest_job: type[Job], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), method="POST", url=f"{BASE}/auth/token")
    with pytest.raises(TriggerFailed) as caught:
        trigger(rest_job, finding_aid)
    assert caught.value.job_trigger.outcome == "failed"
    assert not JobSlot.objects.exists()
    assert not httpx_mock.get_requests(url=api_url("v2", "/dags/etl/dagRuns"))


@pytest.mark.parametrize(
    "error", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("peer closed")], ids=["timeout", "lost"]
)
def test_rest_post_without_answer_is_unknown(
    finding_aid: Any, rest_job: type[Job], httpx_mock: HTTPXMock, error: Exception
) -> None:
    expect_token(httpx_mock)
    httpx_mock.add_response(url=api_url("v2", "/dags/etl"), json={"dag_id": "etl", "is_paused": False})
    httpx_mock.add_exception(error, method="POST", url=api_url("v2", "/dags/etl/dagRuns"))
    with pytest.raises(TriggerFailed, match="may have started") as caught:
        trigger(rest_job, finding_aid)
    job_trigger = caught.value.job_trigger
    assert job_trigger.outcome == "unknown"
    assert triggering.pending_trigger(rest_job(), finding_aid) == job_trigger

    # Airflow did start it: the next look (the widget's poll) records the run.
    run = run_json("v2", run_id=job_trigger.run_id, state="running")
    httpx_mock.add_response(url=api_url("v2", f"/dags/etl/dagRuns/{job_trigger.run_id}"), json=run)
    job_run = triggering.resolve_trigger(job_trigger)
    assert job_run is not None
    assert job_run.state == "running"
    assert job_run.records() == [finding_aid]


# --- D4: any other error frees the record ---------------------------------------------------------


def test_unexpected_error_marks_the_trigger_failed_and_frees_the_record(
    finding_aid: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = fake.FakeTransport.trigger

    def broken(self: fake.FakeTransport, dag_id: str, **kwargs: Any) -> Any:
        raise ConfigurationError("TRANSPORT options are wrong")

    monkeypatch.setattr(fake.FakeTransport, "trigger", broken)
    with pytest.raises(ConfigurationError):
        trigger(IndexFindingAid, finding_aid)
    job_trigger = JobTrigger.objects.get()
    assert job_trigger.outcome == "failed"
    assert "TRANSPORT options are wrong" in job_trigger.error
    assert not JobSlot.objects.exists()

    monkeypatch.setattr(fake.FakeTransport, "trigger", original)
    assert trigger(IndexFindingAid, finding_aid).state == "queued"


# --- D9: the unknown outcome is settled by a later look (widget poll, sync, next trigger) ---------


def test_pending_trigger_then_resolved_by_a_later_look(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, trigger_answer_lost: None
) -> None:
    job = IndexFindingAid()
    assert triggering.pending_trigger(job, finding_aid) is None
    with pytest.raises(TriggerFailed, match="may have started") as caught:
        trigger(job, finding_aid)
    job_trigger = triggering.pending_trigger(job, finding_aid)
    assert job_trigger == caught.value.job_trigger
    assert job_trigger is not None

    job_run = triggering.resolve_trigger(job_trigger)
    assert job_run is not None
    assert job_run.dag_run_id == job_trigger.run_id
    assert job_run.started_here
    assert job_run.records() == [finding_aid]
    assert triggering.pending_trigger(job, finding_aid) is None
    assert not JobTrigger.objects.exists()


def test_resolve_asks_airflow_once_per_interval(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, timeout_without_run: None, settings: Any
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 60
    with pytest.raises(TriggerFailed):
        trigger(IndexFindingAid, finding_aid)
    job_trigger = JobTrigger.objects.get()
    # Too young for "not found" to mean "not started": it stays open, and holds the record.
    assert triggering.resolve_trigger(job_trigger) is None
    assert triggering.resolve_trigger(JobTrigger.objects.get()) is None
    assert fake_airflow.call_count("get_run") == 1
    assert JobTrigger.objects.get().outcome == "unknown"
    assert JobSlot.objects.count() == 1


def test_not_found_after_the_pending_limit_fails_the_trigger(
    finding_aid: Any,
    fake_airflow: fake.FakeAirflow,
    timeout_without_run: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(TriggerFailed):
        trigger(IndexFindingAid, finding_aid)
    job_trigger = JobTrigger.objects.get()
    _age(job_trigger)
    assert triggering.resolve_trigger(job_trigger) is None
    assert job_trigger.outcome == "failed"
    assert "did not start" in job_trigger.error
    assert triggering.pending_trigger(IndexFindingAid(), finding_aid) is None
    assert not JobSlot.objects.exists()

    monkeypatch.undo()
    assert trigger(IndexFindingAid, finding_aid).state == "queued"


def test_sync_waits_out_the_pending_limit_before_failing_a_trigger(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, timeout_without_run: None
) -> None:
    with pytest.raises(TriggerFailed):
        trigger(IndexFindingAid, finding_aid)
    # Airflow may still be creating the run the POST asked for: "not found" proves nothing yet.
    assert sync().resolved == 0
    assert JobTrigger.objects.get().outcome == "unknown"

    _age(JobTrigger.objects.get())
    assert sync().resolved == 0
    assert JobTrigger.objects.get().outcome == "failed"


def test_resolve_while_airflow_is_down_records_the_error(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, timeout_without_run: None
) -> None:
    with pytest.raises(TriggerFailed):
        trigger(IndexFindingAid, finding_aid)
    job_trigger = JobTrigger.objects.get()
    fake_airflow.down = True
    with pytest.raises(AirflowUnavailable):
        triggering.resolve_trigger(job_trigger)
    assert job_trigger.outcome == "unknown"
    assert "could not be asked" in job_trigger.error
    assert not JobRun.objects.exists()


# --- a slow sender and an impatient poll: exactly one of them decides ------------------------------


def test_a_trigger_given_up_before_its_post_is_not_sent(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow is slow before the POST (token, version, paused check) and a poll gives the trigger up."""
    original = fake.FakeTransport.get_dag

    def slow_get_dag(self: fake.FakeTransport, dag_id: str) -> Any:
        job_trigger = JobTrigger.objects.get()
        _age(job_trigger)
        assert triggering.resolve_trigger(job_trigger) is None  # the poll: never sent, so released
        assert not JobSlot.objects.exists()
        return original(self, dag_id)

    monkeypatch.setattr(fake.FakeTransport, "get_dag", slow_get_dag)
    with pytest.raises(TriggerFailed, match="was not sent"):
        trigger(IndexFindingAid, finding_aid)
    assert fake_airflow.call_count("trigger") == 0  # no second DAG run can follow from this trigger
    assert JobTrigger.objects.get().outcome == "failed"


def test_a_sent_trigger_is_not_given_up_from_an_older_reading(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, timeout_without_run: None
) -> None:
    with pytest.raises(TriggerFailed):
        trigger(IndexFindingAid, finding_aid)
    stale = JobTrigger.objects.get()
    assert stale.sent_at is not None
    _age(stale)
    stale.sent_at = None  # read before the sender stamped it

    assert triggering.resolve_trigger(stale) is None
    assert JobTrigger.objects.get().outcome == "unknown"  # still open: Airflow decides, later
    assert JobSlot.objects.count() == 1
