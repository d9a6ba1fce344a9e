"""The trigger button: POST with CSRF, per-Job permission, refusals in words, no-JS fallback."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from airflow_client.exceptions import AirflowTimeout, BadRequest
from airflow_client.jobs import Job, register, unregister
from airflow_client.models import JobRun
from airflow_client.transports.fake import FakeAirflow, FakeTransport
from tests.testapp.models import FindingAid

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def trigger_url(obj, dag_id: str = "index_finding_aid") -> str:
    return reverse(
        "airflow_client:trigger",
        kwargs={"model": obj._meta.label_lower, "dag_id": dag_id, "object_id": str(obj.pk)},
    )


def test_htmx_trigger_starts_a_run_and_returns_the_polling_widget(
    client: Client, operator, finding_aid, fake_airflow: FakeAirflow
):
    client.force_login(operator)
    response = client.post(trigger_url(finding_aid), {"uid": "7", "next": "/findingaids/1/"}, headers=HTMX)
    assert response.status_code == 200
    run = JobRun.objects.for_object(finding_aid).get()
    assert run.state == "queued"
    assert run.started_here
    assert fake_airflow.get(run.dag_run_id).conf == {"finding_aid_id": finding_aid.pk}
    html = response.content.decode()
    assert ">Queued<" in html
    assert 'data-poll="active"' in html  # the page polls for it at the active interval until the run ends
    assert re.search(r'id="ac-testapp-findingaid-[^"]*-7"', html)  # same element as before
    assert re.search(r"<button[^>]*disabled", html)  # no second run while this one is active


def test_the_widget_form_carries_the_csrf_token(operator, finding_aid):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    page = client.get(reverse("findingaid_detail", args=[finding_aid.pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token
    assert client.post(trigger_url(finding_aid), headers=HTMX).status_code == 403  # no token: refused
    response = client.post(trigger_url(finding_aid), {"csrfmiddlewaretoken": token.group(1)}, headers=HTMX)
    assert response.status_code == 200
    assert JobRun.objects.for_object(finding_aid).exists()


def test_refused_trigger_shows_airflows_reason(
    client: Client, operator, finding_aid, fake_airflow: FakeAirflow
):
    fake_airflow.fail_next(BadRequest("conf must contain a 'collection'", status_code=400))
    client.force_login(operator)
    response = client.post(trigger_url(finding_aid), headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Airflow did not start the run" in html
    assert "conf must contain a &#x27;collection&#x27;" in html
    assert not JobRun.objects.exists()


def test_paused_dag_is_explained(client: Client, operator, finding_aid, fake_airflow: FakeAirflow):
    fake_airflow.add_dag("index_finding_aid", paused=True)
    client.force_login(operator)
    html = client.post(trigger_url(finding_aid), headers=HTMX).content.decode()
    assert "paused" in html


def test_already_running_shows_the_running_run(
    client: Client, operator, finding_aid, fake_airflow: FakeAirflow
):
    client.force_login(operator)
    client.post(trigger_url(finding_aid), headers=HTMX)
    running = JobRun.objects.get()
    fake_airflow.advance(running.dag_run_id)
    response = client.post(trigger_url(finding_aid), headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "already going on" in html
    assert reverse("airflow_client:run_detail", args=[running.pk]) in html
    assert JobRun.objects.count() == 1
    assert fake_airflow.call_count("trigger") == 1


def test_without_js_the_form_redirects_back_with_a_message(client: Client, operator, finding_aid):
    client.force_login(operator)
    page = reverse("findingaid_detail", args=[finding_aid.pk])
    response = client.post(trigger_url(finding_aid), {"next": page}, follow=True)
    assert response.redirect_chain == [(page, 302)]
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Started “Index finding aid” for “Papers of Ada Lovelace”."
    ]


def test_next_must_be_this_site(client: Client, operator, finding_aid):
    client.force_login(operator)
    response = client.post(trigger_url(finding_aid), {"next": "https://evil.example/"})
    assert response.status_code == 302
    run = JobRun.objects.get()
    assert response["Location"] == reverse("airflow_client:run_detail", args=[run.pk])


def test_user_without_trigger_permission_gets_403_in_words(client: Client, viewer, finding_aid):
    client.force_login(viewer)
    response = client.post(trigger_url(finding_aid), headers=HTMX)
    assert response.status_code == 403
    assert "You may not start “Index finding aid”" in response.content.decode()
    assert not JobRun.objects.exists()


class OnlyOwnTitles(Job):
    """A Job that decides per record: only records titled "mine"."""

    dag_id = "index_mine"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    confirm = "Re-index this finding aid now?"

    def has_trigger_permission(self, user, obj) -> bool:
        return obj.title == "mine"


@pytest.fixture
def own_job():
    register(OnlyOwnTitles)
    yield OnlyOwnTitles
    unregister(OnlyOwnTitles)


def test_job_that_refuses_the_record_gets_403(client: Client, operator, finding_aid, own_job):
    client.force_login(operator)
    assert client.post(trigger_url(finding_aid, "index_mine"), {"confirmed": "1"}).status_code == 403
    mine = FindingAid.objects.create(title="mine")
    assert client.post(trigger_url(mine, "index_mine"), {"confirmed": "1"}).status_code == 302


def test_confirming_jobs_ask_first(client: Client, operator, own_job):
    mine = FindingAid.objects.create(title="mine")
    client.force_login(operator)
    page = client.get(reverse("findingaid_detail", args=[mine.pk])).content.decode()
    assert 'hx-confirm="Re-index this finding aid now?"' in page
    # without JavaScript a page asks the same question, and nothing starts yet
    response = client.post(trigger_url(mine, "index_mine"))
    assert response.status_code == 200
    assert "Re-index this finding aid now?" in response.content.decode()
    assert not JobRun.objects.exists()
    client.post(trigger_url(mine, "index_mine"), {"confirmed": "1"})
    assert JobRun.objects.count() == 1


def test_unknown_job_or_model_is_404(client: Client, operator, finding_aid):
    client.force_login(operator)
    assert client.post(trigger_url(finding_aid, "nope"), headers=HTMX).status_code == 404
    url = reverse(
        "airflow_client:trigger", kwargs={"model": "testapp.nothing", "dag_id": "x", "object_id": "1"}
    )
    assert client.post(url).status_code == 404
    assert client.post(trigger_url(FindingAid(pk=999))).status_code == 404


def test_trigger_needs_post(client: Client, operator, finding_aid):
    client.force_login(operator)
    assert client.get(trigger_url(finding_aid)).status_code == 405


def test_trigger_tells_the_other_widgets_of_the_record_to_look_again(client: Client, operator, finding_aid):
    client.force_login(operator)
    page = client.get(reverse("findingaid_detail", args=[finding_aid.pk])).content.decode()
    # one poller follows the page's four widgets (full and compact, of the record's two Jobs)
    (poller,) = re.findall(r'hx-trigger="([^"]*)"', page)
    assert poller == "every 30s, ac-poll from:body"  # never run: the idle interval
    assert page.count('class="ac-poll-key"') == 4
    response = client.post(trigger_url(finding_aid), headers=HTMX)
    # once the widget settled, the poller looks: the other Index widget follows (tests/views/test_page_poll.py)
    assert json.loads(response["HX-Trigger-After-Settle"]) == {"ac-poll": {}}
    # and the record's own event, for the site's listeners
    assert re.fullmatch(
        r'\{"ac-testapp-findingaid-[\w-]+-index_finding_aid-changed": \{\}\}', response["HX-Trigger"]
    )
    assert "publish_finding_aid" not in response["HX-Trigger"]


class ReindexAnyTime(Job):
    dag_id = "reindex_any_time"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    allow_concurrent = True


@pytest.fixture
def concurrent_job():
    register(ReindexAnyTime)
    yield ReindexAnyTime
    unregister(ReindexAnyTime)


def test_concurrent_jobs_keep_the_button_enabled_while_running(
    client: Client, operator, finding_aid, concurrent_job
):
    client.force_login(operator)
    first = client.post(trigger_url(finding_aid, "reindex_any_time"), headers=HTMX).content.decode()
    assert ">Queued<" in first
    assert not re.search(r"<button[^>]*disabled", first)
    client.post(trigger_url(finding_aid, "reindex_any_time"), headers=HTMX)
    assert JobRun.objects.for_object(finding_aid).active().count() == 2


class ConfirmPlainly(Job):
    dag_id = "index_plainly"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    label = "Re-index"
    confirm = True


@pytest.fixture
def plain_confirm_job():
    register(ConfirmPlainly)
    yield ConfirmPlainly
    unregister(ConfirmPlainly)


def test_confirm_true_asks_the_same_default_question_with_and_without_js(
    client: Client, operator, finding_aid, plain_confirm_job
):
    client.force_login(operator)
    page = client.get(reverse("findingaid_detail", args=[finding_aid.pk])).content.decode()
    assert 'hx-confirm="Start “Re-index” now?"' in page
    response = client.post(trigger_url(finding_aid, "index_plainly"))
    assert "<p>Start “Re-index” now?</p>" in response.content.decode()
    assert not JobRun.objects.exists()


def test_an_unanswered_trigger_says_the_run_may_have_started(
    client: Client, operator, finding_aid, monkeypatch
):
    def no_answer(self, dag_id, **kwargs):
        raise AirflowTimeout("Airflow did not answer within 10 s.")

    monkeypatch.setattr(FakeTransport, "trigger", no_answer)
    client.force_login(operator)
    page = reverse("findingaid_detail", args=[finding_aid.pk])
    response = client.post(trigger_url(finding_aid), {"next": page}, follow=True)
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [
        "Airflow did not confirm in time that “Index finding aid” started; the run may have started."
    ]
    assert "did not start" not in messages[0]
    assert ">Starting…<" in response.content.decode()  # the page it returns to shows it starting
