from __future__ import annotations

from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType

from airflow_client.mixins import (
    current_job_run,
    last_job_success,
    latest_job_run,
    prefetch_job_runs,
)
from airflow_client.models import JobRun
from tests.factories import DAY, make_run
from tests.testapp.models import Collection, FindingAid

pytestmark = pytest.mark.django_db


def test_for_object_chains_and_last_success(finding_aid: Any) -> None:
    other = FindingAid.objects.create(title="Other")
    old_success = make_run(finding_aid, state="success", age=3 * DAY)
    new_failure = make_run(finding_aid, state="failed", age=2 * DAY)
    running = make_run(finding_aid, state="running", age=DAY)
    harvest = make_run(finding_aid, dag_id="other_dag", state="success", age=4 * DAY)
    make_run(other, state="success")

    assert list(JobRun.objects.for_object(finding_aid)) == [running, new_failure, old_success, harvest]
    assert list(JobRun.objects.for_object(finding_aid).active()) == [running]
    assert list(JobRun.objects.for_object(finding_aid).finished().filter(dag_id="other_dag")) == [harvest]
    assert JobRun.objects.last_success(finding_aid) == old_success
    assert JobRun.objects.last_success(finding_aid, dag_id="other_dag") == harvest
    assert JobRun.objects.last_success(finding_aid, dag_id="nope") is None
    assert running.records() == [finding_aid]


def test_text_primary_keys_work(collection: Any) -> None:
    run = make_run(collection, dag_id="harvest_collection", state="success")
    assert list(JobRun.objects.for_object(collection)) == [run]
    assert run.records() == [collection]
    assert last_job_success(collection) == run


def test_helpers_without_prefetch(finding_aid: Any) -> None:
    success = make_run(finding_aid, state="success", age=2 * DAY)
    running = make_run(finding_aid, state="running", age=DAY)
    assert current_job_run(finding_aid) == running
    assert latest_job_run(finding_aid) == running
    assert last_job_success(finding_aid) == success
    assert current_job_run(finding_aid, dag_id="other_dag") is None


def test_prefetch_50_records_costs_four_queries(django_assert_num_queries: Any) -> None:
    aids = [FindingAid.objects.create(title=f"Aid {i}") for i in range(50)]
    expected = {}
    for i, aid in enumerate(aids):
        success = make_run(aid, state="success", age=5 * DAY)
        make_run(aid, state="failed", age=4 * DAY)
        other = make_run(aid, dag_id="other_dag", state="success", age=3 * DAY)
        running = make_run(aid, state="running", age=DAY) if i % 2 else None
        expected[aid.pk] = (success, other, running)
    ContentType.objects.get_for_model(FindingAid)  # warm Django's content-type cache

    fresh = list(FindingAid.objects.filter(pk__in=[aid.pk for aid in aids]))
    with django_assert_num_queries(4):  # current, latest, last success, open triggers
        prefetch_job_runs(fresh)
        for aid in fresh:
            success, other, running = expected[aid.pk]
            assert last_job_success(aid, "index_finding_aid") == success
            assert last_job_success(aid, "other_dag") == other
            assert last_job_success(aid) == other  # newest success of any DAG
            assert current_job_run(aid, "index_finding_aid") == running
            assert current_job_run(aid) == running
            latest = latest_job_run(aid, "index_finding_aid")
            assert latest is not None
            assert latest.state == ("running" if running else "failed")
            # related records loaded with the run: no query
            assert latest.dag_id == "index_finding_aid"


def test_prefetch_mixed_models(finding_aid: Any, collection: Any) -> None:
    run = make_run(collection, dag_id="harvest_collection", state="queued")
    objects = prefetch_job_runs([finding_aid, collection])
    assert current_job_run(objects[1]) == run
    assert current_job_run(objects[0]) is None
    assert last_job_success(objects[0]) is None


def test_collection_without_runs_has_none(collection: Any) -> None:
    (same,) = prefetch_job_runs(Collection.objects.all())
    assert latest_job_run(same) is None


def test_current_newest_and_last_success_chain_per_job(finding_aid: Any) -> None:
    from tests.testapp.airflow_jobs import IndexFindingAid

    job = IndexFindingAid()
    success = make_run(finding_aid, state="success", age=3 * DAY)
    failure = make_run(finding_aid, state="failed", age=2 * DAY)
    make_run(finding_aid, state="success", age=DAY, environment="other")  # same DAG, another Airflow
    runs = JobRun.objects.for_object(finding_aid).for_job(job)
    assert runs.current() is None
    assert runs.newest() == failure
    assert runs.current_or_newest() == failure
    assert runs.last_success() == success
    running = make_run(finding_aid, state="running", age=4 * DAY)  # older, but going on now
    assert runs.current() == running
    assert runs.newest() == failure
    assert runs.current_or_newest() == running


def test_prefetch_tells_environments_apart(finding_aid: Any) -> None:
    here = make_run(finding_aid, state="success", age=2 * DAY)
    elsewhere = make_run(finding_aid, state="running", age=DAY, environment="other")
    (aid,) = prefetch_job_runs([FindingAid.objects.get(pk=finding_aid.pk)])
    assert current_job_run(aid, "index_finding_aid", environment="default") is None
    assert current_job_run(aid, "index_finding_aid", environment="other") == elsewhere
    assert latest_job_run(aid, "index_finding_aid", environment="default") == here
    assert last_job_success(aid, "index_finding_aid", environment="other") is None
    # Without the prefetch the same questions get the same answers.
    assert current_job_run(finding_aid, "index_finding_aid", environment="default") is None
    assert latest_job_run(finding_aid, "index_finding_aid", environment="default") == here
    assert last_job_success(finding_aid, "index_finding_aid", environment="other") is None
