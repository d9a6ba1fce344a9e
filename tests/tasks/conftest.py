"""The task backends the behaviour tests run against, each with its way to let a task run.

* ``airflow_fake``: AirflowBackend on the fake transport; the fake Airflow runs the
  queued task runs in this process (``FakeAirflow.run_tasks``), as the task DAG would.
* ``immediate``: Django's ImmediateBackend (the task ran when it was enqueued).
* ``airflow3`` / ``airflow2`` (contract): AirflowBackend on the real Airflows that
  scripts/test.sh starts (DAC_AIRFLOW3_URL / DAC_AIRFLOW2_URL) with the task DAGs of
  tests/contract/dags/contract_tasks.py; the results are polled until they finish.

Without Django's task framework (Django 5.2 without the django-tasks backport) the
tests here are not collected.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass
from typing import Any

import pytest

if importlib.util.find_spec("django.tasks") is None and importlib.util.find_spec("django_tasks") is None:
    collect_ignore_glob = ["test_*.py"]

BACKEND_PATH = "airflow_client.tasks.AirflowBackend"
TASK_DAGS = ("django_tasks", "django_tasks_retry")
#: A task run on a busy 2-core machine: seconds when idle, far more under load.
FINISH_SECONDS = 180.0
DAGS_VISIBLE_SECONDS = 90.0
_dags_seen: set[str] = set()


@dataclass
class Backend:
    alias: str
    kind: str  # "fake" | "immediate" | "real"
    #: extra tries a task on the "retry" queue gets.
    retry_queue_retries: int

    @property
    def follows_results(self) -> bool:
        return self.kind != "immediate"

    def finish(self, result: Any, seconds: float = FINISH_SECONDS) -> Any:
        """The result once its task has run (``result`` is refreshed in place where it can be)."""
        if self.kind == "immediate":
            return result
        if self.kind == "fake":
            from airflow_client.transports import fake

            fake.get_airflow().run_tasks(retries={"django_tasks_retry": self.retry_queue_retries})
            result.refresh()
            return result
        deadline = time.monotonic() + seconds
        while not result.is_finished:
            if time.monotonic() > deadline:
                pytest.fail(f"Task {result.id} is still {result.status} after {seconds:g} s.")
            time.sleep(0.5)
            result.refresh()
        return result


def _real(alias: str, major: int, settings: Any) -> Backend:
    variable = f"DAC_AIRFLOW{major}_URL"
    url = os.environ.get(variable, "")
    if not url:
        reason = f"{variable} is not set (scripts/test.sh starts Airflow {major} and sets it)."
        if os.environ.get("DAC_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    settings.AIRFLOW_ENVIRONMENTS = {
        **settings.AIRFLOW_ENVIRONMENTS,
        alias: {
            "TRANSPORT": "rest",
            "BASE_URL": url,
            "USERNAME": "admin",
            "PASSWORD": "admin",
            "TIMEOUT": 30,
        },
    }
    settings.TASKS = {
        **settings.TASKS,
        alias: {
            "BACKEND": BACKEND_PATH,
            "QUEUES": settings.TASK_QUEUES,
            "OPTIONS": {"ENVIRONMENT": alias, "QUEUES": {"retry": "django_tasks_retry"}},
        },
    }
    _wait_for_task_dags(alias)
    return Backend(alias=alias, kind="real", retry_queue_retries=1)


def _wait_for_task_dags(alias: str) -> None:
    from airflow_client.exceptions import AirflowUnavailable, NotFound
    from airflow_client.transports import get_transport

    transport = get_transport(alias)
    deadline = time.monotonic() + DAGS_VISIBLE_SECONDS
    for dag_id in TASK_DAGS:
        key = f"{transport.options['BASE_URL']} {dag_id}"
        while key not in _dags_seen:
            try:
                transport.get_dag(dag_id)
                _dags_seen.add(key)
            except (NotFound, AirflowUnavailable):
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"The task DAG {dag_id} is not visible in {alias} after {DAGS_VISIBLE_SECONDS:g} s."
                    )
                time.sleep(0.5)


@pytest.fixture(
    params=[
        "airflow_fake",
        "immediate",
        pytest.param("airflow3", marks=pytest.mark.contract),
        pytest.param("airflow2", marks=pytest.mark.contract),
    ]
)
def backend(request: pytest.FixtureRequest, settings: Any, db: None) -> Backend:
    """Each backend in turn; results are read from Airflow at every look (no refresh interval)."""
    settings.AIRFLOW_REFRESH_INTERVAL = 0
    if request.param == "airflow_fake":
        return Backend(alias="default", kind="fake", retry_queue_retries=1)
    if request.param == "immediate":
        return Backend(alias="immediate", kind="immediate", retry_queue_retries=0)
    major = 3 if request.param == "airflow3" else 2
    return _real(request.param, major, settings)
