"""trigger -> JobRun -> success against a real Airflow 3 (scripts/airflow.sh start 3)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from airflow_client import refresh, trigger
from airflow_client.jobs import Job
from airflow_client.models import JobRun, JobTrigger

pytestmark = [pytest.mark.contract, pytest.mark.django_db]


def test_trigger_to_success_on_airflow3(finding_aid: Any, airflow3_job: type[Job]) -> None:
    job_run = trigger(airflow3_job, finding_aid, conf={"token": "records"}, note="contract test")

    assert job_run.state in ("queued", "running")
    assert job_run.environment == "airflow3"
    assert job_run.conf == {"finding_aid_id": finding_aid.pk, "token": "records"}
    assert job_run.triggered_by == "rest_api"
    assert job_run.logical_date is None  # Airflow 3 runs triggered without one
    assert job_run.run_after is not None
    assert not JobTrigger.objects.exists()

    deadline = time.monotonic() + 120
    while not job_run.finished and time.monotonic() < deadline:
        time.sleep(1)
        job_run = refresh(job_run)
    assert job_run.state == "success", job_run.refresh_error
    assert job_run.start_date is not None
    assert job_run.end_date is not None
    assert JobRun.objects.last_success(finding_aid, dag_id="contract_success") == job_run
