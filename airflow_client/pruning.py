"""Applying the Jobs' retention policies to the recorded runs.

The policies (:mod:`airflow_client.retention`) only decide which runs of one
record to drop. A run may be about several records: dropping it from one
record's history unlinks that record, and the run itself is deleted only once
no record is linked to it any more, so another record's history (say its only
success) is never lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from airflow_client.jobs import Job, all_jobs, jobs_for_dag
from airflow_client.models import JobRecord, JobRun
from airflow_client.retention import RetentionPolicy
from airflow_client.states import FINISHED_STATES

__all__ = ["JobPruning", "apply", "apply_for_run", "prune", "prune_jobs", "runs_of"]


def runs_of(job: Job, content_type_id: int, object_id: str) -> list[JobRun]:
    """One record's runs in ``job``'s DAG and environment, newest first (as policies expect them)."""
    return list(
        JobRun.objects.filter(
            dag_id=job.dag_id,
            environment=job.environment,
            job_records__content_type_id=content_type_id,
            job_records__object_id=object_id,
        ).order_by("-created_at", "-id")
    )


def _only_previewed(policy: RetentionPolicy | None, dry_run: bool) -> None:
    # Another policy than the Job's own only ever previews: a Job's retention is set in its code.
    if policy is not None and not dry_run:
        raise ValueError("A policy other than the Job's own can only be previewed (dry_run=True).")


def apply(
    job: Job,
    content_type_id: int,
    object_id: str,
    *,
    dry_run: bool = False,
    policy: RetentionPolicy | None = None,
) -> list[JobRun]:
    """Apply ``job.retention`` to one record's runs; returns the runs dropped from its history.

    A dropped run is deleted unless another record is still linked to it. With
    ``dry_run``, nothing changes and ``policy`` may stand in for the Job's own.
    """
    _only_previewed(policy, dry_run)
    policy = policy if policy is not None else job.retention
    if not policy.deletes:
        return []
    doomed = policy.deletable(runs_of(job, content_type_id, object_id))
    if doomed and not dry_run:
        pks = [run.pk for run in doomed]
        with transaction.atomic():
            # Locked, and only while still finished: a run Airflow re-opened meanwhile (cleared)
            # and a concurrent sync recorded as active again keeps its links and stays.
            pks = list(
                JobRun.objects.filter(pk__in=pks, state__in=FINISHED_STATES)
                .select_for_update()
                .values_list("pk", flat=True)
            )
            JobRecord.objects.filter(
                job_run__in=pks, content_type_id=content_type_id, object_id=object_id
            ).delete()
            JobRun.objects.filter(pk__in=pks, job_records__isnull=True).delete()
            # the runs still linked to other records may now sort under another one
            JobRun.objects.filter(pk__in=pks).update_record_keys()
    return doomed


def _content_type_id(job: Job) -> int | None:
    try:
        content_type = ContentType.objects.get_for_model(job.get_model())
    except (LookupError, ValueError):
        return None
    pk: int = content_type.pk
    return pk


def apply_for_run(job_run: JobRun) -> int:
    """Apply the retention of every Job of ``job_run``'s DAG to the records it was about."""
    dropped = 0
    links = list(job_run.job_records.values_list("content_type_id", "object_id"))
    for job in jobs_for_dag(job_run.dag_id, job_run.environment):
        content_type_id = _content_type_id(job) if job.retention.deletes else None
        if content_type_id is None:
            continue
        for link_type, object_id in links:
            if link_type == content_type_id:
                dropped += len(apply(job, content_type_id, object_id))
    return dropped


@dataclass
class JobPruning:
    """What one Job's policy dropped from its records' histories (or would drop, in a dry run)."""

    job: Job
    policy: RetentionPolicy
    #: object_id -> the runs dropped from that record's history, newest first (records losing runs only).
    records: dict[str, list[JobRun]] = field(default_factory=dict)

    @property
    def runs(self) -> list[JobRun]:
        return [run for runs in self.records.values() for run in runs]


def _record_order(object_id: str) -> tuple[int, str]:
    return len(object_id), object_id  # numeric keys in numeric order, others as text


def prune_jobs(
    *,
    dry_run: bool = False,
    policy: RetentionPolicy | None = None,
    dag_id: str | None = None,
) -> list[JobPruning]:
    """Apply each registered Job's retention (or only ``dag_id``'s) to all its records, record by record.

    ``policy`` previews another policy in the Jobs' place: it needs ``dry_run``.
    A Job whose model is not installed is left out (the system checks report it).
    """
    _only_previewed(policy, dry_run)
    results = []
    for job in all_jobs():
        if dag_id is not None and job.dag_id != dag_id:
            continue
        content_type_id = _content_type_id(job)
        if content_type_id is None:
            continue
        result = JobPruning(job, policy if policy is not None else job.retention)
        results.append(result)
        if not result.policy.deletes:
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
        for object_id in sorted(set(object_ids), key=_record_order):
            dropped = apply(job, content_type_id, object_id, dry_run=dry_run, policy=policy)
            if dropped:
                result.records[object_id] = dropped
    return results


def prune(*, dry_run: bool = False) -> dict[str, list[JobRun]]:
    """Apply every registered Job's retention to all its records: {dag_id: runs dropped}.

    Jobs that keep every run are not listed; :func:`prune_jobs` gives the detail.
    """
    report: dict[str, list[JobRun]] = {}
    for result in prune_jobs(dry_run=dry_run):
        if result.policy.deletes:
            report.setdefault(result.job.dag_id, []).extend(result.runs)
    return report
