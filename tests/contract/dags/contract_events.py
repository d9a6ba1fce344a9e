"""The contract DAG that pushes its events to Django (airflow_client.callbacks), on Airflow 3 and 2.

``fail: true`` in conf makes its last task fail. Its own file: were the callbacks
not importable, only this DAG would fail to load.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow_client.callbacks import (
    on_dag_failure,
    on_dag_success,
    on_task_failure,
    on_task_retry,
    on_task_start,
    on_task_success,
    send_event,
)

try:  # Airflow 3: the authoring API lives in the task SDK.
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow.decorators import task
    from airflow.models.dag import DAG

with DAG(
    "contract_events",
    schedule=None,
    catchup=False,
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    tags=["contract"],
    on_success_callback=on_dag_success,
    on_failure_callback=on_dag_failure,
    default_args={
        "on_execute_callback": on_task_start,
        "on_success_callback": on_task_success,
        "on_failure_callback": on_task_failure,
        "on_retry_callback": on_task_retry,
    },
):

    @task
    def extract(**context: Any) -> None:
        send_event(context, "pages.fetched", {"pages": 3})

    @task
    def load(**context: Any) -> None:
        if (getattr(context.get("dag_run"), "conf", None) or {}).get("fail"):
            raise RuntimeError("load fails on purpose (conf fail=true)")

    extract() >> load()
