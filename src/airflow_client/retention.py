"""Retention policies: which finished runs of one record (in one DAG) to delete.

A Job names its policy (``retention = KeepLatest()``). It is applied to the
records of a run when the run finishes, and on demand by
``manage.py airflow_prune``. Whatever the policy, an unfinished run and the
newest successful run of a record are never deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.utils import timezone

from airflow_client.transports.base import FINISHED_STATES, SUCCESS

if TYPE_CHECKING:
    from airflow_client.jobs import Job
    from airflow_client.models import JobRun

__all__ = ["KeepAll", "KeepDays", "KeepLastN", "KeepLatest", "RetentionPolicy", "prune"]


class RetentionPolicy:
    """Base class: subclasses pick candidates; protection is applied here."""

    #: False: nothing is ever deleted, so the work of looking is skipped.
    deletes = True

    def candidates(self, runs: Sequence[JobRun], now: datetime) -> list[JobRun]:
        """Runs (given newest first) the policy would drop."""
        raise NotImplementedError

    def deletable(self, runs: Sequence[JobRun], now: datetime | None = None) -> list[JobRun]:
        """``runs`` of one record in one DAG, newest first -> the ones to delete."""
        if not self.deletes:
            return []
        newest_success = next((run for run in runs if run.state == SUCCESS), None)
        return [
            run
            for run in self.candidates(runs, now or timezone.now())
            if run.state in FINISHED_STATES and run is not newest_success
        ]


class KeepAll(RetentionPolicy):
    """Keep every run (the default)."""

    deletes = False

    def candidates(self, runs: Sequence[JobRun], now: datetime) -> list[JobRun]:
        return []

    def __repr__(self) -> str:
        return "KeepAll()"


class KeepLatest(RetentionPolicy):
    """Keep the newest success and the newest run; drop the rest (Cinco's rule)."""

    def candidates(self, runs: Sequence[JobRun], now: datetime) -> list[JobRun]:
        return list(runs[1:])

    def __repr__(self) -> str:
        return "KeepLatest()"


@dataclass(frozen=True)
class KeepLastN(RetentionPolicy):
    """Keep the ``n`` newest runs (plus the newest success)."""

    n: int = 10

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("KeepLastN needs n >= 1.")

    def candidates(self, runs: Sequence[JobRun], now: datetime) -> list[JobRun]:
        return list(runs[self.n :])


@dataclass(frozen=True)
class KeepDays(RetentionPolicy):
    """Drop runs that ended (or were recorded, when no end is known) more than ``days`` ago."""

    days: float = 30

    def candidates(self, runs: Sequence[JobRun], now: datetime) -> list[JobRun]:
        cutoff = now - timedelta(days=self.days)
        return [run for run in runs if (run.end_date or run.created_at) < cutoff]


def _runs_of(job: Job, content_type_id: int, object_id: str) -> list[JobRun]:
    from airflow_client.models import JobRun

    return list(
        JobRun.objects.filter(
            dag_id=job.dag_id,
            environment=job.environment,
            job_records__content_type_id=content_type_id,
            job_records__object_id=object_id,
        ).order_by("-created_at", "-id")
    )


def apply(job: Job, content_type_id: int, object_id: str, *, dry_run: bool = False) -> list[JobRun]:
    """Apply ``job.retention`` to one record's runs; returns the runs deleted (or that would be)."""
    if not job.retention.deletes:
        return []
    doomed = job.retention.deletable(_runs_of(job, content_type_id, object_id))
    if doomed and not dry_run:
        from airflow_client.models import JobRun

        JobRun.objects.filter(pk__in=[run.pk for run in doomed]).delete()
    return doomed


def apply_for_run(job_run: JobRun) -> int:
    """Apply the retention of every Job of ``job_run``'s DAG to the records it was about."""
    from django.contrib.contenttypes.models import ContentType

    from airflow_client.jobs import jobs_for_dag

    deleted = 0
    links = list(job_run.job_records.values_list("content_type_id", "object_id"))
    for job in jobs_for_dag(job_run.dag_id, job_run.environment):
        if not job.retention.deletes:
            continue
        try:
            content_type_id = ContentType.objects.get_for_model(job.get_model()).pk
        except (LookupError, ValueError):
            continue
        for link_type, object_id in links:
            if link_type == content_type_id:
                deleted += len(apply(job, content_type_id, object_id))
    return deleted


def prune(*, dry_run: bool = False) -> dict[str, list[JobRun]]:
    """Apply every registered Job's retention to all its records: {dag_id: runs deleted}."""
    from django.contrib.contenttypes.models import ContentType

    from airflow_client.jobs import all_jobs
    from airflow_client.models import JobRecord

    report: dict[str, list[JobRun]] = {}
    for job in all_jobs():
        if not job.retention.deletes:
            continue
        try:
            content_type_id = ContentType.objects.get_for_model(job.get_model()).pk
        except (LookupError, ValueError):
            continue
        object_ids = (
            JobRecord.objects.filter(
                content_type_id=content_type_id,
                job_run__dag_id=job.dag_id,
                job_run__environment=job.environment,
            )
            .values_list("object_id", flat=True)
            .distinct()
        )
        doomed = report.setdefault(job.dag_id, [])
        for object_id in list(object_ids):
            doomed.extend(apply(job, content_type_id, object_id, dry_run=dry_run))
    return report
