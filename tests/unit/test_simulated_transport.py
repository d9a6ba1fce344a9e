"""The simulated Airflow: runs move from queued to running to success (or failed) by the clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.test import override_settings

from airflow_client import transports
from airflow_client.checks import check_settings
from airflow_client.transports import fake
from airflow_client.transports.base import RunQuery
from airflow_client.transports.simulated import SimulatedTransport

START = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
SIMULATED = {"default": {"TRANSPORT": "simulated", "OPTIONS": {"SIMULATE_SECONDS": 8}}}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = START + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    fake.get_airflow().clock = clock
    return clock


@pytest.fixture
def transport() -> SimulatedTransport:
    with override_settings(AIRFLOW_ENVIRONMENTS=SIMULATED):
        selected = transports.get_transport()
        assert isinstance(selected, SimulatedTransport)
        yield selected


def test_a_run_is_queued_then_running_then_successful(transport: SimulatedTransport, clock: Clock):
    run = transport.trigger("index", run_id="dj_1", conf={})
    assert run.state == "queued"
    clock.at(1.9)
    assert transport.get_run("index", "dj_1").state == "queued"
    clock.at(2)
    running = transport.get_run("index", "dj_1")
    assert (running.state, running.start_date, running.end_date) == ("running", clock.now, None)
    clock.at(8)
    done = transport.get_run("index", "dj_1")
    assert (done.state, done.start_date, done.end_date) == (
        "success",
        START + timedelta(seconds=2),
        clock.now,
    )
    clock.at(100)
    assert transport.get_run("index", "dj_1") == done  # finished runs stay as they are


def test_conf_fail_ends_failed_with_a_start_date_even_if_never_seen_running(
    transport: SimulatedTransport, clock: Clock
):
    transport.trigger("index", run_id="dj_2", conf={"fail": True})
    clock.at(30)
    run = transport.get_run("index", "dj_2")
    assert (run.state, run.start_date, run.end_date) == ("failed", clock.now, clock.now)


def test_listing_task_instances_and_logs_see_the_clock_too(transport: SimulatedTransport, clock: Clock):
    transport.trigger("harvest", run_id="dj_3", conf={})
    clock.at(3)
    assert [run.state for run in transport.list_runs(RunQuery(dag_ids=("harvest",)))] == ["running"]
    clock.at(9)
    (task,) = transport.task_instances("harvest", "dj_3")
    assert (task.state, task.try_number) == ("success", 1)
    assert transport.task_log("harvest", "dj_3", task.task_id, 1).lines


def test_seconds_default_to_eight_and_the_alias_passes_the_checks(clock: Clock):
    with override_settings(AIRFLOW_ENVIRONMENTS={"default": {"TRANSPORT": "simulated"}}):
        transport = transports.get_transport()
        assert isinstance(transport, SimulatedTransport)
        assert transport.seconds == 8
        assert check_settings() == []


def test_a_cleared_run_runs_again_by_the_clock_in_its_next_try(transport: SimulatedTransport, clock: Clock):
    transport.trigger("index", run_id="dj_4", conf={"fail": True})
    clock.at(10)
    assert transport.get_run("index", "dj_4").state == "failed"

    clock.at(20)
    cleared = transport.clear_run("index", "dj_4", only_failed=True)
    assert (cleared.state, cleared.queued_at, cleared.end_date) == ("queued", clock.now, None)
    clock.at(22)
    assert transport.get_run("index", "dj_4").state == "running"
    (task,) = transport.task_instances("index", "dj_4")
    assert (task.state, task.try_number) == ("running", 2)
    clock.at(28)
    # conf fail=true fails every try, like the demo's DAGs.
    assert transport.get_run("index", "dj_4").state == "failed"


def test_a_control_acts_on_the_run_as_the_clock_has_moved_it(transport: SimulatedTransport, clock: Clock):
    transport.trigger("index", run_id="dj_5", conf={})
    clock.at(9)  # success by now, though nobody has looked
    assert transport.clear_run("index", "dj_5").state == "queued"


def test_a_run_marked_failed_stays_failed(transport: SimulatedTransport, clock: Clock):
    transport.trigger("index", run_id="dj_6", conf={})
    clock.at(3)
    assert transport.set_run_state("index", "dj_6", "failed").state == "failed"
    clock.at(30)
    assert transport.get_run("index", "dj_6").state == "failed"


def test_a_run_queued_again_runs_again(transport: SimulatedTransport, clock: Clock):
    transport.trigger("index", run_id="dj_7", conf={})
    clock.at(10)
    assert transport.set_run_state("index", "dj_7", "queued").state == "queued"
    clock.at(18)
    run = transport.get_run("index", "dj_7")
    assert (run.state, run.end_date) == ("success", clock.now)


def test_a_run_started_later_waits_in_the_queue_until_then(transport: SimulatedTransport, clock: Clock):
    transport.trigger("index", run_id="dj_1", conf={}, run_after=START + timedelta(seconds=60))
    clock.at(59)
    assert transport.get_run("index", "dj_1").state == "queued"
    clock.at(62)
    assert transport.get_run("index", "dj_1").state == "running"
