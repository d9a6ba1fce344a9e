"""Issue 9: the paths that change runs, racing each other on PostgreSQL.

Trigger racing sync, refresh racing sync, two syncs at once, retention racing a
new run (and a run Airflow re-opened). After each race: no duplicate runs, every
state change signalled exactly once, no active run deleted, every run still
linked to its record. ROUNDS rounds each (the figures go to docs/reliability.md).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections

from airflow_client import pruning, refresh, sync, trigger
from airflow_client.jobs import Job
from airflow_client.models import JobRecord, JobRun, JobSlot, JobTrigger
from airflow_client.signals import run_state_changed
from airflow_client.syncing import SyncReport
from airflow_client.transports import fake
from tests.factories import make_run
from tests.records.conftest import KeepNewestAndLastSuccessIndex
from tests.testapp.airflow_jobs import IndexFindingAid
from tests.testapp.models import FindingAid

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="threads need PostgreSQL (SQLite's in-memory test database locks instead of waiting)",
    ),
]

ROUNDS = 5
RECORDS = 8


def together(works: list[Callable[[], Any]]) -> list[Any]:
    """Run each of ``works`` in its own thread, released together; results or exceptions."""
    barrier = threading.Barrier(len(works))

    def worker(work: Callable[[], Any]) -> Any:
        try:
            barrier.wait()
            return work()
        except BaseException as exc:  # reported to the test, not lost in the thread
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(works)) as pool:
        return list(pool.map(worker, works))


def failures(results: list[Any]) -> list[BaseException]:
    return [result for result in results if isinstance(result, BaseException)]


@pytest.fixture
def signals() -> Iterator[list[tuple[str, str | None, str]]]:
    """Every run_state_changed sent: (dag_run_id, old_state, new_state)."""
    sent: list[tuple[str, str | None, str]] = []
    lock = threading.Lock()

    def receiver(sender: Any, job_run: JobRun, old_state: str | None, new_state: str, **kwargs: Any) -> None:
        with lock:
            sent.append((job_run.dag_run_id, old_state, new_state))

    run_state_changed.connect(receiver, weak=False)
    yield sent
    run_state_changed.disconnect(receiver)


def _once_each(sent: list[tuple[str, str | None, str]]) -> None:
    duplicates = {change: n for change, n in Counter(sent).items() if n > 1}
    assert duplicates == {}


def _no_duplicate_runs() -> None:
    keys = list(JobRun.objects.values_list("environment", "dag_id", "dag_run_id"))
    assert len(keys) == len(set(keys))
    links = list(
        JobRecord.objects.filter(job_run__isnull=False).values_list("job_run", "content_type", "object_id")
    )
    assert len(links) == len(set(links))


def _reset(fake_airflow: fake.FakeAirflow, signals: list[Any]) -> None:
    JobRun.objects.all().delete()
    JobTrigger.objects.all().delete()
    JobSlot.objects.all().delete()
    fake_airflow.reset()
    signals.clear()
    from django.core.cache import cache

    cache.clear()  # sync's "listed up to" marks


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_trigger_racing_sync(fake_airflow: fake.FakeAirflow, signals: list[Any], round_: int) -> None:
    _reset(fake_airflow, signals)
    records = [FindingAid.objects.create(title=f"Raced {round_}-{i}") for i in range(RECORDS)]
    outside = FindingAid.objects.create(title="Started in Airflow's UI")
    fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": outside.pk})

    works: list[Callable[[], Any]] = [lambda obj=obj: trigger(IndexFindingAid, obj) for obj in records]
    works += [sync, sync, sync]
    results = together(works)

    assert failures(results) == []
    started = [result for result in results if isinstance(result, JobRun)]
    assert len(started) == RECORDS
    assert fake_airflow.call_count("trigger") == RECORDS
    _no_duplicate_runs()
    assert JobRun.objects.count() == RECORDS + 1 or sum(isinstance(r, SyncReport) for r in results) == 3
    for obj, job_run in zip(records, started, strict=True):
        assert job_run.records() == [obj]
        assert JobSlot.objects.get(job_run=job_run)
    assert not JobTrigger.objects.open().exists()
    _once_each(signals)
    created = [run_id for run_id, old, _new in signals if old is None]
    assert sorted(created) == sorted(set(created))
    assert {job_run.dag_run_id for job_run in started} <= set(created)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_refresh_racing_sync(
    fake_airflow: fake.FakeAirflow, signals: list[Any], settings: Any, round_: int
) -> None:
    _reset(fake_airflow, signals)
    settings.AIRFLOW_REFRESH_INTERVAL = 0  # every caller may ask Airflow: only the state change is unique
    records = [FindingAid.objects.create(title=f"Refreshed {round_}-{i}") for i in range(RECORDS)]
    runs = [trigger(IndexFindingAid, obj) for obj in records]
    signals.clear()

    for step, state in (("running", "running"), ("success", "success")):
        for job_run in runs:
            fake_airflow.set_state(job_run.dag_run_id, state)
        works: list[Callable[[], Any]] = [
            lambda pk=job_run.pk: refresh(JobRun.objects.get(pk=pk)) for job_run in runs for _twice in (1, 2)
        ]
        works += [sync, sync]
        results = together(works)
        assert failures(results) == [], step
        assert set(JobRun.objects.values_list("state", flat=True)) == {state}
        _no_duplicate_runs()
        _once_each(signals)
        changed = Counter(run_id for run_id, _old, new in signals if new == state)
        assert changed == Counter({job_run.dag_run_id: 1 for job_run in runs}), step
    assert not JobSlot.objects.exists()  # finished: every record is free again


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_syncs_at_once(fake_airflow: fake.FakeAirflow, signals: list[Any], round_: int) -> None:
    _reset(fake_airflow, signals)
    records = [FindingAid.objects.create(title=f"Discovered {round_}-{i}") for i in range(RECORDS * 2)]
    for i, obj in enumerate(records):
        state = ("queued", "running", "success", "failed")[i % 4]
        fake_airflow.add_run("index_finding_aid", f"ui_{i}", state=state, conf={"finding_aid_id": obj.pk})

    results = together([sync, sync, sync, sync])

    assert failures(results) == []
    reports = [result for result in results if isinstance(result, SyncReport)]
    assert sum(report.discovered for report in reports) == len(records)
    assert JobRun.objects.count() == len(records)
    _no_duplicate_runs()
    for i, obj in enumerate(records):
        assert [run.dag_run_id for run in JobRun.objects.for_object(obj)] == [f"ui_{i}"]
    _once_each(signals)
    assert sorted(run_id for run_id, old, _new in signals if old is None) == sorted(
        f"ui_{i}" for i in range(len(records))
    )


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_retention_racing_a_new_run(
    fake_airflow: fake.FakeAirflow, signals: list[Any], keep_newest_and_last_success: type[Job], round_: int
) -> None:
    _reset(fake_airflow, signals)
    records = [FindingAid.objects.create(title=f"Pruned {round_}-{i}") for i in range(RECORDS)]
    for obj in records:
        for age, state in ((4, "success"), (3, "failed"), (2, "success"), (1, "failed")):
            make_run(obj, dag_id=KeepNewestAndLastSuccessIndex.dag_id, state=state, age=timedelta(days=age))

    works: list[Callable[[], Any]] = [
        lambda obj=obj: trigger(KeepNewestAndLastSuccessIndex, obj) for obj in records
    ]
    works += [pruning.prune, pruning.prune, sync]
    results = together(works)

    assert failures(results) == []
    started = [result for result in results if isinstance(result, JobRun)]
    assert len(started) == len(records)
    for obj, job_run in zip(records, started, strict=True):
        kept = list(JobRun.objects.for_object(obj).for_dag(KeepNewestAndLastSuccessIndex.dag_id))
        assert job_run in kept  # the new, active run survived
        assert kept[0] == job_run
        assert sum(run.state == "success" for run in kept) == 1  # the newest success is protected
    _no_duplicate_runs()
    _once_each(signals)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_retention_racing_a_run_airflow_reopened(
    fake_airflow: fake.FakeAirflow, signals: list[Any], keep_newest_and_last_success: type[Job], round_: int
) -> None:
    """A finished run cleared in Airflow runs again: retention must not delete it meanwhile."""
    _reset(fake_airflow, signals)
    records = [FindingAid.objects.create(title=f"Cleared {round_}-{i}") for i in range(RECORDS)]
    reopened = []
    for obj in records:
        old = make_run(
            obj, dag_id=KeepNewestAndLastSuccessIndex.dag_id, state="failed", age=timedelta(days=2)
        )
        make_run(obj, dag_id=KeepNewestAndLastSuccessIndex.dag_id, state="success", age=timedelta(days=1))
        # Airflow knows the old run as running again (cleared by someone in its UI).
        fake_airflow.add_run(
            KeepNewestAndLastSuccessIndex.dag_id,
            old.dag_run_id,
            state="running",
            conf={"finding_aid_id": obj.pk},
        )
        reopened.append((obj, old.dag_run_id))

    results = together([pruning.prune, pruning.prune, sync, sync])

    assert failures(results) == []
    for obj, run_id in reopened:
        # Either retention dropped it before it was active again (sync then records it anew)
        # or it is kept: in both cases it is there, running, and still the record's run.
        job_run = JobRun.objects.filter(
            dag_id=KeepNewestAndLastSuccessIndex.dag_id, dag_run_id=run_id
        ).first()
        assert job_run is not None
        assert job_run.state == "running"
        assert job_run.records() == [obj]
    _no_duplicate_runs()
    _once_each(signals)
