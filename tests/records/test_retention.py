from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from airflow_client.jobs import Job
from airflow_client.models import JobRun
from airflow_client.retention import KeepAll, KeepDays, KeepLastN, KeepLatest
from tests.factories import DAY, make_run

pytestmark = pytest.mark.django_db


def history(obj: Any, dag_id: str = "index_latest") -> dict[str, JobRun]:
    """Newest first: a new failure, a success, an older failure, an old success, an old running run."""
    return {
        "running_old": make_run(obj, dag_id=dag_id, state="running", age=40 * DAY),
        "success_old": make_run(obj, dag_id=dag_id, state="success", age=30 * DAY),
        "failed_mid": make_run(obj, dag_id=dag_id, state="failed", age=20 * DAY),
        "success_new": make_run(obj, dag_id=dag_id, state="success", age=10 * DAY),
        "failed_new": make_run(obj, dag_id=dag_id, state="failed", age=1 * DAY),
    }


def kept(obj: Any) -> set[str]:
    return set(JobRun.objects.for_object(obj).values_list("dag_run_id", flat=True))


def names(runs: dict[str, JobRun], *which: str) -> set[str]:
    return {runs[name].dag_run_id for name in which}


def newest_first(obj: Any) -> list[JobRun]:
    return list(JobRun.objects.for_object(obj).order_by("-created_at", "-id"))


def test_keep_all_deletes_nothing(finding_aid: Any) -> None:
    history(finding_aid)
    assert KeepAll().deletable(newest_first(finding_aid)) == []


def test_keep_latest_keeps_newest_run_newest_success_and_unfinished(finding_aid: Any) -> None:
    runs = history(finding_aid)
    doomed = KeepLatest().deletable(newest_first(finding_aid))
    assert {run.dag_run_id for run in doomed} == names(runs, "failed_mid", "success_old")


def test_keep_last_n_keeps_n_newest_plus_protected(finding_aid: Any) -> None:
    runs = history(finding_aid)
    doomed = KeepLastN(1).deletable(newest_first(finding_aid))
    # success_new is outside the last 1 but is the newest success; running_old is unfinished.
    assert {run.dag_run_id for run in doomed} == names(runs, "failed_mid", "success_old")
    doomed = KeepLastN(3).deletable(newest_first(finding_aid))
    assert {run.dag_run_id for run in doomed} == names(runs, "success_old")


def test_keep_last_n_rejects_zero() -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        KeepLastN(0)


def test_keep_days_drops_old_finished_runs_only(finding_aid: Any) -> None:
    runs = history(finding_aid)
    doomed = KeepDays(15).deletable(newest_first(finding_aid))
    assert {run.dag_run_id for run in doomed} == names(runs, "failed_mid", "success_old")


def test_keep_days_never_deletes_the_newest_success_even_if_old(finding_aid: Any) -> None:
    old_success = make_run(finding_aid, state="success", age=100 * DAY)
    old_failure = make_run(finding_aid, state="failed", age=90 * DAY)
    doomed = KeepDays(7).deletable(newest_first(finding_aid))
    assert doomed == [old_failure]
    assert old_success not in doomed


def test_prune_command_dry_run_then_real(finding_aid: Any, keep_latest: type[Job]) -> None:
    from tests.testapp.models import FindingAid

    runs = history(finding_aid)
    other = FindingAid.objects.create(title="Other")
    other_runs = history(other)
    unrelated = make_run(finding_aid, dag_id="index_finding_aid", state="failed", age=50 * DAY)
    before = JobRun.objects.count()

    out = StringIO()
    call_command("airflow_prune", "--dry-run", stdout=out)
    assert "index_latest: would delete 4 run(s)" in out.getvalue()
    assert JobRun.objects.count() == before

    out = StringIO()
    call_command("airflow_prune", stdout=out)
    assert "index_latest: deleted 4 run(s)" in out.getvalue()
    assert kept(finding_aid) == names(runs, "running_old", "success_new", "failed_new") | {
        unrelated.dag_run_id  # a DAG whose Job keeps everything
    }
    assert kept(other) == names(other_runs, "running_old", "success_new", "failed_new")


def test_pruning_one_record_keeps_a_shared_run_another_record_needs(
    finding_aid: Any, keep_latest: type[Job]
) -> None:
    from tests.testapp.models import FindingAid

    other = FindingAid.objects.create(title="Other")
    # One run about both records: for finding_aid an old success, for other its only success.
    shared = make_run(finding_aid, state="success", age=10 * DAY, dag_id="index_latest")
    link = shared.job_records.get()
    link.pk = None
    link.object_id = str(other.pk)
    link.save()
    make_run(finding_aid, state="success", age=1 * DAY, dag_id="index_latest")
    unshared = make_run(finding_aid, state="failed", age=5 * DAY, dag_id="index_latest")

    call_command("airflow_prune", stdout=StringIO())
    assert not JobRun.objects.filter(pk=unshared.pk).exists()  # no other record keeps it
    # Gone from finding_aid's history, still in other's: the run itself stays.
    assert shared.dag_run_id not in kept(finding_aid)
    assert kept(other) == {shared.dag_run_id}
    assert JobRun.objects.last_success(other, "index_latest") == shared
