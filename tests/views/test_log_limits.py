"""The log viewer against a huge log and absurd try numbers: bounded pages, "load more", Airflow's link."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from pytest_httpx import HTTPXMock

from airflow_client import views
from tests.factories import make_run
from tests.unit.rest_helpers import BASE, PASSWORD, UI, any_query, api_url, expect_token

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
REST = {
    "default": {
        "TRANSPORT": "rest",
        "BASE_URL": BASE,
        "UI_URL": UI,
        "API_VERSION": "v2",
        "USERNAME": "admin",
        "PASSWORD": PASSWORD,
        "RETRIES": 0,
    }
}


def big_log(lines: int) -> bytes:
    events = [{"level": "info", "event": f"line {n} " + "x" * 200} for n in range(lines)]
    return json.dumps({"content": events, "continuation_token": None}).encode()


def more_link(page: str) -> str | None:
    found = re.search(r'hx-get="([^"]+)"[^>]*>Load more', page)
    return html.unescape(found.group(1)) if found else None


@override_settings(AIRFLOW_ENVIRONMENTS=REST, AIRFLOW_MAX_LOG_BYTES=2_000_000)
def test_a_huge_log_renders_bounded_pages_then_links_to_airflow(
    client: Client, viewer: Any, finding_aid: Any, httpx_mock: HTTPXMock
) -> None:
    run = make_run(finding_aid, dag_id="etl")
    expect_token(httpx_mock)
    log = api_url("v2", f"/dags/etl/dagRuns/{run.dag_run_id}/taskInstances/load/logs/1")
    httpx_mock.add_response(url=any_query(log), content=big_log(250_000), is_reusable=True)
    client.force_login(viewer)
    first = client.get(reverse("airflow_client:run_log", args=[run.pk, "load", 1]))
    page = first.content.decode()
    assert first.status_code == 200
    assert len(first.content) < 500_000
    assert page.count('class="ac-log-line') == views.LOG_LINES_PER_PAGE
    assert "line 0 " in page
    assert "larger than" not in page  # said where the part read ends
    seen = views.LOG_LINES_PER_PAGE
    url = more_link(page)
    pages = 1
    while url:
        response = client.get(url, headers=HTMX)
        assert len(response.content) < 500_000
        part = response.content.decode()
        assert f"line {seen} " in part  # resumes where the previous page stopped
        assert f"line {seen - 1} " not in part
        seen += part.count('class="ac-log-line')
        url = more_link(part)
        pages += 1
    assert 5_000 < seen < 10_000  # about 2 MB of ~230-byte events
    assert pages == -(-seen // views.LOG_LINES_PER_PAGE)
    assert "larger than" in part
    assert f'href="{UI}/dags/etl/runs/{run.dag_run_id}/tasks/load?try_number=1"' in part


@override_settings(AIRFLOW_ENVIRONMENTS=REST)
def test_a_bad_skip_is_a_404(client: Client, viewer: Any, finding_aid: Any) -> None:
    run = make_run(finding_aid, dag_id="etl")
    client.force_login(viewer)
    url = reverse("airflow_client:run_log", args=[run.pk, "load", 1])
    for skip in ("-1", "x", "9" * 30):
        assert client.get(url, {"skip": skip}).status_code == 404


@override_settings(AIRFLOW_ENVIRONMENTS=REST)
def test_a_huge_try_number_from_airflow_renders_a_bounded_list(
    client: Client, viewer: Any, finding_aid: Any, httpx_mock: HTTPXMock
) -> None:
    run = make_run(finding_aid, dag_id="etl")
    expect_token(httpx_mock)
    tis = {
        "task_instances": [{"task_id": "load", "state": "running", "try_number": 100_000, "map_index": -1}],
        "total_entries": 1,
    }
    httpx_mock.add_response(
        url=any_query(api_url("v2", f"/dags/etl/dagRuns/{run.dag_run_id}/taskInstances")), json=tis
    )
    client.force_login(viewer)
    response = client.get(reverse("airflow_client:run_detail", args=[run.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="ac-log-link"') == views.MAX_TRIES_SHOWN
    assert "/load/100000/" in page  # the latest tries are the ones listed


@override_settings(AIRFLOW_ENVIRONMENTS=REST)
def test_a_try_number_beyond_any_task_is_refused_without_asking_airflow(
    client: Client, viewer: Any, finding_aid: Any, httpx_mock: HTTPXMock
) -> None:
    run = make_run(finding_aid, dag_id="etl")
    client.force_login(viewer)
    response = client.get(reverse("airflow_client:run_log", args=[run.pk, "load", 100_000]), headers=HTMX)
    assert response.status_code == 200
    assert "no try 100000" in response.content.decode()
    assert httpx_mock.get_requests() == []


@override_settings(AIRFLOW_ENVIRONMENTS=REST)
def test_a_token_too_long_for_a_url_is_a_readable_error(
    client: Client, viewer: Any, finding_aid: Any, httpx_mock: HTTPXMock
) -> None:
    run = make_run(finding_aid, dag_id="etl")
    expect_token(httpx_mock, optional=True)
    client.force_login(viewer)
    url = reverse("airflow_client:run_log", args=[run.pk, "load", 1])
    response = client.get(url, {"token": "t" * 70_000}, headers=HTMX)
    assert response.status_code == 200
    assert "The log cannot be read just now" in response.content.decode()
