"""Records the tests trigger Jobs for: an integer key, a text key and a UUID key."""

from __future__ import annotations

import uuid

from django.db import models


class FindingAid(models.Model):
    title = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.title


class Collection(models.Model):
    slug = models.CharField(max_length=100, primary_key=True)
    name = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.name


class Accession(models.Model):
    """A UUID key: JSON cannot carry it as it is, so the conf holds its text."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    label = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.label
