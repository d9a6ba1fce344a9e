"""The task DAGs of Django's tasks on Airflow (airflow_client.dags), for tests/tasks on the real Airflows.

The site (this checkout's python, tests.settings, the checkout as working folder)
comes from the AIRFLOW_CLIENT_TASKS_* variables scripts/test.sh sets before it
starts Airflow.
"""

from __future__ import annotations

from datetime import timedelta

from airflow_client.dags import task_dag

django_tasks = task_dag()
# The "retry" queue: a task that fails its first try gets a second one a second later.
django_tasks_retry = task_dag("django_tasks_retry", retries=1, retry_delay=timedelta(seconds=1))
