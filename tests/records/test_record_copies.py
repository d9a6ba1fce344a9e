"""Issue 12: the links' copies of their runs (state, date, environment) and the runs' record keys
stay in step with every change, so a record's current run, newest run and last success are
read from an index, and answer as the record's history would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType

from airflow_client import pruning, refresh, trigger
from airflow_client.exceptions import TriggerFailed
from airflow_client.jobs import Job
from airflow_client.mixins import current_job_run, last_job_success, latest_job_run
from airflow_client.models import JobRecord, JobRun
from airflow_client.refreshing import record_dag_run
from airflow_client.retention import KeepNewest
from airflow_client.transports import fake
from airflow_client.widget import current_run
from tests.factories import DAY, make_run
from tests.testapp.airflow_jobs import IndexFindingAid
from tests.testapp.models import FindingAid

pytestmark = pytest.mark.django_db


def copies(run: JobRun) -> set[tuple[str, str, Any]]:
    """What the run's links say of it."""
    return set(run.job_records.values_list("environment", "run_state", "run_created_at"))


def stored(run: JobRun) -> set[tuple[str, str, Any]]:
    run.refresh_from_db()
    return {(run.environment, run.state, run.created_at)}


def test_every_state_change_reaches_every_link(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, no_refresh_interval: None
) -> None:
    run = trigger(IndexFindingAid, finding_aid)
    other = FindingAid.objects.create(title="Letters of Babbage")
    run.link_record(ContentType.objects.get_for_model(FindingAid).pk, str(other.pk))
    assert run.job_records.count() == 2
    assert copies(run) == stored(run) == {("default", "queued", run.created_at)}

    fake_airflow.advance(run.dag_run_id)
    refresh(run)  # JobRun.store
    assert copies(run) == stored(run)
    assert run.state == "running"

    run.set_state("failed")
    assert copies(run) == stored(run)

    run.set_state("running")
    fake_airflow.reset()  # gone from Airflow: JobRun.mark_gone
    refresh(run, force=True)
    assert run.state == "failed"
    assert copies(run) == stored(run)


def test_a_run_learned_from_airflow_links_its_recorded_date(
    finding_aid: Any, fake_airflow: fake.FakeAirflow
) -> None:
    dag_run = fake_airflow.add_run("index_finding_aid", state="success")
    run, created = record_dag_run("default", dag_run, [finding_aid])  # store_dag_run, then created_at
    assert created
    assert copies(run) == stored(run) == {("default", "success", dag_run.queued_at)}
    fake_airflow.set_state((dag_run.dag_id, dag_run.run_id), "queued")  # cleared in Airflow
    run, created = record_dag_run("default", fake_airflow.get((dag_run.dag_id, dag_run.run_id)))
    assert not created
    assert copies(run) == stored(run)
    assert run.state == "queued"


def test_saving_a_run_and_refilling_bulk_links_keep_the_copies_in_step(finding_aid: Any) -> None:
    run = make_run(finding_aid, state="running")
    run.state = "success"
    run.created_at -= DAY
    run.save()
    assert copies(run) == stored(run)

    bulk = JobRun.objects.create(
        environment="other", dag_id="index_finding_aid", dag_run_id="bulk", state="failed"
    )
    content_type = ContentType.objects.get_for_model(FindingAid)
    JobRecord.objects.bulk_create(
        [JobRecord(job_run=bulk, content_type=content_type, object_id=str(finding_aid.pk), dag_id="x")]
    )
    assert copies(bulk) == {("", "", None)}  # bulk_create skips save()
    assert JobRecord.objects.filter(job_run=bulk).refill() == 1
    assert copies(bulk) == stored(bulk)


def test_a_triggers_link_carries_its_environment(finding_aid: Any, fake_airflow: fake.FakeAirflow) -> None:
    fake_airflow.lose_next_answer("trigger")
    with pytest.raises(TriggerFailed):  # unanswered: the trigger stays open, linked to the record
        trigger(IndexFindingAid, finding_aid)
    link = JobRecord.objects.get(job_trigger__isnull=False)
    assert (link.environment, link.run_state, link.run_created_at) == ("default", "", None)


def _answers(obj: Any, **where: Any) -> tuple[JobRun | None, JobRun | None, JobRun | None]:
    return (
        current_job_run(obj, "index_finding_aid", **where),
        latest_job_run(obj, "index_finding_aid", **where),
        last_job_success(obj, "index_finding_aid", **where),
    )


def test_the_indexed_answers_are_the_histories_answers(finding_aid: Any) -> None:
    """With an environment the helpers read the links' indexes; without, the runs: the same answers."""
    assert _answers(finding_aid, environment="default") == (None, None, None)
    success = make_run(finding_aid, state="success", age=5 * DAY)
    make_run(finding_aid, state="failed", age=4 * DAY)
    running = make_run(finding_aid, state="running", age=3 * DAY)  # older than the newest, going on
    newest = make_run(finding_aid, state="queued", age=2 * DAY)
    make_run(finding_aid, state="success", age=DAY, environment="other")  # another Airflow
    make_run(finding_aid, dag_id="other_dag", state="running")  # another DAG
    make_run(FindingAid.objects.create(title="Other"), state="success")  # another record

    assert _answers(finding_aid, environment="default") == (newest, newest, success)
    assert _answers(finding_aid, environment="default") == (
        JobRun.objects.for_object(finding_aid).for_dag("index_finding_aid", environment="default").current(),
        JobRun.objects.for_object(finding_aid).for_dag("index_finding_aid", environment="default").newest(),
        JobRun.objects.for_object(finding_aid)
        .for_dag("index_finding_aid", environment="default")
        .last_success(),
    )
    newest.set_state("failed")
    assert _answers(finding_aid, environment="default") == (running, newest, success)
    assert current_run(IndexFindingAid(), finding_aid) == running
    running.set_state("success")
    assert _answers(finding_aid, environment="default") == (None, newest, running)
    assert current_run(IndexFindingAid(), finding_aid) == newest


def test_a_state_changed_behind_the_models_back_is_not_shown_as_going_on(finding_aid: Any) -> None:
    """The links' copy finds the run; the run's own state decides what it is."""
    older = make_run(finding_aid, state="failed", age=DAY)
    run = make_run(finding_aid, state="running")
    JobRun.objects.filter(pk=run.pk).update(state="success")  # not through set_state: the copy lags
    assert current_job_run(finding_aid, "index_finding_aid", environment="default") is None
    assert current_run(IndexFindingAid(), finding_aid) == run  # the newest, shown as it is
    assert run.job_records.get().run_state == "running"
    assert older.state == "failed"


class PruneOld(Job):
    """Keeps each record's newest run only."""

    dag_id = "index_finding_aid"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"

    retention = KeepNewest(1)


def test_a_runs_record_key_follows_its_links(finding_aid: Any) -> None:
    """The history sorts by records on JobRun.record_key: its first record's id, links by type then id."""
    later = FindingAid.objects.create(title="Later")
    run = make_run(later, state="success", age=timedelta(days=2))
    assert JobRun.objects.get(pk=run.pk).record_key == str(later.pk)
    run.link_record(ContentType.objects.get_for_model(FindingAid).pk, str(finding_aid.pk))
    assert JobRun.objects.get(pk=run.pk).record_key == min(str(finding_aid.pk), str(later.pk))

    make_run(finding_aid, state="success")  # newer: the older run leaves finding_aid's history
    content_type_id = ContentType.objects.get_for_model(FindingAid).pk
    dropped = pruning.apply(PruneOld(), content_type_id, str(finding_aid.pk))
    assert [r.pk for r in dropped] == [run.pk]
    assert JobRun.objects.get(pk=run.pk).record_key == str(later.pk)  # still later's run
