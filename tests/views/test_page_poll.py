"""One poll per page (issue 12, item 4): the page's poller follows every widget on it in one request."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_htmx.middleware import HtmxDetails

from airflow_client.models import JobRun, JobTrigger
from airflow_client.signals import run_state_changed
from airflow_client.transports.fake import FakeAirflow
from airflow_client.widget import fingerprint
from tests.factories import make_run, make_user
from tests.pages import Page
from tests.testapp.models import FindingAid

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def list_page(client: Client) -> Page:
    return Page.of(client.get(reverse("findingaid_list")).content.decode())


def record_page(client: Client, obj: Any) -> Page:
    return Page.of(client.get(reverse("findingaid_detail", args=[obj.pk])).content.decode())


def poll(client: Client, page: Page) -> Any:
    return client.get(page.poll_url(), headers=HTMX)


def aids(count: int, state: str | None = "running") -> list[FindingAid]:
    made = FindingAid.objects.bulk_create(FindingAid(title=f"Aid {i}") for i in range(count))
    if state is not None:
        for aid in made:
            make_run(aid, state=state)
    return made


def finish(run: JobRun, state: str = "success") -> None:
    JobRun.objects.filter(pk=run.pk).update(state=state, end_date=timezone.now())


# --- the poller ---------------------------------------------------------------------------------


def test_a_list_page_has_one_poller_and_no_widget_polls_on_its_own(client: Client, operator):
    aids(5)
    client.force_login(operator)
    html = client.get(reverse("findingaid_list")).content.decode()
    assert html.count('id="ac-poller"') == 1
    assert html.count("hx-trigger=") == 1  # the poller's: the widgets have no timer of their own
    page = Page.of(html)
    assert len(page.widgets) == 5
    assert all(widget.key and widget.poll == "active" for widget in page.widgets.values())
    assert page.interval == "5"  # a run is unfinished: the active interval
    assert page.poller["mode"] == "active"
    assert page.poller["next"] == "/findingaids/"


def test_a_page_of_finished_runs_polls_at_the_idle_interval(client: Client, operator, settings):
    settings.AIRFLOW_IDLE_POLL_INTERVAL = 45
    aids(3, state="success")
    FindingAid.objects.create(title="Never run")
    client.force_login(operator)
    page = list_page(client)
    assert [widget.poll for widget in page.widgets.values()] == ["idle"] * 4
    assert page.interval == "45"
    assert page.poller["mode"] == "idle"


def test_a_page_without_widgets_has_a_poller_without_a_timer(operator):
    request = RequestFactory().get("/somewhere/")
    request.user = operator
    html = Template("{% load airflow_client %}{% airflow_poller %}{% airflow_poller %}").render(
        Context({"request": request})
    )
    assert html.count('id="ac-poller"') == 1  # once per page, however often the tag is used
    assert 'data-poll="dormant"' in html
    assert "every" not in html  # it polls only when told to (a trigger, a partial with widgets)
    assert 'hx-trigger="ac-poll from:body"' in html


# --- what a poll answers ------------------------------------------------------------------------


def test_nothing_changed_is_204(client: Client, operator):
    aids(3)
    client.force_login(operator)
    page = list_page(client)
    response = poll(client, page)
    assert response.status_code == 204
    assert response.content == b""


def test_only_the_changed_widgets_come_back_out_of_band(client: Client, operator):
    made = aids(3)
    client.force_login(operator)
    page = list_page(client)
    first, second, third = page.widgets
    finish(JobRun.objects.for_object(made[1]).get())
    response = poll(client, page)
    assert response.status_code == 200
    html = response.content.decode()
    assert page.apply(html) == [second]  # the other two are not in the answer
    assert first not in html
    assert third not in html
    assert html.count('hx-swap-oob="true"') == 2  # the widget and the poller
    assert page.status(second) == "Succeeded"
    assert page.widgets[second].poll == "idle"
    assert page.interval == "5"  # two runs still going: the page keeps the active interval
    assert poll(client, page).status_code == 204  # the page as htmx now holds it is up to date


def test_the_last_run_ending_turns_the_page_idle(client: Client, operator):
    made = aids(2)
    client.force_login(operator)
    page = list_page(client)
    for aid in made:
        finish(JobRun.objects.for_object(aid).get(), "failed")
    html = poll(client, page).content.decode()
    assert len(page.apply(html)) == 2
    assert {page.status(dom_id) for dom_id in page.widgets} == {"Failed"}
    assert page.poller["mode"] == "idle"
    assert page.interval == "30"  # AIRFLOW_IDLE_POLL_INTERVAL's default
    assert poll(client, page).status_code == 204


def test_the_widgets_keep_their_ids_variant_and_page(client: Client, operator, finding_aid):
    run = make_run(finding_aid, state="running")
    client.force_login(operator)
    page = record_page(client, finding_aid)
    before = {dom_id: widget.html for dom_id, widget in page.widgets.items()}
    finish(run)
    html = poll(client, page).content.decode()
    swapped = page.apply(html)
    assert len(swapped) == 2  # the full and the compact Index widget; Publish never ran
    assert all("index_finding_aid" in dom_id for dom_id in swapped)
    full, compact = swapped
    assert "ac-times" in page.widgets[full].html
    assert "ac-times" not in page.widgets[compact].html
    assert "Last success" in page.widgets[full].html
    assert f'name="next" value="/findingaids/{finding_aid.pk}/"' in page.widgets[full].html
    assert page.widgets[full].html != before[full]


def test_a_widget_swapped_in_later_joins_the_poll(client: Client, operator):
    aids(2)
    client.force_login(operator)
    page = list_page(client)
    later = FindingAid.objects.create(title="Added by a swap")
    run = make_run(later, state="running")
    # a partial of the site's puts the new row's widget on the page
    partial = client.get(reverse("findingaid_list"), headers=HTMX).content.decode()
    page.apply(partial, oob_only=False)
    assert len(page.widgets) == 3
    finish(run)
    swapped = page.apply(poll(client, page).content.decode())
    assert len(swapped) == 1
    assert page.status(swapped[0]) == "Succeeded"
    assert [page.status(dom_id) for dom_id in page.widgets if dom_id not in swapped] == ["Running"] * 2


def test_a_partial_with_widgets_wakes_the_pages_poller(operator, finding_aid):
    request = RequestFactory().get(
        "/findingaids/",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/findingaids/?page=2"},
    )
    request.user = operator
    request.htmx = HtmxDetails(request)
    html = Template(
        "{% load airflow_client %}{% airflow_status obj %}{% airflow_status obj compact=True %}"
    ).render(Context({"request": request, "obj": finding_aid}))
    assert html.count('id="ac-poller"') == 1
    poller = re.search(r'<div id="ac-poller"[^>]*>', html)
    assert poller
    assert 'hx-swap-oob="true"' in poller.group(0)
    assert 'data-poll="active"' in poller.group(0)  # it looks soon, then settles on the page's cadence
    assert 'name="next" value="/findingaids/?page=2"' in html


def test_a_record_deleted_meanwhile_loses_its_widget(client: Client, operator):
    made = aids(2)
    client.force_login(operator)
    page = list_page(client)
    gone = page.ids()[0]
    finish(JobRun.objects.for_object(made[0]).get())
    made[0].delete()
    html = poll(client, page).content.decode()
    assert f'<section id="{gone}" hx-swap-oob="delete"></section>' in html
    page.apply(html)
    assert gone not in page.widgets


# --- runs started elsewhere, noticed at the idle cadence ------------------------------------------


def test_a_run_started_elsewhere_is_noticed(client: Client, operator):
    made = aids(3, state="success")
    never = FindingAid.objects.create(title="Never run")
    client.force_login(operator)
    page = list_page(client)
    assert page.interval == "30"
    assert poll(client, page).status_code == 204
    # sync, Airflow's pushed events or another user record runs for two of the records
    make_run(made[1], state="running", run_type="scheduled")
    make_run(never, state="queued", start_date=None)
    html = poll(client, page).content.decode()
    swapped = page.apply(html)
    assert [page.status(dom_id) for dom_id in swapped] == ["Running", "Queued"]
    assert page.poller["mode"] == "active"
    assert page.interval == "5"
    assert poll(client, page).status_code == 204


def test_a_run_that_ended_before_the_page_looked_shows_as_the_newest(client: Client, operator):
    (aid,) = aids(1, state="failed")
    client.force_login(operator)
    page = list_page(client)
    make_run(aid, state="success")  # started and ended in Airflow between two polls
    make_run(aid, state="failed", age=timedelta(days=3))  # an old run learned late: not the newest
    swapped = page.apply(poll(client, page).content.decode())
    assert [page.status(dom_id) for dom_id in swapped] == ["Succeeded"]
    assert page.interval == "30"
    assert poll(client, page).status_code == 204


def test_an_old_run_learned_late_changes_nothing(client: Client, operator):
    (aid,) = aids(1, state="success")
    client.force_login(operator)
    page = list_page(client)
    make_run(aid, state="failed", age=timedelta(days=3))
    assert poll(client, page).status_code == 204


def test_a_start_in_another_tab_shows_as_starting(
    client: Client, operator, finding_aid, fake_airflow: FakeAirflow
):
    client.force_login(operator)
    page = list_page(client)
    (dom_id,) = page.widgets
    JobTrigger.objects.create_for(
        finding_aid,
        {
            "environment": "default",
            "dag_id": "index_finding_aid",
            "run_id": "dj_other0tab0",
            "conf": {},
            "note": "",
            "user": None,
        },
    )
    page.apply(poll(client, page).content.decode())
    assert page.status(dom_id) == "Starting…"
    assert page.interval == "5"


def test_a_run_re_run_by_an_operator_is_followed_again(client: Client, operator, finding_aid):
    run = make_run(finding_aid, state="failed")
    client.force_login(operator)
    page = list_page(client)
    JobRun.objects.filter(pk=run.pk).update(state="queued", end_date=None)  # controls.rerun
    page.apply(poll(client, page).content.decode())
    assert page.status(*page.widgets) == "Queued"
    assert page.interval == "5"


def test_the_trigger_tells_the_poller_which_brings_the_records_other_widgets(
    client: Client, operator, finding_aid, fake_airflow: FakeAirflow
):
    client.force_login(operator)
    page = record_page(client, finding_aid)
    full, compact = page.ids("index_finding_aid")
    publish = page.ids("publish_finding_aid")
    trigger = re.search(r'hx-post="([^"]+)"', page.widgets[full].html)
    assert trigger
    response = client.post(trigger.group(1), {"uid": full.rsplit("-", 1)[1], "next": "/"}, headers=HTMX)
    assert '"ac-poll"' in response["HX-Trigger-After-Settle"]  # the poller looks once the widget settled
    assert "index_finding_aid-changed" in response["HX-Trigger"]  # the record's own event, as before
    page.apply(response.content.decode(), oob_only=False)
    assert page.status(full) == "Queued"
    swapped = page.apply(poll(client, page).content.decode())
    assert swapped == [compact]  # the other Index widget follows; Publish's stay put
    assert page.status(compact) == "Queued"
    assert all(page.status(dom_id) == "Never run" for dom_id in publish)
    assert page.interval == "5"


# --- what it costs --------------------------------------------------------------------------------


def queries(client: Client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=HTMX)
    return response.status_code, len(captured)


def status_url(obj: Any, tag: str, run: JobRun | None = None, compact: bool = True) -> str:
    url = reverse(
        "airflow_client:status",
        kwargs={"model": "testapp.findingaid", "dag_id": "index_finding_aid", "object_id": str(obj.pk)},
    )
    return f"{url}?uid=1&tag={tag}" + (f"&run={run.pk}" if run else "") + ("&compact=1" if compact else "")


#: session, user, the user's and the groups' permissions
AUTH = 4


def one_widgets_poll(client: Client, case: str) -> int:
    """What one compact widget's own poll (the status view) costs in ``case``."""
    (aid,) = aids(1, state=None)
    if case == "unchanged":
        run = make_run(aid, state="running")
        url = status_url(aid, fingerprint(run), run)
    elif case == "finishing":
        run = make_run(aid, state="running")
        url = status_url(aid, fingerprint(run), run)
        finish(run)
    else:  # started elsewhere: its widget showed the finished run
        old = make_run(aid, state="success")
        url = status_url(aid, fingerprint(old), old)
        make_run(aid, state="running")
    queries(client, url)  # content types and the like cached, as in a running site
    status, count = queries(client, url)
    assert status in (200, 204, 286)
    return count


def page_poll_of(client: Client, count: int, case: str) -> tuple[int, int]:
    FindingAid.objects.all().delete()
    made = aids(count, state="success" if case == "started elsewhere" else "running")
    page = list_page(client)
    poll(client, page)  # caches warmed, as in a running site
    if case == "finishing":
        for aid in made:
            finish(JobRun.objects.for_object(aid).get())
    elif case == "started elsewhere":
        for aid in made:
            make_run(aid, state="running")
    status, spent = queries(client, page.poll_url())
    changed = (
        len(Page().apply(client.get(page.poll_url(), headers=HTMX).content.decode())) if status == 200 else 0
    )
    return spent, changed


@pytest.mark.parametrize("case", ["unchanged", "finishing", "started elsewhere"])
def test_a_page_poll_costs_one_widgets_poll_plus_two_whatever_the_widgets(client: Client, operator, case):
    client.force_login(operator)
    single = one_widgets_poll(client, case)
    spent = [page_poll_of(client, count, case) for count in (1, 10, 50)]
    counts = {count for count, _changed in spent}
    assert len(counts) == 1, spent  # the same for 1, 10 and 50 widgets
    (count,) = counts
    assert count <= single + 2, (count, single)
    if case == "unchanged":
        assert count == AUTH + 1  # and one query for the whole page
    else:
        assert [changed for _count, changed in spent] == [1, 10, 50]


def test_full_widgets_cost_one_widgets_poll_plus_two_too(client: Client, operator, finding_aid):
    run = make_run(finding_aid, state="running")
    client.force_login(operator)
    page = record_page(client, finding_aid)  # Index and Publish, each full and compact
    one_widget = status_url(finding_aid, fingerprint(run), run, compact=False)
    finish(run)
    queries(client, one_widget)
    _status, single = queries(client, one_widget)  # its last success is read too
    poll(client, page)
    status, spent = queries(client, page.poll_url())
    assert status == 200
    assert spent <= single + 2, (spent, single)


def test_an_idle_page_costs_one_query_beyond_the_session(client: Client, operator, django_assert_num_queries):
    aids(50, state="success")
    FindingAid.objects.bulk_create(FindingAid(title=f"Never {i}") for i in range(10))
    client.force_login(operator)
    page = list_page(client)
    assert len(page.widgets) == 60
    poll(client, page)
    with django_assert_num_queries(AUTH + 1):
        assert poll(client, page).status_code == 204


def test_the_runs_followed_are_refreshed_coalesced(client: Client, operator, fake_airflow: FakeAirflow):
    made = aids(3, state=None)
    runs = [make_run(aid, state="running", refreshed_at=None) for aid in made]
    for run in runs:
        fake_airflow.add_run("index_finding_aid", run.dag_run_id, state="running")
    client.force_login(operator)
    page = list_page(client)
    asked = fake_airflow.call_count("get_run")
    poll(client, page)
    assert fake_airflow.call_count("get_run") == asked + 3  # each due run read once
    poll(client, page)
    assert fake_airflow.call_count("get_run") == asked + 3  # read a moment ago: not again


def test_a_run_ending_in_airflow_is_read_and_announced(client: Client, operator, fake_airflow: FakeAirflow):
    (aid,) = aids(1, state=None)
    run = make_run(aid, state="running", refreshed_at=None, conf={"finding_aid_id": aid.pk})
    fake_airflow.add_run(
        "index_finding_aid", run.dag_run_id, state="success", conf={"finding_aid_id": aid.pk}
    )
    announced: list[Any] = []

    def receiver(sender: Any, job_run: JobRun, **kwargs: Any) -> None:
        announced.append((job_run.state, job_run.conf))  # a site's receiver may read anything

    run_state_changed.connect(receiver, weak=False)
    try:
        client.force_login(operator)
        page = list_page(client)
        page.apply(poll(client, page).content.decode())
    finally:
        run_state_changed.disconnect(receiver)
    assert page.status(*page.widgets) == "Succeeded"
    assert announced == [("success", {"finding_aid_id": aid.pk})]


def test_airflow_down_keeps_the_last_known_state_and_says_so(
    client: Client, operator, fake_airflow: FakeAirflow
):
    made = aids(2, state=None)
    for aid in made:
        make_run(aid, state="running", refreshed_at=None)
    fake_airflow.down = True
    client.force_login(operator)
    page = list_page(client)
    response = poll(client, page)
    assert response.status_code == 200
    swapped = page.apply(response.content.decode())
    assert len(swapped) == 2
    for dom_id in swapped:
        assert page.status(dom_id) == "Running"
        assert "Airflow cannot be reached just now" in page.widgets[dom_id].html
    assert page.interval == "5"  # and it keeps asking


# --- who may poll, and when -----------------------------------------------------------------------


def test_the_poll_needs_the_view_permission(client: Client, finding_aid):
    make_run(finding_aid, state="running")
    client.force_login(make_user("reader"))
    html = client.get(reverse("findingaid_list")).content.decode()
    assert "ac-poller" not in html  # no poll that would answer 403
    assert "ac-poll-key" not in html
    assert client.get(reverse("airflow_client:page_poll"), headers=HTMX).status_code == 403


def test_a_signed_out_page_reloads(client: Client):
    response = client.get(reverse("airflow_client:page_poll"), headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"


def test_with_airflow_turned_off_nothing_polls(client: Client, operator, settings):
    aids(2)
    client.force_login(operator)
    page = list_page(client)
    settings.AIRFLOW_ENABLED = False
    assert "ac-poller" not in client.get(reverse("findingaid_list")).content.decode()
    assert poll(client, page).status_code == 286  # a page opened before stops polling


# --- what a poll cannot be made to do ---------------------------------------------------------------


def key_of(page: Page) -> str:
    return next(iter(page.widgets.values())).key


def with_field(index: int, value: str) -> Any:
    """A key with its field ``index`` (see Widget.poll_key) replaced by ``value``."""

    def mangle(key: str) -> str:
        fields = key.split(".", 6)
        fields[index] = value
        return ".".join(fields)

    return mangle


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: key + "\x00",
        with_field(0, "99999"),  # no such content type
        with_field(0, "x"),
        with_field(0, "٣"),
        with_field(1, "ffffff"),  # no such Job
        with_field(2, "<script>"),  # not an id suffix
        with_field(3, "z"),  # no such variant
        with_field(4, "1" * 41),  # not a fingerprint
        with_field(5, "²"),  # not a run's key
        with_field(5, "9" * 19),
        with_field(6, "abc"),  # not a key of this model
        with_field(6, "9" * 300),
        lambda key: key.split(".", 1)[0],
        lambda key: "",
    ],
)
def test_a_bad_key_is_left_out(client: Client, operator, mangle):
    aids(1)
    client.force_login(operator)
    page = list_page(client)
    query = {"mode": "active", "w": [mangle(key_of(page)), key_of(page)]}
    response = client.get(reverse("airflow_client:page_poll"), query, headers=HTMX)
    assert response.status_code == 204  # the good key's widget is unchanged; the bad one is not looked at


def test_the_run_in_a_key_cannot_show_another_records_run(client: Client, operator, finding_aid):
    other = FindingAid.objects.create(title="Other")
    theirs = make_run(other, state="running")
    client.force_login(operator)
    page = Page.of(client.get(reverse("findingaid_detail", args=[finding_aid.pk])).content.decode())
    dom_id = page.ids("index_finding_aid")[1]
    fields = page.widgets[dom_id].key.split(".")
    fields[4], fields[5] = fingerprint(theirs), str(theirs.pk)
    page.widgets[dom_id].key = ".".join(fields)
    page.apply(poll(client, page).content.decode())
    assert page.status(dom_id) == "Never run"


@pytest.mark.parametrize("since", ["", "abc", "-5", "1" * 13, "99999999999", "0", "1e9", "\u0663"])
def test_any_cursor_is_taken_within_bounds(client: Client, operator, since):
    made = aids(2, state="success")
    client.force_login(operator)
    page = list_page(client)
    make_run(made[0], state="running", age=timedelta(hours=2))
    page.poller["since"] = since
    assert poll(client, page).status_code in (200, 204)


def test_a_poll_reads_at_most_so_many_widgets_and_models(client: Client, operator):
    made = aids(1)
    client.force_login(operator)
    page = list_page(client)
    key = key_of(page)
    forged = [
        key.replace(key.split(".")[0], str(100 + i), 1) for i in range(300)
    ]  # 300 unknown content types
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("airflow_client:page_poll"), {"w": [*forged, key] * 3}, headers=HTMX)
    assert response.status_code in (200, 204)
    assert len(captured) <= AUTH + 20 + 1  # at most 20 kinds of record looked up, then the one query
    assert made
