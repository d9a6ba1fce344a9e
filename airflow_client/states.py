"""The vocabulary of run states: Airflow's own values, with the words people read.

One ``TextChoices`` serves the model field, the history filter, the badge, the
table, the CSV, the admin and the transports (which compare Airflow's answers with it).
"""

from __future__ import annotations

from typing import cast

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy as _

__all__ = ["ACTIVE_STATES", "FINISHED_STATES", "RunState", "state_label"]


def labelled(value: str, label: Promise) -> str:
    # Django takes a (value, label) member apart at run time; the type stubs would
    # read it as a tuple, so type checkers are told what each member is: a str.
    return cast(str, (value, label))


class RunState(models.TextChoices):
    """A DAG run's state as Airflow names it; ``success`` and ``failed`` are final."""

    QUEUED = labelled("queued", _("Queued"))
    RUNNING = labelled("running", _("Running"))
    SUCCESS = labelled("success", _("Succeeded"))
    FAILED = labelled("failed", _("Failed"))


ACTIVE_STATES = frozenset({RunState.QUEUED, RunState.RUNNING})
FINISHED_STATES = frozenset({RunState.SUCCESS, RunState.FAILED})


def state_label(state: str | None) -> str:
    """A state in words ("Succeeded"); "Never run" for no run; a task's other states as Airflow says them."""
    if not state:
        return gettext("Never run")
    if state in RunState.values:
        return str(RunState(state).label)
    return state.replace("_", " ").capitalize()  # upstream_failed -> "Upstream failed"
