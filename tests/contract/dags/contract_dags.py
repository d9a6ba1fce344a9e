"""DAGs the contract tests run against a real Airflow 3.3 and 2.11.

One file so the dag-processor has a single module to parse at start-up. The
tasks are deliberately tiny: the tests wait for these runs to finish.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

try:  # Airflow 3: the authoring API lives in the task SDK.
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow.decorators import task
    from airflow.models.dag import DAG

#: Printed by contract_success; the log test looks for it in the task log.
MARKER = "contract-marker"

COMMON: dict[str, Any] = {
    "schedule": None,
    "catchup": False,
    "start_date": datetime(2024, 1, 1, tzinfo=timezone.utc),
    "tags": ["contract"],
}


def _conf(context: dict[str, Any]) -> dict[str, Any]:
    dag_run = context.get("dag_run")
    return dict(getattr(dag_run, "conf", None) or {})


with DAG("contract_success", **COMMON):

    @task
    def greet(**context: Any) -> None:
        print(f"{MARKER} token={_conf(context).get('token', '-')}")

    @task
    def done() -> None:
        print("contract_success done")

    greet() >> done()


with DAG("contract_fail", **COMMON):

    @task
    def boom() -> None:
        raise RuntimeError("contract_fail raises on purpose")

    @task
    def after_boom() -> None:
        print("never runs: upstream failed")

    boom() >> after_boom()


with DAG("contract_slow", **COMMON):

    @task
    def nap(**context: Any) -> None:
        # Long enough for tests that need a run in the running state.
        time.sleep(float(_conf(context).get("seconds", 20)))

    nap()


with DAG("contract_flaky", **COMMON):
    # No retries: try 1 fails the run; a clear (the re-run tests) gives each cleared task try 2.

    @task
    def steady() -> None:
        print("contract_flaky steady")

    @task
    def flaky(**context: Any) -> None:
        try_number = context["ti"].try_number  # the try running now, on Airflow 3 and 2
        print(f"contract_flaky try {try_number}")
        if try_number < 2:
            raise RuntimeError("contract_flaky fails its first try on purpose")

    steady() >> flaky()


with DAG("contract_paused", is_paused_upon_creation=True, **COMMON):

    @task
    def never() -> None:
        print("contract_paused is paused; this should not run")

    never()
