"""A widget open on a record whose run is driven by events pushed with the DAG-side callbacks
(real HTTP to the live server): it shows the progress and reaches success without a reload,
and never asks Airflow (whose fake would fail every call)."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from playwright.sync_api import expect

from airflow_client import callbacks
from airflow_client.states import RunState
from airflow_client.transports.fake import FakeAirflow
from tests.events import SECRET
from tests.factories import make_run
from tests.testapp.models import FindingAid

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RUN_ID = "scheduled__pushed"


def context(record: FindingAid, task_id: str | None = None) -> dict[str, Any]:
    """What Airflow 3 hands a task callback, as far as the callbacks read it."""
    now = datetime.now(timezone.utc)
    dag_run = SimpleNamespace(
        dag_id="index_finding_aid",
        run_id=RUN_ID,
        run_type="scheduled",
        logical_date=now,
        run_after=now,
        start_date=now,
        end_date=None,
        conf={"finding_aid_id": record.pk},
    )
    dag = SimpleNamespace(dag_id="index_finding_aid", task_ids=["fetch", "map", "index"])
    ti = SimpleNamespace(task_id=task_id, map_index=-1, try_number=1, state=None, start_date=now)
    return {"dag_run": dag_run, "dag": dag, "ti": ti if task_id else None, "run_id": dag_run.run_id}


def test_a_widget_follows_a_run_that_only_pushes_events(
    page: Any,
    live_server: Any,
    finding_aid: FindingAid,
    fake_airflow: FakeAirflow,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    monkeypatch.setenv(callbacks.URL_ENV, f"{live_server.url}/airflow/events/")
    monkeypatch.setenv(callbacks.SECRET_ENV, SECRET)
    monkeypatch.delenv(callbacks.CONNECTION_ENV, raising=False)
    # Polls never ask Airflow: whatever the widget learns, it learns from the pushed events.
    settings.AIRFLOW_REFRESH_INTERVAL = 3600
    make_run(finding_aid, dag_run_id=RUN_ID, state=RunState.QUEUED, conf={"finding_aid_id": finding_aid.pk})
    page.goto(f"/findingaids/{finding_aid.pk}/")
    widget = page.locator('.ac-widget[data-dag-id="index_finding_aid"]').first
    expect(widget.get_by_role("status")).to_have_text("Queued")
    page.evaluate("window.notReloaded = true")

    assert callbacks.send_event(context(finding_aid, "fetch"), "task_start")
    expect(widget.get_by_role("status")).to_have_text("Running")
    expect(widget.locator(".ac-progress")).to_contain_text("0 of 3 tasks done · running fetch")

    callbacks.on_task_success(context(finding_aid, "fetch"))
    callbacks.on_task_start(context(finding_aid, "map"))
    expect(widget.locator(".ac-progress")).to_contain_text("1 of 3 tasks done · running map")
    expect(widget.locator("progress")).to_have_attribute("value", "1")

    callbacks.on_task_success(context(finding_aid, "map"))
    callbacks.on_task_start(context(finding_aid, "index"))
    expect(widget.locator(".ac-progress")).to_contain_text("2 of 3 tasks done")
    callbacks.on_task_success(context(finding_aid, "index"))
    callbacks.on_dag_success(context(finding_aid))

    expect(widget.get_by_role("status")).to_have_text("Succeeded")
    expect(widget.locator(".ac-progress")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True
    assert fake_airflow.calls == []
