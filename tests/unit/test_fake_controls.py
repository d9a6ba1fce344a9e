"""The fake Airflow's operators' controls: marking a run, re-running it, as Airflow 3 does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_client import transports
from airflow_client.exceptions import AirflowTimeout, AirflowUnavailable, BadRequest, NotFound
from airflow_client.transports.base import RunQuery
from airflow_client.transports.fake import FakeAirflow, FakeTransport

START = datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: int = 1) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def clock(fake_airflow: FakeAirflow) -> Clock:
    ticking = Clock()
    fake_airflow.clock = ticking
    return ticking


@pytest.fixture
def transport() -> FakeTransport:
    selected = transports.get_transport()
    assert isinstance(selected, FakeTransport)
    return selected


def tasks(transport: FakeTransport, run_id: str, dag_id: str = "etl") -> dict[str, tuple[str | None, int]]:
    return {ti.task_id: (ti.state, ti.try_number) for ti in transport.task_instances(dag_id, run_id)}


def failed_run(fake_airflow: FakeAirflow, clock: Clock, run_id: str = "dj_1") -> None:
    fake_airflow.add_run("etl", run_id, state="running")
    clock.tick()
    fake_airflow.finish(("etl", run_id), state="failed")
    clock.tick()


# --- set_run_state -------------------------------------------------------------------------------


def test_marking_a_running_run_failed_ends_it(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    fake_airflow.add_run("etl", "dj_1", state="running")
    clock.tick()

    run = transport.set_run_state("etl", "dj_1", "failed")

    assert (run.state, run.start_date, run.end_date) == ("failed", START, clock.now)
    assert fake_airflow.get("dj_1") == run
    assert tasks(transport, "dj_1") == {"run": ("failed", 1)}
    assert ("set_run_state", ("etl", "dj_1", "failed")) in fake_airflow.calls


@pytest.mark.parametrize("state", ["success", "failed"])
def test_marking_running_tasks_end_in_that_state_and_the_others_not_started_are_skipped(
    transport: FakeTransport, fake_airflow: FakeAirflow, state: str
) -> None:
    fake_airflow.add_run("etl", "dj_1", state="running")
    fake_airflow.set_task("dj_1", "extract", state="success")
    fake_airflow.set_task("dj_1", "check", state="failed")
    fake_airflow.set_task("dj_1", "load", state="running")
    fake_airflow.set_task("dj_1", "report", state=None, try_number=0)
    fake_airflow.set_task("dj_1", "notify", state="scheduled", try_number=0)

    transport.set_run_state("etl", "dj_1", state)

    # As Airflow 3: finished tasks keep how they ended.
    assert tasks(transport, "dj_1") == {
        "extract": ("success", 1),
        "check": ("failed", 1),
        "load": (state, 1),
        "report": ("skipped", 0),
        "notify": ("skipped", 0),
    }


def test_marking_a_failed_run_success(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    failed_run(fake_airflow, clock)

    run = transport.set_run_state("etl", "dj_1", "success")

    assert run.state == "success"
    assert transport.get_run("etl", "dj_1").state == "success"


def test_queuing_a_finished_run_again_runs_its_task_again(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    failed_run(fake_airflow, clock)

    run = transport.set_run_state("etl", "dj_1", "queued")

    assert (run.state, run.queued_at, run.start_date, run.end_date) == ("queued", clock.now, None, None)
    fake_airflow.advance("dj_1")
    assert tasks(transport, "dj_1") == {"run": ("running", 2)}


@pytest.mark.parametrize("state", ["running", "skipped", "Success", ""])
def test_set_run_state_refuses_other_states_without_asking(
    transport: FakeTransport, fake_airflow: FakeAirflow, state: str
) -> None:
    fake_airflow.add_run("etl", "dj_1", state="running")

    with pytest.raises(BadRequest, match="success, failed, queued"):
        transport.set_run_state("etl", "dj_1", state)
    assert fake_airflow.call_count("set_run_state") == 0
    assert fake_airflow.get("dj_1").state == "running"


# --- clear_run -----------------------------------------------------------------------------------


def test_clearing_a_failed_run_queues_it_for_the_tasks_next_try(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    failed_run(fake_airflow, clock)

    run = transport.clear_run("etl", "dj_1")

    assert (run.state, run.queued_at, run.start_date, run.end_date) == ("queued", clock.now, None, None)
    assert ("clear_run", ("etl", "dj_1", False)) in fake_airflow.calls
    # As in Airflow: no state, and the try number moves on when the next try starts.
    assert tasks(transport, "dj_1") == {"run": (None, 1)}
    first_try = transport.task_log("etl", "dj_1", "run", 1)
    assert first_try.lines[-1].text == "Task finished: failed"
    assert first_try.continuation_token is None

    fake_airflow.advance("dj_1")
    assert tasks(transport, "dj_1") == {"run": ("running", 2)}
    fake_airflow.advance("dj_1")
    assert tasks(transport, "dj_1") == {"run": ("success", 2)}
    assert transport.task_log("etl", "dj_1", "run", 2).lines[-1].text == "Task finished: success"
    assert transport.task_log("etl", "dj_1", "run", 1).lines[-1].text == "Task finished: failed"


def test_clearing_a_successful_run_runs_it_again(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    fake_airflow.add_run("etl", "dj_1", state="success")

    assert transport.clear_run("etl", "dj_1").state == "queued"
    assert transport.task_log("etl", "dj_1", "run", 1).lines[-1].text == "Task finished: success"


def test_clearing_only_failed_tasks_leaves_the_others(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    failed_run(fake_airflow, clock)
    fake_airflow.set_task("dj_1", "extract", state="success")
    fake_airflow.set_task("dj_1", "load", state="failed", try_number=2)
    fake_airflow.set_task("dj_1", "report", state="upstream_failed", try_number=0)

    run = transport.clear_run("etl", "dj_1", only_failed=True)

    assert run.state == "queued"
    assert tasks(transport, "dj_1") == {"extract": ("success", 1), "load": (None, 2), "report": (None, 0)}
    assert ("clear_run", ("etl", "dj_1", True)) in fake_airflow.calls
    assert transport.task_log("etl", "dj_1", "load", 2).lines[-1].text == "Task finished: failed"


def test_clearing_every_task_of_a_run(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    failed_run(fake_airflow, clock)
    fake_airflow.set_task("dj_1", "extract", state="success")
    fake_airflow.set_task("dj_1", "load", state="failed")

    transport.clear_run("etl", "dj_1")

    assert tasks(transport, "dj_1") == {"extract": (None, 1), "load": (None, 1)}


def test_clearing_only_failed_tasks_of_a_successful_run_changes_nothing(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    fake_airflow.add_run("etl", "dj_1", state="success")
    before = fake_airflow.get("dj_1")
    clock.tick()

    assert transport.clear_run("etl", "dj_1", only_failed=True) == before
    assert list(transport.list_runs(RunQuery(updated_since=clock.now))) == []
    assert tasks(transport, "dj_1") == {"run": ("success", 1)}


def test_clearing_a_running_run_restarts_its_tasks_and_it_keeps_running(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    fake_airflow.add_run("etl", "dj_1", state="running")
    fake_airflow.set_task("dj_1", "extract", state="success")
    fake_airflow.set_task("dj_1", "load", state="running")

    run = transport.clear_run("etl", "dj_1")

    assert (run.state, run.start_date) == ("running", START)
    assert tasks(transport, "dj_1") == {"extract": (None, 1), "load": ("restarting", 1)}


def test_clearing_the_default_task_of_a_running_run_moves_it_to_its_next_try(
    transport: FakeTransport, fake_airflow: FakeAirflow
) -> None:
    fake_airflow.add_run("etl", "dj_1", state="running")

    assert transport.clear_run("etl", "dj_1").state == "running"
    assert tasks(transport, "dj_1") == {"run": ("running", 2)}


def test_clearing_a_queued_run_changes_nothing(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    queued = fake_airflow.add_run("etl", "dj_1")

    assert transport.clear_run("etl", "dj_1") == queued
    assert tasks(transport, "dj_1") == {"run": (None, 0)}


def test_a_cleared_run_is_listed_as_updated(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    failed_run(fake_airflow, clock)
    since = clock.now

    transport.clear_run("etl", "dj_1")

    assert [run.run_id for run in transport.list_runs(RunQuery(updated_since=since))] == ["dj_1"]


# --- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("only_failed", [False, True])
def test_controls_on_an_unknown_run_are_not_found(transport: FakeTransport, only_failed: bool) -> None:
    with pytest.raises(NotFound):
        transport.clear_run("etl", "dj_missing", only_failed=only_failed)
    with pytest.raises(NotFound):
        transport.set_run_state("etl", "dj_missing", "failed")


def test_fail_next_fails_a_control_before_it_acts(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    failed_run(fake_airflow, clock)
    fake_airflow.fail_next()
    fake_airflow.fail_next()

    with pytest.raises(AirflowUnavailable):
        transport.clear_run("etl", "dj_1")
    with pytest.raises(AirflowUnavailable):
        transport.set_run_state("etl", "dj_1", "success")

    assert fake_airflow.get("dj_1").state == "failed"
    assert fake_airflow.call_count("clear_run") == fake_airflow.call_count("set_run_state") == 1


@pytest.mark.parametrize(
    ("method", "call", "state"),
    [
        ("clear_run", lambda t: t.clear_run("etl", "dj_1"), "queued"),
        ("set_run_state", lambda t: t.set_run_state("etl", "dj_1", "success"), "success"),
    ],
)
def test_a_lost_answer_leaves_the_control_done(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock, method: str, call: object, state: str
) -> None:
    failed_run(fake_airflow, clock)
    fake_airflow.lose_next_answer(method)

    with pytest.raises(AirflowTimeout):
        call(transport)  # type: ignore[operator]

    assert fake_airflow.get("dj_1").state == state
