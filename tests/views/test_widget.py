"""The {% airflow_status %} tag and its polling partial."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from airflow_client.exceptions import AirflowTimeout, UnknownJob
from airflow_client.jobs import Job, register, unregister
from airflow_client.mixins import prefetch_job_runs
from airflow_client.models import JobRecord, JobRun, JobTrigger
from airflow_client.transports.fake import FakeAirflow, FakeTransport
from airflow_client.widget import fingerprint
from tests.factories import make_run
from tests.testapp.models import FindingAid

pytestmark = pytest.mark.django_db


def render(template: str, user=None, **context) -> str:
    request = RequestFactory().get("/findingaids/1/")
    if user is not None:
        request.user = user
    return Template("{% load airflow_client %}" + template).render(Context({"request": request, **context}))


def ids(html: str) -> list[str]:
    return re.findall(r'\sid="([^"]+)"', html)


def poll_key(html: str) -> list[str]:
    """The fields of the widget's key, which the page's poll sends back (Widget.poll_key)."""
    found = re.search(r'name="w" value="([^"]+)"', html)
    assert found
    return found.group(1).split(".", 6)


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
    # unfinished: the page polls for it at the active interval, and its trigger button waits for the run to end
    assert 'data-poll="active"' in html
    assert re.search(r"<button[^>]*disabled", html)


def test_a_finished_run_does_not_poll_and_the_button_is_enabled(operator, finding_aid):
    make_run(finding_aid, state="failed")
    html = render("{% airflow_status obj %}", user=operator, obj=finding_aid)
    assert 'data-poll="active"' not in html  # idle: the page looks for it at the idle interval only
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
    assert 'data-poll="idle"' in html
    widget_id = re.search(r'id="(ac-[^"]+)"', html)
    assert widget_id
    assert widget_id.group(1).endswith("-1")
    assert reverse("airflow_client:run_detail", args=[run.pk]) in html


def test_unchanged_poll_gets_a_short_answer(client: Client, operator, finding_aid):
    run = make_run(finding_aid, state="running")
    client.force_login(operator)
    response = client.get(status_url(finding_aid, tag=fingerprint(run)))
    assert response.status_code == 204
    assert response.content == b""
    assert not response.templates  # nothing rendered


def test_changed_poll_renders_and_keeps_polling(client: Client, operator, finding_aid):
    run = make_run(finding_aid, state="queued", start_date=None)
    tag = fingerprint(run)
    JobRun.objects.filter(pk=run.pk).update(state="running", start_date=timezone.now())
    client.force_login(operator)
    response = client.get(status_url(finding_aid, tag=tag))
    assert response.status_code == 200
    html = response.content.decode()
    assert ">Running<" in html
    assert 'data-poll="active"' in html
    new_tag = fingerprint(JobRun.objects.get(pk=run.pk))
    assert poll_key(html)[4] == new_tag  # the next poll sends the new tag back
    assert client.get(status_url(finding_aid, tag=new_tag)).status_code == 204


def add_history(owners: list[FindingAid], count: int, start: int) -> None:
    """``count`` finished runs, spread over ``owners``."""
    runs = JobRun.objects.bulk_create(
        JobRun(
            environment="default", dag_id="index_finding_aid", dag_run_id=f"bulk_{start + i}", state="success"
        )
        for i in range(count)
    )
    ct = ContentType.objects.get_for_model(FindingAid)
    JobRecord.objects.bulk_create(
        JobRecord(job_run=r, content_type=ct, object_id=str(owners[i % len(owners)].pk), dag_id=r.dag_id)
        for i, r in enumerate(runs)
    )
    JobRecord.objects.filter(job_run__in=runs).refill()  # the copies save() would have made
    if connection.vendor == "postgresql":
        # what autovacuum does after such a load: without statistics the planner
        # takes 10,000 rows for one and picks a nested loop that scans them all per row
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE airflow_client_jobrun, airflow_client_jobrecord")


def queries_of(client: Client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    return response.status_code, len(queries)


@pytest.mark.parametrize("history", ["of other records", "of this record"])
def test_queries_per_poll_do_not_grow_with_the_table(
    client: Client, operator, finding_aid, fake_airflow: FakeAirflow, history
):
    """The same number of queries with 10 and with 10,000 runs, of other records or of this one."""
    others = FindingAid.objects.bulk_create(FindingAid(title=f"Other {i}") for i in range(50))
    owners = [finding_aid] if history == "of this record" else others
    client.force_login(operator)
    counts = []
    for size, start in ((10, 0), (10_000, 10)):
        add_history(owners, size - start - 1, start)
        run = make_run(finding_aid, state="running")
        url = status_url(finding_aid, tag=fingerprint(run)) + f"&run={run.pk}"  # as the widget polls
        asked = fake_airflow.call_count("get_run")
        # read a moment ago: the stored state answers, and Airflow is not asked
        coalesced = queries_of(client, url)
        assert fake_airflow.call_count("get_run") == asked
        # not read yet: asks Airflow, stores the answer, finishes the run (signal, slot, retention)
        fake_airflow.add_run("index_finding_aid", run.dag_run_id, state="success")
        JobRun.objects.filter(pk=run.pk).update(refreshed_at=None)
        finishing = queries_of(client, url)
        assert fake_airflow.call_count("get_run") == asked + 1
        assert JobRun.objects.get(pk=run.pk).state == "success"
        counts.append((coalesced, finishing))
    assert counts[0] == counts[1]
    (coalesced_status, coalesced_queries), (finishing_status, _queries) = counts[1]
    assert (coalesced_status, finishing_status) == (204, 286)
    assert coalesced_queries == QUERIES_PER_POLL


#: session, user, permissions (user's, groups'), the current run (read a moment ago: no refresh query)
QUERIES_PER_POLL = 5


def test_a_changed_poll_that_renders_is_constant_too(
    client: Client, operator, finding_aid, django_assert_num_queries
):
    run = make_run(finding_aid, state="running")
    url = status_url(finding_aid, tag=fingerprint(run))
    JobRun.objects.filter(pk=run.pk).update(state="success", end_date=timezone.now())
    client.force_login(operator)
    #: the poll's 5, a pending trigger (none: the run finished), the record, last success
    with django_assert_num_queries(8):
        assert client.get(url).status_code == 286


@pytest.mark.parametrize("value", ["²", "9" * 5000, "-1", "abc", ""])
def test_a_bad_run_parameter_is_ignored(client: Client, operator, finding_aid, value):
    run = make_run(finding_aid, state="running")
    client.force_login(operator)
    response = client.get(status_url(finding_aid, tag=fingerprint(run)) + f"&run={value}")
    assert response.status_code == 204  # the current run is found without it


def test_the_run_parameter_cannot_show_another_records_run(client: Client, operator, finding_aid):
    other = FindingAid.objects.create(title="Other")
    theirs = make_run(other, state="running")
    client.force_login(operator)
    response = client.get(status_url(finding_aid, tag="x") + f"&run={theirs.pk}")
    assert ">Never run<" in response.content.decode()


def test_poll_for_a_deleted_record_stops_polling(client: Client, operator, finding_aid):
    make_run(finding_aid, state="running")
    url = status_url(finding_aid, tag="old")
    finding_aid.delete()
    client.force_login(operator)
    response = client.get(url)
    assert response.status_code == 286
    assert response.content == b""


# --- a trigger Airflow has not confirmed -------------------------------------------------------


def trigger_url(obj) -> str:
    return reverse(
        "airflow_client:trigger",
        kwargs={"model": obj._meta.label_lower, "dag_id": "index_finding_aid", "object_id": str(obj.pk)},
    )


@pytest.fixture
def unconfirmed(client: Client, operator, finding_aid, fake_airflow: FakeAirflow, monkeypatch) -> str:
    """The widget's HTML after a trigger whose POST got no answer (Airflow does not have the run)."""

    def no_answer(self, dag_id, **kwargs):
        raise AirflowTimeout("Airflow did not answer within 10 s.")

    monkeypatch.setattr(FakeTransport, "trigger", no_answer)
    client.force_login(operator)
    return client.post(
        trigger_url(finding_aid), {"uid": "1"}, headers={"HX-Request": "true"}
    ).content.decode()


def starting_tag(html: str) -> str:
    tag = poll_key(html)[4]
    assert re.fullmatch(r"starting-\d+", tag)
    return tag


def test_an_unconfirmed_trigger_shows_starting_and_polls(unconfirmed: str):
    assert "may have started" in unconfirmed
    assert ">Starting…<" in unconfirmed
    assert 'data-poll="active"' in unconfirmed
    assert re.search(r"<button[^>]*aria-disabled", unconfirmed)  # no second run while it may be starting
    assert "Open in Airflow" not in unconfirmed


def test_the_page_shows_an_unconfirmed_trigger_as_starting(operator, finding_aid, unconfirmed: str):
    make_run(finding_aid, state="success")  # an older run does not hide it
    make_run(finding_aid, state="failed")
    JobTrigger.objects.update(created_at=timezone.now())
    html = render("{% airflow_status obj job='index_finding_aid' %}", user=operator, obj=finding_aid)
    assert ">Starting…<" in html
    assert 'data-poll="active"' in html
    assert "Waiting for Airflow to confirm" in html


def test_the_poll_finds_the_run_once_airflow_has_it(
    client: Client, finding_aid, fake_airflow: FakeAirflow, unconfirmed: str
):
    job_trigger = JobTrigger.objects.get()
    url = status_url(finding_aid, tag=starting_tag(unconfirmed))
    assert client.get(url).status_code == 204  # Airflow has no such run yet: still starting
    fake_airflow.add_run("index_finding_aid", job_trigger.run_id)
    JobTrigger.objects.update(checked_at=None)  # as if the refresh interval had passed
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert ">Queued<" in html
    assert 'data-poll="active"' in html
    run = JobRun.objects.for_object(finding_aid).get()
    assert run.dag_run_id == job_trigger.run_id


def test_the_poll_gives_up_on_a_trigger_airflow_never_started(
    client: Client, finding_aid, fake_airflow: FakeAirflow, unconfirmed: str
):
    an_hour_ago = timezone.now() - timedelta(hours=1)
    JobTrigger.objects.update(created_at=an_hour_ago, sent_at=an_hour_ago)
    response = client.get(status_url(finding_aid, tag=starting_tag(unconfirmed)))
    assert response.status_code == 286
    assert ">Never run<" in response.content.decode()
    assert JobTrigger.objects.get().outcome == "failed"


def test_the_poll_keeps_starting_while_airflow_is_down(
    client: Client, finding_aid, fake_airflow: FakeAirflow, unconfirmed: str
):
    fake_airflow.down = True
    tag = starting_tag(unconfirmed)
    JobTrigger.objects.update(checked_at=None)
    assert client.get(status_url(finding_aid, tag=tag)).status_code == 204
    response = client.get(status_url(finding_aid, tag="old"))
    assert response.status_code == 200
    assert ">Starting…<" in response.content.decode()


# --- which runs a widget shows -------------------------------------------------------------------


def test_runs_of_another_environment_are_not_this_jobs(operator, finding_aid):
    mine = make_run(finding_aid, state="success")
    make_run(finding_aid, state="running", environment="staging")
    make_run(finding_aid, state="success", environment="staging")
    for obj in (finding_aid, prefetch_job_runs([FindingAid.objects.get()])[0]):
        html = render("{% airflow_status obj job='index_finding_aid' %}", user=operator, obj=obj)
        assert ">Succeeded<" in html
        assert 'data-poll="active"' not in html
        assert reverse("airflow_client:run_detail", args=[mine.pk]) in html  # last success: this Job's


def test_a_list_of_prefetched_records_reads_no_runs_per_row(operator):
    aids = [FindingAid.objects.create(title=f"Aid {i}") for i in range(4)]
    for aid in aids:
        make_run(aid, state="success")
    make_run(aids[0], state="running")
    objects = prefetch_job_runs(FindingAid.objects.order_by("pk"))
    template = "{% for a in aids %}{% airflow_status a job='index_finding_aid' compact=True %}{% endfor %}"
    with CaptureQueriesContext(connection) as queries:
        html = render(template, user=operator, aids=objects)
    assert not [q for q in queries if 'FROM "airflow_client_jobrun"' in q["sql"]]
    assert re.findall(r">(Running|Succeeded)<", html) == ["Running", "Succeeded", "Succeeded", "Succeeded"]


class IndexCollection(Job):
    """Another model's Job of the same DAG as IndexFindingAid."""

    dag_id = "index_finding_aid"
    model = "testapp.Collection"
    conf_key = "collection_id"


@pytest.fixture
def shared_dag():
    register(IndexCollection)
    yield IndexCollection
    unregister(IndexCollection)


def test_job_argument_picks_the_job_of_the_records_model(operator, finding_aid, collection, shared_dag):
    make_run(collection, state="failed")
    template = "{% airflow_status obj job='index_finding_aid' %}"
    html = render(template, user=operator, obj=collection)
    assert html.count('class="ac-widget') == 1
    assert "testapp.collection" in html
    assert ">Failed<" in html
    assert ">Never run<" in render(template, user=operator, obj=finding_aid)


def test_an_unknown_job_argument_is_left_out_and_logged(operator, finding_aid, caplog):
    html = render("{% airflow_status obj job='harvest_collection' %}", user=operator, obj=finding_aid)
    assert html == ""
    assert "No Job with dag_id 'harvest_collection' is registered for testapp.FindingAid" in caplog.text


def test_an_unknown_job_argument_is_an_error_in_debug(operator, finding_aid, settings):
    settings.DEBUG = True
    with pytest.raises(UnknownJob, match="harvest_collection"):
        render("{% airflow_status obj job='harvest_collection' %}", user=operator, obj=finding_aid)


class IndexElsewhere(Job):
    """A Job whose environment alias was removed from AIRFLOW_ENVIRONMENTS."""

    dag_id = "index_elsewhere"
    model = "testapp.FindingAid"
    environment = "retired"


@pytest.fixture
def retired_job():
    register(IndexElsewhere)
    yield IndexElsewhere
    unregister(IndexElsewhere)


def test_runs_of_a_removed_environment_show_without_a_link(
    client: Client, operator, finding_aid, retired_job
):
    running = make_run(finding_aid, dag_id="index_elsewhere", state="running", environment="retired")
    client.force_login(operator)
    for url in (
        status_url(finding_aid, tag="old", dag_id="index_elsewhere"),
        reverse("findingaid_detail", args=[finding_aid.pk]),
        reverse("airflow_client:run_detail", args=[running.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert "Running" in response.content.decode()
    assert (
        "Open in Airflow"
        not in client.get(status_url(finding_aid, dag_id="index_elsewhere")).content.decode()
    )
