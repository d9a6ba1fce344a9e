"""The registry's harvest Job (found by the package's autodiscovery)."""

from __future__ import annotations

from typing import Any

from django.db import models

from airflow_client.jobs import Job, register
from airflow_client.retention import KeepAll


@register
class HarvestCollection(Job):
    dag_id = "harvest_collection"
    model = "collections.Collection"
    conf_key = "collection_id"
    label = "Harvest"
    retention = KeepAll()  # Rikolti reads every harvest's outcome: keep every run

    def get_conf(self, obj: models.Model, **kwargs: Any) -> dict[str, Any]:
        settings = {
            "harvest_type": getattr(obj, "harvest_type", ""),
            "harvest_url": getattr(obj, "harvest_url", ""),
            "harvest_extra": getattr(obj, "harvest_extra", ""),
            "pages": getattr(obj, "pages", 3),
        }
        return {**settings, **super().get_conf(obj, **kwargs)}
