"""sync() against a real Airflow 3 (scripts/airflow.sh start 3): a run started outside this app is found."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache

from airflow_client import sync
from airflow_client.jobs import Job, register, unregister
from airflow_client.models import JobRun
from airflow_client.transports import get_transport

URL = os.environ.get("DAC_AIRFLOW3_URL", "")

pytestmark = [
    pytest.mark.contract,
    pytest.mark.django_db,
    pytest.mark.skipif(
        not URL and os.environ.get("DAC_REQUIRE_SERVICES") != "1",
        reason="DAC_AIRFLOW3_URL is not set (start one with scripts/airflow.sh start 3)",
    ),
]


class ContractSuccess(Job):
    dag_id = "contract_success"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    environment = "airflow3"


@pytest.fixture
def airflow3(settings: Any) -> Iterator[type[Job]]:
    assert URL, "DAC_REQUIRE_SERVICES=1 but DAC_AIRFLOW3_URL is not set"
    settings.AIRFLOW_ENVIRONMENTS = {
        **settings.AIRFLOW_ENVIRONMENTS,
        "airflow3": {"TRANSPORT": "rest", "BASE_URL": URL, "USERNAME": "admin", "PASSWORD": "admin"},
    }
    cache.clear()
    register(ContractSuccess)
    yield ContractSuccess
    unregister(ContractSuccess)
    cache.clear()


def test_run_started_outside_is_discovered_and_linked(finding_aid: Any, airflow3: type[Job]) -> None:
    # Started like Airflow's UI or CLI would: straight at Airflow, no JobTrigger here.
    run_id = f"outside_{secrets.token_hex(6)}"
    get_transport("airflow3").trigger(
        "contract_success", run_id=run_id, conf={"finding_aid_id": finding_aid.pk}, note="started outside"
    )

    report = sync(environment="airflow3")

    assert report.errors == ()
    assert report.discovered >= 1  # other tests' runs of this DAG may be found too
    job_run = JobRun.objects.get(environment="airflow3", dag_id="contract_success", dag_run_id=run_id)
    assert not job_run.started_here
    assert job_run.triggered_by == "rest_api"
    assert job_run.note == "started outside"
    assert finding_aid in job_run.records()

    # Later syncs follow it from the "updated since" listing to its end.
    deadline = time.monotonic() + 120
    while not job_run.finished and time.monotonic() < deadline:
        time.sleep(2)
        assert sync(environment="airflow3").errors == ()
        job_run.refresh_from_db()
    assert job_run.state == "success"
    assert job_run.end_date is not None
    assert JobRun.objects.last_success(finding_aid, dag_id="contract_success") == job_run
