"""Refreshes docs/widget.png and docs/history.png (not part of the suite: the file name
does not match test_*.py). Run: .venv/bin/pytest tests/browser/screenshots.py
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from airflow_client.transports.fake import FakeAirflow
from tests.browser.test_widget_live import only_run
from tests.testapp.models import FindingAid

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_screenshots(page: Any, finding_aid: FindingAid, fake_airflow: FakeAirflow):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import make_run
    from tests.testapp.models import Collection

    def took(days_ago: float, minutes: float) -> dict[str, Any]:
        start = timezone.now() - timedelta(days=days_ago)
        return {"queued_at": start, "start_date": start, "end_date": start + timedelta(minutes=minutes)}

    make_run(finding_aid, state="success", **took(3, 4.2))
    letters = FindingAid.objects.create(title="Letters of Charles Babbage")
    make_run(letters, state="failed", started_here=True, **took(2, 0.6))
    make_run(letters, state="success", started_here=True, **took(1.8, 3.1))
    postcards = Collection.objects.create(slug="postcards", name="Postcards, 1900-1920")
    make_run(postcards, dag_id="harvest_collection", state="success", run_type="scheduled", **took(1, 12))
    make_run(postcards, dag_id="harvest_collection", state="running", run_type="scheduled", end_date=None)

    page.goto(f"/findingaids/{finding_aid.pk}/")
    page.locator(".ac-widget").first.get_by_role("button", name="Start").click()
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Queued")
    fake_airflow.advance(only_run(fake_airflow))
    expect(page.locator(".ac-widget").first.get_by_role("status")).to_have_text("Running")
    time.sleep(0.3)
    DOCS.mkdir(exist_ok=True)
    page.locator("body").screenshot(path=str(DOCS / "widget.png"), animations="disabled")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/airflow/runs/")
    page.screenshot(path=str(DOCS / "history.png"), full_page=True, animations="disabled")
