from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test import Client
from django.utils import timezone

from airflow_client.models import JobRecord, JobRun
from airflow_client.transports.fake import FakeAirflow, get_airflow, reset_all
from tests.testapp.models import Collection, FindingAid

_ids = itertools.count(1)


def make_run(
    obj: models.Model, *, dag_id: str = "index_finding_aid", state: str = "success", **fields: Any
) -> JobRun:
    """A run linked to ``obj``, as if read from Airflow a moment ago."""
    now = timezone.now()
    if state in ("queued", "running", "success", "failed"):
        fields.setdefault("queued_at", now - timedelta(minutes=3))
    if state in ("running", "success", "failed"):
        fields.setdefault("start_date", now - timedelta(minutes=2))
    if state in ("success", "failed"):
        fields.setdefault("end_date", now - timedelta(seconds=50))
    fields.setdefault("refreshed_at", now)
    fields.setdefault("run_type", "manual")
    fields.setdefault("environment", "default")
    run = JobRun.objects.create(
        dag_id=dag_id,
        dag_run_id=f"manual__{next(_ids)}",
        state=state,
        **fields,
    )
    JobRecord.objects.create(
        job_run=run, content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk), dag_id=dag_id
    )
    return run


def make_user(username: str, *perms: str) -> User:
    user = User.objects.create(username=username)  # no password: force_login needs none, and hashing is slow
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


@pytest.fixture
def finding_aid(db: None) -> FindingAid:
    return FindingAid.objects.create(title="Papers of Ada Lovelace")


@pytest.fixture
def collection(db: None) -> Collection:
    return Collection.objects.create(slug="postcards/1900s", name="Postcards")


@pytest.fixture
def operator(db: None) -> User:
    """May see runs and start jobs."""
    return make_user("operator", "airflow_client.view_jobrun", "airflow_client.trigger_job")


@pytest.fixture
def viewer(db: None) -> User:
    """May see runs, not start jobs."""
    return make_user("viewer", "airflow_client.view_jobrun")


@pytest.fixture
def client_for(client: Client) -> Any:
    def login(user: User) -> Client:
        client.force_login(user)
        return client

    return login


@pytest.fixture
def airflow() -> Iterator[FakeAirflow]:
    """The fake Airflow behind the "default" environment, reset afterwards."""
    yield get_airflow()
    reset_all()


@pytest.fixture(autouse=True)
def _fresh_fake_airflow() -> Iterator[None]:
    yield
    reset_all()
