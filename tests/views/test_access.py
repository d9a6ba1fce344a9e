"""Every view needs login and airflow_client.view_jobrun; Airflow being down is never a 500."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from airflow_client.models import JobRun
from airflow_client.transports.fake import FakeAirflow
from tests.factories import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def urls(finding_aid) -> list[tuple[str, str]]:
    run = make_run(finding_aid, state="running")
    widget = {"model": "testapp.findingaid", "dag_id": "index_finding_aid", "object_id": str(finding_aid.pk)}
    return [
        ("get", reverse("airflow_client:run_list")),
        ("get", reverse("airflow_client:run_list_csv")),
        ("get", reverse("airflow_client:run_detail", args=[run.pk])),
        ("get", reverse("airflow_client:run_log", args=[run.pk, "run", 1])),
        ("get", reverse("airflow_client:status", kwargs=widget)),
        ("post", reverse("airflow_client:trigger", kwargs=widget)),
    ]


def test_anonymous_users_are_sent_to_log_in(client: Client, urls):
    for method, url in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def test_an_expired_session_reloads_the_page_rather_than_swapping_the_login_form_in(client: Client, urls):
    for method, url in urls:
        response = getattr(client, method)(url, headers={"HX-Request": "true"})
        assert response.get("HX-Refresh") == "true", url
        assert b"<form" not in response.content


def test_users_without_the_view_permission_get_403(client: Client, django_user_model, urls):
    client.force_login(django_user_model.objects.create(username="nobody"))
    for method, url in urls:
        assert getattr(client, method)(url).status_code == 403, url
    assert JobRun.objects.count() == 1  # nothing was triggered


def test_airflow_down_poll_shows_last_known_state_and_a_notice(
    client: Client, operator, finding_aid, fake_airflow: FakeAirflow
):
    run = make_run(finding_aid, state="running", refreshed_at=None)  # due for a refresh
    fake_airflow.down = True
    client.force_login(operator)
    url = reverse(
        "airflow_client:status",
        kwargs={
            "model": "testapp.findingaid",
            "dag_id": "index_finding_aid",
            "object_id": str(finding_aid.pk),
        },
    )
    response = client.get(url + "?uid=1&tag=x", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert ">Running<" in html  # the last known state
    assert "Airflow cannot be reached just now" in html
    assert 'data-poll="active"' in html  # and the page keeps asking at the active interval
    assert JobRun.objects.get(pk=run.pk).refresh_error


def test_airflow_down_detail_page_says_so(client: Client, operator, finding_aid, fake_airflow: FakeAirflow):
    run = make_run(finding_aid, state="success")
    fake_airflow.down = True
    client.force_login(operator)
    response = client.get(reverse("airflow_client:run_detail", args=[run.pk]))
    assert response.status_code == 200
    assert "Airflow cannot be reached just now, so the tasks cannot be shown" in response.content.decode()
    log = client.get(
        reverse("airflow_client:run_log", args=[run.pk, "run", 1]), headers={"HX-Request": "true"}
    )
    assert log.status_code == 200
    assert "The log cannot be read just now" in log.content.decode()
