"""The in-memory fake Airflow: what users' tests can drive and assert against."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.test import override_settings

from airflow_client import transports
from airflow_client.exceptions import (
    AirflowTimeout,
    AirflowUnavailable,
    AuthenticationFailed,
    BadRequest,
    Conflict,
    NotFound,
)
from airflow_client.transports import fake
from airflow_client.transports.base import Capabilities, RunQuery
from airflow_client.transports.fake import FakeAirflow, FakeTransport

UI = "https://airflow.example.org"  # tests/settings.py


@pytest.fixture
def transport() -> FakeTransport:
    selected = transports.get_transport()
    assert isinstance(selected, FakeTransport)
    return selected


class Clock:
    """A settable clock for FakeAirflow.clock."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: int = 1) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def clock(fake_airflow: FakeAirflow) -> Clock:
    ticking = Clock()
    fake_airflow.clock = ticking
    return ticking


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) in ``count`` threads started together; results or raised exceptions."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# --- triggering ------------------------------------------------------------------------------


def test_trigger_creates_a_queued_run(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    run = transport.trigger("harvest", run_id="dj_1", conf={"collection_id": 3}, note="by ana")
    assert (run.dag_id, run.run_id, run.state) == ("harvest", "dj_1", "queued")
    assert (run.triggered_by, run.run_type, run.note) == ("rest_api", "manual", "by ana")
    assert run.conf == {"collection_id": 3}
    assert run.queued_at == run.run_after == clock.now
    assert run.start_date is None
    assert transport.get_run("harvest", "dj_1") == run
    assert fake_airflow.calls == [("trigger", ("harvest", "dj_1")), ("get_run", ("harvest", "dj_1"))]


def test_conf_is_stored_as_json_copy(transport: FakeTransport) -> None:
    conf: dict[str, Any] = {"ids": [1, 2]}
    transport.trigger("harvest", run_id="dj_1", conf=conf)
    conf["ids"].append(3)
    assert transport.get_run("harvest", "dj_1").conf == {"ids": [1, 2]}


def test_conf_that_is_not_json_is_bad_request(transport: FakeTransport) -> None:
    with pytest.raises(BadRequest, match="not JSON"):
        transport.trigger("harvest", run_id="dj_1", conf={"when": datetime.now(timezone.utc)})


@pytest.mark.parametrize("run_id", ["has space", "a/b", "x" * 251, ""])
def test_run_id_outside_airflows_pattern_is_bad_request(transport: FakeTransport, run_id: str) -> None:
    with pytest.raises(BadRequest) as info:
        transport.trigger("harvest", run_id=run_id, conf={})
    assert info.value.status_code == 400


def test_duplicate_run_id_is_conflict(transport: FakeTransport) -> None:
    transport.trigger("harvest", run_id="dj_1", conf={})
    with pytest.raises(Conflict) as info:
        transport.trigger("harvest", run_id="dj_1", conf={})
    assert info.value.status_code == 409
    transport.trigger("other_dag", run_id="dj_1", conf={})  # run ids are per DAG


def test_paused_dag_accepts_a_run_like_airflow(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    # The service asks get_dag first (triggering._send); the trigger itself does not check.
    fake_airflow.add_dag("harvest", paused=True)
    assert transport.get_dag("harvest").is_paused
    run = transport.trigger("harvest", run_id="dj_1", conf={})
    assert run.state == "queued"
    fake_airflow.add_dag("harvest", paused=False)
    assert not transport.get_dag("harvest").is_paused


def test_any_dag_is_known_unless_strict(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    assert transport.get_dag("whatever").dag_id == "whatever"
    fake_airflow.reset()
    fake_airflow.strict = True
    fake_airflow.add_dag("harvest")
    assert transport.get_dag("harvest").is_active
    with pytest.raises(NotFound, match="unknown"):
        transport.get_dag("unknown")
    with pytest.raises(NotFound):
        transport.trigger("unknown", run_id="dj_1", conf={})
    with pytest.raises(NotFound):
        transport.list_runs(RunQuery(dag_ids=["unknown"]))


# --- driving runs ----------------------------------------------------------------------------


def test_advance_runs_queued_running_success(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    transport.trigger("harvest", run_id="dj_1", conf={})
    clock.tick()
    running = fake_airflow.advance("dj_1")
    assert running.state == "running"
    assert running.start_date == clock.now
    assert running.end_date is None
    started = clock.now
    clock.tick(5)
    done = fake_airflow.advance(("harvest", "dj_1"))
    assert done.state == "success"
    assert done.finished
    assert (done.start_date, done.end_date) == (started, clock.now)
    assert transport.get_run("harvest", "dj_1") == done
    with pytest.raises(ValueError, match="finished"):
        fake_airflow.advance("dj_1")


def test_finish_failed_sets_both_dates(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    transport.trigger("harvest", run_id="dj_1", conf={})
    run = fake_airflow.finish("dj_1", state="failed")
    assert run.state == "failed"
    assert run.start_date == run.end_date == clock.now
    with pytest.raises(ValueError, match="success or failed"):
        fake_airflow.finish("dj_1", state="running")


def test_set_state_validates_and_queued_clears_dates(
    transport: FakeTransport, fake_airflow: FakeAirflow
) -> None:
    transport.trigger("harvest", run_id="dj_1", conf={})
    fake_airflow.finish("dj_1")
    with pytest.raises(ValueError, match="not a DAG run state"):
        fake_airflow.set_state("dj_1", "done")
    requeued = fake_airflow.set_state("dj_1", "queued")
    assert (requeued.start_date, requeued.end_date) == (None, None)


def test_run_refs_by_id_must_be_unique(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    transport.trigger("a", run_id="dj_1", conf={})
    transport.trigger("b", run_id="dj_1", conf={})
    with pytest.raises(ValueError, match="several DAGs"):
        fake_airflow.advance("dj_1")
    assert fake_airflow.advance(("b", "dj_1")).state == "running"
    assert fake_airflow.get(("a", "dj_1")).state == "queued"
    with pytest.raises(NotFound):
        fake_airflow.get("nope")
    with pytest.raises(NotFound):
        fake_airflow.get(("a", "nope"))


def test_add_run_simulates_a_run_from_airflows_ui(
    fake_airflow: FakeAirflow, transport: FakeTransport
) -> None:
    run = fake_airflow.add_run("harvest", conf={"collection_id": 9}, state="running")
    assert run.triggered_by == "ui"
    assert run.run_id.startswith("manual__")
    assert run.state == "running"
    assert run.start_date is not None
    assert transport.get_run("harvest", run.run_id) == run
    with pytest.raises(Conflict):
        fake_airflow.add_run("harvest", run.run_id)


def test_get_run_unknown_is_not_found(transport: FakeTransport) -> None:
    with pytest.raises(NotFound) as info:
        transport.get_run("harvest", "nope")
    assert info.value.status_code == 404


# --- failures and call records ---------------------------------------------------------------


def test_fail_next_fails_one_call(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    fake_airflow.fail_next()
    with pytest.raises(AirflowUnavailable):
        transport.trigger("harvest", run_id="dj_1", conf={})
    assert fake_airflow.runs() == []
    assert transport.trigger("harvest", run_id="dj_1", conf={}).run_id == "dj_1"
    assert fake_airflow.call_count("trigger") == 2


def test_fail_next_queues_given_errors(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    fake_airflow.fail_next(AuthenticationFailed("token expired", status_code=401))
    fake_airflow.fail_next()
    with pytest.raises(AuthenticationFailed, match="token expired"):
        transport.get_dag("harvest")
    with pytest.raises(AirflowUnavailable):
        transport.get_dag("harvest")
    assert transport.get_dag("harvest").dag_id == "harvest"


def test_lose_next_answer_does_the_work_then_times_out(
    transport: FakeTransport, fake_airflow: FakeAirflow
) -> None:
    # The POST reached Airflow and the run exists; only the answer never came back.
    fake_airflow.lose_next_answer()
    with pytest.raises(AirflowTimeout, match="lose_next_answer"):
        transport.trigger("harvest", run_id="dj_1", conf={"collection_id": 3})
    assert [run.run_id for run in fake_airflow.runs("harvest")] == ["dj_1"]
    # Sending it again is a conflict, as with a real Airflow; reading it works.
    with pytest.raises(Conflict):
        transport.trigger("harvest", run_id="dj_1", conf={"collection_id": 3})
    assert transport.get_run("harvest", "dj_1").conf == {"collection_id": 3}
    assert fake_airflow.call_count("trigger") == 2


def test_lose_next_answer_waits_for_its_method(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    fake_airflow.lose_next_answer(exc=AirflowUnavailable("connection reset"))
    assert transport.get_dag("harvest").dag_id == "harvest"  # not a trigger: answered
    fake_airflow.fail_next()
    with pytest.raises(AirflowUnavailable, match="fail_next"):  # fail_next first: nothing done
        transport.trigger("harvest", run_id="dj_1", conf={})
    assert fake_airflow.runs() == []
    with pytest.raises(AirflowUnavailable, match="connection reset"):
        transport.trigger("harvest", run_id="dj_1", conf={})
    assert len(fake_airflow.runs()) == 1
    # A call that fails on its own keeps its own error; the lost answer is used up.
    fake_airflow.lose_next_answer("get_run")
    with pytest.raises(NotFound):
        transport.get_run("harvest", "nope")
    assert transport.get_run("harvest", "dj_1").run_id == "dj_1"


def test_down_fails_every_call_until_back(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    transport.trigger("harvest", run_id="dj_1", conf={})
    fake_airflow.down = True
    for call in (
        lambda: transport.get_run("harvest", "dj_1"),
        lambda: transport.list_runs(RunQuery()),
        lambda: transport.task_instances("harvest", "dj_1"),
        lambda: transport.task_log("harvest", "dj_1", "run", 1),
        lambda: transport.get_dag("harvest"),
    ):
        with pytest.raises(AirflowUnavailable, match="down"):
            call()
    fake_airflow.down = False
    assert transport.get_dag("harvest").dag_id == "harvest"
    assert fake_airflow.call_count("get_run") == 1


# --- listing ---------------------------------------------------------------------------------


def test_list_runs_filters_newest_first(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    transport.trigger("harvest", run_id="h1", conf={"collection_id": 1})
    clock.tick()
    transport.trigger("index", run_id="i1", conf={"finding_aid_id": 1})
    clock.tick()
    transport.trigger("harvest", run_id="h2", conf={"collection_id": 22})
    fake_airflow.advance("h2")
    clock.tick()
    fake_airflow.add_run("harvest", "h3", conf={"collection_id": 3})

    def ids(**filters: Any) -> list[str]:
        return [run.run_id for run in transport.list_runs(RunQuery(**filters))]

    assert ids() == ["h3", "h2", "i1", "h1"]
    assert ids(dag_ids=["harvest"]) == ["h3", "h2", "h1"]
    assert ids(dag_ids=["harvest", "index"]) == ["h3", "h2", "i1", "h1"]
    assert ids(limit=2) == ["h3", "h2"]
    assert ids(updated_since=clock.now - timedelta(minutes=1)) == ["h3", "h2"]


def test_updated_since_sees_state_changes(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    transport.trigger("harvest", run_id="old", conf={})
    clock.tick(10)
    since = clock.now
    assert list(transport.list_runs(RunQuery(updated_since=since))) == []
    fake_airflow.finish("old")
    assert [r.run_id for r in transport.list_runs(RunQuery(updated_since=since))] == ["old"]


def test_list_runs_fails_at_the_call_not_on_iteration(
    transport: FakeTransport, fake_airflow: FakeAirflow
) -> None:
    fake_airflow.fail_next()
    with pytest.raises(AirflowUnavailable):
        transport.list_runs(RunQuery())


# --- task instances and logs -----------------------------------------------------------------


def test_default_task_follows_the_run(
    transport: FakeTransport, fake_airflow: FakeAirflow, clock: Clock
) -> None:
    transport.trigger("harvest", run_id="dj_1", conf={})
    (queued,) = transport.task_instances("harvest", "dj_1")
    assert (queued.task_id, queued.state, queued.try_number) == (fake.DEFAULT_TASK_ID, None, 0)
    fake_airflow.advance("dj_1")
    clock.tick(2)
    fake_airflow.advance("dj_1")
    (done,) = transport.task_instances("harvest", "dj_1")
    assert (done.state, done.try_number, done.duration) == ("success", 1, 120.0)


def test_set_task_replaces_the_default(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    transport.trigger("harvest", run_id="dj_1", conf={})
    fake_airflow.set_task("dj_1", "extract", state="success")
    fake_airflow.set_task("dj_1", "load", state="failed", try_number=2, map_index=0, operator="BashOperator")
    fake_airflow.set_task("dj_1", "report", state=None, try_number=0)
    tis = {ti.task_id: ti for ti in transport.task_instances("harvest", "dj_1")}
    assert set(tis) == {"extract", "load", "report"}
    assert (tis["load"].state, tis["load"].try_number, tis["load"].map_index) == ("failed", 2, 0)
    assert tis["load"].operator == "BashOperator"
    assert tis["report"].start_date is None


def test_default_log_of_a_finished_run(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    transport.trigger("harvest", run_id="dj_1", conf={"collection_id": 3})
    fake_airflow.finish("dj_1", state="failed")
    chunk = transport.task_log("harvest", "dj_1", "run", 1)
    texts = [line.text for line in chunk.lines]
    assert texts[0] == "Fake Airflow: task run of run harvest/dj_1, try 1"
    assert '{"collection_id": 3}' in texts[1]
    assert texts[-1] == "Task finished: failed"
    assert chunk.continuation_token is None


def test_log_pages_with_continuation_tokens(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    fake_airflow.log_page_size = 2
    transport.trigger("harvest", run_id="dj_1", conf={})
    fake_airflow.finish("dj_1")
    fake_airflow.add_log("dj_1", "run", "one", "two", "three", "four", "five")
    seen: list[str] = []
    token = None
    for _ in range(5):
        chunk = transport.task_log("harvest", "dj_1", "run", 1, continuation_token=token)
        seen += [line.text for line in chunk.lines]
        token = chunk.continuation_token
        if token is None:
            break
    assert seen == ["one", "two", "three", "four", "five"]
    assert token is None


def test_log_of_a_running_task_keeps_a_token(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    transport.trigger("harvest", run_id="dj_1", conf={})
    fake_airflow.advance("dj_1")
    fake_airflow.add_log("dj_1", "run", "working")
    chunk = transport.task_log("harvest", "dj_1", "run", 1)
    assert [line.text for line in chunk.lines] == ["working"]
    fake_airflow.add_log("dj_1", "run", "still working")
    later = transport.task_log("harvest", "dj_1", "run", 1, continuation_token=chunk.continuation_token)
    assert [line.text for line in later.lines] == ["still working"]
    assert later.continuation_token is not None


def test_log_of_earlier_try_and_of_no_try(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    transport.trigger("harvest", run_id="dj_1", conf={})
    assert transport.task_log("harvest", "dj_1", "run", 0).lines == ()
    fake_airflow.set_task("dj_1", "load", state="success", try_number=2)
    first = transport.task_log("harvest", "dj_1", "load", 1)
    assert first.lines[-1].text == "Task finished: failed"


@pytest.mark.parametrize(
    ("task_id", "try_number", "map_index", "token", "error"),
    [
        ("missing", 1, -1, None, NotFound),
        ("run", 2, -1, None, NotFound),
        ("run", 1, 4, None, NotFound),
        ("run", 1, -1, "garbage", BadRequest),
    ],
)
def test_log_errors(
    transport: FakeTransport,
    fake_airflow: FakeAirflow,
    task_id: str,
    try_number: int,
    map_index: int,
    token: str | None,
    error: type[Exception],
) -> None:
    transport.trigger("harvest", run_id="dj_1", conf={})
    fake_airflow.finish("dj_1")
    with pytest.raises(error):
        transport.task_log(
            "harvest", "dj_1", task_id, try_number, map_index=map_index, continuation_token=token
        )


# --- store, aliases, links, capabilities -----------------------------------------------------


def test_state_survives_transport_reset(transport: FakeTransport) -> None:
    transport.trigger("harvest", run_id="dj_1", conf={})
    transports.reset()
    again = transports.get_transport()
    assert again is not transport
    assert again.get_run("harvest", "dj_1").run_id == "dj_1"


def test_each_alias_has_its_own_airflow() -> None:
    environments = {
        "default": {"TRANSPORT": "fake", "UI_URL": UI},
        "other": {"TRANSPORT": "fake", "UI_URL": "https://other.example.org"},
    }
    with override_settings(AIRFLOW_ENVIRONMENTS=environments):
        transports.get_transport("other").trigger("harvest", run_id="dj_1", conf={})
        assert fake.get_airflow("other").runs()[0].run_id == "dj_1"
        assert fake.get_airflow("default").runs() == []
        assert (
            transports.get_transport("other").run_url("h", "r") == "https://other.example.org/dags/h/runs/r"
        )


def test_reset_all_empties_in_place(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    fake_airflow.strict = True
    fake_airflow.add_dag("harvest")
    transport.trigger("harvest", run_id="dj_1", conf={})
    fake_airflow.down = True
    fake.reset_all()
    assert fake.get_airflow() is fake_airflow
    assert (fake_airflow.runs(), fake_airflow.calls, fake_airflow.strict, fake_airflow.down) == (
        [],
        [],
        False,
        False,
    )


def test_links_use_ui_url_in_airflow3_shapes(transport: FakeTransport) -> None:
    assert transport.run_url("harvest", "dj_1") == f"{UI}/dags/harvest/runs/dj_1"
    assert (
        transport.log_url("harvest", "dj_1", "run", 1)
        == f"{UI}/dags/harvest/runs/dj_1/tasks/run?try_number=1"
    )


def test_capabilities_are_all_on(transport: FakeTransport) -> None:
    assert transport.capabilities == Capabilities(batch_listing=True, updated_since_filter=True)


# --- threads ---------------------------------------------------------------------------------


def test_fifty_threads_one_run_id_start_exactly_one_run(
    transport: FakeTransport, fake_airflow: FakeAirflow
) -> None:
    results = in_threads(50, lambda i: transport.trigger("harvest", run_id="dj_same", conf={"i": i}))
    started = [r for r in results if not isinstance(r, Exception)]
    assert len(started) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 49
    assert len(fake_airflow.runs()) == 1


def test_fifty_threads_mixed_calls_stay_consistent(
    transport: FakeTransport, fake_airflow: FakeAirflow
) -> None:
    def work(i: int) -> int:
        transport.trigger("harvest", run_id=f"dj_{i}", conf={})
        fake_airflow.advance(("harvest", f"dj_{i}"))
        transport.get_run("harvest", f"dj_{i}")
        return len(list(transport.list_runs(RunQuery(dag_ids=["harvest"]))))

    results = in_threads(50, work)
    assert all(isinstance(r, int) for r in results)
    assert len(fake_airflow.runs()) == 50
    assert {r.state for r in fake_airflow.runs()} == {"running"}
    assert fake_airflow.call_count("trigger") == fake_airflow.call_count("get_run") == 50


# --- run_after and XCom (Django tasks) ----------------------------------------------------------


def test_a_run_can_be_started_later(transport: FakeTransport, clock: Clock) -> None:
    later = clock.now + timedelta(hours=1)

    run = transport.trigger("etl", run_id="dj_1", conf={}, run_after=later)

    assert (run.state, run.run_after, run.queued_at) == ("queued", later, clock.now)
    assert FakeTransport.defers_runs


def test_xcom_values_are_read_back_as_json(transport: FakeTransport, fake_airflow: FakeAirflow) -> None:
    transport.trigger("etl", run_id="dj_1", conf={})
    fake_airflow.set_xcom("dj_1", "run", "k", {"a": (1, 2)})

    assert transport.xcom("etl", "dj_1", "run", "k") == {"a": [1, 2]}
    assert fake_airflow.call_count("xcom") == 1
    with pytest.raises(NotFound):
        transport.xcom("etl", "dj_1", "run", "other")
