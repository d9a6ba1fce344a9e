"""Who started a run: the user (kept after the JobTrigger is gone), or Airflow, on every page that shows runs."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from airflow_client import sync, trigger
from airflow_client.models import JobRun, JobTrigger
from airflow_client.states import RunState
from airflow_client.transports.fake import FakeAirflow
from tests.factories import make_run, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(db: None) -> User:
    user = make_user("alice", "airflow_client.view_jobrun", "airflow_client.trigger_job")
    user.first_name, user.last_name = "Alice", "Archivist"
    user.save()
    return user


def test_a_run_remembers_who_started_it_after_its_trigger_is_gone(
    alice: User, finding_aid: Any, fake_airflow: FakeAirflow
) -> None:
    run = trigger("index_finding_aid", finding_aid, user=alice)

    assert not JobTrigger.objects.exists()  # not preserved: deleted once the run exists
    run.refresh_from_db()
    assert run.started_by == alice
    assert run.started_by_label == "Alice Archivist"


def test_runs_found_in_airflow_say_airflow(finding_aid: Any, fake_airflow: FakeAirflow) -> None:
    fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})
    sync()
    run = JobRun.objects.get()
    assert run.started_by is None
    assert run.started_by_label == "Airflow"
    run.triggering_user = "admin"  # Airflow 3 says who pressed its button
    assert run.started_by_label == "Airflow (admin)"


def test_started_from_code_without_a_user(finding_aid: Any, fake_airflow: FakeAirflow) -> None:
    assert trigger("index_finding_aid", finding_aid).started_by_label == "this site"


def test_history_column_and_filter(client: Client, alice: User, finding_aid: Any) -> None:
    mine = make_run(finding_aid, started_here=True, started_by=alice)
    airflows = make_run(finding_aid, started_here=False)
    client.force_login(alice)
    url = reverse("airflow_client:run_list")

    page = client.get(url).content.decode()
    assert "Started by" in page
    assert "Alice Archivist" in page

    only_alice = client.get(url, {"started_by": str(alice.pk)}).context["table"].data
    assert [run.pk for run in only_alice] == [mine.pk]
    only_airflow = client.get(url, {"started_by": "airflow"}).context["table"].data
    assert [run.pk for run in only_airflow] == [airflows.pk]
    assert client.get(url, {"started_by": "999999"}).status_code == 200  # not a choice: the filter says so


def test_run_page_widget_csv_and_admin(client: Client, alice: User, finding_aid: Any) -> None:
    run = make_run(finding_aid, started_here=True, started_by=alice)
    client.force_login(alice)

    detail = client.get(reverse("airflow_client:run_detail", args=[run.pk])).content.decode()
    assert "Started by</dt><dd>Alice Archivist" in detail

    answer = client.get(reverse("airflow_client:run_list_csv"))
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert rows[0]["started_by"] == "alice"

    record_page = client.get(f"/findingaids/{finding_aid.pk}/").content.decode()
    assert "Alice Archivist" in record_page

    admin = make_user("boss")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    assert "Alice Archivist" in client.get(reverse("admin:airflow_client_jobrun_changelist")).content.decode()


def test_the_user_deleted_later_leaves_the_run(alice: User, finding_aid: Any) -> None:
    run = make_run(finding_aid, started_here=True, started_by=alice)
    alice.delete()
    run.refresh_from_db()
    assert run.state == RunState.SUCCESS
    assert run.started_by_label == "this site"
