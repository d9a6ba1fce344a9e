"""sync() and manage.py airflow_sync: runs started outside this app are found and tied to their records."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from airflow_client import refreshing, sync, syncing, trigger
from airflow_client.exceptions import ConfigurationError
from airflow_client.jobs import Job
from airflow_client.models import JobRun, JobTrigger
from airflow_client.signals import run_state_changed
from airflow_client.transports import fake
from airflow_client.transports.base import Capabilities, RunQuery
from tests.factories import DAY, make_run
from tests.testapp.airflow_jobs import IndexFindingAid
from tests.testapp.models import FindingAid

pytestmark = pytest.mark.django_db

Change = tuple[str, str | None, str]


@pytest.fixture(autouse=True)
def _forget_listings() -> Iterator[None]:
    cache.clear()  # the "listed up to" marks live in the cache
    yield
    cache.clear()


@contextlib.contextmanager
def without_state_filters(capabilities: Capabilities | None = None) -> Iterator[None]:
    """The fake transport as one that cannot filter listings on states (by default: no state filters)."""
    if capabilities is None:
        capabilities = Capabilities(batch_listing=True, updated_since_filter=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fake.FakeTransport, "capabilities", property(lambda self: capabilities))
        yield


@pytest.fixture
def changes() -> Iterator[list[Change]]:
    seen: list[Change] = []

    def receiver(sender: Any, job_run: JobRun, old_state: str | None, new_state: str, **kwargs: Any) -> None:
        seen.append((job_run.dag_run_id, old_state, new_state))

    run_state_changed.connect(receiver)
    yield seen
    run_state_changed.disconnect(receiver)


def queries(fake_airflow: fake.FakeAirflow) -> list[RunQuery]:
    """The listings asked of the fake (its calls are pages: each listing's first page)."""
    return [args[0] for name, args in fake_airflow.calls if name == "list_runs" and args[1] == 0]


#: What the two listings of a sync ask for: the runs going on, then those that ended lately.
GOING_ON, ENDED = ("queued", "running"), ("failed", "success")


def test_run_started_in_airflow_ui_is_recorded_and_linked(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, changes: list[Change]
) -> None:
    dag_run = fake_airflow.add_run(
        "index_finding_aid", conf={"finding_aid_id": finding_aid.pk}, note="by hand"
    )

    report = sync()

    assert report.discovered == 1
    assert report.errors == ()
    job_run = JobRun.objects.get()
    assert (job_run.dag_id, job_run.dag_run_id) == ("index_finding_aid", dag_run.run_id)
    assert not job_run.started_here
    assert job_run.state == "queued"
    assert job_run.triggered_by == "ui"
    assert job_run.note == "by hand"
    assert job_run.conf == {"finding_aid_id": finding_aid.pk}
    assert job_run.records() == [finding_aid]
    assert list(JobRun.objects.for_object(finding_aid).active()) == [job_run]
    assert job_run.created_at == dag_run.queued_at  # sorts where it happened in Airflow
    assert changes == [(dag_run.run_id, None, "queued")]
    # The listing was enough: no request per run.
    assert fake_airflow.call_count("get_run") == 0


def test_collection_with_a_text_key(collection: Any, fake_airflow: fake.FakeAirflow) -> None:
    dag_run = fake_airflow.add_run(
        "harvest_collection", conf={"collection_id": collection.pk}, state="success"
    )

    assert sync().discovered == 1

    job_run = JobRun.objects.get(dag_run_id=dag_run.run_id)
    assert job_run.records() == [collection]
    assert JobRun.objects.last_success(collection, dag_id="harvest_collection") == job_run
    assert job_run.end_date == dag_run.end_date


def test_run_whose_record_is_gone_is_kept_unlinked(db: None, fake_airflow: fake.FakeAirflow) -> None:
    fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": 987654}, state="failed")
    fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": "not-a-number"})
    fake_airflow.add_run("index_finding_aid", conf={})

    assert sync().discovered == 3

    assert JobRun.objects.count() == 3
    assert all(job_run.records() == [] for job_run in JobRun.objects.all())


def test_runs_of_unregistered_dags_are_ignored(finding_aid: Any, fake_airflow: fake.FakeAirflow) -> None:
    fake_airflow.add_run("someone_elses_dag", conf={"finding_aid_id": finding_aid.pk})

    report = sync()

    assert report.discovered == 0
    assert not JobRun.objects.exists()
    going_on, ended = queries(fake_airflow)
    assert (tuple(going_on.states), tuple(ended.states)) == (GOING_ON, ENDED)
    for query in (going_on, ended):
        assert set(query.dag_ids) == {"index_finding_aid", "publish_finding_aid", "harvest_collection"}


def test_second_sync_creates_nothing_new(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, changes: list[Change]
) -> None:
    fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})
    fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk}, state="success")
    assert sync().discovered == 2

    again = sync()
    cache.clear()  # even a full listing (lost marks) records nothing twice
    third = sync()

    assert (again.discovered, again.updated, third.discovered, third.updated) == (0, 0, 0, 0)
    assert JobRun.objects.count() == 2
    assert len(changes) == 2


def test_known_runs_follow_airflow_from_the_listing(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, changes: list[Change]
) -> None:
    dag_run = fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})
    sync()
    fake_airflow.advance(dag_run.run_id)

    report = sync()

    assert (report.discovered, report.updated, report.refreshed) == (0, 1, 0)
    job_run = JobRun.objects.get()
    assert job_run.state == "running"
    assert job_run.start_date is not None
    assert fake_airflow.call_count("get_run") == 0

    fake_airflow.finish(dag_run.run_id, "failed")
    sync()
    job_run.refresh_from_db()
    assert job_run.state == "failed"
    assert job_run.end_date is not None
    assert changes == [
        (dag_run.run_id, None, "queued"),
        (dag_run.run_id, "queued", "running"),
        (dag_run.run_id, "running", "failed"),
    ]


def test_runs_started_here_are_updated_too(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, no_refresh_interval: None
) -> None:
    job_run = trigger(IndexFindingAid, finding_aid)
    fake_airflow.advance(job_run.dag_run_id)

    report = sync()

    assert (report.discovered, report.updated) == (0, 1)
    job_run.refresh_from_db()
    assert job_run.state == "running"
    assert job_run.started_here
    assert job_run.records() == [finding_aid]


def test_ended_runs_are_listed_since_the_horizon_then_since_the_last_listing(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_SYNC_HORIZON = 7
    before = timezone.now()
    sync()
    after = timezone.now()
    sync()

    first_going_on, first_ended, going_on, ended = queries(fake_airflow)
    # Every page of each listing; runs going on whatever their age.
    assert {query.limit for query in queries(fake_airflow)} == {None}
    assert first_going_on.ended_since is None
    assert going_on.ended_since is None
    assert first_ended.ended_since is not None
    assert before - 7 * DAY <= first_ended.ended_since <= after - 7 * DAY
    assert ended.ended_since is not None
    assert before - syncing.OVERLAP <= ended.ended_since <= after - syncing.OVERLAP
    assert {query.updated_since for query in queries(fake_airflow)} == {None}


def test_updated_since_finds_a_run_that_changed(finding_aid: Any, fake_airflow: fake.FakeAirflow) -> None:
    dag_run = fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})
    sync()
    fake_airflow.finish(dag_run.run_id)
    later = fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})

    report = sync()

    assert (report.discovered, report.updated) == (1, 1)
    assert JobRun.objects.get(dag_run_id=dag_run.run_id).state == "success"
    assert JobRun.objects.get(dag_run_id=later.run_id).records() == [finding_aid]


def test_airflow_down_loses_nothing_and_fails_the_command(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, no_refresh_interval: None
) -> None:
    job_run = trigger(IndexFindingAid, finding_aid)
    sync()
    fake_airflow.down = True
    fake_airflow.advance(job_run.dag_run_id)
    missed = fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})

    report = sync()

    assert report.all_failed
    assert report.failed_environments == ("default",)
    assert any("runs not listed" in error and "down" in error for error in report.errors)
    assert any("1 unfinished run(s) not refreshed" in error for error in report.errors)
    job_run.refresh_from_db()
    assert job_run.state == "queued"  # recorded state kept
    assert JobRun.objects.count() == 1

    out = io.StringIO()
    with pytest.raises(CommandError, match="could not be reached: default"):
        call_command("airflow_sync", stdout=out)
    assert "default: FAILED" in out.getvalue()
    assert "Fake Airflow is down" in out.getvalue()

    # Back up: the window still starts before the outage, so nothing that happened meanwhile is missed.
    fake_airflow.down = False
    report = sync()
    assert not report.all_failed
    assert (report.discovered, report.updated) == (1, 1)
    assert JobRun.objects.get(dag_run_id=missed.run_id).records() == [finding_aid]
    windows = [query.updated_since for query in queries(fake_airflow)]
    assert windows[-1] == windows[1]


def test_error_on_one_run_does_not_stop_the_others(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, no_refresh_interval: None
) -> None:
    other = FindingAid.objects.create(title="Second")
    first = trigger(IndexFindingAid, finding_aid)
    second = trigger(IndexFindingAid, other)
    fake_airflow.advance(first.dag_run_id)
    fake_airflow.advance(second.dag_run_id)
    fake_airflow.fail_next()

    with without_state_filters():  # so the runs are read one by one
        report = sync(discover=False)

    assert report.refreshed == 1
    assert len(report.errors) == 1
    assert first.dag_run_id in report.errors[0]
    assert not report.all_failed  # Airflow answered for the second run
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == ("queued", "running")
    assert "cannot be reached" in first.refresh_error


def test_no_discover_only_refreshes(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, no_refresh_interval: None
) -> None:
    job_run = trigger(IndexFindingAid, finding_aid)
    fake_airflow.advance(job_run.dag_run_id)
    fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})

    report = sync(discover=False)

    # The run going on is updated from the listing of its DAG; the run started elsewhere is left alone.
    assert (report.refreshed, report.updated, report.discovered) == (0, 1, 0)
    assert fake_airflow.call_count("get_run") == 0
    assert [tuple(query.dag_ids) for query in queries(fake_airflow)] == [("index_finding_aid",)] * 2
    assert JobRun.objects.get().state == "running"


def test_no_discover_and_nothing_going_on_asks_nothing(
    finding_aid: Any, fake_airflow: fake.FakeAirflow
) -> None:
    fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})

    report = sync(discover=False)

    assert (report.refreshed, report.discovered, report.errors) == (0, 0, ())
    assert fake_airflow.calls == []


@pytest.fixture
def hourly(fake_airflow: fake.FakeAirflow) -> Callable[[], datetime]:
    """The fake's clock moves one hour per reading, starting three days ago."""
    times = iter(timezone.now() - 3 * DAY + timedelta(hours=hour) for hour in range(1000))

    def clock() -> datetime:
        return next(times)

    fake_airflow.clock = clock
    return clock


def test_retention_applies_to_discovered_finished_runs(
    finding_aid: Any,
    fake_airflow: fake.FakeAirflow,
    keep_newest_and_last_success: type[Job],
    hourly: Callable[[], datetime],
    changes: list[Change],
) -> None:
    other = FindingAid.objects.create(title="Other")
    old_here = make_run(finding_aid, dag_id="index_latest", state="success", age=5 * DAY)
    conf = {"finding_aid_id": finding_aid.pk}
    success = fake_airflow.add_run("index_latest", conf=conf, state="success")
    fake_airflow.add_run("index_latest", conf=conf, state="failed")  # neither the newest nor a success
    newest = fake_airflow.add_run("index_latest", conf=conf, state="failed")
    unrelated = fake_airflow.add_run("index_latest", conf={"finding_aid_id": other.pk}, state="failed")

    report = sync()

    # KeepNewestAndLastSuccess: the newest run and the newest success; the older success recorded here goes.
    kept = {job_run.dag_run_id for job_run in JobRun.objects.for_object(finding_aid)}
    assert kept == {success.run_id, newest.run_id}
    assert not JobRun.objects.filter(pk=old_here.pk).exists()
    assert JobRun.objects.for_object(other).get().dag_run_id == unrelated.run_id
    assert (report.discovered, report.not_kept) == (3, 1)
    # The run not kept was never recorded, so never announced.
    assert {run_id for run_id, _old, _new in changes} == {success.run_id, newest.run_id, unrelated.run_id}

    cache.clear()  # a full listing again: what retention dropped does not come back
    again = sync()
    assert (again.discovered, again.not_kept) == (0, 1)
    assert {job_run.dag_run_id for job_run in JobRun.objects.for_object(finding_aid)} == kept


def test_retention_when_a_discovered_run_finishes(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, keep_newest_and_last_success: type[Job]
) -> None:
    old_failure = make_run(finding_aid, dag_id="index_latest", state="failed", age=DAY)
    dag_run = fake_airflow.add_run("index_latest", conf={"finding_aid_id": finding_aid.pk}, state="running")
    sync()
    assert JobRun.objects.for_object(finding_aid).count() == 2  # unfinished: nothing pruned yet

    fake_airflow.finish(dag_run.run_id, "success")
    sync()

    assert [job_run.dag_run_id for job_run in JobRun.objects.for_object(finding_aid)] == [dag_run.run_id]
    assert not JobRun.objects.filter(pk=old_failure.pk).exists()


def test_pending_trigger_is_left_to_the_trigger_path(
    finding_aid: Any, fake_airflow: fake.FakeAirflow
) -> None:
    # A trigger whose request is still in flight: Airflow has the run, the answer has not come back.
    JobTrigger.objects.create(environment="default", dag_id="index_finding_aid", run_id="dj_inflight")
    fake_airflow.add_run("index_finding_aid", "dj_inflight", conf={"finding_aid_id": finding_aid.pk})

    report = sync()

    assert (report.discovered, report.resolved) == (0, 0)
    assert not JobRun.objects.exists()  # not recorded as started elsewhere


def test_a_concurrent_sync_recording_the_same_run(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, monkeypatch: pytest.MonkeyPatch, changes: list[Change]
) -> None:
    dag_run = fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})
    records_of = syncing.records_for_conf

    def other_process_first(*args: Any) -> Any:
        # Another cron process records the run between our look-up and our insert.
        refreshing.record_dag_run("default", dag_run, [finding_aid])
        return records_of(*args)

    monkeypatch.setattr(syncing, "records_for_conf", other_process_first)

    report = sync()

    assert report.errors == ()
    assert report.discovered == 0
    job_run = JobRun.objects.get()
    assert job_run.records() == [finding_aid]
    assert changes == [(dag_run.run_id, None, "queued")]


def test_batch_failure_falls_back_to_one_listing_per_dag(
    finding_aid: Any, fake_airflow: fake.FakeAirflow
) -> None:
    fake_airflow.strict = True
    fake_airflow.add_dag("index_finding_aid")  # harvest_collection is unknown to this Airflow
    fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})

    report = sync()

    assert report.discovered == 1
    assert not report.all_failed
    assert [error for error in report.errors if "default/harvest_collection: runs not listed" in error]
    assert [tuple(query.dag_ids) for query in queries(fake_airflow)][1:] == [
        ("harvest_collection",),
        ("index_finding_aid",),
        ("index_finding_aid",),  # its runs going on, then those that ended
        ("publish_finding_aid",),  # unknown too
    ]


def test_transport_without_filters_lists_each_dag_back_to_the_horizon(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_SYNC_HORIZON = 2
    conf = {"finding_aid_id": finding_aid.pk}
    fake_airflow.clock = lambda: timezone.now() - 3 * DAY
    fake_airflow.add_run("index_finding_aid", "before_the_horizon", conf=conf, state="success")
    fake_airflow.clock = timezone.now
    recent = fake_airflow.add_run("index_finding_aid", conf=conf, state="success")
    going_on = fake_airflow.add_run("index_finding_aid", conf=conf, state="running")

    with without_state_filters(Capabilities()):
        sync()
        sync()

    listed = queries(fake_airflow)
    each_dag = [("harvest_collection",), ("index_finding_aid",), ("publish_finding_aid",)]
    assert [tuple(query.dag_ids) for query in listed] == each_dag * 2
    assert {(query.updated_since, query.states, query.limit) for query in listed} == {(None, (), None)}
    assert set(JobRun.objects.values_list("dag_run_id", flat=True)) == {recent.run_id, going_on.run_id}


def test_transport_with_updated_since_only_lists_each_dag_since_the_last_listing(
    finding_aid: Any, fake_airflow: fake.FakeAirflow
) -> None:
    before = timezone.now()
    with without_state_filters(Capabilities(updated_since_filter=True)):
        sync()
        sync()

    listed = queries(fake_airflow)
    assert len(listed) == 6  # each of the three DAGs, twice
    first, second = listed[0].updated_since, listed[3].updated_since
    assert first is not None
    assert second is not None
    assert first <= before - 30 * DAY + timedelta(minutes=1)  # AIRFLOW_SYNC_HORIZON's default
    assert second >= before - syncing.OVERLAP


def test_environment_argument(finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any) -> None:
    settings.AIRFLOW_ENVIRONMENTS = {**settings.AIRFLOW_ENVIRONMENTS, "other": {"TRANSPORT": "fake"}}
    other = fake.get_airflow("other")
    other.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})  # no Job there

    report = sync(environment="other")

    assert report.environments == ("other",)
    assert other.call_count("list_runs") == 0
    assert fake_airflow.calls == []
    with pytest.raises(ConfigurationError, match="nowhere"):
        sync(environment="nowhere")
    with pytest.raises(CommandError, match="nowhere"):
        call_command("airflow_sync", environment="nowhere", stdout=io.StringIO())


def test_command_prints_the_report(finding_aid: Any, fake_airflow: fake.FakeAirflow) -> None:
    fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})
    out = io.StringIO()

    call_command("airflow_sync", "--environment", "default", stdout=out)

    assert out.getvalue().splitlines() == [
        "Refreshed 0 run(s), discovered 1, updated 0, resolved 0 trigger(s).",
        "  default: ok",
    ]
    fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})
    call_command("airflow_sync", "--no-discover", stdout=out)
    assert out.getvalue().splitlines()[-2:] == [
        "Refreshed 0 run(s), discovered 0, updated 0, resolved 0 trigger(s).",
        "  default: ok",
    ]
    assert JobRun.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads need PostgreSQL")
def test_simultaneous_syncs_record_each_run_once(
    fake_airflow: fake.FakeAirflow, changes: list[Change]
) -> None:
    from tests.records.test_concurrency import all_at_once

    finding_aid = FindingAid.objects.create(title="Watched")
    for _ in range(5):
        fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk}, state="success")

    results = all_at_once(4, sync)

    assert [result for result in results if not isinstance(result, syncing.SyncReport)] == []
    assert sum(result.discovered for result in results if isinstance(result, syncing.SyncReport)) == 5
    assert JobRun.objects.for_object(finding_aid).count() == 5
    assert len(changes) == 5
