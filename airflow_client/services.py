"""The one path every caller uses to start runs and read them: trigger() and refresh().

Views, the admin, template tags and commands call these; only this module
(and sync) talks to a transport.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from airflow_client import pruning
from airflow_client.conf import get_settings
from airflow_client.exceptions import (
    AirflowClientError,
    AirflowError,
    AirflowTimeout,
    AirflowUnavailable,
    AlreadyRunning,
    ConfigurationError,
    Conflict,
    DagPaused,
    InvalidConf,
    NotFound,
    TriggerFailed,
)
from airflow_client.jobs import Job, conf_pk, get_job
from airflow_client.models import JobRecord, JobRun, JobSlot, JobTrigger, content_key
from airflow_client.signals import run_state_changed
from airflow_client.states import FINISHED_STATES, RunState
from airflow_client.transports import get_transport
from airflow_client.transports.base import DagRun, LogChunk, TaskInstance

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

__all__ = [
    "log_url",
    "pending_limit",
    "pending_trigger",
    "record_dag_run",
    "recorded_at",
    "refresh",
    "resolve_trigger",
    "run_fields",
    "run_url",
    "task_instances",
    "task_log",
    "trigger",
    "trigger_on_commit",
]

logger = logging.getLogger(__name__)

#: Airflow's default ``allowed_run_id_pattern``.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")
#: Extra wait, beyond the transport timeout, before an unanswered trigger counts as lost.
PENDING_GRACE = timedelta(seconds=5)
#: How often a caller that lost the race for a record looks at the winner's progress.
WAIT_STEP = 0.05

JobRef = type[Job] | Job | str


# --- trigger -------------------------------------------------------------------------------------


def validate_conf(conf: Any) -> dict[str, Any]:
    """The conf as it will be sent (a JSON round trip), or InvalidConf saying what is wrong."""
    if not isinstance(conf, Mapping):
        raise InvalidConf(f"The run conf must be a JSON object (a dict), not {type(conf).__name__}.")
    try:
        encoded = json.dumps(conf, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidConf(f"The run conf cannot be sent as JSON: {exc}.") from exc
    size, limit = len(encoded.encode()), get_settings().max_conf_bytes
    if size > limit:
        raise InvalidConf(
            f"The run conf is {size} bytes of JSON; the limit is {limit} (AIRFLOW_MAX_CONF_BYTES)."
        )
    decoded: dict[str, Any] = json.loads(encoded)
    return decoded


def _check_run_id(run_id: str, max_length: int) -> str:
    if not RUN_ID_PATTERN.match(run_id) or ".." in run_id:
        raise ConfigurationError(
            f"Run id {run_id!r} does not match Airflow's pattern ^[A-Za-z0-9_.~:+-]+$ (or contains '..')."
        )
    if len(run_id) > max_length:
        raise ConfigurationError(f"Run id {run_id!r} is longer than {max_length} characters.")
    return run_id


def _new_run_id(job: Job, obj: models.Model, max_length: int) -> str:
    own = job.get_run_id(obj)
    if own:
        return _check_run_id(own, max_length)
    # 48 random bits: collisions are negligible, and short ids keep MWAA's 64-char paths valid.
    return _check_run_id(f"{get_settings().run_id_prefix}_{secrets.token_hex(6)}", max_length)


def trigger(
    job: JobRef,
    obj: models.Model,
    *,
    user: AbstractBaseUser | AnonymousUser | None = None,
    conf: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> JobRun:
    """Start ``job``'s DAG for ``obj``; returns the new JobRun.

    Raises InvalidConf, AlreadyRunning (``.job_run``: the active run) or
    TriggerFailed (``.job_trigger``: the saved request and Airflow's answer).
    """
    job = get_job(job)
    if obj.pk is None:
        raise ValueError("trigger() needs a saved record.")
    overrides = validate_conf({} if conf is None else conf)
    merged: dict[str, Any] = {**validate_conf(job.get_conf(obj)), **overrides}
    if job.conf_key:
        merged[job.conf_key] = conf_pk(obj)
    full_conf = validate_conf(merged)
    if note is None:
        note = job.get_note(obj)
    transport = get_transport(job.environment)
    request = {
        "environment": job.environment,
        "dag_id": job.dag_id,
        "run_id": _new_run_id(job, obj, transport.max_run_id_length),
        "conf": full_conf,
        "note": note or "",
        "user": user if user is not None and user.pk is not None else None,
    }
    if job.allow_concurrent:
        with transaction.atomic():
            job_trigger = _save_trigger(request, obj)
    else:
        job_trigger = _claim(job, obj, request, pending_limit(transport.options))
    return _send(job_trigger)


def trigger_on_commit(
    job: JobRef,
    obj: models.Model,
    *,
    user: AbstractBaseUser | AnonymousUser | None = None,
    conf: Mapping[str, Any] | None = None,
    note: str | None = None,
    using: str | None = None,
) -> None:
    """trigger() once the current transaction commits (for save() hooks).

    Triggering inside the transaction would let the DAG read the record before
    the change is visible. Refusals and failures are logged, not raised.
    """

    def start() -> None:
        try:
            trigger(job, obj, user=user, conf=conf, note=note)
        except AirflowClientError as exc:
            logger.warning("Airflow job %s for %r was not started: %s", job, obj, exc)

    transaction.on_commit(start, using=using)


def _save_trigger(request: Mapping[str, Any], obj: models.Model) -> JobTrigger:
    job_trigger: JobTrigger = JobTrigger.objects.create(**request)
    content_type, object_id = content_key(obj)
    JobRecord.objects.create(
        job_trigger=job_trigger, content_type=content_type, object_id=object_id, dag_id=job_trigger.dag_id
    )
    return job_trigger


def pending_limit(options: Mapping[str, Any]) -> timedelta:
    """How long a pending trigger may still be in flight after it was sent, or created if not
    sent yet (``options``: an environment)."""
    return timedelta(seconds=float(options.get("TIMEOUT") or 10)) + PENDING_GRACE


def _in_flight_since(job_trigger: JobTrigger) -> datetime:
    return job_trigger.sent_at or job_trigger.created_at


def _claim(job: Job, obj: models.Model, request: Mapping[str, Any], in_flight: timedelta) -> JobTrigger:
    """Save the trigger holding the record's slot, or raise AlreadyRunning.

    See JobSlot for why this is race-free. A caller that loses waits for the
    winner's trigger to produce its run (then AlreadyRunning with it); a slot
    left by a failed or finished attempt is taken over.
    """
    content_type, object_id = content_key(obj)
    key = {
        "environment": job.environment,
        "dag_id": job.dag_id,
        "content_type": content_type,
        "object_id": object_id,
    }
    _refuse_if_active(job, obj)
    for _round in range(10):
        try:
            with transaction.atomic():
                job_trigger = _save_trigger(request, obj)
                JobSlot.objects.create(**key, job_trigger=job_trigger)
            return job_trigger
        except IntegrityError:
            pass
        slot = _wait_for_slot(key, in_flight)
        if slot is None:
            continue
        if slot.job_run is not None and not slot.job_run.finished:
            raise AlreadyRunning(_already_running_message(slot.job_run), job_run=slot.job_run)
        holder = slot.job_trigger
        if slot.job_run is None and holder is not None and holder.outcome != JobTrigger.Outcome.FAILED:
            # Sent but unanswered (timeout or crash): Airflow decides whether it started.
            try:
                job_run = resolve_trigger(holder)
            except AirflowError as exc:
                raise TriggerFailed(
                    "An earlier trigger for this record has an unknown outcome and Airflow cannot "
                    f"be asked about it: {exc}",
                    job_trigger=holder,
                    error=exc,
                ) from exc
            if job_run is not None and not job_run.finished:
                raise AlreadyRunning(_already_running_message(job_run), job_run=job_run)
            if job_run is None and holder.outcome in JobTrigger.OPEN:
                # Not settled (asked moments ago, or too young for a "not found" to count).
                raise TriggerFailed(
                    "An earlier trigger for this record is still unanswered; try again in a few seconds.",
                    job_trigger=holder,
                )
        _drop_slot(slot)
    raise AirflowClientError(f"Could not claim {job.dag_id} for {obj!r}: too much contention.")


def _refuse_if_active(job: Job, obj: models.Model) -> None:
    """AlreadyRunning for a run we know as active (it may have started outside this app)."""
    for active in JobRun.objects.for_object(obj).for_job(job).active():
        with contextlib.suppress(AirflowUnavailable):  # a stale state must not block a new run
            active = refresh(active)
        if not active.finished:
            raise AlreadyRunning(_already_running_message(active), job_run=active)


def _wait_for_slot(key: Mapping[str, Any], in_flight: timedelta) -> JobSlot | None:
    """The slot once its trigger is no longer in flight (None when it is gone)."""
    while True:
        slot: JobSlot | None = JobSlot.objects.filter(**key).select_related("job_run", "job_trigger").first()
        if slot is None or slot.job_run is not None or slot.job_trigger is None:
            return slot
        holder = slot.job_trigger
        if (
            holder.outcome != JobTrigger.Outcome.PENDING
            or timezone.now() > _in_flight_since(holder) + in_flight
        ):
            return slot
        time.sleep(WAIT_STEP)


def _drop_slot(slot: JobSlot) -> None:
    # Conditional: only the stale version is deleted; a slot re-claimed meanwhile survives.
    JobSlot.objects.filter(pk=slot.pk, job_run=slot.job_run_id, job_trigger=slot.job_trigger_id).delete()


def _already_running_message(job_run: JobRun) -> str:
    return f"{job_run.dag_id} is already {job_run.state} for this record (run {job_run.dag_run_id})."


def _send(job_trigger: JobTrigger) -> JobRun:
    """Ask Airflow to start the saved trigger's run; record the answer, whatever it is.

    Only the POST itself can leave the outcome unknown: everything before it
    (token, API version, the paused check) is done first by get_dag(), so a
    failure there is a plain refusal that frees the record at once.
    """
    try:
        transport = get_transport(job_trigger.environment)
        if transport.get_dag(job_trigger.dag_id).is_paused:
            # Airflow would accept the run and leave it queued until someone unpauses the DAG.
            raise DagPaused(
                f"The DAG {job_trigger.dag_id!r} is paused in Airflow; unpause it, then start the run again."
            )
    except AirflowError as exc:
        _record_failure(job_trigger, exc)
        raise TriggerFailed(
            f"Airflow did not start {job_trigger.dag_id}: {exc.detail}", job_trigger=job_trigger, error=exc
        ) from exc
    except Exception as exc:  # a setting or a bug: the record must not stay blocked by this trigger
        _record_failure(job_trigger, exc)
        raise
    # The point of no return, taken only while the trigger is still pending: a trigger given
    # up meanwhile (its record freed for another caller) is not sent at all.
    if not JobTrigger.objects.filter(pk=job_trigger.pk, outcome=JobTrigger.Outcome.PENDING).update(
        sent_at=timezone.now()
    ):
        with contextlib.suppress(JobTrigger.DoesNotExist):
            job_trigger.refresh_from_db()
        raise TriggerFailed(
            f"{job_trigger.dag_id} was not sent: Airflow was too slow to answer before the request, "
            "and the record was released; start the run again.",
            job_trigger=job_trigger,
        )
    args = {"run_id": job_trigger.run_id, "conf": job_trigger.conf, "note": job_trigger.note or None}
    try:
        try:
            dag_run = transport.trigger(job_trigger.dag_id, **args)
            status_code = 200
        except Conflict:
            # Our own run id exists: an earlier attempt of this very trigger got through.
            dag_run = transport.get_run(job_trigger.dag_id, job_trigger.run_id)
            status_code = 409
    except AirflowError as exc:
        if _unanswered(exc):
            JobTrigger.objects.filter(pk=job_trigger.pk).update(
                outcome=JobTrigger.Outcome.UNKNOWN, error=f"No answer from Airflow: {exc}"
            )
            job_trigger.refresh_from_db()
            raise TriggerFailed(
                f"Airflow did not answer; run {job_trigger.run_id} may have started "
                "(it is looked up again shortly).",
                job_trigger=job_trigger,
                error=exc,
            ) from exc
        _record_failure(job_trigger, exc)
        raise TriggerFailed(
            f"Airflow did not start {job_trigger.dag_id}: {exc.detail}", job_trigger=job_trigger, error=exc
        ) from exc
    except Exception as exc:
        _record_failure(job_trigger, exc)
        raise
    return _record_started(job_trigger, dag_run, status_code=status_code)


def _unanswered(exc: AirflowError) -> bool:
    """Whether a POST that failed with ``exc`` may still have reached Airflow."""
    # No status: timed out or the connection broke (possibly after sending). 504: a proxy timed out.
    return isinstance(exc, AirflowTimeout) or (
        isinstance(exc, AirflowUnavailable) and exc.status_code in (None, 504)
    )


_ANY: Any = object()


def _record_failure(job_trigger: JobTrigger, exc: Exception, *, sent_at: datetime | None = _ANY) -> None:
    """Mark the trigger failed with ``exc`` and free the record's slot.

    With ``sent_at``, only if the trigger was (not) sent exactly then: a caller
    deciding from an older reading must not fail a trigger that was just sent.
    """
    if isinstance(exc, AirflowError):
        body = exc.body if isinstance(exc.body, (dict, list)) else ({"text": exc.body} if exc.body else None)
        status_code, error = exc.status_code, exc.detail
    else:
        body, status_code, error = None, None, f"{type(exc).__name__}: {exc}"
    triggers = JobTrigger.objects.filter(pk=job_trigger.pk)
    if sent_at is not _ANY:
        triggers = triggers.filter(outcome__in=JobTrigger.OPEN, sent_at=sent_at)
    with transaction.atomic():
        if triggers.update(
            outcome=JobTrigger.Outcome.FAILED, status_code=status_code, response=body, error=error
        ):
            JobSlot.objects.filter(job_trigger=job_trigger, job_run__isnull=True).delete()
    with contextlib.suppress(JobTrigger.DoesNotExist):
        job_trigger.refresh_from_db()


def _run_json(dag_run: DagRun) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in asdict(dag_run).items()
    }


def _record_started(job_trigger: JobTrigger, dag_run: DagRun, *, status_code: int) -> JobRun:
    """Create the JobRun for a trigger Airflow accepted, linking the trigger's records."""
    preserve = get_settings().preserve_job_trigger
    with transaction.atomic():
        job_run, old_state = _upsert_run(
            job_trigger.environment,
            dag_run,
            started_here=True,
            job_trigger=job_trigger if preserve else None,
        )
        for link in job_trigger.job_records.all():
            JobRecord.objects.get_or_create(
                job_run=job_run,
                content_type_id=link.content_type_id,
                object_id=link.object_id,
                defaults={"dag_id": job_run.dag_id},
            )
        # Hand the slot from the trigger to the run before the trigger may go.
        JobSlot.objects.filter(job_trigger=job_trigger).update(job_run=job_run)
        if preserve:
            JobTrigger.objects.filter(pk=job_trigger.pk).update(
                outcome=JobTrigger.Outcome.STARTED, status_code=status_code, response=_run_json(dag_run)
            )
        else:
            JobTrigger.objects.filter(pk=job_trigger.pk).delete()
    if _reread(job_run):
        _after_change(job_run, old_state)
    return job_run


def pending_trigger(job: Job, obj: models.Model) -> JobTrigger | None:
    """``obj``'s newest trigger of ``job`` that has no run yet but may get one (pending/unknown).

    One query. resolve_trigger() settles it.
    """
    content_type, object_id = content_key(obj)
    found: JobTrigger | None = (
        JobTrigger.objects.filter(
            environment=job.environment,
            dag_id=job.dag_id,
            outcome__in=JobTrigger.OPEN,
            job_records__content_type=content_type,
            job_records__object_id=object_id,
        )
        .order_by("-created_at", "-id")
        .first()
    )
    return found


def resolve_trigger(job_trigger: JobTrigger) -> JobRun | None:
    """Ask Airflow whether an unanswered trigger started its run; record the answer.

    Returns the JobRun when the run exists (the trigger's records are linked to
    it). Returns None when there is no run: the trigger is then marked failed
    and frees its record if Airflow says "not found" once the trigger is older
    than pending_limit(); a younger one, or one asked about less than
    AIRFLOW_REFRESH_INTERVAL ago (callers coalesce through ``checked_at``),
    stays open: ``job_trigger.outcome`` tells (it is re-read). Raises
    AirflowUnavailable, also stored in ``job_trigger.error``, when Airflow
    cannot be asked.
    """
    if job_trigger.outcome == JobTrigger.Outcome.STARTED:
        return _run_of(job_trigger)
    if job_trigger.outcome == JobTrigger.Outcome.FAILED:
        return None
    transport = get_transport(job_trigger.environment)
    now = timezone.now()
    settled_after = _in_flight_since(job_trigger) + pending_limit(transport.options)
    if job_trigger.outcome == JobTrigger.Outcome.PENDING and now < settled_after:
        return None  # its POST may still be in flight: the sender records the answer
    if job_trigger.outcome == JobTrigger.Outcome.PENDING and job_trigger.sent_at is None:
        # Never sent, so not in Airflow: give it up. The condition on sent_at makes the
        # sender's own "sent" stamp and this release exclusive: exactly one of them happens.
        _record_failure(
            job_trigger,
            AirflowClientError("The trigger was never sent to Airflow (its sender gave no sign of life)."),
            sent_at=None,
        )
        return None
    interval = timedelta(seconds=get_settings().refresh_interval)
    claimed = (
        JobTrigger.objects.filter(pk=job_trigger.pk, outcome__in=JobTrigger.OPEN)
        .filter(Q(checked_at__isnull=True) | Q(checked_at__lte=now - interval))
        .update(checked_at=now)
    )
    if not claimed:  # another caller asked moments ago, or settled it
        found = _run_of(job_trigger)
        with contextlib.suppress(JobTrigger.DoesNotExist):
            job_trigger.refresh_from_db()
        return found
    try:
        dag_run = transport.get_run(job_trigger.dag_id, job_trigger.run_id)
    except AirflowError as exc:
        if not _gone(exc):
            JobTrigger.objects.filter(pk=job_trigger.pk).update(
                error=f"Airflow could not be asked: {exc}"[:2000]
            )
            job_trigger.refresh_from_db()
            if isinstance(exc, AirflowUnavailable):
                raise
            raise AirflowUnavailable(str(exc), status_code=exc.status_code, body=exc.body) from exc
        if now < settled_after:
            return None
        _record_failure(
            job_trigger,
            NotFound(
                f"Airflow has no run {job_trigger.run_id}: the trigger did not start one.",
                status_code=exc.status_code,
                body=exc.body,
            ),
            sent_at=job_trigger.sent_at,
        )
        return None
    return _record_started(job_trigger, dag_run, status_code=200)


def _run_of(job_trigger: JobTrigger) -> JobRun | None:
    found: JobRun | None = JobRun.objects.filter(
        environment=job_trigger.environment, dag_id=job_trigger.dag_id, dag_run_id=job_trigger.run_id
    ).first()
    return found


def _gone(exc: AirflowError) -> bool:
    """Airflow itself answered 404: the run (or its DAG) does not exist there."""
    # Not any NotFound: MWAA says NotFound, without a status, when the environment is wrong.
    return isinstance(exc, NotFound) and exc.status_code == 404


# --- refresh -------------------------------------------------------------------------------------


#: refresh_error of a run Airflow no longer has.
GONE_MESSAGE = "The run no longer exists in Airflow."


def run_fields(dag_run: DagRun) -> dict[str, Any]:
    """The JobRun fields (but the state) as Airflow reports them in ``dag_run``."""
    return {
        "run_type": dag_run.run_type or "",
        "triggered_by": dag_run.triggered_by,
        "triggering_user": dag_run.triggering_user or "",
        "logical_date": dag_run.logical_date,
        "run_after": dag_run.run_after,
        "queued_at": dag_run.queued_at,
        "start_date": dag_run.start_date,
        "end_date": dag_run.end_date,
        "conf": dict(dag_run.conf),
        "note": dag_run.note or "",
    }


def recorded_at(dag_run: DagRun, now: datetime) -> datetime:
    """The ``created_at`` a run learned from a listing gets: when it happened in Airflow (not later than now).

    So a run learned late sorts, and is kept or pruned, where it happened.
    """
    when = dag_run.queued_at or dag_run.run_after or dag_run.start_date or dag_run.logical_date
    return now if when is None else min(when, now)


def _upsert_run(environment: str, dag_run: DagRun, **extra: Any) -> tuple[JobRun, str | None]:
    """The JobRun for ``dag_run``, created or updated; also the state it had before (None: new)."""
    key = {"environment": environment, "dag_id": dag_run.dag_id, "dag_run_id": dag_run.run_id}
    try:
        with transaction.atomic():
            job_run = JobRun.objects.create(
                **key, **run_fields(dag_run), **extra, state=dag_run.state, refreshed_at=timezone.now()
            )
        return job_run, None
    except IntegrityError:
        job_run = JobRun.objects.get(**key)
    if extra:
        JobRun.objects.filter(pk=job_run.pk).update(**extra)
    return job_run, _store(job_run, dag_run)


def _store(job_run: JobRun, dag_run: DagRun) -> str | None:
    """Write what Airflow said; returns the old state if this call changed it, else the new one."""
    queryset = JobRun.objects.filter(pk=job_run.pk)
    queryset.update(**run_fields(dag_run), refresh_error="", updated_at=timezone.now())
    return _set_state(queryset, dag_run.state)


def _set_state(queryset: models.QuerySet[JobRun], state: str) -> str | None:
    """Set one run's state with a compare-and-set UPDATE: however many callers store the
    same change, exactly one of them gets the old state back (and signals); the others get ``state``.
    """
    for _attempt in range(5):
        old_state: str | None = queryset.values_list("state", flat=True).first()
        if old_state is None or old_state == state:
            return state
        if queryset.filter(state=old_state).update(state=state, updated_at=timezone.now()):
            return old_state
    return state


def _reread(job_run: JobRun) -> bool:
    """Reload ``job_run`` in place; False (the instance kept as it was) when it was deleted meanwhile."""
    try:
        job_run.refresh_from_db()
    except JobRun.DoesNotExist:  # pruned by another caller's retention, or deleted by hand
        return False
    return True


def _after_change(job_run: JobRun, old_state: str | None) -> None:
    """Signal a state change seen by this caller; release and prune when the run finished."""
    if old_state == job_run.state:
        return
    if job_run.state in FINISHED_STATES:
        JobSlot.objects.filter(job_run=job_run).delete()
    run_state_changed.send(sender=JobRun, job_run=job_run, old_state=old_state, new_state=job_run.state)
    if job_run.state in FINISHED_STATES:
        pruning.apply_for_run(job_run)


def record_dag_run(
    environment: str, dag_run: DagRun, records: Iterable[models.Model] = ()
) -> tuple[JobRun, bool]:
    """Record a run read from Airflow (sync, events) and link it to ``records``: (JobRun, created).

    The links are written in the same transaction as the run, before the
    signal and retention see it; the run counts as just read
    (``refreshed_at``); a new run's ``created_at`` is recorded_at(dag_run).
    """
    now = timezone.now()
    with transaction.atomic():
        job_run, old_state = _upsert_run(environment, dag_run)
        created = old_state is None
        changes: dict[str, Any] = {"refreshed_at": now}
        if created:
            changes["created_at"] = recorded_at(dag_run, now)
        JobRun.objects.filter(pk=job_run.pk).update(**changes)
        for obj in records:
            content_type, object_id = content_key(obj)
            JobRecord.objects.get_or_create(
                job_run=job_run,
                content_type=content_type,
                object_id=object_id,
                defaults={"dag_id": job_run.dag_id},
            )
    if _reread(job_run):
        _after_change(job_run, old_state)
    return job_run, created


def refresh(job_run: JobRun, *, force: bool = False) -> JobRun:
    """Re-read ``job_run`` from Airflow, at most once per AIRFLOW_REFRESH_INTERVAL.

    A run read within the interval is returned as it is, without a query.
    Otherwise callers coalesce through the database: a conditional UPDATE of
    ``refreshed_at`` lets exactly one of them call Airflow; the others get the
    stored run. Finished runs are only re-read with ``force``. A run Airflow no
    longer has is marked failed (refresh_error says why) and frees its record.
    When Airflow cannot be read the error is stored on the run and
    AirflowUnavailable raised. A run deleted here meanwhile is returned as it was.
    """
    if job_run.finished and not force:
        return job_run
    now = timezone.now()
    claim = JobRun.objects.filter(pk=job_run.pk)
    if not force:
        interval = timedelta(seconds=get_settings().refresh_interval)
        if job_run.refreshed_at is not None and job_run.refreshed_at > now - interval:
            return job_run  # the hot path of every widget poll: no UPDATE, no re-read
        claim = claim.exclude(state__in=FINISHED_STATES).filter(
            Q(refreshed_at__isnull=True) | Q(refreshed_at__lte=now - interval)
        )
    if not claim.update(refreshed_at=now):
        _reread(job_run)
        return job_run
    try:
        dag_run = get_transport(job_run.environment).get_run(job_run.dag_id, job_run.dag_run_id)
    except AirflowError as exc:
        if _gone(exc):
            return _record_gone(job_run)
        JobRun.objects.filter(pk=job_run.pk).update(refresh_error=str(exc)[:2000])
        _reread(job_run)
        if isinstance(exc, AirflowUnavailable):
            raise
        raise AirflowUnavailable(str(exc), status_code=exc.status_code, body=exc.body) from exc
    old_state = _store(job_run, dag_run)
    if _reread(job_run):
        _after_change(job_run, old_state)
    return job_run


def _record_gone(job_run: JobRun) -> JobRun:
    """Airflow has no such run (deleted there). An unfinished one will never finish, so it
    counts as failed; a finished one keeps its outcome (Airflow cleans up old runs)."""
    queryset = JobRun.objects.filter(pk=job_run.pk)
    queryset.update(refresh_error=GONE_MESSAGE)
    old_state = _set_state(queryset.exclude(state__in=FINISHED_STATES), RunState.FAILED)
    if _reread(job_run) and job_run.state == RunState.FAILED:  # not a success kept as it was
        _after_change(job_run, old_state)
    return job_run


# --- reading a run -------------------------------------------------------------------------------


def task_instances(job_run: JobRun) -> list[TaskInstance]:
    return get_transport(job_run.environment).task_instances(job_run.dag_id, job_run.dag_run_id)


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
