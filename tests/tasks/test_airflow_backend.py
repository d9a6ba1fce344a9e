"""The Airflow backend's own promises (on the fake transport): what enqueue records and refuses,
how results are read and coalesced, what a lost answer or a killed try gives, its checks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import checks
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from airflow_client import controls, dags
from airflow_client.exceptions import AirflowUnavailable, TaskRunFailed, TriggerFailed
from airflow_client.models import JobRun, JobTaskResult, JobTrigger
from airflow_client.refreshing import refresh
from airflow_client.tasks import AirflowBackend
from airflow_client.tasks_compat import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_backends,
)
from airflow_client.transports import fake
from tests.testapp.tasks import add, explode, noop, renamed

READY, RUNNING, FAILED, SUCCESSFUL = (
    TaskResultStatus(s) for s in ("READY", "RUNNING", "FAILED", "SUCCESSFUL")
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _read_every_time(settings: Any) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 0


def test_enqueue_records_a_run_of_the_task_dag_that_belongs_to_no_record(
    fake_airflow: fake.FakeAirflow,
) -> None:
    result = add.enqueue(2, 3)

    job_run = JobRun.objects.get()
    assert (job_run.dag_id, job_run.dag_run_id, job_run.state) == ("django_tasks", result.id, "queued")
    assert job_run.records() == []
    assert job_run.started_here
    assert job_run.note == "Django task tests.testapp.tasks.add"
    assert job_run.conf == {
        "django_task": {
            "version": 1,
            "path": "tests.testapp.tasks.add",
            "args": [2, 3],
            "kwargs": {},
            "backend": "default",
            "queue": "default",
            "priority": 0,
            "takes_context": False,
            "run_after": None,
        }
    }
    assert fake_airflow.get(result.id).conf == job_run.conf
    assert result.status == READY
    assert result.enqueued_at == job_run.queued_at


def test_a_queue_runs_on_its_own_dag(fake_airflow: fake.FakeAirflow) -> None:
    result = add.using(queue_name="retry").enqueue(1, 2)

    assert fake_airflow.get(result.id).dag_id == "django_tasks_retry"
    assert add.using(queue_name="retry").get_result(result.id).id == result.id


def test_enqueue_costs_two_airflow_calls_and_a_few_queries(fake_airflow: fake.FakeAirflow) -> None:
    add.enqueue(0, 0)  # content types and the like, cached once per process
    fake_airflow.calls.clear()

    with CaptureQueriesContext(connection) as queries:
        add.enqueue(1, 1)

    assert [name for name, _args in fake_airflow.calls] == ["get_dag", "trigger"]
    # The trigger saved, sent and replaced by the run (as trigger() does), four of them savepoints.
    assert len(queries) <= 15, [query["sql"] for query in queries]


def test_a_finished_result_is_answered_from_the_database(fake_airflow: fake.FakeAirflow) -> None:
    result = add.enqueue(1, 1)
    fake_airflow.run_tasks()
    assert add.get_result(result.id).return_value == 2
    fake_airflow.calls.clear()

    with CaptureQueriesContext(connection) as queries:
        again = add.get_result(result.id)

    assert again.return_value == 2
    assert fake_airflow.calls == []
    assert len(queries) == 1


def test_airflow_is_read_at_most_once_per_refresh_interval(
    fake_airflow: fake.FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 60
    result = add.enqueue(1, 1)
    fake_airflow.set_state(result.id, "running")

    for _look in range(3):
        assert add.get_result(result.id).status == READY  # read at enqueue: not again within 60 s

    assert fake_airflow.call_count("get_run") == 0


def test_unknown_task_paths_are_refused_before_anything_is_sent(fake_airflow: fake.FakeAirflow) -> None:
    with pytest.raises(InvalidTask, match="does not lead back to this task"):
        renamed.enqueue()

    assert fake_airflow.calls == []
    assert not JobTrigger.objects.exists()


def test_priority_is_refused_honestly() -> None:
    assert task_backends["default"].supports_priority is False
    with pytest.raises(InvalidTask, match="priority"):
        add.using(priority=10)


@pytest.mark.parametrize(
    ("paused", "message"), [(False, "not found"), (True, "is paused in Airflow")], ids=["missing", "paused"]
)
def test_a_missing_or_paused_dag_is_an_error_at_enqueue(
    fake_airflow: fake.FakeAirflow, paused: bool, message: str
) -> None:
    fake_airflow.strict = True
    if paused:
        fake_airflow.add_dag("django_tasks", paused=True)

    with pytest.raises(TriggerFailed, match=message):
        add.enqueue(1, 1)

    assert fake_airflow.call_count("trigger") == 0


def test_a_lost_answer_gives_a_ready_result_that_airflow_settles(
    fake_airflow: fake.FakeAirflow, trigger_answer_lost: None
) -> None:
    result = add.enqueue(3, 4)  # Airflow started the run; its answer never came

    assert result.status == READY
    assert JobTrigger.objects.get().outcome == "unknown"
    fake_airflow.run_tasks()
    assert add.get_result(result.id).return_value == 7


def test_a_request_airflow_never_received_ends_failed(
    fake_airflow: fake.FakeAirflow, trigger_answer_lost: None
) -> None:
    result = add.enqueue(1, 2)
    fake_airflow.reset()  # the POST never reached Airflow after all
    JobTrigger.objects.update(sent_at=timezone.now() - timedelta(minutes=5))

    found = add.get_result(result.id)

    assert found.status == FAILED
    assert found.errors[0].exception_class is TaskRunFailed
    assert "Airflow never started it" in found.errors[0].traceback


def test_a_try_killed_without_a_result_fails_with_task_run_failed(fake_airflow: fake.FakeAirflow) -> None:
    result = noop.enqueue()
    fake_airflow.finish(result.id, "failed")  # e.g. the worker died: nothing pushed to XCom

    found = noop.get_result(result.id)

    assert found.status == FAILED
    assert found.errors[0].exception_class is TaskRunFailed
    assert "without a result from the task" in found.errors[0].traceback


def test_an_unreadable_result_is_read_again_later(fake_airflow: fake.FakeAirflow, settings: Any) -> None:
    result = add.enqueue(5, 5)
    fake_airflow.run_tasks()
    for _caller in ("the refresh that sees it finish", "get_result"):
        fake_airflow.lose_next_answer("xcom", AirflowUnavailable("down"))

    assert add.get_result(result.id).status == RUNNING  # finished, its value not read yet
    settings.AIRFLOW_REFRESH_INTERVAL = 60
    assert add.get_result(result.id).status == RUNNING
    assert fake_airflow.call_count("xcom") == 2  # not asked again within the interval
    settings.AIRFLOW_REFRESH_INTERVAL = 0
    assert add.get_result(result.id).return_value == 10


def test_a_re_run_forgets_the_old_result(fake_airflow: fake.FakeAirflow) -> None:
    result = explode.enqueue("first")
    fake_airflow.run_tasks()
    assert explode.get_result(result.id).status == FAILED

    controls.rerun(JobRun.objects.get())  # an operator re-runs it from the run's page

    assert explode.get_result(result.id).status == READY
    assert not JobTaskResult.objects.exists()
    fake_airflow.run_tasks()
    assert explode.get_result(result.id).errors[0].traceback.endswith("ValueError: first\n")


def test_a_refresh_anywhere_records_the_outcome(fake_airflow: fake.FakeAirflow) -> None:
    """The history page's or sync's refresh sees the run finish: the result is read then."""
    result = add.enqueue(6, 7)
    fake_airflow.run_tasks()

    refresh(JobRun.objects.get())

    assert JobTaskResult.objects.get().return_value == 13
    assert add.get_result(result.id).return_value == 13


def test_unknown_ids_and_other_tasks_results(fake_airflow: fake.FakeAirflow) -> None:
    with pytest.raises(TaskResultDoesNotExist):
        add.get_result("dj_nothing")
    fake_airflow.add_run("django_tasks", "manual__1")
    JobRun.objects.store_dag_run("default", fake_airflow.get("manual__1"))
    with pytest.raises(TaskResultDoesNotExist):
        add.get_result("manual__1")  # a run of the DAG started by hand: no task of ours
    result = add.enqueue(1, 1)
    with pytest.raises(Exception, match="Task does not match"):
        explode.get_result(result.id)


def test_supports_defer_is_the_environments_transport(settings: Any) -> None:
    backend = task_backends["default"]
    assert isinstance(backend, AirflowBackend)
    assert backend.supports_defer is True
    settings.AIRFLOW_ENVIRONMENTS = {"default": {"TRANSPORT": "tests.tasks.test_airflow_backend.NoDefer"}}
    assert task_backends["default"].supports_defer is False
    settings.AIRFLOW_ENVIRONMENTS = {}
    assert task_backends["default"].supports_defer is False


class NoDefer(fake.FakeTransport):
    defers_runs = False


# --- system checks ----------------------------------------------------------------------------


def _ids(settings: Any, **tasks: Any) -> list[str]:
    settings.TASKS = {"default": {"BACKEND": "airflow_client.tasks.AirflowBackend", **tasks}}
    return sorted(message.id or "" for message in task_backends["default"].check())


def test_the_test_settings_pass_the_checks() -> None:
    assert [m for m in checks.run_checks() if (m.id or "").startswith("airflow_client.")] == []


@pytest.mark.parametrize(
    ("tasks", "ids"),
    [
        ({}, []),
        ({"OPTIONS": {"ENVIRONMENT": "default", "DAG_ID": "tasks", "QUEUES": {"a": "dag_a"}}}, []),
        ({"OPTIONS": {"TYPO": 1}}, ["airflow_client.E030"]),
        ({"OPTIONS": []}, ["airflow_client.E030"]),
        ({"OPTIONS": {"ENVIRONMENT": "nowhere"}}, ["airflow_client.E031"]),
        ({"OPTIONS": {"DAG_ID": ""}}, ["airflow_client.E032"]),
        ({"OPTIONS": {"QUEUES": ["a"]}}, ["airflow_client.E032"]),
        ({"QUEUES": ["default"], "OPTIONS": {"QUEUES": {"a": "dag_a"}}}, ["airflow_client.E033"]),
    ],
)
def test_checks_validate_the_options(settings: Any, tasks: dict[str, Any], ids: list[str]) -> None:
    assert _ids(settings, **tasks) == ids


def test_queues_given_a_dag_are_allowed_when_queues_are_not_listed(settings: Any, fake_airflow: Any) -> None:
    settings.TASKS = {
        "default": {
            "BACKEND": "airflow_client.tasks.AirflowBackend",
            "OPTIONS": {"QUEUES": {"reports": "dag_r"}},
        }
    }
    assert task_backends["default"].queues == {"default", "reports"}
    result = add.using(queue_name="reports").enqueue(1, 1)
    assert fake_airflow.get(result.id).dag_id == "dag_r"
    assert dags.CONF_KEY in fake_airflow.get(result.id).conf


def test_the_admin_shows_what_a_task_returned_on_its_run(
    fake_airflow: fake.FakeAirflow, admin_client: Any
) -> None:
    result = explode.enqueue("shown in the admin")
    fake_airflow.run_tasks()
    explode.get_result(result.id)

    page = admin_client.get(f"/admin/airflow_client/jobrun/{JobRun.objects.get().pk}/change/")

    assert page.status_code == 200
    assert b"builtins.ValueError" in page.content
    assert b"ValueError: shown in the admin" in page.content


def test_with_airflow_turned_off_results_are_answered_as_recorded(
    fake_airflow: fake.FakeAirflow, settings: Any
) -> None:
    done, unread = add.enqueue(1, 1), add.enqueue(2, 2)
    fake_airflow.run_tasks()
    add.get_result(done.id)
    JobRun.objects.filter(dag_run_id=unread.id).update(state="success")  # finished, its value not read
    settings.AIRFLOW_ENABLED = False

    assert add.get_result(done.id).return_value == 2
    assert add.get_result(unread.id).status == RUNNING
