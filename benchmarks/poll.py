"""What an open widget costs: time and SQL queries per poll, by size of the record's history.

Run on its own: `.venv/bin/python benchmarks/poll.py` (SQLite in memory), or with
DAC_POSTGRES_PORT=25432 after `scripts/postgres.sh start`; it prints one line per
history size. `make bench` reports the same figures as rows (benchmarks/bench_endpoints.py).
"""

from __future__ import annotations

import datetime
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.test import Client

    from airflow_client.models import JobRun

POLLS = 200
SIZES = (10, 1_000, 10_000, 100_000)
#: What an htmx poll sends; the status view answers it 204 while nothing changed.
HTMX = {"HX-Request": "true"}


def history(record: Any, count: int, start: int) -> None:
    """``count`` more finished runs of ``record`` (numbered from ``start``)."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    from airflow_client.models import JobRecord, JobRun

    runs = JobRun.objects.bulk_create(
        JobRun(
            environment="default", dag_id="index_finding_aid", dag_run_id=f"old_{start + i}", state="success"
        )
        for i in range(count)
    )
    content_type = ContentType.objects.get_for_model(record)
    JobRecord.objects.bulk_create(
        JobRecord(job_run=run, content_type=content_type, object_id=str(record.pk), dag_id=run.dag_id)
        for run in runs
    )
    JobRecord.objects.filter(job_run__in=runs).refill()  # the copies save() would have made
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE airflow_client_jobrun, airflow_client_jobrecord")


def prepare() -> tuple[Client, Any]:
    """A test client signed in as a user who may see runs, and a record (a FindingAid)."""
    from django.contrib.auth.models import Permission, User
    from django.test import Client

    from tests.testapp.models import FindingAid

    user = User.objects.create(username="bench")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_jobrun", "trigger_job"]))
    client = Client()
    client.force_login(user)
    return client, FindingAid.objects.create(title="Benchmark")


def running_poll(record: Any) -> tuple[JobRun, str]:
    """A new running run of ``record`` and the URL of its unchanged poll (answered 204)."""
    from django.contrib.contenttypes.models import ContentType
    from django.urls import reverse
    from django.utils import timezone

    from airflow_client.models import JobRecord, JobRun
    from airflow_client.widget import fingerprint

    run = JobRun.objects.create(
        environment="default",
        dag_id="index_finding_aid",
        dag_run_id=f"running_{time.monotonic_ns()}",
        state="running",
        refreshed_at=timezone.now() + datetime.timedelta(hours=1),  # never due: measure our side only
    )
    JobRecord.objects.create(
        job_run=run, content_type=ContentType.objects.get_for_model(record), object_id=str(record.pk)
    )
    url = reverse(
        "airflow_client:status",
        kwargs={"model": "testapp.findingaid", "dag_id": "index_finding_aid", "object_id": str(record.pk)},
    )
    return run, f"{url}?uid=1&tag={fingerprint(run)}&run={run.pk}"


def measure(client: Client, record: Any, polls: int = POLLS) -> tuple[float, int]:
    """Median milliseconds and queries of an unchanged poll of a running run."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from airflow_client.models import JobRun

    run, url = running_poll(record)
    timings = []
    for _ in range(polls):
        started = time.perf_counter()
        response = client.get(url, headers=HTMX)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 204:
            raise RuntimeError(f"the poll answered {response.status_code}, not 204")
    with CaptureQueriesContext(connection) as queries:
        client.get(url, headers=HTMX)
    JobRun.objects.filter(pk=run.pk).update(state="success")
    return statistics.median(timings), len(queries)


def figures(
    client: Client, record: Any, sizes: tuple[int, ...] = SIZES, polls: int = POLLS
) -> Iterator[tuple[int, float, int]]:
    """(history size, median ms, queries) per size, the history growing from one to the next."""
    done = 0
    for size in sizes:
        history(record, size - done, done)
        done = size
        ms, queries = measure(client, record, polls)
        yield size, ms, queries


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0)
    client, record = prepare()
    print(f"database: {connection.vendor}; {POLLS} unchanged polls per size")
    for size, ms, queries in figures(client, record):
        print(f"history {size:>7,} runs of this record: {ms:6.2f} ms per poll (median), {queries} queries")


if __name__ == "__main__":
    main()
