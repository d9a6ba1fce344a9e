from __future__ import annotations

from django.db import models
from django.urls import reverse

from airflow_client.mixins import AirflowJobsMixin


class FindingAid(AirflowJobsMixin, models.Model):
    """An archival description, as Cinco keeps them; its status follows its Airflow runs."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        INDEXING = "indexing", "Indexing"
        INDEXED = "indexed", "Indexed"
        FAILED = "failed", "Indexing failed"
        REMOVING = "removing", "Removing from the index"
        REMOVED = "removed", "Removed from the index"

    ark = models.CharField("ARK", max_length=100, unique=True)
    title = models.CharField(max_length=300)
    repository = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    status_changed = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("title",)

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("findingaid_detail", args=[self.pk])
