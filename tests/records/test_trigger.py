from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction

import airflow_client
from airflow_client import refresh, sync, trigger
from airflow_client.exceptions import (
    AirflowTimeout,
    AlreadyRunning,
    InvalidConf,
    NotFound,
    TriggerFailed,
    UnknownJob,
)
from airflow_client.jobs import Job, register, unregister
from airflow_client.models import JobRun, JobTrigger
from airflow_client.transports import fake
from airflow_client.triggering import trigger_on_commit
from tests.testapp.airflow_jobs import HarvestCollection, IndexFindingAid

pytestmark = pytest.mark.django_db


def test_trigger_creates_a_run_linked_to_the_record(finding_aid: Any, fake_airflow: fake.FakeAirflow) -> None:
    user = User.objects.create_user("clerk")
    job_run = trigger(IndexFindingAid, finding_aid, user=user, conf={"force": True}, note="from a test")

    assert re.fullmatch(r"dj_[0-9a-f]{12}", job_run.dag_run_id)
    assert job_run.state == "queued"
    assert job_run.started_here
    assert job_run.conf == {"finding_aid_id": finding_aid.pk, "force": True}
    assert job_run.records() == [finding_aid]
    in_airflow = fake_airflow.get(("index_finding_aid", job_run.dag_run_id))
    assert in_airflow.conf == {"finding_aid_id": finding_aid.pk, "force": True}
    assert in_airflow.note == "from a test"
    assert fake_airflow.call_count("trigger") == 1
    # The JobTrigger was only needed until the run existed.
    assert not JobTrigger.objects.exists()
    assert job_run.job_trigger is None


def test_trigger_to_success_through_refresh(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, no_refresh_interval: None
) -> None:
    job_run = trigger("index_finding_aid", finding_aid)
    fake_airflow.advance(job_run.dag_run_id)
    assert refresh(job_run).state == "running"
    fake_airflow.advance(job_run.dag_run_id)
    job_run = refresh(job_run)
    assert job_run.state == "success"
    assert job_run.finished
    assert job_run.duration is not None
    assert JobRun.objects.last_success(finding_aid) == job_run


def test_conf_key_cannot_be_overridden(collection: Any) -> None:
    job_run = trigger(HarvestCollection, collection, conf={"collection_id": "other", "x": [1, 2]})
    assert job_run.conf == {"collection_id": "postcards/1900s", "x": [1, 2]}


def test_unregistered_job_is_named(finding_aid: Any) -> None:
    with pytest.raises(UnknownJob, match="nope"):
        trigger("nope", finding_aid)


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"when": object()}, "cannot be sent as JSON"),
        ({"nan": float("nan")}, "cannot be sent as JSON"),
        ({"big": "x" * 200}, "bytes of JSON; the limit is 100"),
    ],
)
def test_invalid_conf_is_refused_before_anything_is_saved_or_sent(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any, conf: Any, message: str
) -> None:
    settings.AIRFLOW_MAX_CONF_BYTES = 100
    with pytest.raises(InvalidConf, match=message):
        trigger(IndexFindingAid, finding_aid, conf=conf)
    assert not JobTrigger.objects.exists()
    assert fake_airflow.calls == []


def test_conf_must_be_an_object(finding_aid: Any) -> None:
    with pytest.raises(InvalidConf, match="JSON object"):
        trigger(IndexFindingAid, finding_aid, conf=["a"])  # type: ignore[arg-type]


def test_preserve_job_trigger(finding_aid: Any, settings: Any) -> None:
    settings.AIRFLOW_PRESERVE_JOB_TRIGGER = True
    user = User.objects.create_user("clerk")
    job_run = trigger(IndexFindingAid, finding_aid, user=user)

    job_trigger = JobTrigger.objects.get()
    assert job_run.job_trigger == job_trigger
    assert job_trigger.outcome == "started"
    assert job_trigger.status_code == 200
    assert job_trigger.run_id == job_run.dag_run_id
    assert job_trigger.user == user
    assert job_trigger.response["run_id"] == job_run.dag_run_id
    assert job_trigger.response["state"] == "queued"
    assert job_trigger.records() == [finding_aid]


def test_refused_trigger_keeps_the_evidence_and_frees_the_record(
    finding_aid: Any, fake_airflow: fake.FakeAirflow
) -> None:
    fake_airflow.strict = True  # unknown DAG -> 404
    with pytest.raises(TriggerFailed, match="not found") as caught:
        trigger(IndexFindingAid, finding_aid)
    job_trigger = caught.value.job_trigger
    assert job_trigger.pk is not None
    assert job_trigger.outcome == "failed"
    assert job_trigger.status_code == 404
    assert "not found" in job_trigger.error
    assert isinstance(caught.value.error, NotFound)
    assert not JobRun.objects.exists()

    fake_airflow.strict = False  # the DAG is deployed now: the record is not blocked
    job_run = trigger(IndexFindingAid, finding_aid)
    assert job_run.state == "queued"


def test_paused_dag_is_a_refusal(finding_aid: Any, fake_airflow: fake.FakeAirflow) -> None:
    fake_airflow.add_dag("index_finding_aid", paused=True)
    with pytest.raises(TriggerFailed, match="paused"):
        trigger(IndexFindingAid, finding_aid)


def test_unknown_outcome_is_resolved_by_sync(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, trigger_answer_lost: None
) -> None:
    with pytest.raises(TriggerFailed, match="may have started") as caught:
        trigger(IndexFindingAid, finding_aid, note="n")
    job_trigger = caught.value.job_trigger
    assert job_trigger.outcome == "unknown"
    assert not JobRun.objects.exists()
    run_id = job_trigger.run_id
    assert fake_airflow.get(("index_finding_aid", run_id)).state == "queued"

    report = sync()
    assert report.resolved == 1
    job_run = JobRun.objects.get()
    assert job_run.dag_run_id == run_id
    assert job_run.started_here
    assert job_run.records() == [finding_aid]
    assert not JobTrigger.objects.exists()


def test_unknown_outcome_is_resolved_by_the_next_trigger(
    finding_aid: Any, fake_airflow: fake.FakeAirflow
) -> None:
    fake_airflow.lose_next_answer("trigger", AirflowTimeout("no answer"))  # the next trigger only
    with pytest.raises(TriggerFailed) as caught:
        trigger(IndexFindingAid, finding_aid)

    # The record is not triggered twice: Airflow is asked about the first run id instead.
    with pytest.raises(AlreadyRunning) as running:
        trigger(IndexFindingAid, finding_aid)
    assert running.value.job_run.dag_run_id == caught.value.job_trigger.run_id
    assert fake_airflow.call_count("trigger") == 1
    assert len(fake_airflow.runs()) == 1


def test_already_running(finding_aid: Any, fake_airflow: fake.FakeAirflow, no_refresh_interval: None) -> None:
    first = trigger(IndexFindingAid, finding_aid)
    with pytest.raises(AlreadyRunning) as caught:
        trigger(IndexFindingAid, finding_aid)
    assert caught.value.job_run == first
    assert fake_airflow.call_count("trigger") == 1

    fake_airflow.finish(first.dag_run_id, "failed")
    # The stored state is stale (still queued); trigger() re-reads it before refusing.
    second = trigger(IndexFindingAid, finding_aid)
    assert second != first
    assert JobRun.objects.get(pk=first.pk).state == "failed"


def test_run_started_in_airflow_blocks_too(finding_aid: Any, fake_airflow: fake.FakeAirflow) -> None:
    from tests.factories import make_run

    elsewhere = make_run(finding_aid, state="running")
    fake_airflow.add_run("index_finding_aid", elsewhere.dag_run_id, state="running")
    with pytest.raises(AlreadyRunning) as caught:
        trigger(IndexFindingAid, finding_aid)
    assert caught.value.job_run == elsewhere


class ConcurrentIndex(Job):
    dag_id = "concurrent_index"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    allow_concurrent = True


@pytest.fixture
def concurrent_job() -> Iterator[type[Job]]:
    register(ConcurrentIndex)
    yield ConcurrentIndex
    unregister(ConcurrentIndex)


def test_allow_concurrent(finding_aid: Any, concurrent_job: type[Job]) -> None:
    first = trigger(concurrent_job, finding_aid)
    second = trigger(concurrent_job, finding_aid)
    assert first != second
    assert JobRun.objects.for_object(finding_aid).active().count() == 2


class FixedRunId(Job):
    dag_id = "fixed_run_id"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    allow_concurrent = True

    def get_run_id(self, obj: Any) -> str:
        return f"fixed_{obj.pk}"


def test_own_run_id_and_conflict_is_a_retry(finding_aid: Any, fake_airflow: fake.FakeAirflow) -> None:
    register(FixedRunId)
    try:
        fake_airflow.add_run(
            "fixed_run_id", f"fixed_{finding_aid.pk}", state="running", triggered_by="rest_api"
        )
        job_run = trigger(FixedRunId, finding_aid)
    finally:
        unregister(FixedRunId)
    # Airflow answered 409 for our own run id: the run is read, not duplicated.
    assert job_run.dag_run_id == f"fixed_{finding_aid.pk}"
    assert job_run.state == "running"
    assert fake_airflow.call_count("get_run") == 1
    assert len(fake_airflow.runs("fixed_run_id")) == 1


def test_trigger_on_commit_waits_for_the_transaction(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        trigger_on_commit(IndexFindingAid, finding_aid)
        assert fake_airflow.calls == []
    assert len(callbacks) == 1
    assert JobRun.objects.for_object(finding_aid).count() == 1


def test_trigger_on_commit_logs_refusals(
    finding_aid: Any, django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    trigger(IndexFindingAid, finding_aid)
    with django_capture_on_commit_callbacks(execute=True):
        trigger_on_commit(IndexFindingAid, finding_aid)
    assert "was not started" in caplog.text


def test_public_names_are_importable() -> None:
    assert airflow_client.trigger is trigger
    assert airflow_client.JobRun is JobRun
