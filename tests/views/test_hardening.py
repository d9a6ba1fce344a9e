"""Unchecked parameters an adversarial user (or a misbehaving Airflow) sent the pages: issue 9, defects 7-13, 17, 18."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import reverse

from airflow_client import refreshing, triggering
from airflow_client.jobs import get_job
from airflow_client.models import JobRun, JobTrigger
from airflow_client.tables import PER_PAGE_DEFAULT, PER_PAGE_MAX
from airflow_client.transports.fake import FakeAirflow
from tests.factories import make_run, make_user

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def rows_shown(response) -> int:
    return len(re.findall(r"<tr[ >]", response.content.decode())) - 1  # less the header row


# --- 7: per_page is clamped ---------------------------------------------------------------------


@pytest.fixture
def many_runs(finding_aid) -> None:
    for _ in range(PER_PAGE_MAX + 5):
        make_run(finding_aid)


@pytest.mark.parametrize(
    ("per_page", "shown"),
    [
        ("1000000000", PER_PAGE_MAX),
        (str(10**40), PER_PAGE_MAX),
        ("-1", 1),
        ("0", PER_PAGE_DEFAULT),
        ("abc", PER_PAGE_DEFAULT),
        ("7", 7),
    ],
)
def test_per_page_is_clamped_to_the_documented_range(client: Client, viewer, many_runs, per_page, shown):
    client.force_login(viewer)
    response = client.get(reverse("airflow_client:run_list"), {"per_page": per_page})
    assert response.status_code == 200
    assert rows_shown(response) == shown


def test_readme_documents_the_per_page_range() -> None:
    from tests.test_docs import README

    assert f"`per_page` (1 to {PER_PAGE_MAX}, default {PER_PAGE_DEFAULT})" in README


# --- 8: a NUL byte in a record key --------------------------------------------------------------


@pytest.mark.parametrize("view", ["status", "trigger"])
def test_a_nul_byte_in_a_text_key_is_404(client: Client, operator, collection, view):
    client.force_login(operator)
    url = reverse(
        f"airflow_client:{view}",
        kwargs={"model": "testapp.collection", "dag_id": "harvest_collection", "object_id": "post\x00cards"},
    )
    assert "%00" in url
    response = client.get(url) if view == "status" else client.post(url, {"confirmed": "1"})
    assert response.status_code == 404
    assert JobTrigger.objects.count() == 0


def test_a_nul_byte_in_the_history_filter_is_an_invalid_form(client: Client, viewer, collection):
    client.force_login(viewer)
    query = {"record_type": "testapp.collection", "object_id": "post\x00cards"}
    response = client.get(reverse("airflow_client:run_list"), query)
    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()
    assert client.get(reverse("airflow_client:run_list_csv"), query).status_code == 400


# --- 9: date filters that overflow --------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "query"),
    [
        ("America/New_York", {"started_before": "9999-12-31"}),
        ("America/New_York", {"ended_before": "9999-12-31"}),
        ("Asia/Tokyo", {"started_after": "0001-01-01"}),
        ("Asia/Tokyo", {"ended_after": "0001-01-01"}),
    ],
)
def test_dates_out_of_range_are_an_invalid_form(client: Client, viewer, finding_aid, zone, query):
    make_run(finding_aid)
    client.force_login(viewer)
    with override_settings(TIME_ZONE=zone):
        page = client.get(reverse("airflow_client:run_list"), query)
        assert page.status_code == 200
        html = page.content.decode()
        assert 'class="ac-error"' in html
        assert "is out of range" in html
        assert "0 runs" in html
        csv_answer = client.get(reverse("airflow_client:run_list_csv"), query)
    assert csv_answer.status_code == 400
    assert "out of range" in csv_answer.content.decode()


def test_dates_in_range_still_filter(client: Client, viewer, finding_aid):
    make_run(finding_aid)
    client.force_login(viewer)
    with override_settings(TIME_ZONE="America/New_York"):
        query = {"started_after": "2000-01-01", "started_before": "9999-12-30"}
        response = client.get(reverse("airflow_client:run_list_csv"), query)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2  # header and the run


# --- 10: the trigger's next -----------------------------------------------------------------------


def trigger_url(obj, dag_id: str = "index_finding_aid") -> str:
    kwargs = {"model": obj._meta.label_lower, "dag_id": dag_id, "object_id": str(obj.pk)}
    return reverse("airflow_client:trigger", kwargs=kwargs)


@pytest.mark.parametrize(
    "next_value",
    [
        "abc",
        "0",
        "1e5",
        "airflow_client:run_list",
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
    ],
)
def test_a_next_that_is_not_a_local_path_is_ignored(client: Client, operator, finding_aid, next_value):
    client.force_login(operator)
    response = client.post(trigger_url(finding_aid), {"confirmed": "1", "next": next_value})
    assert response.status_code == 302
    run = JobRun.objects.get()
    assert response["Location"] == reverse("airflow_client:run_detail", args=[run.pk])


def test_a_local_path_next_is_followed(client: Client, operator, finding_aid):
    client.force_login(operator)
    response = client.post(trigger_url(finding_aid), {"confirmed": "1", "next": "/findingaids/?page=2"})
    assert response.status_code == 302
    assert response["Location"] == "/findingaids/?page=2"


# --- 11: the admin's record-type filter -----------------------------------------------------------


@pytest.mark.parametrize("value", ["²", "1" * 4400, "-1", "1.5", "٣"])
@pytest.mark.parametrize("model", ["jobrun", "jobtrigger"])
def test_admin_record_type_filter_ignores_invalid_values(client: Client, finding_aid, value, model):
    assert site.is_registered(JobRun)
    make_run(finding_aid)
    client.force_login(User.objects.create(username="admin", is_staff=True, is_superuser=True))
    response = client.get(reverse(f"admin:airflow_client_{model}_changelist"), {"record_type": value})
    assert response.status_code in (200, 302)  # the admin may redirect an unknown filter value to ?e=1


# --- 12: no existence oracle on trigger -----------------------------------------------------------


def test_a_viewer_cannot_tell_whether_a_record_exists(client: Client, viewer, finding_aid):
    from tests.testapp.models import FindingAid

    client.force_login(viewer)
    existing = client.post(trigger_url(finding_aid), {"confirmed": "1"})
    missing = client.post(trigger_url(FindingAid(pk=finding_aid.pk + 1000)), {"confirmed": "1"})
    assert existing.status_code == missing.status_code == 403
    assert "Papers of Ada Lovelace" not in existing.content.decode()

    def message(response) -> str:
        return re.search(r'role="alert">(.*?)</p>', response.content.decode()).group(1)

    assert message(existing) == message(missing)
    assert JobTrigger.objects.count() == 0


def test_an_operator_still_gets_404_for_a_missing_record(client: Client, operator):
    from tests.testapp.models import FindingAid

    client.force_login(operator)
    assert client.post(trigger_url(FindingAid(pk=999)), {"confirmed": "1"}).status_code == 404


# --- 13 (views): task ids that do not fit in a path segment ---------------------------------------


@pytest.mark.parametrize("task_id", ["group/task", ".", "..", "a/../b", "50%", "sp ace", "é"])
def test_log_links_work_for_any_task_id(client: Client, viewer, finding_aid, fake_airflow, task_id):
    run = triggering.trigger(get_job("index_finding_aid"), finding_aid)
    fake_airflow.advance(run.dag_run_id)
    fake_airflow.set_task(run.dag_run_id, task_id, state="success")
    fake_airflow.add_log(run.dag_run_id, task_id, "the line of this task")
    run = refreshing.refresh(run, force=True)
    client.force_login(viewer)
    detail = client.get(reverse("airflow_client:run_detail", args=[run.pk]))
    assert detail.status_code == 200
    html = detail.content.decode()
    (href,) = re.findall(r'class="ac-log-link" href="([^"]+)"', html)
    url = href.replace("&amp;", "&")
    # a browser removes "." and ".." segments (also written %2E): none may reach the path
    assert not re.search(r"/(\.|%2e){1,2}(/|$|\?)", url, flags=re.IGNORECASE), url
    assert url.startswith(f"/airflow/runs/{run.pk}/logs/")
    log = client.get(url)
    assert log.status_code == 200
    assert "the line of this task" in log.content.decode()
    assert reverse("airflow_client:run_log", args=[run.pk, task_id, 1]) == url


def test_plain_task_ids_keep_their_plain_log_url(finding_aid):
    run = make_run(finding_aid)
    assert reverse("airflow_client:run_log", args=[run.pk, "group.extract_1", 2]) == (
        f"/airflow/runs/{run.pk}/logs/group.extract_1/2/"
    )


# --- 17: tasks that never ran ---------------------------------------------------------------------


@pytest.fixture
def never_ran(finding_aid, fake_airflow: FakeAirflow) -> JobRun:
    run = triggering.trigger(get_job("index_finding_aid"), finding_aid)
    fake_airflow.advance(run.dag_run_id)
    fake_airflow.set_task(run.dag_run_id, "extract", state="failed")
    fake_airflow.set_task(run.dag_run_id, "load", state="upstream_failed", try_number=0)
    fake_airflow.set_task(run.dag_run_id, "notify", state="skipped", try_number=0)
    return refreshing.refresh(run, force=True)


def test_tasks_that_never_ran_have_no_log_link(client: Client, viewer, never_ran):
    client.force_login(viewer)
    html = client.get(reverse("airflow_client:run_detail", args=[never_ran.pk])).content.decode()
    assert len(re.findall(r'class="ac-log-link"', html)) == 1  # extract's one try
    assert html.count("No try, no log") == 2
    assert "/logs/load/1/" not in html


def test_a_purged_log_reads_as_such(client: Client, viewer, finding_aid, fake_airflow: FakeAirflow):
    from airflow_client.exceptions import NotFound

    run = make_run(finding_aid, state="success")
    client.force_login(viewer)
    fake_airflow.fail_next(NotFound("TaskInstance not found", status_code=404))
    response = client.get(reverse("airflow_client:run_log", args=[run.pk, "run", 1]), headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Airflow has no log for this try" in html
    assert "The log cannot be read just now" not in html
    assert "TaskInstance not found" not in html


# --- 18: the widget for users who cannot open the pages -------------------------------------------


def test_widget_hides_links_the_user_cannot_open(client: Client, finding_aid, fake_airflow: FakeAirflow):
    run = make_run(finding_aid, state="success")
    make_run(finding_aid, state="success")
    client.force_login(make_user("reader"))  # may see the record's page, not airflow_client's
    html = client.get(reverse("findingaid_detail", args=[finding_aid.pk])).content.decode()
    assert "ac-badge-success" in html  # the state is shown
    assert "/airflow/runs/" not in html  # no History, Logs or last-success link (they answer 403)
    assert f"/airflow/runs/{run.pk}/" not in html
    assert "ac-poller" not in html  # no poll that would answer 403
    assert "ac-poll-key" not in html

    client.force_login(make_user("watcher", "airflow_client.view_jobrun"))
    html = client.get(reverse("findingaid_detail", args=[finding_aid.pk])).content.decode()
    assert "/airflow/runs/?" in html  # History
    assert "#tasks" in html  # Logs


# --- found on the way (19's browser test): the history's badges carried the label, not the state -----


def test_history_badges_are_classed_by_state(client: Client, viewer, finding_aid):
    make_run(finding_aid, state="success")
    client.force_login(viewer)
    html = client.get(reverse("airflow_client:run_list")).content.decode()
    assert 'class="ac-badge ac-badge-success">Succeeded<' in html


# --- found by the query-string property test ------------------------------------------------------


@pytest.mark.parametrize("sort", ["nonexistent.model", "-a.b", "records,-x.y", "\x00", "-"])
def test_unknown_sort_values_are_ignored(client: Client, viewer, finding_aid, sort):
    make_run(finding_aid)
    client.force_login(viewer)
    page = client.get(reverse("airflow_client:run_list"), {"sort": sort})
    assert page.status_code == 200
    assert "1 run" in page.content.decode()
    assert client.get(reverse("airflow_client:run_list_csv"), {"sort": sort}).status_code == 200
