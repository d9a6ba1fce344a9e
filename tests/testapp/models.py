"""Records the tests trigger Jobs for: an integer key and a text key."""

from __future__ import annotations

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
