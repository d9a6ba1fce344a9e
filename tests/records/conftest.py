from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_client.jobs import Job, register, unregister
from airflow_client.retention import KeepLatest
from tests.unit.rest_helpers import BASE, PASSWORD


@pytest.fixture
def no_refresh_interval(settings: Any) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 0


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


class RestIndex(Job):
    """A Job on the REST transport, for tests that mock Airflow's HTTP answers (pytest-httpx)."""

    dag_id = "etl"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    environment = "rest"


@pytest.fixture
def rest_environment(settings: Any) -> None:
    """An environment "rest": Airflow 3's API at BASE, reads not retried."""
    settings.AIRFLOW_ENVIRONMENTS = {
        **settings.AIRFLOW_ENVIRONMENTS,
        "rest": {
            "TRANSPORT": "rest",
            "BASE_URL": BASE,
            "API_VERSION": "v2",
            "USERNAME": "admin",
            "PASSWORD": PASSWORD,
            "RETRIES": 0,
        },
    }


@pytest.fixture
def rest_job(rest_environment: None) -> Iterator[type[Job]]:
    register(RestIndex)
    yield RestIndex
    unregister(RestIndex)
