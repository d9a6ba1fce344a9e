"""Operators' controls (re-run, mark) against a real Airflow 3.3 and 2.11.

The runs come from SESSION_RUNS (contract_flaky fails its first try and
succeeds after, so a re-run shows in the try numbers) and from Airflow.running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from airflow_client.exceptions import AirflowUnavailable, NotFound
from airflow_client.states import ACTIVE_STATES, FINISHED_STATES, RunState
from airflow_client.transports.rest import RestTransport
from tests.contract.conftest import RUN_SECONDS, Airflow, new_run_id, wait_for_state

pytestmark = pytest.mark.contract

T = TypeVar("T")


def _locks_ridden_out(call: Callable[[], T], *, took_effect: Callable[[], bool] = lambda: False) -> T:
    """``call()``, asked again (twice at most) after an answer 500, unless ``took_effect()``.

    Airflow on SQLite answers 500 when its database stays locked for 5 s (tasks
    write to it at the same time), often before it has done anything. The
    transport never repeats a write on its own; here the test knows when it may.
    """
    for attempt in range(3):
        try:
            return call()
        except AirflowUnavailable:
            if attempt == 2 or took_effect():
                raise
        time.sleep(2)
    raise AssertionError("unreachable")


def _tasks(transport: RestTransport, dag_id: str, run_id: str) -> dict[str, tuple[str | None, int]]:
    return {ti.task_id: (ti.state, ti.try_number) for ti in transport.task_instances(dag_id, run_id)}


@pytest.mark.parametrize(
    ("label", "only_failed", "steady_try"),
    [("flaky", False, 2), ("flaky_failed_only", True, 1)],
    ids=["every-task", "only-failed"],
)
def test_clearing_a_failed_run_runs_it_again(
    real_airflow: Airflow, label: str, only_failed: bool, steady_try: int
) -> None:
    transport = real_airflow.transport
    failed = real_airflow.finished(label)
    assert failed.state == RunState.FAILED
    assert _tasks(transport, "contract_flaky", failed.run_id) == {
        "steady": (RunState.SUCCESS, 1),
        "flaky": (RunState.FAILED, 1),
    }

    cleared = _locks_ridden_out(
        lambda: transport.clear_run("contract_flaky", failed.run_id, only_failed=only_failed),
        took_effect=lambda: transport.get_run("contract_flaky", failed.run_id).state != RunState.FAILED,
    )

    assert (cleared.run_id, cleared.end_date) == (failed.run_id, None)
    # Queued by the clear; read back after clearTaskInstances (Airflow 2, only failed)
    # the scheduler may have started it already.
    assert cleared.state in ACTIVE_STATES
    again = wait_for_state(transport, "contract_flaky", failed.run_id, FINISHED_STATES, RUN_SECONDS)
    assert again.state == RunState.SUCCESS
    # Only the cleared tasks ran again, each in its next try.
    assert _tasks(transport, "contract_flaky", failed.run_id) == {
        "steady": (RunState.SUCCESS, steady_try),
        "flaky": (RunState.SUCCESS, 2),
    }


def test_marking_a_running_run_failed_ends_it(real_airflow: Airflow) -> None:
    transport = real_airflow.transport
    slow = real_airflow.running("slow", note="set by the contract tests")

    marked = _locks_ridden_out(lambda: transport.set_run_state("contract_slow", slow.run_id, RunState.FAILED))

    assert (marked.run_id, marked.state) == (slow.run_id, RunState.FAILED)
    assert marked.end_date is not None
    assert marked.note == "set by the contract tests"  # the PATCH named the state alone
    # Airflow 2 on SQLite (no row locks): a scheduler loop that read the run just before
    # the PATCH can write "running" back once; its next loop sees the failed task and
    # ends the run again. What stays is what an operator sees: the run ended failed.
    ended = wait_for_state(transport, "contract_slow", slow.run_id, FINISHED_STATES, RUN_SECONDS)
    assert ended.state == RunState.FAILED
    # Its task is over: failed if it had started, skipped if it was still waiting for a slot.
    # A task that was starting as the run was marked may still say "running" a moment.
    deadline = time.monotonic() + 60
    while (nap := _tasks(transport, "contract_slow", slow.run_id)["nap"][0]) in ("queued", "running"):
        assert time.monotonic() < deadline, f"the task is still {nap} a minute after its run ended"
        time.sleep(1)
    assert nap in (RunState.FAILED, "skipped")


def test_marking_a_failed_run_success_then_queuing_it(real_airflow: Airflow) -> None:
    transport = real_airflow.transport
    failed = real_airflow.finished("fail_to_mark")
    assert failed.state == RunState.FAILED

    marked = _locks_ridden_out(
        lambda: transport.set_run_state("contract_fail", failed.run_id, RunState.SUCCESS)
    )

    assert marked.state == RunState.SUCCESS
    assert transport.get_run("contract_fail", failed.run_id).state == RunState.SUCCESS
    queued = _locks_ridden_out(
        lambda: transport.set_run_state("contract_fail", failed.run_id, RunState.QUEUED)
    )
    assert (queued.state, queued.start_date, queued.end_date) == (RunState.QUEUED, None, None)


CONTROLS: dict[str, Callable[[RestTransport, str, str], object]] = {
    "clear": lambda t, dag_id, run_id: t.clear_run(dag_id, run_id),
    "clear-only-failed": lambda t, dag_id, run_id: t.clear_run(dag_id, run_id, only_failed=True),
    "mark-failed": lambda t, dag_id, run_id: t.set_run_state(dag_id, run_id, RunState.FAILED),
}


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize("dag_id", ["contract_fail", "contract_missing"], ids=["no-run", "no-dag"])
def test_controls_on_what_does_not_exist_are_not_found(
    real_airflow: Airflow, dag_id: str, control: str
) -> None:
    transport, run_id = real_airflow.transport, new_run_id("never-triggered")

    with pytest.raises(NotFound) as caught:
        _locks_ridden_out(lambda: CONTROLS[control](transport, dag_id, run_id))

    assert caught.value.status_code == 404
