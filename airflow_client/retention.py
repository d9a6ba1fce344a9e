"""Retention policies: which finished runs of one record (in one DAG) to delete.

A Job names its policy (``retention = KeepLatest()``). This module only
decides; :mod:`airflow_client.pruning` applies the decision when a run
finishes and on demand (``manage.py airflow_prune``). Whatever the policy, an
unfinished run and the newest successful run of a record are never deleted.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.utils import timezone

from airflow_client.states import FINISHED_STATES, RunState

if TYPE_CHECKING:
    from airflow_client.models import JobRun

__all__ = ["KeepAll", "KeepDays", "KeepLastN", "KeepLatest", "RetentionPolicy"]


class RetentionPolicy(abc.ABC):
    """Base class: subclasses pick candidates; protection is applied here."""

    #: False: nothing is ever deleted, so the work of looking is skipped.
    deletes = True

    @abc.abstractmethod
    def candidates(self, runs: Sequence[JobRun], now: datetime) -> list[JobRun]:
        """Runs (given newest first) the policy would drop."""

    def deletable(self, runs: Sequence[JobRun], now: datetime | None = None) -> list[JobRun]:
        """``runs`` of one record in one DAG, newest first -> the ones to delete."""
        if not self.deletes:
            return []
        newest_success = next((run for run in runs if run.state == RunState.SUCCESS), None)
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
    """Keep the newest success and the newest run; drop the rest."""

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
