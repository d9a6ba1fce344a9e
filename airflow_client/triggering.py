"""Starting runs: trigger() and trigger_on_commit(), and settling a trigger Airflow never answered.

A trigger is saved (holding its record's JobSlot unless the Job allows
concurrent runs) before Airflow is asked, so whatever Airflow answers, or fails
to answer, is recorded. Only this module and refreshing talk to a transport.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, models, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from airflow_client.conf import get_settings
from airflow_client.exceptions import (
    AirflowClientError,
    AirflowDisabled,
    AirflowError,
    AirflowTimeout,
    AirflowUnavailable,
    AlreadyRunning,
    AuthenticationFailed,
    BadRequest,
    ConfigurationError,
    Conflict,
    DagPaused,
    InvalidConf,
    NotFound,
    TriggerFailed,
)
from airflow_client.jobs import Job, conf_pk, get_job
from airflow_client.mixins import is_prefetched, prefetched_trigger
from airflow_client.models import JobRecord, JobRun, JobSlot, JobTrigger, content_key
from airflow_client.refreshing import announce_change, not_in_airflow, raise_unavailable, refresh
from airflow_client.transports import get_transport
from airflow_client.transports.base import DagRun

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

# pending_limit() is also sync's, imported by name: a helper, not this module's API.
__all__ = ["pending_trigger", "resolve_trigger", "start_run", "trigger", "trigger_on_commit"]

logger = logging.getLogger(__name__)

#: Airflow's default ``allowed_run_id_pattern``.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")
#: Extra wait, beyond the transport timeout, before an unanswered trigger counts as lost.
PENDING_GRACE = timedelta(seconds=5)
#: How often a caller that lost the race for a record looks at the winner's progress.
WAIT_STEP = 0.05

JobRef = type[Job] | Job | str


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
    return _check_run_id(own, max_length) if own else _random_run_id(max_length)


def _random_run_id(max_length: int) -> str:
    # 48 random bits: collisions are negligible, and short ids keep MWAA's 64-char paths valid.
    return _check_run_id(f"{get_settings().run_id_prefix}_{secrets.token_hex(6)}", max_length)


def _refuse_when_disabled() -> None:
    if not get_settings().enabled:
        raise AirflowDisabled(
            "Airflow is turned off on this site (AIRFLOW_ENABLED = False): nothing was started."
        )


def trigger(
    job: JobRef,
    obj: models.Model,
    *,
    user: AbstractBaseUser | AnonymousUser | None = None,
    conf: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> JobRun:
    """Start ``job``'s DAG for ``obj``; returns the new JobRun.

    Raises InvalidConf, AlreadyRunning (``.job_run``: the active run),
    TriggerFailed (``.job_trigger``: the saved request and Airflow's answer) or
    AirflowDisabled (AIRFLOW_ENABLED is False; nothing is saved).
    """
    job = get_job(job)
    if obj.pk is None:
        raise ValueError("trigger() needs a saved record.")
    _refuse_when_disabled()
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
            job_trigger = JobTrigger.objects.create_for(obj, request)
    else:
        job_trigger = _claim(job, obj, request, pending_limit(transport.options))
    return _send(job_trigger)


def start_run(
    environment: str,
    dag_id: str,
    conf: Mapping[str, Any],
    *,
    note: str = "",
    run_after: datetime | None = None,
) -> JobRun:
    """Start a run of ``dag_id`` that belongs to no record (Django's tasks); the new JobRun.

    The same path as trigger(): the request is saved first, a paused or missing DAG is
    refused, and an unanswered POST leaves the trigger ``unknown`` for resolve_trigger().
    ``run_after``: not before then (the transport must support it: ``defers_runs``).
    Raises InvalidConf, TriggerFailed or AirflowDisabled as trigger() does.
    """
    _refuse_when_disabled()
    transport = get_transport(environment)
    if run_after is not None and not transport.defers_runs:
        raise ConfigurationError(f"The transport of environment {environment!r} cannot start a run later.")
    request = {
        "environment": environment,
        "dag_id": dag_id,
        "run_id": _random_run_id(transport.max_run_id_length),
        "conf": validate_conf(conf),
        "note": note,
    }
    job_trigger: JobTrigger = JobTrigger.objects.create(**request)
    return _send(job_trigger, run_after=run_after)


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


def pending_limit(options: Mapping[str, Any]) -> timedelta:
    """How long a pending trigger may still be in flight after it was sent, or created if not
    sent yet (``options``: an environment)."""
    return timedelta(seconds=float(options.get("TIMEOUT") or 10)) + PENDING_GRACE


# --- claiming the record -------------------------------------------------------------------------


def _claim(job: Job, obj: models.Model, request: Mapping[str, Any], in_flight: timedelta) -> JobTrigger:
    """Save the trigger holding the record's slot, or raise AlreadyRunning.

    See JobSlot for why this is race-free. A caller that loses waits for the
    winner's trigger to produce its run (then AlreadyRunning with it); a slot
    left by a failed or finished attempt is taken over.
    """
    _refuse_if_active(job, obj)
    for _round in range(10):
        try:
            with transaction.atomic():
                job_trigger: JobTrigger = JobTrigger.objects.create_for(obj, request)
                JobSlot.objects.claim(job, obj, job_trigger)
            return job_trigger
        except IntegrityError:
            pass
        slot = _wait_for_slot(job, obj, in_flight)
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
        slot.drop()
    raise AirflowClientError(f"Could not claim {job.dag_id} for {obj!r}: too much contention.")


def _refuse_if_active(job: Job, obj: models.Model) -> None:
    """AlreadyRunning for a run we know as active (it may have started outside this app)."""
    for active in JobRun.objects.for_object(obj).for_job(job).active():
        with contextlib.suppress(AirflowUnavailable):  # a stale state must not block a new run
            active = refresh(active)
        if not active.finished:
            raise AlreadyRunning(_already_running_message(active), job_run=active)


def _wait_for_slot(job: Job, obj: models.Model, in_flight: timedelta) -> JobSlot | None:
    """The slot once its trigger is no longer in flight (None when it is gone)."""
    while True:
        slot: JobSlot | None = JobSlot.objects.of(job, obj).select_related("job_run", "job_trigger").first()
        if slot is None or slot.job_run is not None or slot.job_trigger is None:
            return slot
        holder = slot.job_trigger
        if (
            holder.outcome != JobTrigger.Outcome.PENDING
            or timezone.now() > holder.in_flight_since + in_flight
        ):
            return slot
        time.sleep(WAIT_STEP)


def _already_running_message(job_run: JobRun) -> str:
    return f"{job_run.dag_id} is already {job_run.state} for this record (run {job_run.dag_run_id})."


# --- sending -------------------------------------------------------------------------------------


def _send(job_trigger: JobTrigger, *, run_after: datetime | None = None) -> JobRun:
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
        job_trigger.mark_failed(exc)
        raise _refused(job_trigger, exc) from exc
    except Exception as exc:  # a setting or a bug: the record must not stay blocked by this trigger
        job_trigger.mark_failed(exc)
        raise
    if not job_trigger.mark_sent():
        raise TriggerFailed(
            f"{job_trigger.dag_id} was not sent: Airflow was too slow to answer before the request, "
            "and the record was released; start the run again.",
            job_trigger=job_trigger,
        )
    args: dict[str, Any] = {
        "run_id": job_trigger.run_id,
        "conf": job_trigger.conf,
        "note": job_trigger.note or None,
    }
    if run_after is not None:
        args["run_after"] = run_after
    try:
        dag_run = transport.trigger(job_trigger.dag_id, **args)
        status_code = 200
    except Conflict:
        # Our own run id exists: an earlier attempt of this very trigger got through.
        status_code = 409
        try:
            dag_run = transport.get_run(job_trigger.dag_id, job_trigger.run_id)
        except Exception as exc:  # the run exists: whatever the read-back says, it is not a refusal
            raise _unknown(job_trigger, exc) from exc
    except AirflowError as exc:
        if not _refusal(exc):
            raise _unknown(job_trigger, exc) from exc
        job_trigger.mark_failed(exc)
        raise _refused(job_trigger, exc) from exc
    except AirflowClientError as exc:  # ConfigurationError and the like: raised before sending
        job_trigger.mark_failed(exc)
        raise
    except Exception as exc:  # e.g. a decoding error: the POST may have started the run
        raise _unknown(job_trigger, exc) from exc
    return _record_started(job_trigger, dag_run, status_code=status_code)


def _refused(job_trigger: JobTrigger, exc: AirflowError) -> TriggerFailed:
    if isinstance(exc, AuthenticationFailed):
        message = (
            f"Airflow refused this site's credentials; {job_trigger.dag_id} was not started: {exc.detail}"
        )
    else:
        message = f"Airflow did not start {job_trigger.dag_id}: {exc.detail}"
    return TriggerFailed(message, job_trigger=job_trigger, error=exc)


def _refusal(exc: AirflowError) -> bool:
    """Whether Airflow refused the POST (400/401/403/404/422): it then certainly started nothing.

    Anything else after the POST was sent (no answer, a 5xx, an unexpected status, a 2xx
    that cannot be read) may come from an Airflow that created the run.
    """
    return isinstance(exc, (AuthenticationFailed, BadRequest, NotFound, DagPaused))


def _unknown(job_trigger: JobTrigger, exc: Exception) -> TriggerFailed:
    """Record an outcome only Airflow knows (resolve_trigger reads the run id back)."""
    if isinstance(exc, AirflowError):
        if _unanswered(exc):
            reason, said = f"No answer from Airflow: {exc}", "Airflow did not answer"
        else:
            reason, said = f"Airflow's answer could not be used: {exc}", "Airflow's answer could not be read"
        error: AirflowError | None = exc
    else:
        logger.error("Unexpected error after triggering %s", job_trigger.run_id, exc_info=exc)
        reason = f"Airflow's answer could not be used: {type(exc).__name__}"
        said, error = "Airflow's answer could not be read", None
    job_trigger.mark_unknown(reason)
    return TriggerFailed(
        f"{said}; run {job_trigger.run_id} may have started (it is looked up again shortly).",
        job_trigger=job_trigger,
        error=error,
    )


def _unanswered(exc: AirflowError) -> bool:
    """Whether a POST that failed with ``exc`` got no answer at all."""
    # No status: timed out or the connection broke (possibly after sending). 504: a proxy timed out.
    return isinstance(exc, AirflowTimeout) or (
        isinstance(exc, AirflowUnavailable) and exc.status_code in (None, 504)
    )


def _run_json(dag_run: DagRun) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in asdict(dag_run).items()
    }


def _record_started(job_trigger: JobTrigger, dag_run: DagRun, *, status_code: int) -> JobRun:
    """Create the JobRun for a trigger Airflow accepted; the trigger hands it its records and slot."""
    keep = get_settings().preserve_job_trigger
    with transaction.atomic():
        stored: tuple[JobRun, str | None] = JobRun.objects.store_dag_run(
            job_trigger.environment,
            dag_run,
            started_here=True,
            started_by_id=job_trigger.user_id,
            job_trigger=job_trigger if keep else None,
        )
        job_run, old_state = stored
        job_trigger.mark_started(job_run, status_code=status_code, response=_run_json(dag_run), keep=keep)
    if job_run.reread():
        announce_change(job_run, old_state)
    return job_run


# --- triggers Airflow never answered -------------------------------------------------------------


def pending_trigger(job: Job, obj: models.Model) -> JobTrigger | None:
    """``obj``'s newest trigger of ``job`` that has no run yet but may get one (pending/unknown).

    One query, none when ``obj`` went through prefetch_job_runs. resolve_trigger() settles it.
    """
    if is_prefetched(obj, "triggers"):
        return prefetched_trigger(obj, job.dag_id, job.environment)
    content_type, object_id = content_key(obj)
    # From the open triggers (few) to their links, not from the record's links (its whole history).
    links = JobRecord.objects.filter(
        job_trigger=OuterRef("pk"), content_type=content_type, object_id=object_id
    )
    found: JobTrigger | None = (
        JobTrigger.objects.open()
        .filter(Exists(links), environment=job.environment, dag_id=job.dag_id)
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
        return job_trigger.recorded_run()
    if job_trigger.outcome == JobTrigger.Outcome.FAILED:
        return None
    transport = get_transport(job_trigger.environment)
    now = timezone.now()
    settled_after = job_trigger.in_flight_since + pending_limit(transport.options)
    if job_trigger.outcome == JobTrigger.Outcome.PENDING and now < settled_after:
        return None  # its POST may still be in flight: the sender records the answer
    if job_trigger.outcome == JobTrigger.Outcome.PENDING and job_trigger.sent_at is None:
        # Never sent, so not in Airflow: give it up. The condition on sent_at makes the
        # sender's mark_sent() and this release exclusive: exactly one of them happens.
        job_trigger.mark_failed(
            AirflowClientError("The trigger was never sent to Airflow (its sender gave no sign of life)."),
            sent_at=None,
        )
        return None
    if not job_trigger.claim_check(timedelta(seconds=get_settings().refresh_interval), now):
        found = job_trigger.recorded_run()  # another caller asked moments ago, or settled it
        job_trigger.reread()
        return found
    try:
        dag_run = transport.get_run(job_trigger.dag_id, job_trigger.run_id)
    except AirflowError as exc:
        if not not_in_airflow(exc):
            raise_unavailable(job_trigger, exc)
        if now < settled_after:
            return None
        job_trigger.mark_failed(
            NotFound(
                f"Airflow has no run {job_trigger.run_id}: the trigger did not start one.",
                status_code=exc.status_code,
                body=exc.body,
            ),
            sent_at=job_trigger.sent_at,
        )
        return None
    return _record_started(job_trigger, dag_run, status_code=200)
