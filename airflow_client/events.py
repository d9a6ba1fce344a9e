"""Events pushed from Airflow (the DAG callbacks of :mod:`airflow_client.callbacks`): checked, read, stored.

The events endpoint (``views.events``) and ``manage.py airflow_consume_sqs``
both go through here: :func:`check_signature`, then :func:`parse`, then
:func:`receive`. The wire format is defined once, in ``callbacks.py``.

What an event does to the run it names:

* a run this app has never seen is recorded and linked to its records through
  the Job's ``get_objects(conf)`` (as ``sync`` does); a run of a DAG no Job is
  registered for, or whose conf names no record, is not kept;
* ``dag_success`` / ``dag_failure`` set the run's state, times and note;
* a task event moves a queued run to running (or a finished run that Airflow
  re-opened, e.g. cleared), never a finished run back; it is kept as the run's
  timeline and updates its progress;
* an event id already stored changes nothing.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from airflow_client import progress
from airflow_client.callbacks import KIND_PATTERN, TASK_KINDS, WIRE_VERSION, signature
from airflow_client.conf import get_settings
from airflow_client.exceptions import BadResponse
from airflow_client.jobs import jobs_for_dag, records_for_conf
from airflow_client.models import JobEvent, JobRun, JobRunQuerySet, JobTrigger
from airflow_client.refreshing import announce_change, record_dag_run
from airflow_client.states import RunState
from airflow_client.transports import payloads
from airflow_client.transports.base import DagRun

__all__ = ["MAX_AGE_SECONDS", "Event", "EventRejected", "Received", "check_signature", "parse", "receive"]

logger = logging.getLogger(__name__)

#: How old (or how far ahead) a signed timestamp may be: a captured request cannot be replayed later.
MAX_AGE_SECONDS = 300
#: The state a run event puts its run in; task kinds and send_event()'s own kinds: see callbacks.
RUN_KINDS = {"dag_success": RunState.SUCCESS, "dag_failure": RunState.FAILED}


class EventRejected(Exception):
    """An event that is not taken: ``status`` is the HTTP answer (400 garbage, 403 signature, 413 size)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TaskPart:
    task_id: str
    map_index: int = -1
    try_number: int | None = None
    state: str = ""
    error: str = ""


@dataclass(frozen=True)
class Event:
    """One event as read from the wire."""

    id: str
    kind: str
    sent_at: datetime
    run: DagRun
    environment: str | None = None
    host: str = ""
    task_count: int | None = None
    task: TaskPart | None = None
    payload: Any = None


@dataclass(frozen=True)
class Received:
    """What :func:`receive` did: ``stored`` (taken), ``duplicate`` (seen before) or ``ignored`` (kept nowhere)."""

    outcome: str
    job_run: JobRun | None = None
    reason: str = ""


def check_signature(
    secret: str,
    timestamp: str | None,
    given: str | None,
    body: bytes,
    *,
    max_age: float | None = MAX_AGE_SECONDS,
) -> None:
    """Raise EventRejected(403) unless ``given`` signs ``timestamp`` + ``body`` with ``secret``
    and the timestamp is recent (``max_age`` None: any age, for a queue that may hold messages)."""
    if not timestamp or not given:
        raise EventRejected("The event is not signed.", 403)
    if not hmac.compare_digest(signature(secret, timestamp, body), given):
        raise EventRejected("The event's signature is wrong.", 403)
    try:
        sent = int(timestamp)
    except ValueError:
        raise EventRejected("The event's timestamp is not a number of seconds.", 403) from None
    if max_age is not None and abs(time.time() - sent) > max_age:
        raise EventRejected(f"The event's timestamp is more than {max_age:.0f} seconds away from now.", 403)


def parse(body: bytes) -> Event:
    """The event in ``body`` (UTF-8 JSON, callbacks' format); EventRejected(400) when it is not one."""
    try:
        data = payloads.loads(body)
        return _event(data)
    except (UnicodeDecodeError, ValueError, BadResponse) as exc:
        raise EventRejected(f"Not an event: {exc}"[:500]) from exc


def _event(data: Any) -> Event:
    data = _mapping(data, "the event")
    if data.get("version") != WIRE_VERSION:
        raise ValueError(f"unknown version {data.get('version')!r}")
    kind = _text(data, "kind", 50)
    if not KIND_PATTERN.fullmatch(kind):
        raise ValueError(f"kind {kind!r} has characters other than a-z 0-9 _ . -")
    run = _mapping(data.get("run"), "run")
    conf = payloads._finite(run.get("conf") or {}, "a conf")
    state = RUN_KINDS.get(kind, RunState.RUNNING)
    sent_at = payloads.parse_datetime(data.get("sent_at"))
    if sent_at is None:
        raise ValueError("an event without sent_at")
    ended = payloads.parse_datetime(run.get("end_date")) if kind in RUN_KINDS else None
    dag_run = DagRun(
        dag_id=_text(run, "dag_id", 250),
        run_id=_text(run, "run_id", 250),
        state=state,
        run_type=_optional(run, "run_type", 50) or "",
        logical_date=payloads.parse_datetime(run.get("logical_date")),
        run_after=payloads.parse_datetime(run.get("run_after")),
        queued_at=payloads.parse_datetime(run.get("queued_at")),
        start_date=payloads.parse_datetime(run.get("start_date")),
        # Airflow 3's DAG callbacks do not carry the run's times: it ended about when they said so.
        end_date=(ended or sent_at) if kind in RUN_KINDS else None,
        conf=_mapping(conf, "conf"),
        note=_optional(run, "note", 10_000),
    )
    task = data.get("task")
    part = None
    if kind in TASK_KINDS and not isinstance(task, Mapping):
        raise ValueError(f"a {kind} event without its task")
    if isinstance(task, Mapping):
        part = TaskPart(
            task_id=_text(task, "task_id", 250),
            map_index=_integer(task.get("map_index"), "map_index", default=-1),
            try_number=_integer(task.get("try_number"), "try_number", default=None),
            state=_optional(task, "state", 30) or "",
            error=_optional(task, "error", 2000) or "",
        )
    return Event(
        id=_text(data, "id", 64),
        kind=kind,
        sent_at=sent_at,
        run=dag_run,
        environment=_optional(data, "environment", 100),
        host=_optional(data, "host", 255) or "",
        task_count=_integer(run.get("task_count"), "task_count", default=None),
        task=part,
        payload=payloads._finite(data.get("payload"), "a payload"),
    )


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} is not a JSON object")
    return value


def _text(data: Mapping[str, Any], key: str, limit: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValueError(f"{key!r} must be text of 1 to {limit} characters")
    return value


def _optional(data: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{key!r} must be text of at most {limit} characters")
    return value


def _integer(value: Any, key: str, *, default: int | None) -> Any:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= 1_000_000:
        raise ValueError(f"{key!r} must be a small integer")
    return value


# --- storing ----------------------------------------------------------------------------------


def receive(event: Event) -> Received:
    """Apply ``event`` to its run (see the module's docstring) and keep it on the run's timeline."""
    if JobEvent.objects.filter(event_id=event.id).exists():
        return Received("duplicate", reason="This event was received before.")
    environment = _environment(event)
    if environment is None:
        return _ignored(event, "no Job is registered for this DAG in exactly one environment")
    job_run = JobRun.objects.filter(
        environment=environment, dag_id=event.run.dag_id, dag_run_id=event.run.run_id
    ).first()
    if job_run is None:
        job_run, why = _record_new(environment, event)
        if job_run is None:
            return _ignored(event, why)
    elif event.kind in RUN_KINDS:
        job_run, _created = record_dag_run(environment, _merged(job_run, event.run))
    else:
        _task_moves_run(job_run, event)
    try:
        with transaction.atomic():
            stored = JobEvent.objects.create(
                job_run=job_run,
                event_id=event.id,
                kind=event.kind,
                task_id=event.task.task_id if event.task else "",
                map_index=event.task.map_index if event.task else -1,
                try_number=event.task.try_number if event.task else None,
                task_state=event.task.state if event.task else "",
                error=event.task.error if event.task else "",
                payload=event.payload,
                host=event.host,
                occurred_at=event.sent_at,
            )
    except IntegrityError:  # the same event delivered twice at once: the other one stored it
        return Received("duplicate", job_run, "This event was received before.")
    _update_progress(job_run, stored, event.task_count)
    return Received("stored", job_run)


def _environment(event: Event) -> str | None:
    """The environment the event is from: its own word, else the one its DAG's Jobs live in."""
    environments = get_settings().environments
    if event.environment is not None:
        return event.environment if event.environment in environments else None
    found = {alias for alias in environments if jobs_for_dag(event.run.dag_id, alias)}
    return found.pop() if len(found) == 1 else None


def _record_new(environment: str, event: Event) -> tuple[JobRun | None, str]:
    records: list[models.Model] = []
    # A run this app is starting right now (its answer not back yet) belongs to the trigger's
    # records too; the trigger path marks it started here when the answer comes.
    for job_trigger in JobTrigger.objects.open().filter(
        environment=environment, dag_id=event.run.dag_id, run_id=event.run.run_id
    ):
        records += job_trigger.records()
    jobs = jobs_for_dag(event.run.dag_id, environment)
    if not jobs and not records:
        return None, "no Job is registered for this DAG"
    try:
        records += records_for_conf(jobs, event.run.conf)
    except Exception as exc:  # a user's get_objects()
        if not records:
            return None, f"get_objects() failed: {exc!r}"
    if not records:
        return None, "its conf names no record"
    job_run, _created = record_dag_run(environment, event.run, records)
    return job_run, ""


def _merged(job_run: JobRun, dag_run: DagRun) -> DagRun:
    """The event's run, with what the event cannot know (how it was started, dates it lacks) kept."""
    return replace(
        dag_run,
        run_type=dag_run.run_type or job_run.run_type,
        triggered_by=job_run.triggered_by,
        triggering_user=job_run.triggering_user,
        logical_date=dag_run.logical_date or job_run.logical_date,
        run_after=dag_run.run_after or job_run.run_after,
        queued_at=dag_run.queued_at or job_run.queued_at,
        start_date=dag_run.start_date or job_run.start_date,
        # Airflow 3's DAG callbacks do not carry the conf either.
        conf=dag_run.conf or job_run.conf,
        note=job_run.note if dag_run.note is None else dag_run.note,
    )


def _task_moves_run(job_run: JobRun, event: Event) -> None:
    """A task event on a known run: queued -> running; a finished run re-opened in Airflow -> running."""
    reopened = (
        job_run.finished
        and event.kind in {"task_start", "task_retry"}
        and job_run.end_date is not None
        and event.sent_at > job_run.end_date
    )
    if job_run.state != RunState.QUEUED and not reopened:
        JobRun.objects.filter(pk=job_run.pk).update(refreshed_at=timezone.now())
        return
    runs = cast(JobRunQuerySet, JobRun.objects.filter(pk=job_run.pk, state=job_run.state))
    extra: dict[str, Any] = {"refreshed_at": timezone.now()}
    if reopened:
        extra["end_date"] = None
    if job_run.start_date is None and event.run.start_date is not None:
        extra["start_date"] = event.run.start_date
    runs.update(**extra)
    old_state = runs.set_state(RunState.RUNNING)
    if job_run.reread():
        announce_change(job_run, old_state)


def _update_progress(job_run: JobRun, stored: JobEvent, task_count: int | None) -> None:
    now = timezone.now()
    if not stored.task_id:
        JobRun.objects.filter(pk=job_run.pk).update(pushed_at=now)
        return
    events = list(job_run.events.exclude(task_id="").order_by("occurred_at", "id"))
    total = task_count if task_count is not None else job_run.tasks_total
    job_run.store_progress(progress.from_events(events, total), pushed_at=now)


def _ignored(event: Event, why: str) -> Received:
    logger.info(
        "airflow events: %s of %s/%s not kept: %s.", event.kind, event.run.dag_id, event.run.run_id, why
    )
    return Received("ignored", reason=why)
