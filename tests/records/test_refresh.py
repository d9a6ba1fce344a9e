from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_client import refresh, trigger
from airflow_client.exceptions import AirflowUnavailable, BadResponse
from airflow_client.jobs import Job
from airflow_client.models import JobRun
from airflow_client.refreshing import record_dag_run
from airflow_client.signals import run_state_changed
from airflow_client.transports import fake
from tests.factories import DAY, make_run
from tests.testapp.airflow_jobs import IndexFindingAid

pytestmark = pytest.mark.django_db


@pytest.fixture
def changes() -> Iterator[list[tuple[str, str | None, str]]]:
    seen: list[tuple[str, str | None, str]] = []

    def receiver(sender: Any, job_run: JobRun, old_state: str | None, new_state: str, **kwargs: Any) -> None:
        assert sender is JobRun
        seen.append((job_run.dag_run_id, old_state, new_state))

    run_state_changed.connect(receiver)
    yield seen
    run_state_changed.disconnect(receiver)


def test_refresh_is_coalesced_within_the_interval(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 60
    job_run = trigger(IndexFindingAid, finding_aid)
    fake_airflow.advance(job_run.dag_run_id)
    # The trigger just read the run: no call until the interval is over.
    assert refresh(job_run).state == "queued"
    assert fake_airflow.call_count("get_run") == 0
    # force asks anyway.
    assert refresh(job_run, force=True).state == "running"
    assert fake_airflow.call_count("get_run") == 1


def test_refresh_after_the_interval(finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 60
    job_run = trigger(IndexFindingAid, finding_aid)
    JobRun.objects.filter(pk=job_run.pk).update(refreshed_at=job_run.refreshed_at - 2 * DAY)
    job_run = JobRun.objects.get(pk=job_run.pk)  # refresh() trusts the instance's refreshed_at
    fake_airflow.advance(job_run.dag_run_id)
    assert refresh(job_run).state == "running"
    assert refresh(job_run).state == "running"
    assert fake_airflow.call_count("get_run") == 1


def test_finished_runs_are_not_reread_unless_forced(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, no_refresh_interval: None
) -> None:
    job_run = trigger(IndexFindingAid, finding_aid)
    fake_airflow.finish(job_run.dag_run_id)
    job_run = refresh(job_run)
    assert job_run.state == "success"
    fake_airflow.set_state(job_run.dag_run_id, "failed")  # e.g. a task was cleared and failed
    assert refresh(job_run).state == "success"
    assert fake_airflow.call_count("get_run") == 1
    assert refresh(job_run, force=True).state == "failed"


def test_unreachable_airflow_is_recorded_and_the_state_kept(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, no_refresh_interval: None
) -> None:
    job_run = trigger(IndexFindingAid, finding_aid)
    fake_airflow.down = True
    with pytest.raises(AirflowUnavailable):
        refresh(job_run)
    stored = JobRun.objects.get(pk=job_run.pk)
    assert stored.state == "queued"
    assert "down" in stored.refresh_error

    fake_airflow.down = False
    fake_airflow.advance(job_run.dag_run_id)
    stored = refresh(stored)
    assert stored.state == "running"
    assert stored.refresh_error == ""


def test_other_airflow_errors_become_unavailable(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, no_refresh_interval: None
) -> None:
    job_run = trigger(IndexFindingAid, finding_aid)
    fake_airflow.fail_next(BadResponse("Airflow sent a run without 'state'."))
    with pytest.raises(AirflowUnavailable) as caught:
        refresh(job_run)
    assert isinstance(caught.value.__cause__, BadResponse)
    stored = JobRun.objects.get(pk=job_run.pk)
    assert stored.state == "queued"
    assert "without 'state'" in stored.refresh_error


def test_run_deleted_in_airflow_is_failed_and_frees_its_record(
    finding_aid: Any,
    fake_airflow: fake.FakeAirflow,
    no_refresh_interval: None,
    changes: list[tuple[str, str | None, str]],
) -> None:
    job_run = trigger(IndexFindingAid, finding_aid)
    fake_airflow.reset()  # the run is gone from Airflow (deleted there, or its database was reset)
    fake_airflow.add_dag("index_finding_aid")

    job_run = refresh(job_run)
    assert job_run.state == "failed"
    assert job_run.finished
    assert job_run.refresh_error == "The run no longer exists in Airflow."
    assert changes[-1] == (job_run.dag_run_id, "queued", "failed")
    # The record is free: a new run starts instead of AlreadyRunning forever.
    assert trigger(IndexFindingAid, finding_aid).state == "queued"


def test_a_finished_run_cleaned_up_in_airflow_keeps_its_outcome(
    finding_aid: Any,
    fake_airflow: fake.FakeAirflow,
    changes: list[tuple[str, str | None, str]],
) -> None:
    job_run = trigger(IndexFindingAid, finding_aid)
    fake_airflow.finish(job_run.dag_run_id)
    job_run = refresh(job_run, force=True)
    assert job_run.state == "success"
    fake_airflow.reset()  # `airflow db clean` removed the old run
    fake_airflow.add_dag("index_finding_aid")
    seen = len(changes)

    job_run = refresh(job_run, force=True)
    assert job_run.state == "success"
    assert job_run.refresh_error == "The run no longer exists in Airflow."
    assert len(changes) == seen  # no state change signalled
    assert JobRun.objects.last_success(finding_aid) == job_run


def test_refresh_within_the_interval_makes_no_query(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any, django_assert_num_queries: Any
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 60
    job_run = trigger(IndexFindingAid, finding_aid)
    with django_assert_num_queries(0):
        assert refresh(job_run) is job_run
    assert fake_airflow.call_count("get_run") == 0


def test_refresh_of_a_run_deleted_meanwhile_returns_it_as_read(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 60
    job_run = make_run(finding_aid, state="running", refreshed_at=None)
    JobRun.objects.filter(pk=job_run.pk).delete()  # e.g. pruned by another request
    assert refresh(job_run).state == "running"
    assert refresh(job_run, force=True).state == "running"


def test_signal_fires_once_per_change(
    finding_aid: Any,
    fake_airflow: fake.FakeAirflow,
    no_refresh_interval: None,
    changes: list[tuple[str, str | None, str]],
) -> None:
    job_run = trigger(IndexFindingAid, finding_aid)
    run_id = job_run.dag_run_id
    refresh(job_run)  # no change
    fake_airflow.advance(run_id)
    refresh(job_run)
    refresh(job_run)
    fake_airflow.advance(run_id)
    refresh(job_run)
    refresh(job_run, force=True)
    # The same run stored again from another path (sync, events) does not signal twice.
    record_dag_run("default", fake_airflow.get(run_id))
    assert changes == [
        (run_id, None, "queued"),
        (run_id, "queued", "running"),
        (run_id, "running", "success"),
    ]


def test_retention_applies_when_a_run_finishes(
    finding_aid: Any,
    fake_airflow: fake.FakeAirflow,
    no_refresh_interval: None,
    keep_newest_and_last_success: type[Job],
) -> None:
    old_success = make_run(finding_aid, dag_id="index_latest", state="success", age=3 * DAY)
    old_failure = make_run(finding_aid, dag_id="index_latest", state="failed", age=2 * DAY)
    other_dag = make_run(finding_aid, dag_id="index_finding_aid", state="failed", age=2 * DAY)

    job_run = trigger(keep_newest_and_last_success, finding_aid)
    # Unfinished: nothing deleted yet.
    assert JobRun.objects.for_object(finding_aid).count() == 4
    fake_airflow.finish(job_run.dag_run_id, "failed")
    refresh(job_run)
    remaining = set(JobRun.objects.for_object(finding_aid))
    # The newest run and the newest success stay; other DAGs are not this Job's business.
    assert remaining == {job_run, old_success, other_dag}
    assert old_failure not in remaining
