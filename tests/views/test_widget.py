"""The {% airflow_status %} tag and its polling partial."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from airflow_client.models import JobRun
from airflow_client.polling import poll_tag
from tests.testapp.models import FindingAid
from tests.views.conftest import make_run

pytestmark = pytest.mark.django_db


def render(template: str, user=None, **context) -> str:
    request = RequestFactory().get("/findingaids/1/")
    if user is not None:
        request.user = user
    return Template("{% load airflow_client %}" + template).render(Context({"request": request, **context}))


def ids(html: str) -> list[str]:
    return re.findall(r'\sid="([^"]+)"', html)


def status_url(run_or_obj, *, tag: str = "", uid: str = "1", dag_id: str = "index_finding_aid") -> str:
    obj = run_or_obj
    url = reverse(
        "airflow_client:status",
        kwargs={"model": obj._meta.label_lower, "dag_id": dag_id, "object_id": str(obj.pk)},
    )
    return f"{url}?uid={uid}&tag={tag}"


def test_the_widget_shows_state_times_last_success_and_links(operator, finding_aid):
    success = make_run(finding_aid, state="success")
    running = make_run(finding_aid, state="running")
    html = render("{% airflow_status obj %}", user=operator, obj=finding_aid)

    assert "Index finding aid" in html
    assert 'aria-live="polite"' in html
    assert "ac-state-running" in html
    assert ">Running<" in html
    assert "Queued" in html
    assert "Started" in html
    assert reverse("airflow_client:run_detail", args=[success.pk]) in html  # last success links its run
    assert reverse("airflow_client:run_detail", args=[running.pk]) + "#tasks" in html  # logs
    assert "https://airflow.example.org" in html  # the run in Airflow's UI
    assert f"record_type=testapp.findingaid&amp;object_id={finding_aid.pk}" in html  # this record's history
    # unfinished: it polls, and its trigger button waits for the run to end
    assert 'hx-trigger="every 5s, ' in html
    assert re.search(r"<button[^>]*disabled", html)


def test_a_finished_run_does_not_poll_and_the_button_is_enabled(operator, finding_aid):
    make_run(finding_aid, state="failed")
    html = render("{% airflow_status obj %}", user=operator, obj=finding_aid)
    assert "every 5s" not in html
    assert ">Failed<" in html
    assert not re.search(r"<button[^>]*disabled", html)


def test_without_the_trigger_permission_the_button_says_why(viewer, finding_aid):
    html = render("{% airflow_status obj %}", user=viewer, obj=finding_aid)
    assert re.search(r"<button[^>]*disabled", html)
    assert "You may not start this job." in html
    assert "Never run" in html


def test_two_widgets_for_the_same_record_get_unique_ids(operator, finding_aid):
    other = FindingAid.objects.create(title="Letters")
    html = render(
        "{% airflow_status a %}{% airflow_status a compact=True %}{% airflow_status b job='index_finding_aid' %}",
        user=operator,
        a=finding_aid,
        b=other,
    )
    found = ids(html)
    assert len(found) == len(set(found)) > 6
    assert html.count('class="ac-widget') == 5  # a: two Jobs x (full, compact); b: one Job
    # every aria reference points at an element of the page
    for ref in re.findall(r'aria-(?:labelledby|describedby)="([^"]+)"', html):
        assert all(part in found for part in ref.split())


def test_compact_variant_is_one_line_without_times(operator, finding_aid):
    make_run(finding_aid, state="success")
    html = render("{% airflow_status obj compact=True %}", user=operator, obj=finding_aid)
    assert "ac-compact" in html
    assert "Last success" not in html
    assert "ac-times" not in html


def test_poll_of_a_finished_run_answers_286_with_the_final_widget(client: Client, operator, finding_aid):
    run = make_run(finding_aid, state="success")
    client.force_login(operator)
    response = client.get(status_url(finding_aid, tag="old"), headers={"HX-Request": "true"})
    assert response.status_code == 286
    html = response.content.decode()
    assert ">Succeeded<" in html
    assert "every 5s" not in html
    widget_id = re.search(r'id="(ac-[^"]+)"', html)
    assert widget_id
    assert widget_id.group(1).endswith("-1")
    assert reverse("airflow_client:run_detail", args=[run.pk]) in html


def test_unchanged_poll_gets_a_short_answer(client: Client, operator, finding_aid):
    run = make_run(finding_aid, state="running")
    client.force_login(operator)
    response = client.get(status_url(finding_aid, tag=poll_tag(run)))
    assert response.status_code == 204
    assert response.content == b""
    assert not response.templates  # nothing rendered


def test_changed_poll_renders_and_keeps_polling(client: Client, operator, finding_aid):
    run = make_run(finding_aid, state="queued", start_date=None)
    tag = poll_tag(run)
    JobRun.objects.filter(pk=run.pk).update(state="running", start_date=timezone.now())
    client.force_login(operator)
    response = client.get(status_url(finding_aid, tag=tag))
    assert response.status_code == 200
    html = response.content.decode()
    assert ">Running<" in html
    assert "every 5s" in html
    new_tag = poll_tag(JobRun.objects.get(pk=run.pk))
    assert f"tag={new_tag}" in html  # the next poll sends the new tag back
    assert client.get(status_url(finding_aid, tag=new_tag)).status_code == 204


@pytest.mark.parametrize("size", [10, 10_000])
def test_queries_per_poll_do_not_grow_with_the_table(
    client: Client, operator, finding_aid, django_assert_num_queries, size
):
    """The same number of queries with 10 and with 10,000 runs in the table."""
    others = FindingAid.objects.bulk_create(FindingAid(title=f"Other {i}") for i in range(50))
    runs = JobRun.objects.bulk_create(
        JobRun(environment="default", dag_id="index_finding_aid", dag_run_id=f"bulk_{i}", state="success")
        for i in range(size - 1)
    )
    from django.contrib.contenttypes.models import ContentType

    from airflow_client.models import JobRecord

    ct = ContentType.objects.get_for_model(FindingAid)
    JobRecord.objects.bulk_create(
        JobRecord(job_run=r, content_type=ct, object_id=str(others[i % 50].pk), dag_id=r.dag_id)
        for i, r in enumerate(runs)
    )
    run = make_run(finding_aid, state="running")
    client.force_login(operator)
    url = status_url(finding_aid, tag=poll_tag(run))
    with django_assert_num_queries(QUERIES_PER_POLL):
        assert client.get(url).status_code == 204
    # a poll that renders (the run moved on) is constant too
    JobRun.objects.filter(pk=run.pk).update(state="success", end_date=timezone.now() + timedelta(seconds=1))
    with django_assert_num_queries(QUERIES_PER_RENDERING_POLL):
        assert client.get(url).status_code == 286


#: session, user, permissions (user's, groups'), the active run, refresh's claim UPDATE and re-read
QUERIES_PER_POLL = 7
#: session, user, permissions (2), active run, newest run, the record, last success
QUERIES_PER_RENDERING_POLL = 8


def test_poll_for_a_deleted_record_stops_polling(client: Client, operator, finding_aid):
    make_run(finding_aid, state="running")
    url = status_url(finding_aid, tag="old")
    finding_aid.delete()
    client.force_login(operator)
    response = client.get(url)
    assert response.status_code == 286
    assert response.content == b""
