from __future__ import annotations

from django.db import models
from django.urls import reverse

from airflow_client.mixins import AirflowJobsMixin


class Collection(AirflowJobsMixin, models.Model):
    """A collection of the registry, with the settings its harvest needs."""

    class HarvestType(models.TextChoices):
        OAI = "oai", "OAI-PMH"
        NUXEO = "nuxeo", "Nuxeo"
        JSON = "json", "JSON API"
        ETL = "etl", "ETL file"

    name = models.CharField(max_length=300)
    harvest_type = models.CharField(max_length=10, choices=HarvestType.choices, default=HarvestType.OAI)
    harvest_url = models.URLField("harvest URL", blank=True)
    harvest_extra = models.CharField(
        "extra harvest data", max_length=200, blank=True, help_text="e.g. an OAI set spec"
    )
    pages = models.PositiveSmallIntegerField("pages to fetch", default=3, help_text="the demo DAG's size")

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("collection_detail", args=[self.pk])
