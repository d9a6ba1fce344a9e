"""Builders for the tests' records: runs as if read from Airflow, long histories, users with permissions."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.utils import timezone

from airflow_client.models import JobRecord, JobRun

DAY = timedelta(days=1)

_ids = itertools.count(1)


def make_run(
    obj: models.Model,
    *,
    dag_id: str = "index_finding_aid",
    state: str = "success",
    age: timedelta = timedelta(0),
    environment: str = "default",
    **fields: Any,
) -> JobRun:
    """A run linked to ``obj``, recorded ``age`` ago and read from Airflow a moment ago.

    Its dates follow its state: queued 130 s before it was recorded, started 70 s
    before, and, when finished, ended when it was recorded (a 70 s run). ``fields``
    override any of them (``refreshed_at=None``: due for a refresh).
    """
    when: datetime = timezone.now() - age
    if state in ("queued", "running", "success", "failed"):
        fields.setdefault("queued_at", when - timedelta(seconds=130))
    if state in ("running", "success", "failed"):
        fields.setdefault("start_date", when - timedelta(seconds=70))
    if state in ("success", "failed"):
        fields.setdefault("end_date", when)
    fields.setdefault("refreshed_at", timezone.now())
    fields.setdefault("run_type", "manual")
    fields.setdefault("dag_run_id", f"manual__{next(_ids)}")
    run = JobRun.objects.create(
        environment=environment,
        dag_id=dag_id,
        state=state,
        **fields,
    )
    if age:
        JobRun.objects.filter(pk=run.pk).update(created_at=when)
        run.refresh_from_db()
    JobRecord.objects.create(
        job_run=run,
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        dag_id=dag_id,
    )
    return run


def bulk_history(
    record: Any, count: int, *, failed_every: int = 10, dag_id: str = "index_finding_aid"
) -> None:
    """``count`` older finished runs of ``record`` (one in ``failed_every`` failed), written in bulk
    as a data load would, then their links' copies filled by JobRecordQuerySet.refill()."""
    start = JobRun.objects.count()
    old = timezone.now() - timedelta(days=400)
    runs = JobRun.objects.bulk_create(
        JobRun(
            environment="default",
            dag_id=dag_id,
            dag_run_id=f"bulk_{start + i}",
            state="failed" if i % failed_every == 0 else "success",
            start_date=old,
            end_date=old + timedelta(seconds=30),
        )
        for i in range(count)
    )
    JobRun.objects.filter(pk__in=[run.pk for run in runs]).update(created_at=old)
    content_type = ContentType.objects.get_for_model(record)
    JobRecord.objects.bulk_create(
        JobRecord(job_run=run, content_type=content_type, object_id=str(record.pk), dag_id=dag_id)
        for run in runs
    )
    JobRecord.objects.filter(job_run__in=runs).refill()
    JobRun.objects.filter(pk__in=[run.pk for run in runs]).update_record_keys()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum does after such a load
            cursor.execute("ANALYZE airflow_client_jobrun, airflow_client_jobrecord")


def make_user(username: str, *perms: str) -> User:
    """A user holding ``perms`` ("app_label.codename")."""
    user = User.objects.create(username=username)  # no password: force_login needs none, and hashing is slow
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user
