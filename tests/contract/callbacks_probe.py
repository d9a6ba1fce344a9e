"""Run by a real Airflow's python for tests/contract/test_callbacks_airflow.py: ``python callbacks_probe.py 3|2``.

Builds the contexts that Airflow itself builds for callbacks (from Airflow's own
task instance, DAG run and DAG objects, no scheduler needed), calls each callback
with them so the events reach the test's receiver (configured by
AIRFLOW_CONN_DJANGO_AIRFLOW_CLIENT, JSON form), then reads the connection again
through Airflow's API in the URI form given as PROBE_URI_CONNECTION. Prints one JSON
object. Airflow 2 needs AIRFLOW_HOME to hold a migrated database (its task
context reads the previous runs).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from datetime import datetime, timezone
from typing import Any

import airflow_client.callbacks as callbacks

DAG_ID = "probe_harvest"
RUN_ID = "manual__2025-03-01T09:00:00+00:00"
CONF = {"finding_aid_id": 7}
QUEUED = datetime(2025, 3, 1, 9, 0, 0, tzinfo=timezone.utc)
STARTED = datetime(2025, 3, 1, 9, 0, 2, tzinfo=timezone.utc)
COMMON: dict[str, Any] = {"schedule": None, "start_date": datetime(2024, 1, 1, tzinfo=timezone.utc)}


def airflow3() -> dict[str, dict[str, Any]]:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG
    from airflow.sdk.api.datamodels._generated import DagRun, TaskInstanceState, TIRunContext
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    with DAG(DAG_ID, **COMMON) as dag:
        fetch = EmptyOperator(task_id="fetch")
        fetch >> EmptyOperator(task_id="index")
    dag_run = DagRun(
        dag_id=DAG_ID,
        run_id=RUN_ID,
        logical_date=None,
        data_interval_start=None,
        data_interval_end=None,
        run_after=QUEUED,
        start_date=STARTED,
        end_date=None,
        run_type="manual",
        state="running",
        conf=CONF,
        consumed_asset_events=[],
        partition_key=None,
    )

    def task_context(try_number: int, state: str) -> dict[str, Any]:
        # As the task runner builds it (and the dag processor for a DAG callback with a last task).
        ti = RuntimeTaskInstance.model_construct(
            state=TaskInstanceState(state),  # set by the task runner before it calls the callbacks
            id=uuid.uuid4(),
            task_id="fetch",
            dag_id=DAG_ID,
            run_id=RUN_ID,
            try_number=try_number,
            dag_version_id=uuid.uuid4(),
            map_index=-1,
            task=fetch,
            start_date=STARTED,
            max_tries=1,
            _ti_context_from_server=TIRunContext(dag_run=dag_run, max_tries=1),
        )
        return dict(ti.get_template_context())

    return {
        "task": task_context(1, "running"),
        "success": task_context(1, "success"),
        "retry": {**task_context(1, "up_for_retry"), "exception": RuntimeError("first try fails")},
        "failure": {**task_context(2, "failed"), "exception": ValueError("broken on purpose")},
        "dag": {**task_context(2, "success"), "reason": "success"},
        # The dag processor's context when it knows no last task of the run.
        "dag_minimal": {"dag": dag, "run_id": RUN_ID, "reason": "task_failure"},
    }


def airflow2() -> dict[str, dict[str, Any]]:
    from airflow.models.dag import DAG
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.operators.empty import EmptyOperator

    with DAG(DAG_ID, **COMMON) as dag:
        fetch = EmptyOperator(task_id="fetch")
        fetch >> EmptyOperator(task_id="index")
    dag_run = DagRun(
        dag_id=DAG_ID,
        run_id=RUN_ID,
        execution_date=QUEUED,
        queued_at=QUEUED,
        start_date=STARTED,
        run_type="manual",
        conf=CONF,
        state="running",
    )

    def task_context(try_number: int, state: str) -> Any:
        ti = TaskInstance(task=fetch, run_id=RUN_ID, map_index=-1, state=state)
        ti.dag_run = dag_run
        ti.try_number = try_number
        ti.start_date = STARTED
        # A real airflow.utils.context.Context, kept as is (not copied into a dict).
        context = ti.get_template_context()
        assert context["dag"] is dag
        return context

    def with_(context: Any, **values: Any) -> Any:
        for key, value in values.items():
            context[key] = value
        return context

    return {
        "task": task_context(1, "running"),
        "success": task_context(1, "success"),
        "retry": with_(task_context(1, "up_for_retry"), exception=RuntimeError("first try fails")),
        "failure": with_(task_context(2, "failed"), exception=ValueError("broken on purpose")),
        # DAG.fetch_callback: the context of the run's last task instance, plus a reason.
        "dag": with_(task_context(2, "success"), reason="success"),
    }


def main() -> None:
    contexts = airflow3() if sys.argv[1] == "3" else airflow2()
    callbacks.on_task_start(contexts["task"])
    callbacks.on_task_retry(contexts["retry"])
    callbacks.on_task_failure(contexts["failure"])
    callbacks.on_task_success(contexts["success"])
    callbacks.on_dag_success(contexts["dag"])
    if "dag_minimal" in contexts:
        callbacks.on_dag_failure(contexts["dag_minimal"])
    delivered = callbacks.send_event(contexts["task"], "pages.fetched", {"count": 500})

    found = callbacks._airflow_connection()
    os.environ[callbacks.CONNECTION_ENV] = os.environ["PROBE_URI_CONNECTION"]
    from_uri = callbacks._airflow_connection()
    print(
        json.dumps(
            {
                "delivered": delivered,
                "json_form": found and callbacks._endpoint(found),
                "uri_form": from_uri and callbacks._endpoint(from_uri),
                "uri_extra": from_uri and dict(from_uri.extra),
            }
        )
    )


if __name__ == "__main__":
    main()
