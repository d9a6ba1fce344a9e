"""Job history: filters in the query string, sortable table, htmx partial, CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from airflow_client.models import JobRecord, JobRun
from tests.factories import make_run
from tests.testapp.models import Collection, FindingAid

pytestmark = pytest.mark.django_db

LIST = "/airflow/runs/"


@pytest.fixture
def runs(finding_aid, collection) -> dict[str, JobRun]:
    other = FindingAid.objects.create(title="Letters of Babbage")
    now = timezone.now()
    return {
        "ada_ok": make_run(finding_aid, state="success", start_date=now - timedelta(days=10)),
        "ada_failed": make_run(finding_aid, state="failed", started_here=True),
        "babbage": make_run(other, state="running"),
        "postcards": make_run(collection, dag_id="harvest_collection", state="success", run_type="scheduled"),
    }


def run_ids(response) -> set[str]:
    return {run.dag_run_id for run in response.context["table"].paginated_rows.data}


def test_full_page_lists_every_run_with_its_records(client: Client, viewer, runs):
    client.force_login(viewer)
    response = client.get(LIST)
    html = response.content.decode()
    assert "<form" in html
    assert "<html" in html
    assert run_ids(response) == {r.dag_run_id for r in runs.values()}
    assert "Papers of Ada Lovelace" in html
    assert "Postcards" in html
    assert "this app" in html
    assert "Airflow" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=failed", {"ada_failed"}),
        ("dag_id=harvest_collection", {"postcards"}),
        ("run_type=scheduled", {"postcards"}),
        ("started_from=app", {"ada_failed"}),
        ("started_from=airflow", {"ada_ok", "babbage", "postcards"}),
        ("record_type=testapp.collection", {"postcards"}),
        ("environment=default&state=success", {"ada_ok", "postcards"}),
    ],
)
def test_filters(client: Client, viewer, runs, query, expected):
    client.force_login(viewer)
    response = client.get(f"{LIST}?{query}")
    assert run_ids(response) == {runs[name].dag_run_id for name in expected}


def test_record_filter_matches_one_record(client: Client, viewer, runs, finding_aid):
    client.force_login(viewer)
    response = client.get(f"{LIST}?record_type=testapp.findingaid&object_id={finding_aid.pk}")
    assert run_ids(response) == {runs["ada_ok"].dag_run_id, runs["ada_failed"].dag_run_id}


def test_text_keys_with_slashes(client: Client, viewer, runs, collection):
    client.force_login(viewer)
    response = client.get(LIST, {"record_type": "testapp.collection", "object_id": collection.pk})
    assert run_ids(response) == {runs["postcards"].dag_run_id}


def test_date_range(client: Client, viewer, runs):
    client.force_login(viewer)
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    response = client.get(f"{LIST}?started_after={since}")
    assert runs["ada_ok"].dag_run_id not in run_ids(response)
    assert len(run_ids(response)) == 3


def test_sorting_by_each_column(client: Client, viewer, runs):
    client.force_login(viewer)
    for column in ("records", "dag_id", "state", "start_date", "duration", "started_here", "-duration"):
        response = client.get(f"{LIST}?sort={column}")
        assert response.status_code == 200, column
    ordered = [r.dag_run_id for r in client.get(f"{LIST}?sort=state").context["table"].paginated_rows.data]
    states = [JobRun.objects.get(dag_run_id=i).state for i in ordered]
    assert states == sorted(states)


def test_htmx_request_gets_only_the_table(client: Client, viewer, runs):
    client.force_login(viewer)
    response = client.get(f"{LIST}?state=failed", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="ac-runs"')
    assert "<html" not in html
    assert "<form" not in html
    assert runs["ada_failed"].dag_run_id in html
    assert runs["ada_ok"].dag_run_id not in html
    assert "HX-Request" in response["Vary"]
    # a history restore (back button, cache miss) needs the whole page
    restore = client.get(LIST, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.content.decode()


def test_the_form_and_table_swap_with_htmx_and_push_the_url(client: Client, viewer, runs):
    client.force_login(viewer)
    html = client.get(LIST).content.decode()
    assert 'hx-target="#ac-runs"' in html
    assert 'hx-push-url="true"' in html
    assert 'hx-boost="true"' in html  # sort and page links swap the table too


def test_paging(client: Client, viewer, finding_aid):
    for _ in range(30):
        make_run(finding_aid)
    client.force_login(viewer)
    first, second = client.get(LIST), client.get(f"{LIST}?page=2")
    assert len(run_ids(first)) == 25
    assert len(run_ids(second)) == 5
    assert "?page=2" in first.content.decode()


def test_csv_export_of_the_filtered_rows(client: Client, viewer, runs, finding_aid):
    client.force_login(viewer)
    response = client.get(
        reverse("airflow_client:run_list_csv"),
        {"record_type": "testapp.findingaid", "object_id": finding_aid.pk},
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["dag_run_id"] for row in rows} == {runs["ada_ok"].dag_run_id, runs["ada_failed"].dag_run_id}
    failed = next(row for row in rows if row["state"] == "failed")
    assert failed["records"] == f"testapp.findingaid:{finding_aid.pk}"
    assert failed["started_from"] == "app"
    assert failed["duration_seconds"] == "70"
    assert failed["url"].endswith(reverse("airflow_client:run_detail", args=[runs["ada_failed"].pk]))


def test_csv_cells_that_look_like_formulas_are_defused(client: Client, viewer):
    evil = Collection.objects.create(slug="=HYPERLINK(1)", name="x")
    make_run(evil, dag_id="harvest_collection")
    client.force_login(viewer)
    body = b"".join(client.get(reverse("airflow_client:run_list_csv")).streaming_content).decode()
    assert "'testapp.collection:=HYPERLINK(1)" not in body  # the cell starts with the label, not "="
    assert ",=" not in body


def test_widget_history_link_opens_the_record_filtered(client: Client, operator, runs, finding_aid):
    client.force_login(operator)
    page = client.get(reverse("findingaid_detail", args=[finding_aid.pk])).content.decode()
    href = page.split('class="ac-links"')[1].split("History")[0].rsplit('href="', 1)[1].split('"')[0]
    response = client.get(href.replace("&amp;", "&"))
    assert run_ids(response) == {runs["ada_ok"].dag_run_id, runs["ada_failed"].dag_run_id}


def test_records_column_costs_the_same_for_few_and_many_rows(client: Client, viewer, finding_aid, collection):
    """One query for the links and one per model, however many rows the page shows."""
    client.force_login(viewer)
    gone = FindingAid.objects.create(title="Deleted since")
    make_run(gone)
    gone.delete()
    make_run(collection, dag_id="harvest_collection")
    counts = []
    for _ in range(2):
        make_run(finding_aid)
        with CaptureQueriesContext(connection) as queries:
            html = client.get(LIST).content.decode()
        counts.append(len(queries))
        for _ in range(20):
            make_run(FindingAid.objects.create(title="Another aid"))
    assert counts[0] == counts[1]
    assert "Papers of Ada Lovelace" in html
    assert "Postcards" in html
    assert "Deleted since" not in html


def test_links_to_a_model_that_no_longer_exists_do_not_break_the_history(client, operator, finding_aid):
    run = make_run(finding_aid, state="success")
    gone = ContentType.objects.create(app_label="gone", model="thing")
    JobRecord.objects.create(job_run=run, content_type=gone, object_id="1", dag_id=run.dag_id)
    client.force_login(operator)
    response = client.get(reverse("airflow_client:run_list"))
    assert response.status_code == 200
    assert finding_aid.title in response.content.decode()
