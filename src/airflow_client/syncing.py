"""sync(): settle what is still open (named syncing.py: a sync.py would shadow the function).

Resolves triggers whose outcome is unknown (sent, never answered) by asking
Airflow for their run id, and refreshes every unfinished run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from airflow_client import services
from airflow_client.exceptions import AirflowError
from airflow_client.models import UNKNOWN, JobRun, JobTrigger
from airflow_client.transports import get_transport

__all__ = ["SyncReport", "sync"]


@dataclass
class SyncReport:
    refreshed: int = 0
    changed: int = 0
    resolved: int = 0
    errors: list[str] = field(default_factory=list)


def _open_triggers(environment: str | None) -> list[JobTrigger]:
    now = timezone.now()
    triggers = JobTrigger.objects.filter(
        Q(outcome=JobTrigger.Outcome.UNKNOWN) | Q(outcome=JobTrigger.Outcome.PENDING)
    )
    if environment is not None:
        triggers = triggers.filter(environment=environment)
    # A pending trigger younger than the transport timeout may still be in flight.
    return [
        job_trigger
        for job_trigger in triggers.order_by("created_at")
        if job_trigger.outcome == UNKNOWN
        or now
        > job_trigger.created_at + services._pending_limit(get_transport(job_trigger.environment).options)
    ]


def sync(*, environment: str | None = None) -> SyncReport:
    report = SyncReport()
    for job_trigger in _open_triggers(environment):
        try:
            if services.resolve_trigger(job_trigger) is not None:
                report.resolved += 1
        except AirflowError as exc:
            report.errors.append(f"{job_trigger.dag_id}/{job_trigger.run_id}: {exc}")
    runs = JobRun.objects.active()
    if environment is not None:
        runs = runs.filter(environment=environment)
    for job_run in runs:
        state = job_run.state
        try:
            job_run = services.refresh(job_run)
        except AirflowError as exc:
            report.errors.append(f"{job_run.dag_id}/{job_run.dag_run_id}: {exc}")
            continue
        report.refreshed += 1
        report.changed += job_run.state != state
    return report
