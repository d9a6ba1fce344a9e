"""Many callers at once: one DAG run per record, one Airflow read per run per interval.

Threads need a database where concurrent connections see each other's commits
and wait on locks: PostgreSQL. SQLite's shared in-memory test database answers
concurrent writers with "database table is locked" instead of waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from django.db import connection, connections

from airflow_client import refresh, trigger
from airflow_client.exceptions import AlreadyRunning
from airflow_client.models import JobRun, JobSlot, JobTrigger
from airflow_client.transports import fake
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

T = TypeVar("T")


def all_at_once(count: int, work: Callable[[], T]) -> list[T | BaseException]:
    """Run ``work`` in ``count`` threads released together; results or exceptions."""
    barrier = threading.Barrier(count)

    def worker() -> T | BaseException:
        try:
            barrier.wait()
            return work()
        except BaseException as exc:  # reported to the test, not lost in the thread
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(worker) for _ in range(count)]
        return [future.result() for future in futures]


def test_twenty_simultaneous_triggers_start_one_run(fake_airflow: fake.FakeAirflow) -> None:
    finding_aid = FindingAid.objects.create(title="Contested")

    results = all_at_once(20, lambda: trigger(IndexFindingAid, finding_aid))

    started = [result for result in results if isinstance(result, JobRun)]
    refused = [result for result in results if isinstance(result, AlreadyRunning)]
    unexpected = [result for result in results if not isinstance(result, (JobRun, AlreadyRunning))]
    assert unexpected == []
    assert fake_airflow.call_count("trigger") == 1
    assert len(fake_airflow.runs("index_finding_aid")) == 1
    (job_run,) = JobRun.objects.all()
    assert started == [job_run]
    assert len(refused) == 19
    assert {exc.job_run for exc in refused} == {job_run}
    assert not JobTrigger.objects.exists()
    assert JobSlot.objects.get().job_run == job_run


def test_fifty_simultaneous_refreshes_make_one_airflow_call(
    fake_airflow: fake.FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 30
    finding_aid = FindingAid.objects.create(title="Popular")
    job_run = trigger(IndexFindingAid, finding_aid)
    JobRun.objects.filter(pk=job_run.pk).update(refreshed_at=None)  # due for a refresh
    fake_airflow.advance(job_run.dag_run_id)

    results = all_at_once(50, lambda: refresh(JobRun.objects.get(pk=job_run.pk)))

    assert [result for result in results if not isinstance(result, JobRun)] == []
    assert fake_airflow.call_count("get_run") == 1
    assert JobRun.objects.get(pk=job_run.pk).state == "running"
