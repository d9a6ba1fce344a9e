"""One poll per page in a real browser: a list of widgets makes one request per interval."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from airflow_client import triggering
from airflow_client.jobs import get_job
from airflow_client.models import JobRun
from airflow_client.transports.fake import FakeAirflow
from tests.testapp.models import FindingAid

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS = 6


def requests_to(page: Any, part: str) -> list[float]:
    """When each request whose URL holds ``part`` left the browser (monotonic seconds)."""
    seen: list[float] = []
    page.on("request", lambda request: seen.append(time.monotonic()) if part in request.url else None)
    return seen


def start(aid: FindingAid) -> str:
    """A run of the Index Job for ``aid``, started as another user (or Airflow's UI) would."""
    return triggering.trigger(get_job("index_finding_aid"), aid).dag_run_id


def test_a_list_makes_one_poll_per_interval_and_each_widget_follows_its_run(
    page: Any, fake_airflow: FakeAirflow
):
    aids = [FindingAid.objects.create(title=f"Aid {i}") for i in range(ROWS)]
    run_ids = [start(aid) for aid in aids]
    polls = requests_to(page, "/widget/poll/")
    own = requests_to(page, "/status/")
    page.goto("/findingaids/")
    widgets = page.locator(".ac-widget")
    expect(widgets).to_have_count(ROWS)
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#ac-poller")).to_have_attribute("data-poll", "active")

    polls.clear()
    page.wait_for_timeout(3_000)
    # AIRFLOW_POLL_INTERVAL is 0.5 s: about 6 requests in 3 s for the whole page (one per widget: 36)
    assert 3 <= len(polls) <= 8, polls
    assert own == []

    for run_id in run_ids:
        fake_airflow.advance(run_id)
    for index in range(ROWS):
        expect(widgets.nth(index).get_by_role("status")).to_contain_text("Running")
    for run_id in run_ids:
        fake_airflow.advance(run_id)
    for index in range(ROWS):
        expect(widgets.nth(index).get_by_role("status")).to_contain_text("Succeeded")
    assert page.evaluate("window.notReloaded") is True  # all of it without reloading
    expect(page.locator("#ac-poller")).to_have_attribute("data-poll", "idle")
    assert JobRun.objects.filter(state="success").count() == ROWS


def test_a_run_started_elsewhere_appears_at_the_idle_interval(
    page: Any, fake_airflow: FakeAirflow, settings: Any
):
    settings.AIRFLOW_IDLE_POLL_INTERVAL = 1.5
    aids = [FindingAid.objects.create(title=f"Aid {i}") for i in range(ROWS)]
    finished = start(aids[0])
    fake_airflow.finish(finished)
    polls = requests_to(page, "/widget/poll/")
    page.goto("/findingaids/")
    widgets = page.locator(".ac-widget")
    expect(widgets.first.get_by_role("status")).to_contain_text("Queued")  # as last read
    expect(page.locator("#ac-poller")).to_have_attribute("data-poll", "active")
    # the first poll reads the end of the run, and the page slows to the idle interval
    expect(widgets.first.get_by_role("status")).to_contain_text("Succeeded")
    expect(page.locator("#ac-poller")).to_have_attribute("data-poll", "idle")

    polls.clear()
    page.wait_for_timeout(3_200)
    assert 1 <= len(polls) <= 3, polls  # every 1.5 s, for the six widgets together

    start(aids[3])  # somebody else, elsewhere
    started = time.monotonic()
    expect(widgets.nth(3).get_by_role("status")).to_contain_text("Queued", timeout=5_000)
    assert time.monotonic() - started < 1.5 + 1.5  # within an idle interval (and the browser's slack)
    expect(widgets.nth(2).get_by_role("status")).to_have_text("Never run")
    expect(page.locator("#ac-poller")).to_have_attribute("data-poll", "active")  # it follows the run now
