from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_client.jobs import Job, register, unregister
from airflow_client.retention import KeepNewestAndLastSuccess, KeepSinceLastSuccess
from tests.unit.rest_helpers import BASE, PASSWORD


@pytest.fixture
def no_refresh_interval(settings: Any) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 0


class KeepNewestAndLastSuccessIndex(Job):
    """A Job that keeps the newest success and the newest run (the test app's Jobs keep everything)."""

    dag_id = "index_latest"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    retention = KeepNewestAndLastSuccess()


@pytest.fixture
def keep_newest_and_last_success() -> Iterator[type[Job]]:
    register(KeepNewestAndLastSuccessIndex)
    yield KeepNewestAndLastSuccessIndex
    unregister(KeepNewestAndLastSuccessIndex)


class KeepSinceLastSuccessIndex(Job):
    """A Job on Cinco's rule: the runs before a record's newest success go."""

    dag_id = "index_since_success"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    retention = KeepSinceLastSuccess()


@pytest.fixture
def keep_since_last_success() -> Iterator[type[Job]]:
    register(KeepSinceLastSuccessIndex)
    yield KeepSinceLastSuccessIndex
    unregister(KeepSinceLastSuccessIndex)


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
