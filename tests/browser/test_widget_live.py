"""The widget and the history page in a real browser: live htmx status, keyboard use, bookmarks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from airflow_client.models import JobRun
from airflow_client.transports.fake import FakeAirflow
from tests.testapp.models import FindingAid

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def poll_requests(page: Any) -> list[str]:
    """The page's polls, as they leave the browser (the widgets have none of their own)."""
    seen: list[str] = []
    page.on(
        "request",
        lambda request: (
            seen.append(request.url) if request.method == "GET" and "/widget/" in request.url else None
        ),
    )
    return seen


def only_run(fake_airflow: FakeAirflow) -> str:
    runs = fake_airflow.runs("index_finding_aid")
    assert len(runs) == 1
    return runs[0].run_id


def test_trigger_then_follow_the_run_until_it_ends_and_polling_stops(
    page: Any, finding_aid: FindingAid, fake_airflow: FakeAirflow
):
    page.goto(f"/findingaids/{finding_aid.pk}/")
    widgets = page.locator(".ac-widget")
    expect(widgets).to_have_count(4)  # Index and Publish, each full and compact, ids apart
    widget = widgets.first
    publish = page.locator('.ac-widget[data-dag-id="publish_finding_aid"]').first
    expect(publish.get_by_role("status")).to_have_text("Never run")
    page.evaluate("window.notReloaded = true")
    polls = poll_requests(page)

    widget.get_by_role("button", name="Start").click()
    expect(widget.get_by_role("status")).to_have_text("Queued")
    run_id = only_run(fake_airflow)

    fake_airflow.advance(run_id)
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Running")
    fake_airflow.advance(run_id)
    widget = page.locator(".ac-widget").first
    expect(widget.get_by_role("status")).to_have_text("Succeeded")
    expect(widget.get_by_role("button", name="Start")).to_be_enabled()
    # the compact widget of the same record followed along (the trigger's event made the page's poller look)
    compact = page.locator('.jobs-compact .ac-widget[data-dag-id="index_finding_aid"]')
    expect(compact.get_by_role("status")).to_contain_text("Succeeded")
    expect(widget.locator(".ac-last-success a")).to_be_visible()
    expect(publish.get_by_role("status")).to_have_text("Never run")  # the other Job's widget stayed
    assert page.evaluate("window.notReloaded") is True  # all of it without reloading
    assert polls  # the states arrived by polling
    assert all("/widget/poll/" in url for url in polls)  # the page's one poll, no widget's own

    expect(page.locator("#ac-poller")).to_have_attribute("data-poll", "idle")
    polls.clear()
    page.wait_for_timeout(10_000)
    assert polls == []  # finished: the page polls at the idle interval (30 s) only


def test_a_failed_run_shows_failed_and_the_last_success_stays(
    page: Any, finding_aid: FindingAid, fake_airflow: FakeAirflow
):
    page.goto(f"/findingaids/{finding_aid.pk}/")
    widget = page.locator(".ac-widget").first
    widget.get_by_role("button", name="Start").click()
    expect(widget.get_by_role("status")).to_have_text("Queued")
    first = only_run(fake_airflow)
    fake_airflow.finish(first, "success")
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Succeeded")
    success = JobRun.objects.get(dag_run_id=first)

    page.locator(".ac-widget").first.get_by_role("button", name="Start").click()
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Queued")
    second = next(run.run_id for run in fake_airflow.runs("index_finding_aid") if run.run_id != first)
    fake_airflow.finish(second, "failed")
    widget = page.locator(".ac-widget").first
    expect(widget.get_by_role("status")).to_have_text("Failed")
    expect(widget).to_have_class(re.compile(r"\bac-state-failed\b"))  # the colour follows the state
    expect(widget.locator(".ac-last-success a")).to_have_attribute("href", f"/airflow/runs/{success.pk}/")


def test_keyboard_only_trigger(page: Any, finding_aid: FindingAid, fake_airflow: FakeAirflow):
    page.goto(f"/findingaids/{finding_aid.pk}/")
    button = page.locator(".ac-widget").first.get_by_role("button", name="Start")
    button_id = button.get_attribute("id")
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == button_id:
            break
    else:
        pytest.fail("Tab never reached the trigger button")
    page.keyboard.press("Enter")
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Queued")
    # the swapped-in button keeps the focus (same id), marked unavailable while the run is active
    assert page.evaluate("document.activeElement.id") == button_id
    expect(page.locator(f"#{button_id}")).to_be_disabled()
    assert len(fake_airflow.runs("index_finding_aid")) == 1


def test_filter_history_then_reload_the_url(page: Any, finding_aid: FindingAid, fake_airflow: FakeAirflow):
    from tests.factories import make_run

    other = FindingAid.objects.create(title="Letters of Babbage")
    make_run(finding_aid, state="success")
    make_run(finding_aid, state="failed")
    make_run(other, state="failed")
    make_run(other, state="running")

    page.goto("/airflow/runs/")
    rows = page.locator("#ac-runs .ac-table-wrap tbody tr")  # not the chart's table of the same runs
    expect(rows).to_have_count(4)
    page.evaluate("window.notReloaded = true")
    page.get_by_label("State").select_option("failed")
    expect(rows).to_have_count(2)
    expect(page).to_have_url(re.compile(r"[?&]state=failed"))  # pushed: the URL can be shared
    assert page.evaluate("window.notReloaded") is True  # only the table was swapped
    filtered = sorted(rows.all_inner_texts())

    page.reload()
    expect(rows).to_have_count(2)
    assert sorted(rows.all_inner_texts()) == filtered
    expect(page.get_by_label("State")).to_have_value("failed")


def test_run_detail_log_viewer_loads_more(page: Any, finding_aid: FindingAid, fake_airflow: FakeAirflow):
    page.goto(f"/findingaids/{finding_aid.pk}/")
    page.locator(".ac-widget").first.get_by_role("button", name="Start").click()
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Queued")
    run_id = only_run(fake_airflow)
    fake_airflow.set_task(run_id, "extract", state="success")
    fake_airflow.add_log(run_id, "extract", *(f"line {n}" for n in range(1, 6)))
    fake_airflow.log_page_size = 2
    fake_airflow.finish(run_id)

    page.locator(".ac-widget").first.get_by_role("link", name="Logs").click()
    page.get_by_role("link", name="try 1").click()
    log = page.get_by_role("log")
    expect(log.locator(".ac-log-line")).to_have_count(2)
    log.get_by_role("link", name="Load more").click()
    expect(log.locator(".ac-log-line")).to_have_count(4)
    log.get_by_role("link", name="Load more").click()
    expect(log.locator(".ac-log-line")).to_have_count(5)
    expect(log.get_by_role("link", name="Load more")).to_have_count(0)
    assert log.locator(".ac-log-line").all_inner_texts() == [f"line {n}" for n in range(1, 6)]


def test_an_unanswered_trigger_shows_starting_until_airflow_confirms(
    page: Any, finding_aid: FindingAid, fake_airflow: FakeAirflow, trigger_answer_lost: None
):
    # Airflow starts the run; its answer never arrives
    page.goto(f"/findingaids/{finding_aid.pk}/")
    widget = page.locator(".ac-widget").first
    widget.get_by_role("button", name="Start").click()
    expect(page.locator(".ac-widget").first.get_by_role("alert")).to_contain_text("may have started")
    # the widget keeps polling, and its poll asks Airflow about the trigger's run id
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Queued")
    assert JobRun.objects.get().dag_run_id == only_run(fake_airflow)
