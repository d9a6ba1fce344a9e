"""sync() against a real Airflow 3 (scripts/airflow.sh start 3): a run started outside this app is found."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

from airflow_client import sync
from airflow_client.jobs import Job
from airflow_client.models import JobRun
from airflow_client.transports import get_transport
from tests.contract.conftest import start_run

pytestmark = [pytest.mark.contract, pytest.mark.django_db]


def test_run_started_outside_is_discovered_and_linked(finding_aid: Any, airflow3_job: type[Job]) -> None:
    # Started like Airflow's UI or CLI would: straight at Airflow, no JobTrigger here.
    run_id = f"outside_{secrets.token_hex(6)}"
    start_run(
        get_transport("airflow3"),
        "contract_success",
        run_id,
        {"finding_aid_id": finding_aid.pk},
        note="started outside",
    )

    report = sync(environment="airflow3")

    assert report.errors == ()
    assert report.discovered >= 1  # other tests' runs of this DAG may be found too
    job_run = JobRun.objects.get(environment="airflow3", dag_id="contract_success", dag_run_id=run_id)
    assert not job_run.started_here
    assert job_run.triggered_by == "rest_api"
    assert job_run.note == "started outside"
    assert finding_aid in job_run.records()

    # Later syncs follow it from the listings (runs going on, then ended) to its end.
    deadline = time.monotonic() + 120
    while not job_run.finished and time.monotonic() < deadline:
        time.sleep(2)
        assert sync(environment="airflow3").errors == ()
        job_run.refresh_from_db()
    assert job_run.state == "success"
    assert job_run.end_date is not None
    assert JobRun.objects.last_success(finding_aid, dag_id="contract_success") == job_run
