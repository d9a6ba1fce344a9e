"""A finding aid's status follows its runs, through the package's state-changed signal (as in Cinco)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver
from django.utils import timezone

from airflow_client import JobRun
from airflow_client.signals import run_state_changed
from demo.findingaids.models import FindingAid

S = FindingAid.Status
#: (dag_id, new run state) -> the finding aid's new status.
STATUS = {
    ("index_finding_aid", "queued"): S.INDEXING,
    ("index_finding_aid", "running"): S.INDEXING,
    ("index_finding_aid", "success"): S.INDEXED,
    ("index_finding_aid", "failed"): S.FAILED,
    ("delete_finding_aid", "queued"): S.REMOVING,
    ("delete_finding_aid", "running"): S.REMOVING,
    ("delete_finding_aid", "success"): S.REMOVED,
    # a failed removal leaves the finding aid where it was: still indexed
    ("delete_finding_aid", "failed"): S.INDEXED,
}


@receiver(run_state_changed, dispatch_uid="demo.findingaids.status")
def follow_run(*, job_run: JobRun, old_state: str | None, new_state: str, **kwargs: Any) -> None:
    status = STATUS.get((job_run.dag_id, new_state))
    if status is None:
        return
    ids = [obj.pk for obj in job_run.records() if isinstance(obj, FindingAid)]
    if ids:
        FindingAid.objects.filter(pk__in=ids).update(status=status, status_changed=timezone.now())
