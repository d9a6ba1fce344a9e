"""Issue 12: a record's widget, the history and its CSV cost the same queries whatever the history.

Query counts do not depend on the machine, so the benchmark's query targets are
asserted here (benchmarks/bench_records.py measures the times).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from airflow_client import tables
from airflow_client.mixins import prefetch_job_runs
from airflow_client.models import JobRun
from airflow_client.widget import fingerprint
from tests.factories import bulk_history, make_run
from tests.testapp.models import FindingAid

pytestmark = pytest.mark.django_db

LIST = reverse("airflow_client:run_list")
CSV = reverse("airflow_client:run_list_csv")


def queries_of(client: Client, url: str, **headers: str) -> tuple[int, int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers=headers)
        body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, len(queries), body.decode()


def status_url(obj: Any, run: JobRun, tag: str) -> str:
    url = reverse(
        "airflow_client:status",
        kwargs={"model": "testapp.findingaid", "dag_id": "index_finding_aid", "object_id": str(obj.pk)},
    )
    return f"{url}?uid=1&tag={tag}&run={run.pk}"


def test_the_widgets_answers_cost_the_same_queries_for_10_and_1000_runs(
    client: Client, operator, finding_aid
):
    client.force_login(operator)
    page = reverse("findingaid_detail", args=[finding_aid.pk])
    counts = []
    for size in (10, 1_000):
        bulk_history(finding_aid, size - JobRun.objects.for_object(finding_aid).count())
        success = make_run(finding_aid, state="success")
        run = make_run(finding_aid, state="running")
        url = status_url(finding_aid, run, tag="stale")
        page_status, page_queries, page_html = queries_of(client, page)
        unchanged = queries_of(
            client, status_url(finding_aid, run, tag=fingerprint(run)), **{"HX-Request": "true"}
        )
        changed = queries_of(client, url, **{"HX-Request": "true"})
        run.set_state("failed")
        finished = queries_of(client, url, **{"HX-Request": "true"})
        # what they show: the run going on, then finished, and the last success
        assert page_status == 200
        assert "ac-state-running" in page_html
        assert (unchanged[0], changed[0], finished[0]) == (204, 200, 286)
        assert ">Running<" in changed[2]
        assert ">Failed<" in finished[2]
        assert reverse("airflow_client:run_detail", args=[success.pk]) in finished[2]
        counts.append((page_queries, unchanged[1], changed[1], finished[1]))
    assert counts[0] == counts[1]


def test_a_running_run_older_than_the_newest_is_the_one_shown(client: Client, operator, finding_aid):
    bulk_history(finding_aid, 50)
    running = make_run(finding_aid, state="running", age=timedelta(days=2))
    newest = make_run(finding_aid, state="success", age=timedelta(days=1))
    client.force_login(operator)
    html = client.get(reverse("findingaid_detail", args=[finding_aid.pk])).content.decode()
    assert "ac-state-running" in html
    running.set_state("success")
    html = client.get(reverse("findingaid_detail", args=[finding_aid.pk])).content.decode()
    assert "ac-state-running" not in html
    assert reverse("airflow_client:run_detail", args=[newest.pk]) in html  # the newest, and the last success


def count_line(client: Client, query: str = "") -> str:
    """What the history says of the number of runs ("about 300 runs")."""
    html = client.get(f"{LIST}?{query}").content.decode()
    return " ".join(html.split('class="ac-count">')[1].split("·")[0].split())


def superuser() -> User:
    """Counted as a superuser: Django's two permission queries are the backend's, not the page's."""
    return User.objects.create(username="admin", is_superuser=True, is_staff=True)


def test_the_history_filtered_to_a_record_and_a_state_costs_at_most_8_queries(client: Client, finding_aid):
    client.force_login(superuser())
    url = f"{LIST}?record_type=testapp.findingaid&object_id={finding_aid.pk}&state=failed"
    counts = []
    for size in (20, 1_000):
        bulk_history(finding_aid, size - JobRun.objects.for_object(finding_aid).count())
        status, queries, html = queries_of(client, url)
        assert status == 200
        assert 'class="ac-chart' in html
        assert count_line(client, url.split("?")[1]) == f"{size // 10} runs"  # filtered and few: exact
        counts.append(queries)
    # session, user, count, chart, the "started by" choices, the page, its links, their records
    assert counts[0] == counts[1] <= 8


def test_the_history_and_its_csv_list_a_records_run_once_with_two_records(
    client: Client, viewer, finding_aid
):
    other = FindingAid.objects.create(title="Letters of Babbage")
    run = make_run(finding_aid, state="failed")
    run.link_record(ContentType.objects.get_for_model(FindingAid).pk, str(other.pk))
    client.force_login(viewer)
    query = f"record_type=testapp.findingaid&object_id={other.pk}&state=failed"
    assert count_line(client, query) == "1 run"
    html = client.get(f"{LIST}?{query}").content.decode()
    assert "Papers of Ada Lovelace" in html
    assert "Letters of Babbage" in html
    rows = list(csv.DictReader(io.StringIO(queries_of(client, CSV)[2])))
    assert [row["records"] for row in rows] == [
        f"testapp.findingaid:{finding_aid.pk} testapp.findingaid:{other.pk}"
    ]


LIST_PAGE = Template(
    "{% load airflow_client %}{% for obj in objects %}"
    "{% airflow_status obj job='index_finding_aid' compact=True %}{% endfor %}"
)


def test_a_list_page_of_50_finished_and_50_active_compact_widgets_costs_at_most_8_queries(operator):
    finished = FindingAid.objects.bulk_create(FindingAid(title=f"Finished {i}") for i in range(50))
    active = FindingAid.objects.bulk_create(FindingAid(title=f"Active {i}") for i in range(50))
    for obj in finished:
        make_run(obj, state="success", age=timedelta(days=1))
        make_run(obj, state="failed")
    for obj in active:
        make_run(obj, state="success", age=timedelta(days=1))
        make_run(obj, state="running")
    bulk_history(finished[0], 200)  # a long history on the page changes nothing
    request = RequestFactory().get("/findingaids/")
    request.user = User.objects.get(pk=operator.pk)
    pks = [obj.pk for obj in [*finished, *active]]
    ContentType.objects.get_for_model(FindingAid)  # a running site has it cached
    with CaptureQueriesContext(connection) as queries:
        objects = prefetch_job_runs(FindingAid.objects.filter(pk__in=pks))
        html = LIST_PAGE.render(Context({"request": request, "objects": objects}))
    assert html.count('class="ac-widget') == 100
    assert html.count("ac-state-failed") == 50
    assert html.count("ac-state-running") == 50
    # the records, current / latest / last success / open triggers, the user's permissions (2)
    assert len(queries) <= 8


def test_sorting_by_records_reads_each_runs_first_record(client: Client, viewer, finding_aid, collection):
    second = FindingAid.objects.create(title="Second")
    a = make_run(second, state="success")
    b = make_run(finding_aid, state="success", age=timedelta(days=2))
    c = make_run(finding_aid, state="failed", age=timedelta(days=1))
    d = make_run(collection, dag_id="harvest_collection")
    client.force_login(viewer)

    def order(sort: str) -> list[int]:
        rows = client.get(f"{LIST}?sort={sort}").context["table"].paginated_rows.data
        return [run.pk for run in rows]

    stored = {run.pk: run for run in JobRun.objects.all()}
    assert [stored[run.pk].record_key for run in (a, b, c, d)] == [
        str(second.pk),
        str(finding_aid.pk),
        str(finding_aid.pk),
        collection.pk,
    ]
    # by the first record's id (as text), newest first within one record; "-records" reverses both
    by_record = sorted(stored.values(), key=lambda run: (run.record_key, -run.created_at.timestamp()))
    assert order("records") == [run.pk for run in by_record]
    assert order("-records") == [run.pk for run in reversed(by_record)]


def test_the_csv_is_the_same_across_its_chunks(client: Client, viewer, finding_aid, monkeypatch):
    monkeypatch.setattr(tables, "CSV_CHUNK", 3)
    runs = [make_run(finding_aid, state="success", age=timedelta(hours=i)) for i in range(8)]
    gone = FindingAid.objects.create(title="Deleted since")
    make_run(gone, age=timedelta(days=1))
    gone.delete()
    client.force_login(viewer)
    with CaptureQueriesContext(connection) as queries:
        rows = list(csv.DictReader(io.StringIO(queries_of(client, CSV)[2])))
    assert [int(row["id"]) for row in rows[:8]] == [run.pk for run in runs]
    assert {row["records"] for row in rows[:8]} == {f"testapp.findingaid:{finding_aid.pk}"}
    assert rows[8]["records"] == ""  # its record was deleted
    assert all(row["url"].endswith(f"/airflow/runs/{row['id']}/") for row in rows)
    assert len(rows) == 9
    links = [q for q in queries.captured_queries if 'FROM "airflow_client_jobrecord"' in q["sql"]]
    assert len(links) == 3  # one per chunk of 3 runs


def test_the_count_is_exact_on_sqlite_or_when_few(client: Client, viewer, finding_aid, monkeypatch):
    monkeypatch.setattr(tables, "EXACT_COUNT_LIMIT", 3)
    for _ in range(2):
        make_run(finding_aid)
    client.force_login(viewer)
    assert count_line(client) == "2 runs"


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the estimate is PostgreSQL's")
def test_postgresql_estimates_a_large_count_and_counts_a_small_one(
    client: Client, viewer, finding_aid, monkeypatch
):
    monkeypatch.setattr(tables, "EXACT_COUNT_LIMIT", 50)
    bulk_history(finding_aid, 300, failed_every=100)  # ANALYZEd: the planner knows the table
    client.force_login(viewer)
    assert count_line(client) == "about 300 runs"  # the table's reltuples
    assert count_line(client, "state=failed") == "3 runs"  # filtered and few: exact
    filtered_large = count_line(client, f"record_type=testapp.findingaid&object_id={finding_aid.pk}")
    assert re.fullmatch(r"about \d+ runs", filtered_large)  # the planner's estimate, above the limit
    assert int(filtered_large.split()[1]) > 50
    response = client.get(f"{LIST}?page=999")  # past an estimated end: the last page, not an error
    assert response.status_code == 200
