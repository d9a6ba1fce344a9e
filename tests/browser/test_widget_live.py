"""The widget and the history page in a real browser: live htmx status, keyboard use, bookmarks."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from airflow_client.models import JobRun
from airflow_client.transports.fake import FakeAirflow
from tests.testapp.models import FindingAid

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def finding_aid(transactional_db: None) -> FindingAid:
    return FindingAid.objects.create(title="Papers of Ada Lovelace")


def status_requests(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url) if "/status/" in request.url else None)
    return seen


def only_run(airflow: FakeAirflow) -> str:
    runs = airflow.runs("index_finding_aid")
    assert len(runs) == 1
    return runs[0].run_id


def test_trigger_then_follow_the_run_until_it_ends_and_polling_stops(
    page: Any, finding_aid: FindingAid, airflow: FakeAirflow
):
    page.goto(f"/findingaids/{finding_aid.pk}/")
    widgets = page.locator(".ac-widget")
    expect(widgets).to_have_count(2)  # the full widget and the compact one, ids apart
    widget = widgets.first
    page.evaluate("window.notReloaded = true")
    polls = status_requests(page)

    widget.get_by_role("button", name="Start").click()
    expect(widget.get_by_role("status")).to_have_text("Queued")
    run_id = only_run(airflow)

    airflow.advance(run_id)
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Running")
    airflow.advance(run_id)
    widget = page.locator(".ac-widget").first
    expect(widget.get_by_role("status")).to_have_text("Succeeded")
    expect(widget.get_by_role("button", name="Start")).to_be_enabled()
    expect(widget.locator(".ac-last-success a")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True  # all of it without reloading
    assert polls  # the states arrived by polling

    polls.clear()
    page.wait_for_timeout(10_000)
    assert polls == []  # finished: the 286 stopped it


def test_a_failed_run_shows_failed_and_the_last_success_stays(
    page: Any, finding_aid: FindingAid, airflow: FakeAirflow
):
    page.goto(f"/findingaids/{finding_aid.pk}/")
    widget = page.locator(".ac-widget").first
    widget.get_by_role("button", name="Start").click()
    expect(widget.get_by_role("status")).to_have_text("Queued")
    first = only_run(airflow)
    airflow.finish(first, "success")
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Succeeded")
    success = JobRun.objects.get(dag_run_id=first)

    page.locator(".ac-widget").first.get_by_role("button", name="Start").click()
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Queued")
    second = next(run.run_id for run in airflow.runs("index_finding_aid") if run.run_id != first)
    airflow.finish(second, "failed")
    widget = page.locator(".ac-widget").first
    expect(widget.get_by_role("status")).to_have_text("Failed")
    expect(widget).to_have_class(re.compile(r"\bac-state-failed\b"))  # the colour follows the state
    expect(widget.locator(".ac-last-success a")).to_have_attribute("href", f"/airflow/runs/{success.pk}/")


def test_keyboard_only_trigger(page: Any, finding_aid: FindingAid, airflow: FakeAirflow):
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
    assert len(airflow.runs("index_finding_aid")) == 1


def test_filter_history_then_reload_the_url(page: Any, finding_aid: FindingAid, airflow: FakeAirflow):
    from tests.views.conftest import make_run

    other = FindingAid.objects.create(title="Letters of Babbage")
    make_run(finding_aid, state="success")
    make_run(finding_aid, state="failed")
    make_run(other, state="failed")
    make_run(other, state="running")

    page.goto("/airflow/runs/")
    rows = page.locator("#ac-runs tbody tr")
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


@pytest.mark.skipif(not os.environ.get("DAC_SCREENSHOTS"), reason="set DAC_SCREENSHOTS=1 to refresh docs/*.png")
def test_screenshots(page: Any, finding_aid: FindingAid, airflow: FakeAirflow):
    from datetime import timedelta

    from django.utils import timezone

    from tests.testapp.models import Collection
    from tests.views.conftest import make_run

    now = timezone.now()
    make_run(finding_aid, state="success", start_date=now - timedelta(days=3, minutes=4))
    letters = FindingAid.objects.create(title="Letters of Charles Babbage")
    make_run(letters, state="failed", start_date=now - timedelta(days=2, minutes=1), started_here=True)
    make_run(letters, state="success", start_date=now - timedelta(days=1, minutes=9), started_here=True)
    postcards = Collection.objects.create(slug="postcards", name="Postcards, 1900-1920")
    make_run(postcards, dag_id="harvest_collection", state="success", run_type="scheduled")
    make_run(postcards, dag_id="harvest_collection", state="running", run_type="scheduled", end_date=None)

    page.goto(f"/findingaids/{finding_aid.pk}/")
    page.locator(".ac-widget").first.get_by_role("button", name="Start").click()
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Queued")
    airflow.advance(only_run(airflow))
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Running")
    time.sleep(0.3)
    DOCS.mkdir(exist_ok=True)
    page.locator("body").screenshot(path=str(DOCS / "widget.png"), animations="disabled")
    page.goto("/airflow/runs/")
    page.screenshot(path=str(DOCS / "history.png"), full_page=True, animations="disabled")
