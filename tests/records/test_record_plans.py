"""Issue 12: a record's look-ups go down an index to their answer; none reads the record's history.

The database's own plan says so: SQLite's EXPLAIN QUERY PLAN searches an index for
every table (no SCAN), and PostgreSQL's plan for the widget (after ANALYZE, as
autovacuum runs it) has no sequential scan of the runs or their links.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from airflow_client.triggering import pending_trigger
from airflow_client.widget import current_run, last_success
from tests.factories import bulk_history, make_run, make_user
from tests.pages import Page
from tests.testapp.airflow_jobs import IndexFindingAid
from tests.testapp.models import FindingAid

pytestmark = pytest.mark.django_db

TABLES = ("airflow_client_jobrun", "airflow_client_jobrecord", "airflow_client_jobtrigger")


def sql_of(action: Callable[[], Any]) -> list[str]:
    """The SELECTs ``action`` runs on the runs, their links and triggers."""
    with CaptureQueriesContext(connection) as queries:
        action()
    return [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].startswith("SELECT") and any(table in query["sql"] for table in TABLES)
    ]


def sqlite_scans(sql: str) -> list[str]:
    """The tables SQLite reads through (its users too, but the "started by" choices go over those)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        details = [row[3] for row in cursor.fetchall()]
    return [
        detail for detail in details if detail.startswith("SCAN") and not detail.startswith("SCAN auth_user")
    ]


def postgres_scans(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    history = ("airflow_client_jobrun", "airflow_client_jobrecord")  # open triggers are few: any plan will do
    return [
        f"{node['Node Type']} on {node['Relation Name']}"
        for node in nodes(plan[0]["Plan"])
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in history
    ]


def scans(sql: str) -> list[str]:
    return postgres_scans(sql) if connection.vendor == "postgresql" else sqlite_scans(sql)


@pytest.fixture
def long_history(finding_aid: Any) -> Any:
    """A record with 1,000 runs among 4,000 (so that its runs are worth an index to PostgreSQL too)."""
    bulk_history(FindingAid.objects.create(title="Another record"), 3_000)
    bulk_history(finding_aid, 1_000)  # ANALYZEd on PostgreSQL
    make_run(finding_aid, state="running")
    return finding_aid


def test_the_widgets_look_ups_read_no_history(long_history: Any) -> None:
    job = IndexFindingAid()
    for look_up in (current_run, last_success, pending_trigger):
        queries = sql_of(lambda look_up=look_up: look_up(job, long_history))
        assert queries, look_up.__name__
        for sql in queries:
            assert scans(sql) == [], (look_up.__name__, sql)


@pytest.mark.skipif(
    connection.vendor == "postgresql",
    reason="PostgreSQL plans by cost: over a few thousand runs reading them all is its cheaper plan "
    "(benchmarks/bench_records.py times this page at 100,000)",
)
def test_the_history_of_a_record_in_a_state_reads_no_other_runs(client: Client, long_history: Any) -> None:
    client.force_login(make_user("viewer", "airflow_client.view_jobrun"))
    url = f"/airflow/runs/?record_type=testapp.findingaid&object_id={long_history.pk}&state=failed"
    queries = sql_of(lambda: client.get(url))
    assert len(queries) >= 3  # the count, the chart, the page
    for sql in queries:
        assert scans(sql) == [], sql


@pytest.mark.skipif(
    connection.vendor == "postgresql",
    reason="PostgreSQL plans by cost: over a few thousand links reading them all is its cheaper plan",
)
def test_the_page_poll_finds_new_links_without_reading_the_history(client: Client, long_history: Any) -> None:
    """An idle page asks for the links made since it last heard: the index must reach that moment,
    not stop at the record and DAG and read their every link."""
    client.force_login(make_user("viewer", "airflow_client.view_jobrun"))
    page = Page.of(client.get(reverse("findingaid_detail", args=[long_history.pk])).content.decode())
    polled = sql_of(lambda: client.get(page.poll_url(), headers={"HX-Request": "true"}))
    links = [sql for sql in polled if '"created_at" >=' in sql and "airflow_client_jobrecord" in sql]
    assert len(links) == 1
    assert scans(links[0]) == []
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {links[0]}")
        plan = " ".join(row[3] for row in cursor.fetchall())
    assert "created_at>?" in plan, plan
