"""Every view and the admin's bulk trigger action, for every kind of user (issue 9's permission matrix).

Profiles: anonymous; signed in without permission; view only; view and trigger;
view and trigger but the Job's ``has_trigger_permission`` refuses this record;
a staff superuser. Each case asserts the status code, whether a run started, and
that no page a user may not see names the record.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from airflow_client.jobs import Job, find_job, register, unregister
from airflow_client.models import JobRun, JobTrigger
from airflow_client.widget import Widget
from tests.factories import make_run, make_user
from tests.testapp.models import FindingAid

pytestmark = pytest.mark.django_db

TITLE = "Papers of Ada Lovelace"
PROFILES = ["anonymous", "no_permission", "viewer", "operator", "refused_by_job", "superuser"]
VIEWS = [
    "status",
    "page_poll",
    "trigger",
    "trigger_missing_record",
    "run_list",
    "run_list_csv",
    "run_detail",
    "run_log",
    "run_control",
]
LOGIN = "login"  # a redirect to the login page

#: (profile, view) -> status code; LOGIN for a redirect to the login page.
EXPECTED: dict[str, dict[str, Any]] = {
    "anonymous": dict.fromkeys(VIEWS, LOGIN),
    "no_permission": dict.fromkeys(VIEWS, 403),
    "viewer": {
        "status": 286,  # the widget of a finished run: polling stops
        "page_poll": 200,  # the widget that changed, swapped in out of band
        "trigger": 403,
        "trigger_missing_record": 403,  # the same answer: no existence oracle
        "run_list": 200,
        "run_list_csv": 200,
        "run_detail": 200,
        "run_log": 200,
        "run_control": 403,  # mark and re-run need permissions of their own
    },
    "operator": {
        "status": 286,
        "page_poll": 200,
        "trigger": 302,  # started, on to the run
        "trigger_missing_record": 404,  # may start it for any record: may learn it is gone
        "run_list": 200,
        "run_list_csv": 200,
        "run_detail": 200,
        "run_log": 200,
        "run_control": 403,
    },
    "refused_by_job": {
        "status": 286,
        "page_poll": 200,
        "trigger": 403,
        "trigger_missing_record": 403,  # its stand-in is refused too: the same answer
        "run_list": 200,
        "run_list_csv": 200,
        "run_detail": 200,
        "run_log": 200,
        "run_control": 403,
    },
    "superuser": {
        "status": 286,
        "page_poll": 200,
        "trigger": 302,
        "trigger_missing_record": 404,
        "run_list": 200,
        "run_list_csv": 200,
        "run_detail": 200,
        "run_log": 200,
        "run_control": 302,  # back to the run page (Airflow's answer in a message)
    },
}


class RefusesThisRecord(Job):
    """Starts only for records titled "mine"; the matrix's record is not."""

    dag_id = "index_refusing"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"

    def has_trigger_permission(self, user: Any, obj: Any) -> bool:
        return bool(user.has_perm("airflow_client.trigger_job")) and obj.title == "mine"


@pytest.fixture
def refusing_job() -> Any:
    register(RefusesThisRecord)
    yield RefusesThisRecord
    unregister(RefusesThisRecord)


def user_for(profile: str) -> User | None:
    if profile == "anonymous":
        return None
    if profile == "no_permission":
        return make_user("nobody")
    if profile == "viewer":
        return make_user("viewer", "airflow_client.view_jobrun")
    if profile in ("operator", "refused_by_job"):
        return make_user("operator", "airflow_client.view_jobrun", "airflow_client.trigger_job")
    return User.objects.create(username="root", is_staff=True, is_superuser=True)


def request(client: Client, profile: str, view: str, record: FindingAid, run: JobRun):
    dag_id = RefusesThisRecord.dag_id if profile == "refused_by_job" else "index_finding_aid"
    widget = {"model": "testapp.findingaid", "dag_id": dag_id, "object_id": str(record.pk)}
    if view == "status":
        return client.get(reverse("airflow_client:status", kwargs=widget))
    if view == "page_poll":
        # the key of a widget that showed no run yet: the poll finds the record's run
        key = Widget(find_job(FindingAid, dag_id), record, "1").poll_key
        return client.get(reverse("airflow_client:page_poll"), {"w": key, "mode": "idle"})
    if view in ("trigger", "trigger_missing_record"):
        if view == "trigger_missing_record":
            widget["object_id"] = str(record.pk + 1000)
        return client.post(reverse("airflow_client:trigger", kwargs=widget), {"confirmed": "1"})
    if view == "run_list":
        return client.get(reverse("airflow_client:run_list"))
    if view == "run_list_csv":
        return client.get(reverse("airflow_client:run_list_csv"))
    if view == "run_detail":
        return client.get(reverse("airflow_client:run_detail", args=[run.pk]))
    if view == "run_control":
        return client.post(
            reverse("airflow_client:run_control", kwargs={"pk": run.pk, "action": "mark_failed"})
        )
    return client.get(reverse("airflow_client:run_log", args=[run.pk, "run", 1]))


def body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("profile", PROFILES)
def test_permission_matrix(client: Client, finding_aid, refusing_job, profile: str, view: str) -> None:
    dag_id = RefusesThisRecord.dag_id if profile == "refused_by_job" else "index_finding_aid"
    run = make_run(finding_aid, state="success", dag_id=dag_id)
    user = user_for(profile)
    if user is not None:
        client.force_login(user)
    response = request(client, profile, view, finding_aid, run)
    expected = EXPECTED[profile][view]
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    else:
        assert response.status_code == expected, (profile, view)
    started = JobRun.objects.exclude(pk=run.pk)
    if view == "trigger" and expected == 302:
        assert started.count() == 1
        assert response["Location"] == reverse("airflow_client:run_detail", args=[started.get().pk])
    else:
        assert not started.exists()
        assert JobTrigger.objects.count() == 0
    if expected in (LOGIN, 403, 404):
        assert TITLE not in body(response)  # a page the user may not see names no record
    if view in ("status", "page_poll") and expected in (200, 286):
        html = body(response)
        may_trigger = profile in ("operator", "superuser")
        # the Start button works only for those it would start for; the others are told why not
        assert ("You may not start this job." not in html) is may_trigger
        assert "ac-badge-success" in html


# --- the admin's bulk trigger action ----------------------------------------------------------------


def admin_user_for(profile: str) -> User | None:
    if profile == "refused_by_job":
        # staff who may change finding aids in the admin, whom the Job refuses (no trigger_job)
        user = make_user("editor", "testapp.view_findingaid", "testapp.change_findingaid")
        user.is_staff = True
        user.save()
        return user
    return user_for(profile)


@pytest.mark.parametrize("profile", PROFILES)
def test_permission_matrix_admin_trigger_action(client: Client, finding_aid, profile: str) -> None:
    user = admin_user_for(profile)
    if user is not None:
        client.force_login(user)
    url = reverse("admin:testapp_findingaid_changelist")
    data = {"action": "trigger_index_finding_aid", "_selected_action": [finding_aid.pk]}
    response = client.post(url, data)
    assert response.status_code == 302
    if profile in ("anonymous", "no_permission", "viewer", "operator"):  # not staff: the admin's login
        assert response["Location"].startswith("/admin/login/?next=")
        assert not JobRun.objects.exists()
        return
    assert response["Location"] == url
    messages = [str(message) for message in client.get(url).context["messages"]]
    if profile == "refused_by_job":
        assert messages == [f"{TITLE}: not started, you may not start Index finding aid."]
        assert not JobRun.objects.exists()
    else:
        (run,) = JobRun.objects.all()
        assert messages == [f"{TITLE}: started Index finding aid (run {run.dag_run_id})."]


def test_the_matrix_covers_every_view() -> None:
    from airflow_client import urls

    # The events endpoint is for Airflow, not for people: its signature is its permission
    # (tests/views/test_events_endpoint.py).
    names = {pattern.name for pattern in urls.urlpatterns} - {"events"}
    assert names == {view for view in VIEWS if view != "trigger_missing_record"}
    assert set(EXPECTED) == set(PROFILES)
    assert all(set(row) == set(VIEWS) for row in EXPECTED.values())
    assert Permission.objects.filter(codename="trigger_job").exists()
