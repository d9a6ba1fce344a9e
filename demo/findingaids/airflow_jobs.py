"""The finding aids' Airflow Jobs (found by the package's autodiscovery)."""

from __future__ import annotations

from typing import Any

from django.db import models

from airflow_client.jobs import Job, register
from airflow_client.retention import KeepNewestAndLastSuccess, KeepSinceLastSuccess


@register
class IndexFindingAid(Job):
    dag_id = "index_finding_aid"
    model = "findingaids.FindingAid"
    conf_key = "finding_aid_id"
    label = "Index"
    retention = KeepSinceLastSuccess()  # Cinco's rule: drop only the runs before the newest success

    def get_conf(self, obj: models.Model, **kwargs: Any) -> dict[str, Any]:
        return {"ark": getattr(obj, "ark", ""), **super().get_conf(obj, **kwargs)}


@register
class DeleteFindingAid(Job):
    dag_id = "delete_finding_aid"
    model = "findingaids.FindingAid"
    conf_key = "finding_aid_id"
    label = "Remove from index"
    confirm = "Remove this finding aid from the public index?"
    retention = KeepNewestAndLastSuccess()

    def get_conf(self, obj: models.Model, **kwargs: Any) -> dict[str, Any]:
        return {"ark": getattr(obj, "ark", ""), **super().get_conf(obj, **kwargs)}
