"""Reading runs from Airflow: refresh() and record_dag_run(), plus a run's tasks, logs and links.

Views, the admin, the template tag and sync read runs through here; the
triggering path uses its helpers to record a run Airflow started.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.db import models, transaction
from django.utils import timezone

from airflow_client import progress, pruning
from airflow_client.conf import get_settings
from airflow_client.exceptions import AirflowClientError, AirflowError, AirflowUnavailable, NotFound
from airflow_client.models import JobRun, JobTrigger, content_key
from airflow_client.signals import run_state_changed
from airflow_client.states import FINISHED_STATES, RunState
from airflow_client.transports import get_transport
from airflow_client.transports.base import DagRun, LogChunk, TaskInstance

# recorded_at() is also sync's, imported by name: a helper, not this module's API.
__all__ = [
    "announce_change",
    "log_url",
    "not_in_airflow",
    "raise_unavailable",
    "record_dag_run",
    "refresh",
    "refresh_shown",
    "run_url",
    "task_instances",
    "task_log",
    "xcom",
]


def refresh(job_run: JobRun, *, force: bool = False) -> JobRun:
    """Re-read ``job_run`` from Airflow, at most once per AIRFLOW_REFRESH_INTERVAL.

    A run read within the interval is returned as it is, without a query.
    Otherwise callers coalesce through the database (JobRun.claim_refresh): exactly
    one of them calls Airflow; the others get the stored run. Finished runs are
    only re-read with ``force``. A run Airflow no longer has is marked failed
    (refresh_error says why) and frees its record. When Airflow cannot be read
    the error is stored on the run and AirflowUnavailable raised. A run deleted
    here meanwhile is returned as it was. With AIRFLOW_ENABLED False the run is
    returned as recorded, without asking.
    """
    if (job_run.finished and not force) or not get_settings().enabled:
        return job_run  # finished, or Airflow turned off: shown as recorded
    interval = None if force else timedelta(seconds=get_settings().refresh_interval)
    if interval is not None and job_run.refreshed_within(interval):
        return job_run  # the hot path of every widget poll: no UPDATE, no re-read
    if not job_run.claim_refresh(interval):
        job_run.reread()
        return job_run
    try:
        dag_run = get_transport(job_run.environment).get_run(job_run.dag_id, job_run.dag_run_id)
    except AirflowError as exc:
        if not not_in_airflow(exc):
            raise_unavailable(job_run, exc)
        old_state = job_run.mark_gone()
        if job_run.reread() and job_run.state == RunState.FAILED:  # not a success kept as it was
            announce_change(job_run, old_state)
        return job_run
    old_state = job_run.store(dag_run)
    _read_progress(job_run, dag_run)
    if job_run.reread():
        announce_change(job_run, old_state)
    return job_run


def _read_progress(job_run: JobRun, dag_run: DagRun) -> None:
    """How far the run got, from its task instances: one more call, in the same claimed refresh.

    Skipped when task events are pushed (they say it as it happens) and for a success
    (nothing left to show). A failed read leaves the progress as it was.
    """
    if job_run.pushed_at is not None or dag_run.state == RunState.SUCCESS:
        return
    try:
        found = get_transport(job_run.environment).task_instances(job_run.dag_id, job_run.dag_run_id)
    except AirflowError:
        return
    job_run.store_progress(progress.from_task_instances(found))


def refresh_shown(runs: Iterable[JobRun], *, started: float | None = None) -> None:
    """Re-read, in place, the unfinished runs a page is about to show (each coalesced by refresh()).

    A page must not wait on Airflow for long: once the environment's TIMEOUT has
    passed (since ``started``, a ``time.monotonic()`` reading, for a page that
    re-reads its runs in several batches), the remaining runs are shown as last
    read. Errors are kept on the runs.
    """
    started = time.monotonic() if started is None else started
    for job_run in runs:
        if job_run.finished:
            continue
        options = get_settings().environments.get(job_run.environment, {})
        if time.monotonic() - started > float(options.get("TIMEOUT") or 0):
            return
        with contextlib.suppress(AirflowClientError):  # stored on the run (refresh_error): the page says so
            refresh(job_run)


def record_dag_run(
    environment: str,
    dag_run: DagRun,
    records: Iterable[models.Model] = (),
    *,
    records_if_new: Callable[[], Iterable[models.Model]] | None = None,
) -> tuple[JobRun, bool]:
    """Record a run read from Airflow (sync, events) and link it to ``records``: (JobRun, created).

    The links are written in the same transaction as the run, before the
    signal and retention see it; the run counts as just read
    (``refreshed_at``); a new run's ``created_at`` is recorded_at(dag_run).
    ``records_if_new`` gives the records to link only when the run turns out to be
    new here (a known run deleted meanwhile, e.g. by retention, is recorded anew).
    """
    now = timezone.now()
    with transaction.atomic():
        stored: tuple[JobRun, str | None] = JobRun.objects.store_dag_run(environment, dag_run)
        job_run, old_state = stored
        created = old_state is None
        changes: dict[str, Any] = {"refreshed_at": now}
        if created:
            changes["created_at"] = recorded_at(dag_run, now)
            if records_if_new is not None:
                records = [*records, *records_if_new()]
        JobRun.objects.filter(pk=job_run.pk).update(**changes)
        for obj in records:
            content_type, object_id = content_key(obj)
            job_run.link_record(content_type.pk, object_id)
    if job_run.reread():
        announce_change(job_run, old_state)
    return job_run, created


def recorded_at(dag_run: DagRun, now: datetime) -> datetime:
    """The ``created_at`` a run learned from a listing gets: when it happened in Airflow (not later than now).

    So a run learned late sorts, and is kept or pruned, where it happened.
    """
    when = dag_run.queued_at or dag_run.run_after or dag_run.start_date or dag_run.logical_date
    return now if when is None else min(when, now)


def announce_change(job_run: JobRun, old_state: str | None) -> None:
    """Signal a state change this caller made (``job_run`` re-read); free and prune a finished run."""
    if old_state == job_run.state:
        return
    if job_run.state in FINISHED_STATES:
        job_run.release_slot()
    run_state_changed.send(sender=JobRun, job_run=job_run, old_state=old_state, new_state=job_run.state)
    if job_run.state in FINISHED_STATES:
        pruning.apply_for_run(job_run)


def not_in_airflow(exc: AirflowError) -> bool:
    """Airflow itself answered 404: the run (or its DAG) does not exist there."""
    # Not any NotFound: MWAA says NotFound, without a status, when the environment is wrong.
    return isinstance(exc, NotFound) and exc.status_code == 404


def raise_unavailable(record: JobRun | JobTrigger, exc: AirflowError) -> NoReturn:
    """Store why Airflow could not be read on the run or trigger (re-read), raise AirflowUnavailable."""
    record.store_error(exc)
    if isinstance(exc, AirflowUnavailable):
        raise exc
    raise AirflowUnavailable(str(exc), status_code=exc.status_code, body=exc.body) from exc


# --- a run's tasks, logs and pages in Airflow ----------------------------------------------------


def task_instances(job_run: JobRun) -> list[TaskInstance]:
    return get_transport(job_run.environment).task_instances(job_run.dag_id, job_run.dag_run_id)


def xcom(job_run: JobRun, task_id: str, key: str) -> Any:
    """What task ``task_id`` of the run pushed to XCom under ``key`` (NotFound: nothing)."""
    return get_transport(job_run.environment).xcom(job_run.dag_id, job_run.dag_run_id, task_id, key)


def task_log(
    job_run: JobRun,
    task_id: str,
    try_number: int,
    *,
    map_index: int = -1,
    continuation_token: str | None = None,
) -> LogChunk:
    return get_transport(job_run.environment).task_log(
        job_run.dag_id,
        job_run.dag_run_id,
        task_id,
        try_number,
        map_index=map_index,
        continuation_token=continuation_token,
    )


def run_url(job_run: JobRun) -> str:
    """The run in Airflow's UI."""
    return get_transport(job_run.environment).run_url(job_run.dag_id, job_run.dag_run_id)


def log_url(job_run: JobRun, task_id: str, try_number: int, map_index: int = -1) -> str:
    """A task try's log in Airflow's UI."""
    return get_transport(job_run.environment).log_url(
        job_run.dag_id, job_run.dag_run_id, task_id, try_number, map_index
    )
