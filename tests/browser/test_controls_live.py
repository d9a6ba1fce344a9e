"""An operator re-runs a failed run from its page; the widget on the record follows the new attempt."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from playwright.sync_api import expect

from airflow_client.models import JobRun
from airflow_client.states import RunState
from airflow_client.transports.fake import FakeAirflow
from tests.factories import make_run
from tests.testapp.models import FindingAid

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_rerun_a_failed_run_and_follow_it_to_success(
    page: Any, operator: User, finding_aid: FindingAid, fake_airflow: FakeAirflow
) -> None:
    operator.user_permissions.add(Permission.objects.get(codename="rerun_job"))
    dag_run = fake_airflow.add_run("index_finding_aid", conf={"finding_aid_id": finding_aid.pk})
    fake_airflow.finish(dag_run.run_id, RunState.FAILED)
    run = make_run(finding_aid, dag_run_id=dag_run.run_id, state=RunState.FAILED)
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm asks first

    page.goto(f"/airflow/runs/{run.pk}/")
    page.get_by_role("button", name="Re-run every task").click()
    expect(page.get_by_text("Airflow runs it again.")).to_be_visible()
    expect(page.locator(".ac-audit")).to_contain_text("operator re-ran every task")

    page.goto(f"/findingaids/{finding_aid.pk}/")
    page.evaluate("window.notReloaded = true")
    widget = page.locator('.ac-widget[data-dag-id="index_finding_aid"]').first
    expect(widget.get_by_role("status")).to_have_text("Queued")
    fake_airflow.advance(dag_run.run_id)
    expect(widget.get_by_role("status")).to_have_text("Running")
    fake_airflow.finish(dag_run.run_id, RunState.SUCCESS)
    expect(widget.get_by_role("status")).to_have_text("Succeeded")
    assert page.evaluate("window.notReloaded") is True
    assert JobRun.objects.get().state == RunState.SUCCESS
