"""Operators' controls against the real Airflow 3 and 2, through airflow_client.controls as the run
page calls it: a failed run re-run succeeds on its second try; a running run is cancelled (marked
failed); each recorded with the user who did it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from airflow_client import controls, refresh, trigger
from airflow_client.jobs import Job, register, unregister
from airflow_client.models import JobRun
from airflow_client.states import RunState
from tests.contract.conftest import RUN_SECONDS, Airflow
from tests.testapp.models import FindingAid

pytestmark = [pytest.mark.contract, pytest.mark.django_db]


@pytest.fixture
def operated(settings: Any, real_airflow: Airflow) -> Iterator[tuple[Airflow, dict[str, type[Job]]]]:
    """Jobs of the flaky and the slow contract DAG on this Airflow; runs re-read at every refresh()."""
    alias = f"airflow{real_airflow.major}"
    settings.AIRFLOW_ENVIRONMENTS = {
        **settings.AIRFLOW_ENVIRONMENTS,
        alias: {
            "TRANSPORT": "rest",
            "BASE_URL": real_airflow.url,
            "USERNAME": "admin",
            "PASSWORD": "admin",
            "TIMEOUT": 30,
        },
    }
    settings.AIRFLOW_REFRESH_INTERVAL = 0
    jobs = {
        dag_id: type(
            f"Operated{dag_id.title().replace('_', '')}{real_airflow.major}",
            (Job,),
            {
                "dag_id": dag_id,
                "model": "testapp.FindingAid",
                "conf_key": "finding_aid_id",
                "environment": alias,
            },
        )
        for dag_id in ("contract_flaky", "contract_slow")
    }
    for job in jobs.values():
        register(job)
    yield real_airflow, jobs
    for job in jobs.values():
        unregister(job)


def _until(run: JobRun, states: set[str], seconds: float = RUN_SECONDS) -> JobRun:
    deadline = time.monotonic() + seconds
    while (run := refresh(run)).state not in states:
        if time.monotonic() > deadline:
            pytest.fail(f"run {run.dag_run_id} is {run.state} after {seconds:g} s, not {states}.")
        time.sleep(0.5)
    return run


def test_a_failed_run_rerun_succeeds_on_its_second_try(operated: Any) -> None:
    airflow, jobs = operated
    operator = User.objects.create(username="operator")
    record = FindingAid.objects.create(title="Flaky")
    run = _until(trigger(jobs["contract_flaky"], record, user=operator), {RunState.SUCCESS, RunState.FAILED})
    assert run.state == RunState.FAILED

    run = controls.rerun(run, user=operator, only_failed=True)
    assert run.state in (RunState.QUEUED, RunState.RUNNING)
    run = _until(run, {RunState.SUCCESS, RunState.FAILED})

    assert run.state == RunState.SUCCESS
    tries = {
        task.task_id: task.try_number
        for task in airflow.transport.task_instances("contract_flaky", run.dag_run_id)
    }
    assert tries == {"steady": 1, "flaky": 2}  # only the failed task ran again
    line = run.actions.get()
    assert (line.action, line.user, line.done) == ("rerun_failed", operator, True)
    assert list(JobRun.objects.for_object(record)) == [run]  # one run, tried again


def test_a_running_run_is_cancelled(operated: Any) -> None:
    airflow, jobs = operated
    operator = User.objects.create(username="operator")
    record = FindingAid.objects.create(title="Slow")
    run = trigger(jobs["contract_slow"], record, user=operator, conf={"seconds": 60})
    run = _until(run, {RunState.RUNNING, RunState.SUCCESS, RunState.FAILED})
    assert run.state == RunState.RUNNING

    run = controls.cancel(run, user=operator)

    assert run.state == RunState.FAILED
    assert airflow.transport.get_run("contract_slow", run.dag_run_id).state == RunState.FAILED
    line = run.actions.get()
    assert (line.action, line.user, line.done) == ("cancel", operator, True)


def test_airflow_refusing_is_recorded(operated: Any) -> None:
    _airflow, jobs = operated
    operator = User.objects.create(username="operator")
    record = FindingAid.objects.create(title="Gone")
    run = _until(trigger(jobs["contract_flaky"], record, user=operator), {RunState.SUCCESS, RunState.FAILED})
    JobRun.objects.filter(pk=run.pk).update(dag_run_id="no-such-run")
    run.refresh_from_db()

    with pytest.raises(controls.ControlRefused, match="no longer has this run"):
        controls.mark(run, RunState.SUCCESS, user=operator)

    assert run.actions.get().done is False
