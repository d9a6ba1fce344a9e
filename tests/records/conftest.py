from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import models
from django.utils import timezone

from airflow_client.jobs import Job, register, unregister
from airflow_client.models import JobRecord, JobRun
from airflow_client.retention import KeepLatest
from airflow_client.transports import fake

#: A real Airflow 3 for the contract tests (scripts/airflow.sh start 3); empty: they are skipped.
AIRFLOW3_URL = os.environ.get("DAC_AIRFLOW3_URL", "")

#: Marks for a module of contract tests against AIRFLOW3_URL.
AIRFLOW3_CONTRACT = [
    pytest.mark.contract,
    pytest.mark.django_db,
    pytest.mark.skipif(
        not AIRFLOW3_URL and os.environ.get("DAC_REQUIRE_SERVICES") != "1",
        reason="DAC_AIRFLOW3_URL is not set (start one with scripts/airflow.sh start 3)",
    ),
]

_ids = itertools.count(1)
DAY = timedelta(days=1)


def make_run(
    obj: models.Model,
    *,
    dag_id: str = "index_finding_aid",
    state: str = "success",
    age: timedelta = timedelta(0),
    environment: str = "default",
    **fields: Any,
) -> JobRun:
    """A run linked to ``obj``, recorded ``age`` ago (ended then too, when finished)."""
    when: datetime = timezone.now() - age
    if state in ("success", "failed"):
        fields.setdefault("end_date", when)
    run = JobRun.objects.create(
        environment=environment,
        dag_id=dag_id,
        dag_run_id=f"manual_{next(_ids)}",
        state=state,
        **fields,
    )
    JobRun.objects.filter(pk=run.pk).update(created_at=when)
    run.refresh_from_db()
    JobRecord.objects.create(
        job_run=run,
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        dag_id=dag_id,
    )
    return run


@pytest.fixture
def finding_aid(db: None) -> Any:
    from tests.testapp.models import FindingAid

    return FindingAid.objects.create(title="Papers of Ada")


@pytest.fixture
def collection(db: None) -> Any:
    from tests.testapp.models import Collection

    return Collection.objects.create(slug="coll-1", name="Postcards")


@pytest.fixture
def airflow() -> fake.FakeAirflow:
    return fake.get_airflow("default")


@pytest.fixture
def no_refresh_interval(settings: Any) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 0


class ContractSuccess(Job):
    dag_id = "contract_success"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    environment = "airflow3"


@pytest.fixture
def airflow3(settings: Any) -> Iterator[type[Job]]:
    """ContractSuccess registered against the real Airflow 3; runs are re-read at every refresh()."""
    assert AIRFLOW3_URL, "DAC_REQUIRE_SERVICES=1 but DAC_AIRFLOW3_URL is not set"
    settings.AIRFLOW_ENVIRONMENTS = {
        **settings.AIRFLOW_ENVIRONMENTS,
        "airflow3": {"TRANSPORT": "rest", "BASE_URL": AIRFLOW3_URL, "USERNAME": "admin", "PASSWORD": "admin"},
    }
    settings.AIRFLOW_REFRESH_INTERVAL = 0
    cache.clear()  # sync's "listed up to" marks
    register(ContractSuccess)
    yield ContractSuccess
    unregister(ContractSuccess)
    cache.clear()


class KeepLatestIndex(Job):
    """A Job that keeps the newest success and the newest run (the test app's Jobs keep everything)."""

    dag_id = "index_latest"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    retention = KeepLatest()


@pytest.fixture
def keep_latest() -> Iterator[type[Job]]:
    register(KeepLatestIndex)
    yield KeepLatestIndex
    unregister(KeepLatestIndex)
