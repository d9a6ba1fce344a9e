"""Operators' controls (airflow_client.controls): re-run, mark, cancel, through the service, the run
page and the admin, each with its permission and an audit line, against the fake Airflow."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from airflow_client import controls
from airflow_client.exceptions import NotFound
from airflow_client.models import JobAction, JobRun
from airflow_client.states import RunState
from airflow_client.transports.fake import FakeAirflow
from tests.factories import make_run, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(db: None) -> User:
    return make_user(
        "boss",
        "airflow_client.view_jobrun",
        "airflow_client.trigger_job",
        "airflow_client.rerun_job",
        "airflow_client.mark_job",
    )


def in_airflow(fake_airflow: FakeAirflow, finding_aid: Any, state: str) -> JobRun:
    """A run recorded here and in the fake Airflow, in ``state`` in both."""
    dag_run = fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})
    if state in (RunState.SUCCESS, RunState.FAILED):
        fake_airflow.finish(dag_run.run_id, state)
    elif state == RunState.RUNNING:
        fake_airflow.set_state(dag_run.run_id, state)
    return make_run(
        finding_aid,
        dag_run_id=dag_run.run_id,
        state=state,
        failed_task_id="index" if state == RunState.FAILED else "",
        failed_try_number=1 if state == RunState.FAILED else None,
        tasks_total=3,
        tasks_done=3 if state in (RunState.SUCCESS, RunState.FAILED) else 1,
    )


def test_rerun_a_failed_run(
    fake_airflow: FakeAirflow, finding_aid: Any, boss: User, changes: list[Any]
) -> None:
    run = in_airflow(fake_airflow, finding_aid, RunState.FAILED)

    run = controls.rerun(run, user=boss)

    assert run.state == RunState.QUEUED
    assert fake_airflow.get(run.dag_run_id).state == RunState.QUEUED
    assert (run.failed_task_id, run.tasks_done, run.tasks_total) == ("", 0, 3)  # a new attempt
    assert changes == [(RunState.FAILED, RunState.QUEUED)]
    line = run.actions.get()
    assert (line.action, line.user, line.user_label, line.done) == ("rerun", boss, "boss", True)
    assert str(line.get_action_display()) == "re-ran every task"


def test_rerun_only_the_failed_tasks(fake_airflow: FakeAirflow, finding_aid: Any, boss: User) -> None:
    run = in_airflow(fake_airflow, finding_aid, RunState.FAILED)
    controls.rerun(run, user=boss, only_failed=True)
    assert fake_airflow.calls[-1] == ("clear_run", ("index_finding_aid", run.dag_run_id, True))
    assert run.actions.get().action == "rerun_failed"


@pytest.mark.parametrize(
    ("state", "call", "message"),
    [
        (RunState.RUNNING, lambda run: controls.rerun(run), "still going on"),
        (RunState.SUCCESS, lambda run: controls.rerun(run, only_failed=True), "Only a failed run"),
        (RunState.SUCCESS, lambda run: controls.cancel(run), "already finished"),
    ],
)
def test_a_control_the_run_does_not_allow_asks_nothing(
    fake_airflow: FakeAirflow, finding_aid: Any, state: str, call: Any, message: str
) -> None:
    run = in_airflow(fake_airflow, finding_aid, state)
    calls = len(fake_airflow.calls)
    with pytest.raises(controls.ControlRefused, match=message):
        call(run)
    assert len(fake_airflow.calls) == calls
    assert not JobAction.objects.exists()


def test_mark_and_cancel(fake_airflow: FakeAirflow, finding_aid: Any, boss: User, changes: list[Any]) -> None:
    failed = in_airflow(fake_airflow, finding_aid, RunState.FAILED)
    assert controls.mark(failed, RunState.SUCCESS, user=boss).state == RunState.SUCCESS
    running = in_airflow(fake_airflow, finding_aid, RunState.RUNNING)
    assert controls.cancel(running, user=boss).state == RunState.FAILED
    assert fake_airflow.get(running.dag_run_id).state == RunState.FAILED
    assert changes == [(RunState.FAILED, RunState.SUCCESS), (RunState.RUNNING, RunState.FAILED)]
    assert [line.action for line in JobAction.objects.order_by("id")] == ["mark_success", "cancel"]


def test_airflow_refusing_is_said_kept_and_changes_nothing(
    fake_airflow: FakeAirflow, finding_aid: Any, boss: User, changes: list[Any]
) -> None:
    run = in_airflow(fake_airflow, finding_aid, RunState.FAILED)
    fake_airflow.fail_next(NotFound("DAG not found", status_code=404))

    with pytest.raises(controls.ControlRefused, match="no longer has this run or its DAG") as refused:
        controls.rerun(run, user=boss)

    assert refused.value.action is not None
    assert refused.value.action.done is False
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert changes == []


# --- the run page ---------------------------------------------------------------------------------


def control_url(run: JobRun, action: str) -> str:
    return reverse("airflow_client:run_control", kwargs={"pk": run.pk, "action": action})


def test_the_run_page_offers_what_the_user_may_do(
    client: Client, fake_airflow: FakeAirflow, finding_aid: Any
) -> None:
    run = in_airflow(fake_airflow, finding_aid, RunState.FAILED)
    page = reverse("airflow_client:run_detail", args=[run.pk])
    viewer = make_user("viewer", "airflow_client.view_jobrun")
    rerunner = make_user("rerunner", "airflow_client.view_jobrun", "airflow_client.rerun_job")
    marker = make_user("marker", "airflow_client.view_jobrun", "airflow_client.mark_job")

    client.force_login(viewer)
    assert "Re-run" not in client.get(page).content.decode()
    client.force_login(rerunner)
    html = client.get(page).content.decode()
    assert "Re-run every task" in html
    assert "Re-run the failed tasks" in html
    assert "Mark succeeded" not in html
    client.force_login(marker)
    html = client.get(page).content.decode()
    assert "Mark succeeded" in html
    assert "Re-run" not in html


def test_rerun_from_the_run_page(
    client: Client, fake_airflow: FakeAirflow, finding_aid: Any, boss: User
) -> None:
    run = in_airflow(fake_airflow, finding_aid, RunState.FAILED)
    client.force_login(boss)

    response = client.post(control_url(run, "rerun_failed"), follow=True)

    html = response.content.decode()
    assert "Airflow runs it again." in html
    assert "boss re-ran the failed tasks" in html  # the audit line
    assert JobRun.objects.get().state == RunState.QUEUED


def test_a_refusal_on_the_run_page(
    client: Client, fake_airflow: FakeAirflow, finding_aid: Any, boss: User
) -> None:
    run = in_airflow(fake_airflow, finding_aid, RunState.RUNNING)
    fake_airflow.fail_next(NotFound("DAG not found", status_code=404))
    client.force_login(boss)

    html = client.post(control_url(run, "cancel"), follow=True).content.decode()

    assert "no longer has this run or its DAG" in html
    assert "refused" in html
    assert JobRun.objects.get().state == RunState.RUNNING


def test_an_htmx_control_redirects_the_page(
    client: Client, fake_airflow: FakeAirflow, finding_aid: Any, boss: User
) -> None:
    run = in_airflow(fake_airflow, finding_aid, RunState.SUCCESS)
    client.force_login(boss)
    response = client.post(control_url(run, "mark_failed"), headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"] == reverse("airflow_client:run_detail", args=[run.pk])


@pytest.mark.parametrize(
    ("perms", "action", "status"),
    [
        ((), "rerun", 403),  # may see runs, not re-run them
        (("airflow_client.rerun_job",), "mark_success", 403),
        (("airflow_client.mark_job",), "rerun", 403),
        (("airflow_client.mark_job",), "delete", 404),
    ],
)
def test_each_control_needs_its_permission(
    client: Client,
    fake_airflow: FakeAirflow,
    finding_aid: Any,
    perms: tuple[str, ...],
    action: str,
    status: int,
) -> None:
    run = in_airflow(fake_airflow, finding_aid, RunState.FAILED)
    client.force_login(make_user("someone", "airflow_client.view_jobrun", *perms))
    assert client.post(control_url(run, action)).status_code == status
    assert JobRun.objects.get().state == RunState.FAILED
    assert not JobAction.objects.exists()


def test_controls_are_posts_behind_login(
    client: Client, fake_airflow: FakeAirflow, finding_aid: Any, boss: User
) -> None:
    run = in_airflow(fake_airflow, finding_aid, RunState.FAILED)
    assert client.post(control_url(run, "rerun")).status_code == 302  # to the login page
    client.force_login(boss)
    assert client.get(control_url(run, "rerun")).status_code == 405


# --- the admin ------------------------------------------------------------------------------------


def test_admin_actions_by_permission(client: Client, fake_airflow: FakeAirflow, finding_aid: Any) -> None:
    failed = in_airflow(fake_airflow, finding_aid, RunState.FAILED)
    running = in_airflow(fake_airflow, finding_aid, RunState.RUNNING)
    staff = make_user("staff", "airflow_client.view_jobrun", "airflow_client.rerun_job")
    staff.is_staff = True
    staff.save()
    client.force_login(staff)
    url = reverse("admin:airflow_client_jobrun_changelist")

    page = client.get(url).content.decode()
    assert "Re-run every task of the selected runs" in page
    assert "Cancel the selected runs" not in page  # needs mark_job

    response = client.post(
        url, {"action": "rerun_runs", "_selected_action": [failed.pk, running.pk]}, follow=True
    )

    messages = [str(message) for message in response.context["messages"]]
    assert any(failed.dag_run_id in text and "Queued" in text for text in messages)
    assert any(running.dag_run_id in text and "still going on" in text for text in messages)
    assert JobAction.objects.get().user == staff
