"""sync() reads unfinished runs through Airflow's run listings (issue 12): requests and queries by size.

The figures asserted here do not depend on the machine: requests are the fake's
calls (one per page, as one request per page to Airflow), queries are counted
by Django. benchmarks/bench_sync.py measures the time against a mock Airflow.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_httpx import HTTPXMock

from airflow_client import refresh, sync
from airflow_client.jobs import Job
from airflow_client.models import GONE_MESSAGE, JobRun
from airflow_client.signals import run_state_changed
from airflow_client.transports import fake, payloads
from airflow_client.transports.base import DagRun
from tests.factories import DAY, make_run
from tests.unit.rest_helpers import api_url, expect_token, run_json

pytestmark = pytest.mark.django_db

DAG = "index_finding_aid"  # a registered Job's DAG (tests.testapp.airflow_jobs)


@pytest.fixture(autouse=True)
def _forget_listings() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def changes() -> Iterator[list[tuple[str, str | None, str]]]:
    seen: list[tuple[str, str | None, str]] = []

    def receiver(sender: Any, job_run: JobRun, old_state: str | None, new_state: str, **kwargs: Any) -> None:
        seen.append((job_run.dag_run_id, old_state, new_state))

    run_state_changed.connect(receiver)
    yield seen
    run_state_changed.disconnect(receiver)


def recorded_here(dag_runs: Iterable[DagRun]) -> None:
    """Airflow's runs, recorded as a sync reads them (in bulk: hundreds of runs in one query)."""
    now = timezone.now()
    JobRun.objects.bulk_create(
        JobRun(
            environment="default",
            dag_id=run.dag_id,
            dag_run_id=run.run_id,
            state=run.state,
            run_type=run.run_type,
            triggered_by=run.triggered_by,
            triggering_user=run.triggering_user or "",
            logical_date=run.logical_date,
            run_after=run.run_after,
            queued_at=run.queued_at,
            start_date=run.start_date,
            end_date=run.end_date,
            conf=dict(run.conf),
            note=run.note or "",
            refreshed_at=now,
        )
        for run in dag_runs
    )


def going_on_in_airflow(fake_airflow: fake.FakeAirflow, count: int, prefix: str = "r") -> list[DagRun]:
    """``count`` runs queued in Airflow and recorded here as they are."""
    for number in range(count):
        fake_airflow.add_run(DAG, f"{prefix}{number:05}", conf={"finding_aid_id": number})
    runs = [run for run in fake_airflow.runs(DAG) if run.run_id.startswith(prefix)]
    recorded_here(runs)
    return runs


# --- requests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [250, 1000])
def test_unfinished_runs_cost_a_request_per_100_plus_one_per_run_not_listed(
    db: None, fake_airflow: fake.FakeAirflow, changes: list[Any], count: int, no_refresh_interval: None
) -> None:
    runs = going_on_in_airflow(fake_airflow, count)
    sync()  # the last sync: every run going on, unchanged
    started, ended = runs[: count // 10], runs[count // 10 : count // 10 + count // 20]
    for run in started:
        fake_airflow.advance(run.run_id)
    for run in ended:
        fake_airflow.finish(run.run_id)
    # Ended before the last sync's window (an hour ago), and deleted: no listing shows them.
    fake_airflow.clock = lambda: timezone.now() - timedelta(hours=1)
    for run in runs[-3:-1]:
        fake_airflow.finish(run.run_id)  # (a success: refresh() reads no task instances for it)
    fake_airflow.clock = timezone.now
    fake_airflow.remove(runs[-1].run_id)
    fake_airflow.calls.clear()
    changes.clear()

    report = sync()

    assert len(fake_airflow.calls) <= math.ceil(count / 100) + 5
    # The listings cover every run Airflow still shows in the window; the other three are read alone.
    assert fake_airflow.call_count("get_run") == 3
    assert (report.refreshed, report.updated, report.errors) == (3, len(started) + len(ended) + 3, ())
    in_airflow = {run.run_id: run.state for run in fake_airflow.runs()}
    recorded = dict(JobRun.objects.values_list("dag_run_id", "state"))
    assert recorded == {**in_airflow, runs[-1].run_id: "failed"}  # a run deleted in Airflow counts as failed
    assert len(changes) == len({run_id for run_id, _old, _new in changes}) == len(started) + len(ended) + 3


def test_more_than_100_runs_are_listed_page_by_page(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, caplog: pytest.LogCaptureFixture
) -> None:
    conf = {"finding_aid_id": finding_aid.pk}
    for number in range(150):
        fake_airflow.add_run(DAG, conf=conf, state="success" if number % 2 else "running")

    with caplog.at_level(logging.WARNING):
        first = sync()  # nothing remembered: back to the horizon
        for number in range(250):
            fake_airflow.add_run(DAG, conf=conf, state="failed" if number % 2 else "queued")
        second = sync()  # 250 runs since the last sync

    assert (first.discovered, second.discovered) == (150, 250)
    assert JobRun.objects.for_object(finding_aid).count() == 400
    assert "not looked at" not in caplog.text
    assert fake_airflow.call_count("get_run") == 0


def test_the_horizon_bounds_what_ended_but_not_what_goes_on(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, settings: Any
) -> None:
    settings.AIRFLOW_SYNC_HORIZON = 1
    conf = {"finding_aid_id": finding_aid.pk}
    fake_airflow.clock = lambda: timezone.now() - 40 * DAY
    waiting = fake_airflow.add_run(DAG, "queued_40_days_ago", conf=conf)
    fake_airflow.clock = lambda: timezone.now() - 2 * DAY
    fake_airflow.add_run(DAG, "ended_2_days_ago", conf=conf, state="success")
    fake_airflow.clock = lambda: timezone.now() - timedelta(hours=12)
    lately = fake_airflow.add_run(DAG, "ended_12_hours_ago", conf=conf, state="failed")
    fake_airflow.clock = timezone.now

    assert sync().discovered == 2

    assert set(JobRun.objects.values_list("dag_run_id", flat=True)) == {waiting.run_id, lately.run_id}


def test_a_listing_stopped_at_the_page_bound_is_logged(
    finding_aid: Any,
    fake_airflow: fake.FakeAirflow,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(payloads, "MAX_RUN_PAGES", 2)
    fake_airflow.list_page_size = 2
    for number in range(7):
        fake_airflow.add_run(DAG, f"r{number}", conf={"finding_aid_id": finding_aid.pk})

    with caplog.at_level(logging.WARNING, logger="airflow_client.syncing"):
        report = sync()

    assert report.discovered == 4  # the newest: two pages of two
    assert "the listing stopped after 2 pages; older runs were not looked at" in caplog.text


# --- queries -------------------------------------------------------------------------------------


def queries_of_a_sync() -> int:
    with CaptureQueriesContext(connection) as captured:
        assert sync().errors == ()
    return len(captured)


def test_runs_the_listing_shows_unchanged_cost_no_query_each(
    db: None, fake_airflow: fake.FakeAirflow
) -> None:
    going_on_in_airflow(fake_airflow, 20)
    sync()
    with_20 = queries_of_a_sync()
    going_on_in_airflow(fake_airflow, 380, prefix="more")
    sync()
    with_400 = queries_of_a_sync()
    going_on_in_airflow(fake_airflow, 1600, prefix="many")
    sync()
    with_2000 = queries_of_a_sync()

    assert with_400 == with_20
    assert with_2000 <= with_20 + 2 * 3  # two more queries per 500 runs
    assert fake_airflow.call_count("get_run") == 0


def test_runs_the_listing_shows_unchanged_count_as_just_read(
    finding_aid: Any, fake_airflow: fake.FakeAirflow
) -> None:
    (dag_run,) = going_on_in_airflow(fake_airflow, 1)
    JobRun.objects.update(refreshed_at=timezone.now() - DAY, refresh_error="Airflow could not be reached")
    before = timezone.now()

    sync()

    job_run = JobRun.objects.get()
    assert job_run.refreshed_at is not None
    assert job_run.refreshed_at >= before
    assert job_run.refresh_error == ""
    # A widget asking within AIRFLOW_REFRESH_INTERVAL does not ask Airflow again.
    refresh(job_run)
    assert fake_airflow.call_count("get_run") == 0
    assert job_run.dag_run_id == dag_run.run_id


# --- which runs ----------------------------------------------------------------------------------


def test_a_run_of_a_dag_without_job_is_followed_but_its_new_runs_not_recorded(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, changes: list[Any]
) -> None:
    job_run = make_run(finding_aid, dag_id="retired_dag", state="running", dag_run_id="old_one")
    fake_airflow.add_run("retired_dag", "old_one", state="running")
    fake_airflow.finish("old_one")
    fake_airflow.add_run("retired_dag", "started_there", conf={"finding_aid_id": finding_aid.pk})

    report = sync()

    job_run.refresh_from_db()
    assert job_run.state == "success"
    assert (report.updated, report.discovered, report.refreshed) == (1, 0, 0)
    assert fake_airflow.call_count("get_run") == 0
    assert not JobRun.objects.filter(dag_run_id="started_there").exists()
    assert changes == [("old_one", "running", "success")]


def test_a_run_deleted_in_airflow_is_read_once_and_counts_as_failed(
    finding_aid: Any, fake_airflow: fake.FakeAirflow, no_refresh_interval: None
) -> None:
    job_run = make_run(finding_aid, state="running", dag_run_id="deleted_there")

    report = sync()

    job_run.refresh_from_db()
    assert job_run.state == "failed"
    assert job_run.refresh_error == GONE_MESSAGE
    assert fake_airflow.call_count("get_run") == 1
    assert report.refreshed == 1


# --- through the REST transport ------------------------------------------------------------------


def test_rest_sync_is_two_batch_listings(
    rest_job: type[Job], httpx_mock: HTTPXMock, finding_aid: Any
) -> None:
    going_on = make_run(finding_aid, dag_id="etl", environment="rest", state="running", dag_run_id="dj_on")
    ended = make_run(finding_aid, dag_id="etl", environment="rest", state="running", dag_run_id="dj_end")
    expect_token(httpx_mock)
    listing = api_url("v2", "/dags/~/dagRuns/list")
    page = {"order_by": "-run_after", "dag_ids": ["etl"], "page_offset": 0, "page_limit": 100}
    httpx_mock.add_response(
        method="POST",
        url=listing,
        match_json={**page, "states": ["queued", "running"]},
        json={"dag_runs": [run_json("v2", "dj_on", state="running")], "total_entries": 1},
    )
    since = timezone.now() - 30 * DAY
    httpx_mock.add_response(
        method="POST",
        url=listing,
        json={
            "dag_runs": [{**run_json("v2", "dj_end", state="success"), "end_date": "2026-01-01T00:00:00Z"}],
            "total_entries": 1,
        },
    )

    report = sync(environment="rest")

    assert report.errors == ()
    ended.refresh_from_db()
    going_on.refresh_from_db()
    assert (going_on.state, ended.state) == ("running", "success")
    posts = httpx_mock.get_requests(method="POST", url=listing)
    assert len(posts) == 2
    assert httpx_mock.get_requests(method="GET") == []
    second = payloads.loads(posts[1].content)
    assert {key: value for key, value in second.items() if key != "end_date_gte"} == {
        **page,
        "states": ["failed", "success"],
    }
    ended_since = payloads.parse_datetime(second["end_date_gte"])
    assert ended_since is not None
    assert abs(ended_since - since) < timedelta(minutes=1)  # nothing remembered: AIRFLOW_SYNC_HORIZON
