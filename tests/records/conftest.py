from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_client.jobs import Job, register, unregister
from airflow_client.retention import KeepLatest


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
