"""Builders for the tests' records: runs as if read from Airflow, users with permissions."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import models
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


def make_user(username: str, *perms: str) -> User:
    """A user holding ``perms`` ("app_label.codename")."""
    user = User.objects.create(username=username)  # no password: force_login needs none, and hashing is slow
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user
