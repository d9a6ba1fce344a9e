"""The run detail page: conf, times, trigger record, task instances read live, and the log viewer."""

from __future__ import annotations

import re

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from airflow_client import refreshing, triggering
from airflow_client.jobs import get_job
from airflow_client.models import JobRun
from airflow_client.transports.fake import FakeAirflow
from tests.factories import make_run

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def started(finding_aid, fake_airflow: FakeAirflow) -> JobRun:
    """A run this app started, with two tasks, the second on its second try."""
    run = triggering.trigger(get_job("index_finding_aid"), finding_aid, note="Re-index <after> edits")
    fake_airflow.advance(run.dag_run_id)
    fake_airflow.set_task(run.dag_run_id, "extract", state="success")
    fake_airflow.set_task(run.dag_run_id, "load", state="running", try_number=2)
    fake_airflow.add_log(run.dag_run_id, "load", "first try", try_number=1)
    return refreshing.refresh(run, force=True)


def test_detail_shows_conf_note_times_and_tasks(client: Client, viewer, started, finding_aid):
    client.force_login(viewer)
    response = client.get(reverse("airflow_client:run_detail", args=[started.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"&quot;finding_aid_id&quot;: {finding_aid.pk}" in html  # conf as indented JSON
    assert "Re-index &lt;after&gt; edits" in html  # the note, escaped
    assert "Papers of Ada Lovelace" in html
    assert ">Running<" in html
    assert "extract" in html
    assert "load" in html
    # one log link per try: extract has one, load two
    assert len(re.findall(r'class="ac-log-link"', html)) == 3
    assert "https://airflow.example.org" in html


@override_settings(AIRFLOW_PRESERVE_JOB_TRIGGER=True)
def test_detail_shows_the_trigger_when_kept(client: Client, viewer, finding_aid, fake_airflow):
    run = triggering.trigger(get_job("index_finding_aid"), finding_aid, user=viewer)
    client.force_login(viewer)
    html = client.get(reverse("airflow_client:run_detail", args=[run.pk])).content.decode()
    assert "Trigger request" in html
    assert "viewer" in html
    assert "answer" in html
    assert "rest_api" in html


def test_detail_without_trigger(client: Client, viewer, finding_aid):
    run = make_run(finding_aid)
    client.force_login(viewer)
    html = client.get(reverse("airflow_client:run_detail", args=[run.pk])).content.decode()
    assert "Trigger request" not in html
    assert client.get(reverse("airflow_client:run_detail", args=[run.pk + 100])).status_code == 404


def test_log_lines_are_escaped(client: Client, viewer, started, fake_airflow: FakeAirflow):
    fake_airflow.add_log(started.dag_run_id, "extract", "<script>alert(1)</script>", "done")
    client.force_login(viewer)
    url = reverse("airflow_client:run_log", args=[started.pk, "extract", 1])
    html = client.get(url, headers=HTMX).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "<html" not in html  # a fragment for htmx
    full = client.get(url).content.decode()  # without JS: a page of its own
    assert "<html" in full
    assert "done" in full


def test_log_load_more_follows_the_continuation_token(
    client: Client, viewer, started, fake_airflow: FakeAirflow
):
    fake_airflow.log_page_size = 2
    fake_airflow.add_log(started.dag_run_id, "extract", "line 1", "line 2", "line 3")
    client.force_login(viewer)
    first = client.get(reverse("airflow_client:run_log", args=[started.pk, "extract", 1]), headers=HTMX)
    html = first.content.decode()
    assert "line 1" in html
    assert "line 2" in html
    assert "line 3" not in html
    more = re.search(r'hx-get="([^"]+)"[^>]*>Load more', html)
    assert more
    second = client.get(more.group(1).replace("&amp;", "&"), headers=HTMX).content.decode()
    assert "line 3" in second
    assert "line 1" not in second
    assert "Load more" not in second  # the task finished: nothing more to load


def test_log_of_an_unknown_try(client: Client, viewer, started):
    client.force_login(viewer)
    response = client.get(reverse("airflow_client:run_log", args=[started.pk, "extract", 5]), headers=HTMX)
    assert response.status_code == 200
    assert "Airflow has no log for this try" in response.content.decode()  # Airflow said 404
