"""The Collection Registry's harvest (Rikolti, in miniature), on Airflow 3 and 2.

Several tasks, one of them mapped (one task instance per page) and one that
reports its progress in its log. conf: ``collection_id`` and the harvest
settings (set by the Django Job), ``pages`` (default 3), ``sleep`` (seconds per
page, default 0.5) and ``fail`` (true: the mapping step raises on purpose).

Every run pushes its events to the demo site (``airflow_client.callbacks``; ``make
demo`` gives Airflow the connection ``django_airflow_client``): the collection's page
shows its progress as it goes and what each task said, wherever the run was started.
"""

from __future__ import annotations

import time
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

COMMON: dict[str, Any] = {
    "schedule": None,
    "catchup": False,
    "start_date": datetime(2024, 1, 1, tzinfo=timezone.utc),
    "tags": ["django-airflow-client demo", "collections"],
}


def _conf(context: dict[str, Any]) -> dict[str, Any]:
    dag_run = context.get("dag_run")
    return dict(getattr(dag_run, "conf", None) or {})


with DAG(
    "harvest_collection",
    description="Harvest, map and index one collection",
    on_success_callback=on_dag_success,
    on_failure_callback=on_dag_failure,
    default_args={
        "on_execute_callback": on_task_start,
        "on_success_callback": on_task_success,
        "on_failure_callback": on_task_failure,
        "on_retry_callback": on_task_retry,
    },
    **COMMON,
):

    @task
    def fetch_metadata(**context: Any) -> list[int]:
        """Reports progress page by page."""
        conf = _conf(context)
        pages = max(1, int(conf.get("pages", 3)))
        print(
            f"Harvesting collection {conf.get('collection_id')} "
            f"({conf.get('harvest_type', 'oai')} at {conf.get('harvest_url') or 'the registry'})"
        )
        for page in range(1, pages + 1):
            time.sleep(float(conf.get("sleep", 0.5)))
            print(f"fetched page {page} of {pages} ({page * 100 // pages}%)")
        send_event(context, "pages.fetched", {"pages": pages})  # a line of its own on the timeline
        return list(range(1, pages + 1))

    @task
    def map_page(page: int, **context: Any) -> int:
        """Mapped: one task instance per fetched page."""
        conf = _conf(context)
        if conf.get("fail"):
            raise RuntimeError(f"mapping page {page} fails on purpose (conf fail=true)")
        records = 25 + page
        print(f"mapped page {page}: {records} records")
        return records

    @task
    def index_records(counts: list[int], **context: Any) -> None:
        total = sum(counts)
        print(f"indexed {total} records of collection {_conf(context).get('collection_id')}")

    index_records(map_page.expand(page=fetch_metadata()))
