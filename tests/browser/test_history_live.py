"""The history page in a browser: sorting and paging swap the table, a run's link opens its page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.factories import make_run
from tests.testapp.models import FindingAid

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_run_link_opens_the_run_page_not_a_table_swap(page: Any, finding_aid: FindingAid) -> None:
    """Found against main: the table's boosted links swapped the whole run page into the table."""
    run = make_run(finding_aid, state="failed")
    page.goto("/airflow/runs/")

    page.get_by_role("link", name=run.dag_run_id).click()

    expect(page).to_have_url(f"{page.url.split('/airflow/')[0]}/airflow/runs/{run.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    expect(page.get_by_role("heading", name="About this run")).to_be_visible()
    expect(page.locator("#ac-runs")).to_have_count(0)  # no history table left around it


def test_sorting_still_swaps_only_the_table(page: Any, finding_aid: FindingAid) -> None:
    make_run(finding_aid, state="failed")
    page.goto("/airflow/runs/")
    page.evaluate("window.notReloaded = true")
    page.locator("#ac-runs thead").get_by_role("link", name="State").click()
    expect(page).to_have_url(re.compile(r"sort=state"))
    expect(page.locator("#ac-runs")).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True
