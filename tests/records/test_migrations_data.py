"""Issue 9: the migrations apply forwards and backwards on a database holding data.

Every step of airflow_client's migration graph is taken both ways with rows in
every table (written through the historical models of the older state), and
the rows must come out as they went in. Runs on SQLite and, with
DAC_POSTGRES_PORT, on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

pytestmark = pytest.mark.django_db(transaction=True)

APP = "airflow_client"
WHEN = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def _graph() -> list[tuple[str, str]]:
    """airflow_client's migrations, oldest first (the graph is linear)."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph  # no database needed
    leaf = graph.leaf_nodes(APP)
    assert len(leaf) == 1, f"{APP} has several leaf migrations: {leaf}"
    return [node for node in graph.forwards_plan(leaf[0]) if node[0] == APP]


def _migrate(target: tuple[str, str | None]) -> Any:
    """Migrate airflow_client to ``target``; the historical apps of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    if target[1] is None:
        return None
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


def _fill(apps: Any) -> dict[str, Any]:
    """One row in each table, through the historical models; what should come back."""
    content_type = apps.get_model("contenttypes", "ContentType").objects.get_or_create(
        app_label="testapp", model="findingaid"
    )[0]
    trigger = apps.get_model(APP, "JobTrigger").objects.create(
        environment="default",
        dag_id="index_finding_aid",
        run_id="dj_migrated_trigger",
        conf={"finding_aid_id": 7, "nested": [1, "two"]},
        note="kept",
        outcome="unknown",
        error="No answer from Airflow",
    )
    run = apps.get_model(APP, "JobRun").objects.create(
        environment="default",
        dag_id="index_finding_aid",
        dag_run_id="manual__migrated",
        state="running",
        run_type="manual",
        start_date=WHEN,
        conf={"finding_aid_id": 7},
        note="a note",
        started_here=True,
        job_trigger=trigger,
    )
    record = apps.get_model(APP, "JobRecord")
    record.objects.create(job_run=run, content_type=content_type, object_id="7", dag_id="index_finding_aid")
    record.objects.create(
        job_trigger=trigger, content_type=content_type, object_id="8", dag_id="index_finding_aid"
    )
    apps.get_model(APP, "JobSlot").objects.create(
        environment="default",
        dag_id="index_finding_aid",
        content_type=content_type,
        object_id="7",
        job_run=run,
    )
    return {"run_pk": run.pk, "trigger_pk": trigger.pk}


def _assert_kept(apps: Any, keys: dict[str, Any]) -> None:
    run = apps.get_model(APP, "JobRun").objects.get(pk=keys["run_pk"])
    assert (run.dag_run_id, run.state, run.start_date, run.conf, run.note, run.started_here) == (
        "manual__migrated",
        "running",
        WHEN,
        {"finding_aid_id": 7},
        "a note",
        True,
    )
    assert run.job_trigger_id == keys["trigger_pk"]
    trigger = apps.get_model(APP, "JobTrigger").objects.get(pk=keys["trigger_pk"])
    assert (trigger.run_id, trigger.outcome, trigger.conf) == (
        "dj_migrated_trigger",
        "unknown",
        {"finding_aid_id": 7, "nested": [1, "two"]},
    )
    links = apps.get_model(APP, "JobRecord").objects.order_by("object_id")
    assert [(link.object_id, link.job_run_id, link.job_trigger_id) for link in links] == [
        ("7", keys["run_pk"], None),
        ("8", None, keys["trigger_pk"]),
    ]
    assert apps.get_model(APP, "JobSlot").objects.get().job_run_id == keys["run_pk"]


def _step_ids() -> list[str]:
    return [f"{older[1]}->{newer[1]}" for older, newer in zip(_graph(), _graph()[1:], strict=False)]


@pytest.mark.parametrize("step", range(len(_step_ids())), ids=_step_ids())
def test_each_migration_step_keeps_data_both_ways(step: int) -> None:
    graph = _graph()
    older, newer = graph[step], graph[step + 1]
    try:
        keys = _fill(_migrate(older))
        _assert_kept(_migrate(newer), keys)
        _assert_kept(_migrate(older), keys)  # and back
        _assert_kept(_migrate(newer), keys)  # and forward again
    finally:
        _migrate(graph[-1])


def test_whole_graph_down_to_zero_and_up_again() -> None:
    graph = _graph()
    try:
        keys = _fill(_migrate(graph[0]))
        _assert_kept(_migrate(graph[-1]), keys)
        _assert_kept(_migrate(graph[0]), keys)
        _migrate((APP, None))  # zero: the tables go, and come back empty
        apps = _migrate(graph[-1])
        assert not apps.get_model(APP, "JobRun").objects.exists()
        keys = _fill(apps)
        _assert_kept(apps, keys)
    finally:
        _migrate(graph[-1])


def test_the_record_scale_step_fills_the_copies_of_existing_rows() -> None:
    """0007 (issue 12): links get their run's environment, state and date, trigger links their
    trigger's environment, runs their record key."""
    graph = _graph()
    before = (APP, "0006_task_results")
    try:
        keys = _fill(_migrate(before))
        apps = _migrate((APP, "0007_record_scale"))
        run = apps.get_model(APP, "JobRun").objects.get(pk=keys["run_pk"])
        links = apps.get_model(APP, "JobRecord").objects.order_by("object_id")
        assert [(link.environment, link.run_state, link.run_created_at) for link in links] == [
            ("default", "running", run.created_at),
            ("default", "", None),
        ]
        assert run.record_key == "7"
    finally:
        _migrate(graph[-1])
