from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from airflow_client import trigger
from airflow_client.models import JobRun, JobTrigger
from airflow_client.transports import fake
from tests.factories import make_run
from tests.testapp.airflow_jobs import IndexFindingAid
from tests.testapp.models import Collection, FindingAid

pytestmark = pytest.mark.django_db


def test_jobrun_changelist_filters_and_links(admin_client: Client, finding_aid: Any, collection: Any) -> None:
    job_run = trigger(IndexFindingAid, finding_aid, conf={"tag": "needle"})
    make_run(collection, dag_id="harvest_collection", state="failed")
    url = reverse("admin:airflow_client_jobrun_changelist")

    page = admin_client.get(url).content.decode()
    assert job_run.dag_run_id in page
    assert f"https://airflow.example.org/dags/index_finding_aid/runs/{job_run.dag_run_id}" in page
    assert reverse("admin:testapp_findingaid_change", args=[finding_aid.pk]) in page
    for title in ("By DAG id", "By state", "By environment", "By record type"):
        assert title in page

    searched = admin_client.get(url, {"q": "needle"})
    assert [run.dag_id for run in searched.context["cl"].result_list] == ["index_finding_aid"]

    filtered = admin_client.get(url, {"state": "failed"}).content.decode()
    assert job_run.dag_run_id not in filtered

    detail = admin_client.get(reverse("admin:airflow_client_jobrun_change", args=[job_run.pk]))
    assert detail.status_code == 200
    assert "Papers of Ada" in detail.content.decode()


def test_jobtrigger_admin(admin_client: Client, finding_aid: Any, settings: Any) -> None:
    settings.AIRFLOW_PRESERVE_JOB_TRIGGER = True
    job_run = trigger(IndexFindingAid, finding_aid)
    job_trigger = JobTrigger.objects.get()
    page = admin_client.get(reverse("admin:airflow_client_jobtrigger_changelist")).content.decode()
    assert job_run.dag_run_id in page
    change = admin_client.get(reverse("admin:airflow_client_jobtrigger_change", args=[job_trigger.pk]))
    assert change.status_code == 200


def test_record_page_shows_its_runs_inline(admin_client: Client, collection: Any) -> None:
    run = make_run(collection, dag_id="harvest_collection", state="success")
    page = admin_client.get(reverse("admin:testapp_collection_change", args=[collection.pk])).content.decode()
    assert "Job runs" in page
    assert reverse("admin:airflow_client_jobrun_change", args=[run.pk]) in page
    assert run.dag_run_id in page


def test_bulk_trigger_action_reports_per_record(admin_client: Client, fake_airflow: fake.FakeAirflow) -> None:
    first = FindingAid.objects.create(title="First")
    busy = FindingAid.objects.create(title="Busy")
    running = trigger(IndexFindingAid, busy)

    response = admin_client.post(
        reverse("admin:testapp_findingaid_changelist"),
        {"action": "trigger_index_finding_aid", "_selected_action": [first.pk, busy.pk]},
        follow=True,
    )
    messages = [str(message) for message in response.context["messages"]]
    started = JobRun.objects.for_object(first).get()
    assert f"First: started Index finding aid (run {started.dag_run_id})." in messages
    assert f"Busy: not started, run {running.dag_run_id} is already queued." in messages
    assert fake_airflow.call_count("trigger") == 2


def test_bulk_trigger_action_reports_failures_and_permissions(
    client: Client, fake_airflow: fake.FakeAirflow
) -> None:
    user = User.objects.create_user("editor", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_collection", "change_collection"])
    )
    client.force_login(user)
    collection = Collection.objects.create(slug="c1", name="Maps")
    url = reverse("admin:testapp_collection_changelist")
    data = {"action": "trigger_harvest_collection", "_selected_action": [collection.pk]}

    response = client.post(url, data, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "Maps: not started, you may not start Harvest collection."
    ]

    user.user_permissions.add(Permission.objects.get(codename="trigger_job"))
    fake_airflow.add_dag("harvest_collection", paused=True)
    response = client.post(url, data, follow=True)
    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("Maps: not started, Airflow did not start harvest_collection")
    assert "paused" in message
    # The paused check is asked before the trigger, so nothing was sent.
    assert fake_airflow.call_count("get_dag") == 1
    assert fake_airflow.call_count("trigger") == 0


def test_changelist_queries_do_not_grow_with_rows(admin_client: Client) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("admin:airflow_client_jobrun_changelist")

    def count_queries(runs: int) -> int:
        for i in range(runs):
            make_run(FindingAid.objects.create(title=f"Aid {i}"), state="success")
            make_run(Collection.objects.create(slug=f"c{runs}-{i}", name="C"), dag_id="harvest_collection")
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(url).status_code == 200
        return len(queries)

    assert count_queries(2) == count_queries(20)


# --- an admin that is current, and that names Jobs by their label (issue 11) -------------------


def test_the_changelist_shows_unfinished_runs_as_airflow_has_them(
    admin_client: Client, finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 60
    job_run = trigger(IndexFindingAid, finding_aid)
    JobRun.objects.filter(pk=job_run.pk).update(refreshed_at=None)  # due for a read
    fake_airflow.finish(job_run.dag_run_id, "success")
    url = reverse("admin:airflow_client_jobrun_changelist")

    page = admin_client.get(url).content.decode()

    assert "Succeeded" in page
    assert JobRun.objects.get().state == "success"
    assert fake_airflow.call_count("get_run") == 1
    admin_client.get(url)
    assert fake_airflow.call_count("get_run") == 1  # finished now: not asked again


def test_the_changelist_asks_each_run_at_most_once_per_interval(
    admin_client: Client, finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 60
    job_run = trigger(IndexFindingAid, finding_aid)
    JobRun.objects.filter(pk=job_run.pk).update(refreshed_at=None)
    url = reverse("admin:airflow_client_jobrun_changelist")
    admin_client.get(url)
    admin_client.get(url)
    assert fake_airflow.call_count("get_run") == 1


def test_a_slow_airflow_holds_the_page_no_longer_than_its_timeout(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from airflow_client.refreshing import refresh_shown

    settings.AIRFLOW_ENVIRONMENTS = {
        "default": {**settings.AIRFLOW_ENVIRONMENTS["default"], "TIMEOUT": 0.2},
    }
    runs = [make_run(finding_aid, state="running", refreshed_at=None) for _ in range(4)]
    for run in runs:
        fake_airflow.add_run("index_finding_aid", run.dag_run_id, state="running")
    original = fake.FakeTransport.get_run

    def slow(self: Any, dag_id: str, run_id: str) -> Any:
        time.sleep(0.3)
        return original(self, dag_id, run_id)

    monkeypatch.setattr(fake.FakeTransport, "get_run", slow)

    started = time.monotonic()
    refresh_shown(runs)

    assert time.monotonic() - started < 0.9  # one call, then the budget is spent
    assert fake_airflow.call_count("get_run") == 1


def test_an_unreachable_airflow_leaves_the_changelist_readable(
    admin_client: Client, finding_aid: Any, fake_airflow: fake.FakeAirflow
) -> None:
    make_run(finding_aid, state="running", refreshed_at=None)
    fake_airflow.fail_next()
    response = admin_client.get(reverse("admin:airflow_client_jobrun_changelist"))
    assert response.status_code == 200
    assert JobRun.objects.get().refresh_error


def test_the_inline_reads_as_the_run(
    admin_client: Client, finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_REFRESH_INTERVAL = 60
    user = User.objects.create(username="alice", first_name="Alice")
    running = make_run(finding_aid, state="running", refreshed_at=None, started_here=True, started_by=user)
    fake_airflow.add_run("index_finding_aid", running.dag_run_id, state="success")

    page = admin_client.get(
        reverse("admin:testapp_findingaid_change", args=[finding_aid.pk])
    ).content.decode()

    assert "Index finding aid" in page
    assert "(index_finding_aid)" in page
    assert "Succeeded" in page  # refreshed for the page
    assert "Alice" in page
    assert reverse("airflow_client:run_detail", args=[running.pk]) in page
    assert reverse("airflow_client:run_detail", args=[running.pk]) + "#tasks" in page


def test_the_bulk_action_is_named_by_the_jobs_label(admin_client: Client, finding_aid: Any) -> None:
    page = admin_client.get(reverse("admin:testapp_findingaid_changelist")).content.decode()
    assert "Start “Index finding aid” (index_finding_aid) for the selected records" in page
