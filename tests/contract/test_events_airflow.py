"""Events pushed by a real Airflow 3 and 2: a run started in Airflow reaches its record without
``sync`` and without a poll (the app's own transport for that Airflow points nowhere).

scripts/test.sh gives each Airflow the connection ``django_airflow_client`` to this
suite's live server (``--liveserver``), naming its environment airflow3 / airflow2.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_client.models import JobEvent, JobRun
from airflow_client.states import RunState
from tests.contract.conftest import RUN_SECONDS, Airflow, new_run_id, start_run
from tests.serialized import LOCK
from tests.testapp.models import FindingAid

pytestmark = [pytest.mark.contract, pytest.mark.django_db(transaction=True)]

#: DAG-level callbacks run after the scheduler ends the run (Airflow 3: in the dag-processor).
CALLBACK_SECONDS = 90.0
#: How often a widget polls by default (AIRFLOW_POLL_INTERVAL): the polled figure compared with.
POLL_SECONDS = 5.0
FIGURES = Path(__file__).resolve().parents[2] / ".test-logs" / "events-latency.txt"


@pytest.fixture
def pushed_to(settings: Any, live_server: Any, real_airflow: Airflow) -> Airflow:
    alias = f"airflow{real_airflow.major}"
    # Unreachable on purpose: the runs below can only reach their records by being pushed.
    settings.AIRFLOW_ENVIRONMENTS = {
        **settings.AIRFLOW_ENVIRONMENTS,
        alias: {"TRANSPORT": "rest", "BASE_URL": "http://127.0.0.1:9", "TIMEOUT": 1, "RETRIES": 0},
    }
    from airflow_client.jobs import Job, register, unregister

    job = type(
        f"ContractEvents{real_airflow.major}",
        (Job,),
        {
            "dag_id": "contract_events",
            "model": "testapp.FindingAid",
            "conf_key": "finding_aid_id",
            "environment": alias,
        },
    )
    register(job)
    yield real_airflow
    unregister(job)


def _wait_for(
    run_id: str, state: str, seconds: float, airflow: Airflow | None = None
) -> tuple[JobRun, float]:
    """The JobRun of ``run_id`` once in ``state`` (read from the database only); also, when
    ``airflow`` is given, when a widget polling Airflow every POLL_SECONDS would have seen it."""
    deadline = time.monotonic() + seconds
    next_poll, polled_at = 0.0, 0.0
    while True:
        with LOCK:  # Airflow's callbacks post to the live server meanwhile
            run = JobRun.objects.filter(dag_run_id=run_id).first()
        if run is not None and run.state == state:
            break
        now = time.monotonic()
        if airflow is not None and not polled_at and now >= next_poll:
            next_poll = now + POLL_SECONDS
            if airflow.transport.get_run("contract_events", run_id).state == state:
                polled_at = time.time()
        if now > deadline:
            pytest.fail(
                f"run {run_id} is {run.state if run else 'not recorded'} after {seconds:g} s, not {state}."
            )
        time.sleep(0.2)
    while airflow is not None and not polled_at:  # the push won: keep polling, on the same beat, to compare
        time.sleep(max(0.0, next_poll - time.monotonic()))
        next_poll = time.monotonic() + POLL_SECONDS
        if airflow.transport.get_run("contract_events", run_id).state == state:
            polled_at = time.time()
    return run, polled_at


def test_a_run_started_in_airflow_reaches_its_record_by_its_events(pushed_to: Airflow) -> None:
    with LOCK:
        record = FindingAid.objects.create(title="Pushed")
    ok_id, fail_id = new_run_id("events-ok"), new_run_id("events-fail")
    start_run(pushed_to.transport, "contract_events", ok_id, {"finding_aid_id": record.pk})
    start_run(pushed_to.transport, "contract_events", fail_id, {"finding_aid_id": record.pk, "fail": True})

    run, polled_at = _wait_for(ok_id, RunState.SUCCESS, RUN_SECONDS + CALLBACK_SECONDS, pushed_to)

    with LOCK:
        assert list(JobRun.objects.for_object(record).filter(dag_run_id=ok_id)) == [run]
        assert run.environment == f"airflow{pushed_to.major}"
        kinds = [(event.kind, event.task_id) for event in run.events.all()]
        for expected in [
            ("task_start", "extract"),
            ("pages.fetched", "extract"),
            ("task_success", "extract"),
            ("task_start", "load"),
            ("task_success", "load"),
            ("dag_success", ""),
        ]:
            assert expected in kinds
        assert run.events.get(kind="pages.fetched").payload == {"pages": 3}
        assert (run.tasks_done, run.tasks_total) == (2, 2)
        assert run.refresh_error == ""  # nothing asked the (unreachable) transport

    failed, _ = _wait_for(fail_id, RunState.FAILED, RUN_SECONDS + CALLBACK_SECONDS)
    with LOCK:
        assert failed.failed_task_id == "load"
        failure = failed.events.get(kind="task_failure")
        assert failure.task_id == "load"
        assert "fails on purpose" in failure.error
        assert failed.events.filter(kind="dag_failure").exists()
        pushed = JobEvent.objects.get(job_run=run, kind="dag_success").created_at.timestamp()

    _record_latency(pushed_to, ok_id, pushed, polled_at)


def _record_latency(airflow: Airflow, run_id: str, pushed: float, polled_at: float) -> None:
    """Time from the last task ending in Airflow to the record showing success: pushed vs. polled."""
    tasks = airflow.transport.task_instances("contract_events", run_id)
    ended = max(task.end_date for task in tasks if task.end_date is not None).timestamp()
    line = (
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} Airflow {airflow.major}: last task end -> JobRun success: "
        f"pushed {pushed - ended:.1f} s, polled every {POLL_SECONDS:g} s {polled_at - ended:.1f} s\n"
    )
    FIGURES.parent.mkdir(exist_ok=True)
    with FIGURES.open("a") as figures:
        figures.write(line)
    print(line, end="")
