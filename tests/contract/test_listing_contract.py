"""The batch run listing (what sync reads) against a real Airflow 3.3 and 2.11.

``POST /dags/~/dagRuns/list`` with the filters sync sends: several DAG ids,
states, an end-date bound, followed page by page.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from airflow_client.states import RunState
from airflow_client.transports.base import RunQuery
from airflow_client.transports.rest import RestTransport
from tests.contract.conftest import Airflow, new_run_id, start_run

pytestmark = pytest.mark.contract

#: Runs of the paused DAG stay queued: a listing of queued runs is stable while it pages.
QUEUED_RUNS = 5


@pytest.fixture
def counted(real_airflow: Airflow) -> Iterator[tuple[RestTransport, list[dict[str, Any]]]]:
    """The real Airflow's transport with pages of 2 runs, and the bodies of the listing requests it sends."""
    transport = real_airflow.transport
    bodies: list[dict[str, Any]] = []
    call = transport._call

    def counting(method: str, path: str, query: Any = None, body: Any = None, **kwargs: Any) -> Any:
        if path == "/dags/~/dagRuns/list":
            bodies.append(dict(body))
        return call(method, path, query, body, **kwargs)

    transport.page_size = 2  # type: ignore[misc]
    transport._call = counting  # type: ignore[method-assign]
    try:
        yield transport, bodies
    finally:
        del transport._call
        del transport.page_size


def test_listing_filters_dags_and_states_page_by_page(
    real_airflow: Airflow, counted: tuple[RestTransport, list[dict[str, Any]]]
) -> None:
    transport, bodies = counted
    queued = {
        start_run(transport, "contract_paused", new_run_id("queued"), {}).run_id for _ in range(QUEUED_RUNS)
    }
    success = real_airflow.finished("success")
    query = RunQuery(dag_ids=["contract_paused", "contract_success"], states=(RunState.QUEUED,), limit=None)

    listed = list(transport.list_runs(query))

    assert queued <= {run.run_id for run in listed}
    assert {run.state for run in listed} == {RunState.QUEUED}
    assert {run.dag_id for run in listed} <= {"contract_paused", "contract_success"}
    assert success.run_id not in {run.run_id for run in listed}
    assert len(listed) == len({run.run_id for run in listed})  # no run twice across pages
    # Every page was a batch request with the filters; pages of 2 runs.
    assert len(bodies) >= QUEUED_RUNS // 2 + 1
    assert [body["page_offset"] for body in bodies] == [2 * page for page in range(len(bodies))]
    assert {body["page_limit"] for body in bodies} == {2}
    assert all(body["dag_ids"] == ["contract_paused", "contract_success"] for body in bodies)
    assert all(body["states"] == ["queued"] for body in bodies)


def test_listing_of_runs_ended_since(real_airflow: Airflow) -> None:
    success, fail = real_airflow.finished("success"), real_airflow.finished("fail")
    assert success.end_date is not None
    assert fail.end_date is not None
    earliest = min(success.end_date, fail.end_date)
    dags = ["contract_success", "contract_fail", "contract_paused"]

    def ended(since: Any) -> set[tuple[str, str]]:
        query = RunQuery(dag_ids=dags, states=("failed", "success"), ended_since=since, limit=None)
        return {(run.run_id, run.state) for run in real_airflow.transport.list_runs(query)}

    assert {(success.run_id, "success"), (fail.run_id, "failed")} <= ended(earliest - timedelta(seconds=1))
    assert (success.run_id, "success") not in ended(success.end_date + timedelta(days=1))
    # A run going on has no end: it is never in a listing with an end bound.
    assert all(state in ("failed", "success") for _run_id, state in ended(earliest - timedelta(days=1)))
