"""How far a run got: in the widget (progress while it runs, the failed task after), from task
events when they are pushed, else from the task instances a refresh reads; and the run's timeline."""

from __future__ import annotations

from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.urls import reverse

from airflow_client.models import JobEvent, JobRun
from airflow_client.refreshing import refresh
from airflow_client.states import RunState
from airflow_client.transports.fake import FakeAirflow
from tests.events import encode, event, signed
from tests.factories import make_run

pytestmark = pytest.mark.django_db


def widget(user: Any, obj: Any) -> str:
    request = RequestFactory().get("/findingaids/1/")
    request.user = user
    template = Template('{% load airflow_client %}{% airflow_status obj "index_finding_aid" %}')
    return template.render(Context({"request": request, "obj": obj}))


def push(client: Client, data: dict[str, Any]) -> None:
    body = encode(data)
    response = client.post("/airflow/events/", body, content_type="application/json", headers=signed(body))
    assert response.status_code == 200, response.content


def test_a_running_run_shows_its_progress_from_pushed_task_events(
    client: Client, operator: Any, finding_aid: Any
) -> None:
    conf = {"finding_aid_id": finding_aid.pk}
    for kind, task_id in [
        ("task_start", "fetch"),
        ("task_success", "fetch"),
        ("task_start", "map"),
        ("task_success", "map"),
        ("task_start", "index"),
    ]:
        push(client, event(kind, conf=conf, task_id=task_id, task_count=7))

    html = widget(operator, finding_aid)

    assert "2 of 7 tasks done" in html
    assert 'max="7" value="2"' in html  # the bar, and its text for screen readers
    assert "running index" in html


def test_a_refresh_reads_progress_from_the_task_instances(
    operator: Any, finding_aid: Any, fake_airflow: FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 0
    dag_run = fake_airflow.add_run("index_finding_aid", state=RunState.RUNNING)
    fake_airflow.set_task(dag_run.run_id, "fetch", state="success")
    fake_airflow.set_task(dag_run.run_id, "map", state="success", map_index=0)
    fake_airflow.set_task(dag_run.run_id, "map", state="running", map_index=1)
    fake_airflow.set_task(dag_run.run_id, "index", state=None)
    run = make_run(finding_aid, dag_run_id=dag_run.run_id, state=RunState.RUNNING, refreshed_at=None)

    run = refresh(run)

    assert (run.tasks_done, run.tasks_total, run.running_task_id) == (1, 3, "map")
    assert fake_airflow.call_count("task_instances") == 1
    assert "1 of 3 tasks done" in widget(operator, finding_aid)


def test_no_task_instances_are_read_while_events_are_pushed(
    client: Client, finding_aid: Any, fake_airflow: FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 0
    dag_run = fake_airflow.add_run("index_finding_aid", state=RunState.RUNNING)
    push(
        client,
        event("task_start", run_id=dag_run.run_id, conf={"finding_aid_id": finding_aid.pk}, task_id="a"),
    )

    refresh(JobRun.objects.get())

    assert fake_airflow.call_count("get_run") == 1
    assert fake_airflow.call_count("task_instances") == 0


def test_progress_survives_airflow_refusing_the_task_instances(
    finding_aid: Any, fake_airflow: FakeAirflow, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 0
    dag_run = fake_airflow.add_run("index_finding_aid", state=RunState.RUNNING)
    run = make_run(
        finding_aid,
        dag_run_id=dag_run.run_id,
        state=RunState.QUEUED,
        refreshed_at=None,
        tasks_total=4,
        tasks_done=1,
    )
    from airflow_client.exceptions import AirflowUnavailable
    from airflow_client.transports.fake import FakeTransport

    def unavailable(*args: Any) -> Any:
        raise AirflowUnavailable("busy")

    monkeypatch.setattr(FakeTransport, "task_instances", unavailable)

    run = refresh(run)

    assert run.state == RunState.RUNNING  # the run itself was read
    assert (run.tasks_done, run.tasks_total) == (1, 4)


def test_a_failed_run_names_its_failed_task_with_a_link_to_its_log(
    operator: Any, finding_aid: Any, fake_airflow: FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 0
    dag_run = fake_airflow.add_run("index_finding_aid", state=RunState.RUNNING)
    fake_airflow.set_task(dag_run.run_id, "fetch", state="success")
    fake_airflow.set_task(dag_run.run_id, "map", state="failed", try_number=2, map_index=4)
    fake_airflow.set_task(dag_run.run_id, "index", state="upstream_failed", try_number=0)
    fake_airflow.finish(dag_run.run_id, RunState.FAILED)
    run = make_run(finding_aid, dag_run_id=dag_run.run_id, state=RunState.RUNNING, refreshed_at=None)

    run = refresh(run)
    html = widget(operator, finding_aid)

    assert run.state == RunState.FAILED
    log = reverse("airflow_client:run_log", kwargs={"pk": run.pk, "task_id": "map", "try_number": 2})
    assert f'<a href="{log}?map_index=4">map [4]</a>' in html
    assert "try 2" in html
    assert "tasks done" not in html  # no progress bar once it is over


def test_the_failed_task_is_not_a_link_for_someone_who_cannot_see_logs(finding_aid: Any) -> None:
    from tests.factories import make_user

    make_run(
        finding_aid,
        state=RunState.FAILED,
        tasks_total=2,
        tasks_done=2,
        failed_task_id="index",
        failed_try_number=1,
    )
    html = widget(make_user("nobody"), finding_aid)
    assert "<strong>index</strong>" in html
    assert "/logs/" not in html


def test_a_poll_answers_again_when_only_the_progress_changed(
    client: Client, operator: Any, finding_aid: Any
) -> None:
    conf = {"finding_aid_id": finding_aid.pk}
    push(client, event("task_start", conf=conf, task_id="fetch"))
    run = JobRun.objects.get()
    client.force_login(operator)
    url = reverse(
        "airflow_client:status",
        kwargs={
            "model": "testapp.findingaid",
            "dag_id": "index_finding_aid",
            "object_id": str(finding_aid.pk),
        },
    )
    from airflow_client.widget import fingerprint

    before = fingerprint(run)
    push(client, event("task_success", conf=conf, task_id="fetch"))
    run.refresh_from_db()

    assert fingerprint(run) != before
    response = client.get(f"{url}?uid=1&tag={before}&run={run.pk}")
    assert "1 of 3 tasks done" in response.content.decode()


def test_the_run_page_shows_the_timeline(client: Client, operator: Any, finding_aid: Any) -> None:
    conf = {"finding_aid_id": finding_aid.pk}
    push(client, event("task_start", conf=conf, task_id="fetch"))
    push(client, event("pages.fetched", conf=conf, task_id="fetch", payload={"pages": 500}))
    push(client, event("task_failure", conf=conf, task_id="fetch", error="timeout <b>talking</b> to OAI"))
    run = JobRun.objects.get()
    client.force_login(operator)

    html = client.get(reverse("airflow_client:run_detail", args=[run.pk])).content.decode()

    timeline = html[html.index('id="events"') :]
    assert timeline.index("Task started") < timeline.index("pages.fetched") < timeline.index("Task failed")
    assert "&quot;pages&quot;: 500" in timeline
    assert "timeout &lt;b&gt;talking&lt;/b&gt; to OAI" in timeline  # escaped
    assert "on worker-1" in timeline


def test_a_run_without_events_has_no_timeline(client: Client, operator: Any, finding_aid: Any) -> None:
    run = make_run(finding_aid)
    client.force_login(operator)
    assert (
        'id="events"' not in client.get(reverse("airflow_client:run_detail", args=[run.pk])).content.decode()
    )


def test_retention_deletes_a_run_with_its_events(client: Client, finding_aid: Any) -> None:
    from airflow_client.jobs import get_job
    from airflow_client.retention import KeepNewestAndLastSuccess

    job = get_job("index_finding_aid")
    job.retention = KeepNewestAndLastSuccess()
    try:
        conf = {"finding_aid_id": finding_aid.pk}
        push(client, event("task_start", conf=conf, run_id="first", task_id="a"))
        push(client, event("dag_success", conf=conf, run_id="first"))
        assert JobEvent.objects.count() == 2
        push(client, event("dag_success", conf=conf, run_id="second"))
    finally:
        del job.retention

    assert list(JobRun.objects.values_list("dag_run_id", flat=True)) == ["second"]
    assert [e.job_run.dag_run_id for e in JobEvent.objects.all()] == ["second"]
