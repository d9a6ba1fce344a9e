"""Records whose primary key is a UUID: triggered, followed by the helpers, found again by sync."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_client import sync, trigger
from airflow_client.jobs import Job, register, unregister
from airflow_client.mixins import current_job_run, prefetch_job_runs
from airflow_client.models import JobRun
from airflow_client.transports import fake

pytestmark = pytest.mark.django_db


class ProcessAccession(Job):
    dag_id = "process_accession"
    model = "testapp.Accession"
    conf_key = "accession_id"


@pytest.fixture
def accession_job() -> Iterator[type[Job]]:
    register(ProcessAccession)
    yield ProcessAccession
    unregister(ProcessAccession)


@pytest.fixture
def accession(db: None) -> Any:
    from tests.testapp.models import Accession

    return Accession.objects.create(label="Box 12")


def test_uuid_record_is_triggered_with_its_key_as_text(
    accession: Any, accession_job: type[Job], fake_airflow: fake.FakeAirflow
) -> None:
    job_run = trigger(accession_job, accession, conf={"priority": 1})

    assert job_run.conf == {"accession_id": str(accession.pk), "priority": 1}
    assert fake_airflow.get(("process_accession", job_run.dag_run_id)).conf["accession_id"] == str(
        accession.pk
    )
    assert job_run.records() == [accession]
    assert current_job_run(accession) == job_run
    (fetched,) = prefetch_job_runs([accession])
    assert current_job_run(fetched, "process_accession") == job_run
    # The text maps back to the record, e.g. for a run started elsewhere with the same conf.
    fake_airflow.add_run("process_accession", conf=job_run.conf, state="success")
    assert sync().discovered == 1
    success = JobRun.objects.last_success(accession)
    assert success is not None
    assert success.records() == [accession]
