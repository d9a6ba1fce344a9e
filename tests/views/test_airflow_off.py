"""AIRFLOW_ENABLED = False: nothing is sent to Airflow, and every page says so instead of failing."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core import checks
from django.core.management import call_command
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.urls import reverse

from airflow_client import AirflowDisabled, sync, trigger
from airflow_client.models import JobRun, JobTrigger
from airflow_client.refreshing import refresh
from airflow_client.states import RunState
from airflow_client.transports.fake import FakeAirflow
from tests.events import encode, event, signed
from tests.factories import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def airflow_off(settings: Any) -> None:
    settings.AIRFLOW_ENABLED = False
    settings.AIRFLOW_REFRESH_INTERVAL = 0  # were Airflow on, every read would ask it


def widget(user: Any, obj: Any) -> str:
    request = RequestFactory().get("/findingaids/1/")
    request.user = user
    template = Template('{% load airflow_client %}{% airflow_status obj "index_finding_aid" %}')
    return template.render(Context({"request": request, "obj": obj}))


def test_the_widget_shows_the_recorded_state_without_polling_and_cannot_start(
    airflow_off: None, operator: Any, finding_aid: Any, fake_airflow: FakeAirflow
) -> None:
    make_run(finding_aid, state=RunState.RUNNING, refreshed_at=None)

    html = widget(operator, finding_aid)

    assert "Running" in html
    assert "every " not in html  # no polling trigger
    assert "Airflow is turned off on this site: jobs cannot be started." in html
    assert " disabled" in html.split('class="ac-button"')[1].split(">")[0]
    assert fake_airflow.calls == []


def test_a_poll_asks_nothing_and_stops(
    airflow_off: None, client: Client, operator: Any, finding_aid: Any, fake_airflow: FakeAirflow
) -> None:
    run = make_run(finding_aid, state=RunState.RUNNING, refreshed_at=None)
    client.force_login(operator)
    url = reverse(
        "airflow_client:status",
        kwargs={
            "model": "testapp.findingaid",
            "dag_id": "index_finding_aid",
            "object_id": str(finding_aid.pk),
        },
    )

    response = client.get(f"{url}?uid=1&run={run.pk}")

    assert response.status_code == 286  # htmx: stop polling
    assert fake_airflow.calls == []


def test_trigger_raises_a_clear_error_and_saves_nothing(
    airflow_off: None, finding_aid: Any, fake_airflow: FakeAirflow
) -> None:
    with pytest.raises(AirflowDisabled, match="AIRFLOW_ENABLED = False"):
        trigger("index_finding_aid", finding_aid)
    assert not JobTrigger.objects.exists()
    assert not JobRun.objects.exists()
    assert fake_airflow.calls == []


def test_the_start_button_says_why_nothing_started(
    airflow_off: None, client: Client, operator: Any, finding_aid: Any, fake_airflow: FakeAirflow
) -> None:
    client.force_login(operator)
    url = reverse(
        "airflow_client:trigger",
        kwargs={
            "model": "testapp.findingaid",
            "dag_id": "index_finding_aid",
            "object_id": str(finding_aid.pk),
        },
    )
    response = client.post(url, {"confirmed": "1"}, follow=True)

    assert response.status_code == 200
    assert "Airflow is turned off on this site" in response.content.decode()
    assert fake_airflow.calls == []


def test_refresh_returns_the_recorded_run(
    airflow_off: None, finding_aid: Any, fake_airflow: FakeAirflow
) -> None:
    run = make_run(finding_aid, state=RunState.RUNNING, refreshed_at=None)
    assert refresh(run).state == RunState.RUNNING
    assert refresh(run, force=True).refresh_error == ""
    assert fake_airflow.calls == []


def test_sync_does_nothing_and_says_so(
    airflow_off: None, finding_aid: Any, fake_airflow: FakeAirflow
) -> None:
    make_run(finding_aid, state=RunState.RUNNING, refreshed_at=None)
    report = sync()
    assert report.disabled
    out = StringIO()
    call_command("airflow_sync", stdout=out)
    assert (
        "Airflow is turned off on this site (AIRFLOW_ENABLED = False): nothing was synced." in out.getvalue()
    )
    assert fake_airflow.calls == []


def test_the_run_page_says_airflow_is_off(
    airflow_off: None, client: Client, operator: Any, finding_aid: Any, fake_airflow: FakeAirflow
) -> None:
    run = make_run(finding_aid, state=RunState.FAILED)
    client.force_login(operator)
    html = client.get(reverse("airflow_client:run_detail", args=[run.pk])).content.decode()
    assert "Airflow is turned off on this site, so the tasks are not read." in html
    assert fake_airflow.calls == []


def test_pushed_events_are_still_taken(airflow_off: None, client: Client, finding_aid: Any) -> None:
    """Events come from Airflow; turning Airflow off stops what this site sends, not what it hears."""
    body = encode(event("dag_success", conf={"finding_aid_id": finding_aid.pk}))
    response = client.post("/airflow/events/", body, content_type="application/json", headers=signed(body))
    assert response.status_code == 200
    assert JobRun.objects.get().state == RunState.SUCCESS


def test_a_site_with_jobs_is_warned(settings: Any) -> None:
    settings.AIRFLOW_ENABLED = False
    ids = {message.id for message in checks.run_checks()}
    assert "airflow_client.W002" in ids


def test_a_wrong_value_is_an_error_and_airflow_stays_on(settings: Any) -> None:
    from airflow_client.conf import get_settings

    settings.AIRFLOW_ENABLED = "no"
    assert "airflow_client.E024" in {message.id for message in checks.run_checks()}
    assert get_settings().enabled is True
