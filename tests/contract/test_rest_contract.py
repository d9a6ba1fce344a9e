"""The REST transport against a real Airflow 3.3 and 2.11 (see conftest.py for the set-up).

Each test reads what a user of the transport would rely on: runs are created
once, errors arrive as the documented exceptions, finished runs expose their
tasks and logs.
"""

from __future__ import annotations

import socket
import time

import pytest

from airflow_client.exceptions import AirflowUnavailable, AuthenticationFailed, Conflict, NotFound
from airflow_client.states import RunState
from airflow_client.transports.api import LISTING_CAPABILITIES
from airflow_client.transports.base import RunQuery
from tests.contract.conftest import Airflow, make_transport, new_run_id

pytestmark = pytest.mark.contract


def test_api_version_auto_detects_the_major(real_airflow: Airflow) -> None:
    transport = make_transport(real_airflow.url, API_VERSION="auto")
    try:
        assert transport.http.version() == f"v{real_airflow.major - 1}"
        # What the detected version promises: the batch listing (DAGs, states, end), updated_at on GET.
        assert transport.capabilities == LISTING_CAPABILITIES
        assert transport.get_dag("contract_success").dag_id == "contract_success"
    finally:
        transport.close()


def test_trigger_creates_the_run_with_our_id_and_conf(real_airflow: Airflow) -> None:
    triggered = real_airflow.triggered["success"]

    assert triggered.dag_id == "contract_success"
    assert triggered.run_id.startswith("contract-success-")
    assert triggered.state in (RunState.QUEUED, RunState.RUNNING, RunState.SUCCESS)
    assert dict(triggered.conf) == real_airflow.conf_of("success")
    stored = real_airflow.transport.get_run("contract_success", triggered.run_id)
    assert stored.run_id == triggered.run_id
    assert dict(stored.conf) == real_airflow.conf_of("success")


def test_running_run_and_its_live_log(real_airflow: Airflow) -> None:
    slow = real_airflow.running("slow")

    assert slow.state == RunState.RUNNING
    listed = real_airflow.transport.list_runs(RunQuery(dag_ids=["contract_slow"]))
    assert (slow.run_id, RunState.RUNNING) in {(run.run_id, run.state) for run in listed}
    # A running task's log is served by the worker's log server (ports moved per major).
    deadline = time.monotonic() + 30
    while not real_airflow.transport.task_log("contract_slow", slow.run_id, "nap", 1).lines:
        assert time.monotonic() < deadline, "no log lines for the running task"
        time.sleep(0.5)


def test_run_reaches_success(real_airflow: Airflow) -> None:
    run = real_airflow.finished("success")

    assert run.state == RunState.SUCCESS
    assert run.start_date is not None
    assert run.end_date is not None
    assert run.end_date >= run.start_date


def test_failing_dag_reaches_failed(real_airflow: Airflow) -> None:
    assert real_airflow.finished("fail").state == RunState.FAILED


def test_same_run_id_twice_creates_one_run(real_airflow: Airflow) -> None:
    first = real_airflow.triggered["success"]

    with pytest.raises(Conflict) as caught:
        real_airflow.transport.trigger("contract_success", run_id=first.run_id, conf={"token": "second"})

    assert first.run_id in str(caught.value)
    assert caught.value.status_code == 409
    kept = real_airflow.transport.get_run("contract_success", first.run_id)
    assert dict(kept.conf) == real_airflow.conf_of("success")
    listed = RunQuery(dag_ids=["contract_success"])
    assert [run.run_id for run in real_airflow.transport.list_runs(listed)].count(first.run_id) == 1


def test_unknown_dag_is_not_found(real_airflow: Airflow) -> None:
    with pytest.raises(NotFound) as caught:
        real_airflow.transport.trigger("contract_missing", run_id=new_run_id("missing"), conf={})

    assert caught.value.status_code == 404


def test_unknown_run_is_not_found(real_airflow: Airflow) -> None:
    with pytest.raises(NotFound):
        real_airflow.transport.get_run("contract_success", new_run_id("never-triggered"))


def test_paused_dag_is_reported_paused(real_airflow: Airflow) -> None:
    # What the service reads before it sends a trigger (triggering._send refuses a paused DAG).
    assert real_airflow.transport.get_dag("contract_paused").is_paused
    assert not real_airflow.transport.get_dag("contract_success").is_paused


def test_list_runs_filters_by_dag(real_airflow: Airflow) -> None:
    success, fail = real_airflow.finished("success"), real_airflow.finished("fail")

    one_dag = list(real_airflow.transport.list_runs(RunQuery(dag_ids=["contract_success"])))
    assert success.run_id in {run.run_id for run in one_dag}
    assert fail.run_id not in {run.run_id for run in one_dag}
    assert {run.dag_id for run in one_dag} == {"contract_success"}

    every_dag = {(run.run_id, run.state) for run in real_airflow.transport.list_runs(RunQuery())}
    assert {(success.run_id, RunState.SUCCESS), (fail.run_id, RunState.FAILED)} <= every_dag


def test_list_runs_is_newest_first_and_respects_limit(real_airflow: Airflow) -> None:
    real_airflow.finished("fail_again")
    runs = list(real_airflow.transport.list_runs(RunQuery(dag_ids=["contract_fail"], limit=2)))

    assert len(runs) == 2
    newer, older = (run.run_after or run.logical_date for run in runs)
    assert newer is not None
    assert older is not None
    assert newer >= older


def test_task_instances_of_finished_runs(real_airflow: Airflow) -> None:
    success, fail = real_airflow.finished("success"), real_airflow.finished("fail")

    tasks = {
        ti.task_id: (ti.state, ti.try_number)
        for ti in real_airflow.transport.task_instances("contract_success", success.run_id)
    }
    assert tasks == {"greet": (RunState.SUCCESS, 1), "done": (RunState.SUCCESS, 1)}
    tasks = {
        ti.task_id: (ti.state, ti.try_number)
        for ti in real_airflow.transport.task_instances("contract_fail", fail.run_id)
    }
    # The downstream task never starts, so it has no try yet.
    assert tasks == {"boom": (RunState.FAILED, 1), "after_boom": ("upstream_failed", 0)}


def test_task_log_holds_what_the_task_printed(real_airflow: Airflow) -> None:
    run = real_airflow.finished("success")
    marker = f"contract-marker token={real_airflow.conf_of('success')['token']}"

    chunk = real_airflow.transport.task_log("contract_success", run.run_id, "greet", 1)

    assert chunk.lines
    printed = [line for line in chunk.lines if marker in line.text]
    assert printed, [line.text for line in chunk.lines]
    assert printed[0].timestamp is not None


def test_task_log_of_a_failed_task_holds_the_error(real_airflow: Airflow) -> None:
    run = real_airflow.finished("fail")

    chunk = real_airflow.transport.task_log("contract_fail", run.run_id, "boom", 1)

    assert any("contract_fail raises on purpose" in line.text for line in chunk.lines)


def test_wrong_password_is_authentication_failed(real_airflow: Airflow) -> None:
    transport = make_transport(real_airflow.url, PASSWORD="not-the-password")
    try:
        with pytest.raises(AuthenticationFailed) as caught:
            transport.get_dag("contract_success")
    finally:
        transport.close()

    assert caught.value.status_code in (401, 403)
    assert "not-the-password" not in str(caught.value)


def _closed_port() -> int:
    # A port the system just handed out and nobody listens on any more.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("api_version", ["auto", "v2", "v1"])
def test_closed_port_is_unavailable_within_the_timeout(api_version: str) -> None:
    timeout = 3.0
    transport = make_transport(f"http://127.0.0.1:{_closed_port()}", API_VERSION=api_version, TIMEOUT=timeout)
    try:
        for call in (
            lambda: transport.get_run("contract_success", "any"),
            lambda: transport.trigger("contract_success", run_id="any", conf={}),
        ):
            started = time.monotonic()
            with pytest.raises(AirflowUnavailable):
                call()
            # Retries and their pauses included, well within one request timeout.
            assert time.monotonic() - started < timeout + 1.0
    finally:
        transport.close()
