"""Operators' controls on a run: re-run it, mark it succeeded or failed, cancel it.

Each asks Airflow through the run's transport, stores what Airflow answers
(so ``run_state_changed`` fires as for any other change) and keeps an audit
line (:class:`~airflow_client.models.JobAction`) with who did it, also when
Airflow refuses. Views and admin actions call these; they check permissions
(``airflow_client.rerun_job``, ``airflow_client.mark_job``) themselves.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from airflow_client.exceptions import AirflowClientError, AirflowDisabled, AirflowError
from airflow_client.models import JobAction, JobRun, user_label
from airflow_client.refreshing import announce_change, not_in_airflow
from airflow_client.states import RunState
from airflow_client.transports import get_transport
from airflow_client.transports.base import DagRun

__all__ = ["ControlRefused", "cancel", "mark", "rerun"]


class ControlRefused(AirflowClientError):
    """The control was not applied: Airflow refused it, or the run is not in a state that allows it.

    ``str()`` is a sentence for the operator; ``action`` is the audit line kept (None when
    nothing was asked of Airflow).
    """

    def __init__(self, message: str, action: JobAction | None = None) -> None:
        super().__init__(message)
        self.action = action


def rerun(job_run: JobRun, *, user: Any = None, only_failed: bool = False) -> JobRun:
    """Clear a finished run so Airflow runs it again: every task, or ``only_failed`` ones."""
    if not job_run.finished:
        raise ControlRefused(gettext("The run is still going on; it can be re-run once it has finished."))
    if only_failed and job_run.state != RunState.FAILED:
        raise ControlRefused(gettext("Only a failed run has failed tasks to re-run."))
    action = JobAction.Action.RERUN_FAILED if only_failed else JobAction.Action.RERUN
    return _apply(
        job_run,
        action,
        user,
        lambda: get_transport(job_run.environment).clear_run(
            job_run.dag_id, job_run.dag_run_id, only_failed=only_failed
        ),
    )


def mark(job_run: JobRun, state: str, *, user: Any = None) -> JobRun:
    """Set the run's outcome in Airflow: ``"success"`` or ``"failed"``."""
    if state not in (RunState.SUCCESS, RunState.FAILED):
        raise ValueError(f"A run is marked success or failed, not {state!r}.")
    action = JobAction.Action.MARK_SUCCESS if state == RunState.SUCCESS else JobAction.Action.MARK_FAILED
    return _apply(
        job_run,
        action,
        user,
        lambda: get_transport(job_run.environment).set_run_state(job_run.dag_id, job_run.dag_run_id, state),
    )


def cancel(job_run: JobRun, *, user: Any = None) -> JobRun:
    """Stop a queued or running run: Airflow marks it failed (its running tasks are stopped)."""
    if job_run.finished:
        raise ControlRefused(gettext("The run has already finished."))
    return _apply(
        job_run,
        JobAction.Action.CANCEL,
        user,
        lambda: get_transport(job_run.environment).set_run_state(
            job_run.dag_id, job_run.dag_run_id, RunState.FAILED
        ),
    )


def _apply(job_run: JobRun, action: str, user: Any, call: Any) -> JobRun:
    """Ask Airflow (``call``), keep the audit line, store the answer and announce the change."""
    who = {"user": user, "user_label": user_label(user)} if _is_user(user) else {}
    try:
        dag_run: DagRun = call()
    except AirflowDisabled as exc:
        raise ControlRefused(str(exc)) from exc
    except AirflowError as exc:
        why = _refusal(exc)
        line = JobAction.objects.create(job_run=job_run, action=action, done=False, detail=why, **who)
        raise ControlRefused(why, line) from exc
    JobAction.objects.create(job_run=job_run, action=action, **who)
    old_state = job_run.store(dag_run)
    if action in (JobAction.Action.RERUN, JobAction.Action.RERUN_FAILED):
        # The new attempt has its own progress; the failed task of the last one is history now.
        JobRun.objects.filter(pk=job_run.pk).update(
            tasks_done=0 if job_run.tasks_total is not None else None,
            running_task_id="",
            failed_task_id="",
            failed_try_number=None,
            failed_map_index=-1,
            failed_error="",
        )
    if job_run.reread():
        announce_change(job_run, old_state)
    return job_run


def _refusal(exc: AirflowError) -> str:
    if not_in_airflow(exc):
        return gettext(
            "Airflow no longer has this run or its DAG (deleted since?), so nothing was changed: %(detail)s"
        ) % {"detail": exc.detail}
    return gettext("Airflow refused: %(detail)s") % {"detail": exc.detail or exc}


def _is_user(user: Any) -> bool:
    return user is not None and getattr(user, "pk", None) is not None
