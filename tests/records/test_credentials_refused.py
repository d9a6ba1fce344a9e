"""Issue 9, defect 15: a wrong password is an authentication error everywhere, never "unreachable"."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from pytest_httpx import HTTPXMock

from airflow_client import sync
from airflow_client.exceptions import AuthenticationFailed
from airflow_client.jobs import Job
from airflow_client.models import JobRun, content_key
from airflow_client.transports import fake
from airflow_client.transports.base import DagRun
from tests.factories import make_run, make_user
from tests.unit.rest_helpers import BASE, PASSWORD

pytestmark = pytest.mark.django_db


def _wrong_password(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/auth/token",
        status_code=401,
        json={"detail": "Invalid credentials"},
        is_reusable=True,
    )


def _active_rest_run(finding_aid: Any) -> JobRun:
    job_run, _old = JobRun.objects.store_dag_run("rest", DagRun(dag_id="etl", run_id="r1", state="running"))
    content_type, object_id = content_key(finding_aid)
    job_run.link_record(content_type.pk, object_id)
    JobRun.objects.filter(pk=job_run.pk).update(refreshed_at=None)
    job_run.refresh_from_db()
    return job_run


def test_sync_reports_refused_credentials_not_unreachable(
    rest_job: type[Job], httpx_mock: HTTPXMock, finding_aid: Any
) -> None:
    _wrong_password(httpx_mock)
    _active_rest_run(finding_aid)
    report = sync(environment="rest")
    assert report.auth_failed_environments == ("rest",)
    assert report.failed_environments == ("rest",)
    text = str(report)
    assert "refused the credentials" in text
    assert "reach" not in text.lower()
    assert PASSWORD not in text

    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("airflow_sync", environment="rest", stdout=out)
    assert "Airflow refused the credentials: rest" in str(caught.value)
    assert "reach" not in str(caught.value)
    assert "reach" not in out.getvalue().lower()


def test_sync_reports_refused_credentials_with_the_fake(
    fake_airflow: fake.FakeAirflow, finding_aid: Any
) -> None:
    make_run(finding_aid, state="running", refreshed_at=None)
    for _call in range(3):
        fake_airflow.fail_next(AuthenticationFailed("Forbidden", status_code=403))
    report = sync()
    assert report.auth_failed_environments == ("default",)
    assert "unreachable" not in str(report).lower()
    assert "default: FAILED (Airflow refused the credentials)" in str(report)


def test_unreachable_is_still_said_when_airflow_is_down(
    fake_airflow: fake.FakeAirflow, finding_aid: Any
) -> None:
    fake_airflow.down = True
    report = sync()
    assert report.auth_failed_environments == ()
    assert report.failed_environments == ("default",)


def test_widget_says_the_credentials_were_refused(
    rest_job: type[Job], httpx_mock: HTTPXMock, finding_aid: Any
) -> None:
    _wrong_password(httpx_mock)
    job_run = _active_rest_run(finding_aid)
    viewer = make_user("viewer", "airflow_client.view_jobrun")
    client = Client()
    client.force_login(viewer)
    url = reverse(
        "airflow_client:status",
        kwargs={"model": "testapp.findingaid", "dag_id": "etl", "object_id": str(finding_aid.pk)},
    )
    response = client.get(url + "?uid=1&tag=x", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Airflow refused this site's credentials" in html
    assert "cannot be reached" not in html
    job_run.refresh_from_db()
    assert "refused this site's credentials" in job_run.refresh_error
    assert job_run.state == "running"
    assert httpx_mock.get_requests(method="GET") == []  # the token was refused: nothing else asked
