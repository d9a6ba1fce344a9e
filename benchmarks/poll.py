"""What an open widget costs: time and SQL queries per poll, by size of the record's history.

Run on demand (not part of the suite): `.venv/bin/python benchmarks/poll.py`
(SQLite in memory), or with DAC_POSTGRES_PORT=25432 after `scripts/postgres.sh start`.
Prints one line per history size; the figures are recorded in the README.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.contrib.auth.models import Permission, User  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from airflow_client.models import JobRecord, JobRun  # noqa: E402
from airflow_client.widget import fingerprint  # noqa: E402
from tests.testapp.models import FindingAid  # noqa: E402

POLLS = 200


def history(record: FindingAid, count: int, start: int) -> None:
    runs = JobRun.objects.bulk_create(
        JobRun(
            environment="default", dag_id="index_finding_aid", dag_run_id=f"old_{start + i}", state="success"
        )
        for i in range(count)
    )
    content_type = ContentType.objects.get_for_model(FindingAid)
    JobRecord.objects.bulk_create(
        JobRecord(job_run=run, content_type=content_type, object_id=str(record.pk), dag_id=run.dag_id)
        for run in runs
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE airflow_client_jobrun, airflow_client_jobrecord")


def measure(client: Client, record: FindingAid) -> tuple[float, int]:
    """Median milliseconds and queries of an unchanged poll of a running run."""
    run = JobRun.objects.create(
        environment="default",
        dag_id="index_finding_aid",
        dag_run_id=f"running_{time.monotonic_ns()}",
        state="running",
        refreshed_at=timezone.now() + timezone.timedelta(hours=1),  # never due: measure our side only
    )
    JobRecord.objects.create(
        job_run=run, content_type=ContentType.objects.get_for_model(FindingAid), object_id=str(record.pk)
    )
    url = reverse(
        "airflow_client:status",
        kwargs={"model": "testapp.findingaid", "dag_id": "index_finding_aid", "object_id": str(record.pk)},
    )
    url += f"?uid=1&tag={fingerprint(run)}&run={run.pk}"
    timings = []
    for _ in range(POLLS):
        started = time.perf_counter()
        response = client.get(url, headers={"HX-Request": "true"})
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 204, response.status_code
    with CaptureQueriesContext(connection) as queries:
        client.get(url, headers={"HX-Request": "true"})
    JobRun.objects.filter(pk=run.pk).update(state="success")
    return statistics.median(timings), len(queries)


def main() -> None:
    setup_test_environment()
    connection.creation.create_test_db(verbosity=0)
    user = User.objects.create(username="bench")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_jobrun", "trigger_job"]))
    client = Client()
    client.force_login(user)
    record = FindingAid.objects.create(title="Benchmark")
    print(f"database: {connection.vendor}; {POLLS} unchanged polls per size")
    done = 0
    for size in (10, 1_000, 10_000, 100_000):
        history(record, size - done, done)
        done = size
        ms, queries = measure(client, record)
        print(f"history {size:>7,} runs of this record: {ms:6.2f} ms per poll (median), {queries} queries")


if __name__ == "__main__":
    main()
