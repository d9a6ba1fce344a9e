"""Figures of the Airflow backend on the real Airflow 3 (printed, not asserted: they depend on the machine).

* what one enqueue() costs: milliseconds, SQL queries, requests to Airflow;
* how long a task that does nothing takes from enqueue() to SUCCESSFUL, seen by a
  caller polling get_result() (AIRFLOW_REFRESH_INTERVAL = 0, a look every 0.5 s).

Run with ``-s`` to see them.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from airflow_client.tasks_compat import TaskResultStatus
from airflow_client.transports import get_transport
from airflow_client.transports.rest import RestTransport
from tests.tasks.conftest import _real
from tests.testapp.tasks import noop

pytestmark = [pytest.mark.contract, pytest.mark.django_db]


def test_enqueue_cost_and_time_to_success_on_airflow_3(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 0
    backend = _real("airflow3", 3, settings)
    task = noop.using(backend=backend.alias)
    transport = get_transport(backend.alias)
    assert isinstance(transport, RestTransport)
    requests: list[str] = []
    send = transport.http.request

    def counted(method: str, path: str, **kwargs: Any) -> Any:
        requests.append(f"{method} {path}")
        return send(method, path, **kwargs)

    monkeypatch.setattr(transport.http, "request", counted)
    task.enqueue()  # the token and the API version, once per process

    waits = []  # one at a time, Airflow otherwise idle
    for _round in range(3):
        started = time.perf_counter()
        result = task.enqueue()
        while result.status != TaskResultStatus("SUCCESSFUL"):
            assert time.perf_counter() - started < 180, f"{result.id} is {result.status}"
            time.sleep(0.5)
            result.refresh()
        waits.append(time.perf_counter() - started)

    costs = []
    for _round in range(5):
        requests.clear()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            task.enqueue()
            costs.append((time.perf_counter() - started) * 1000)
        calls, sql = list(requests), len(queries)

    print(
        f"\nenqueue on Airflow 3: median {statistics.median(costs):.0f} ms (of {', '.join(f'{c:.0f}' for c in costs)}), "
        f"{sql} SQL queries, {len(calls)} Airflow calls ({'; '.join(calls)})"
        f"\nenqueue -> SUCCESSFUL, a no-op task: {', '.join(f'{w:.1f} s' for w in waits)} "
        f"(median {statistics.median(waits):.1f} s)"
    )
