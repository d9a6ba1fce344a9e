"""Signals sent by airflow_client."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent once per state change of a JobRun, sender=JobRun, with keyword arguments
#: ``job_run``, ``old_state`` (None when the run was just recorded) and ``new_state``.
run_state_changed = Signal()
