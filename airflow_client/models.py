"""Records of what was asked of Airflow (JobTrigger) and of every known run (JobRun).

A run or trigger is linked to any number of records of any model through
JobRecord (content type + object id as text, so non-integer keys work).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import DataError, IntegrityError, models, transaction
from django.db.models import Case, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from airflow_client.exceptions import AirflowError, AuthenticationFailed, BadResponse
from airflow_client.states import ACTIVE_STATES, FINISHED_STATES, RunState, labelled

if TYPE_CHECKING:
    from airflow_client.jobs import Job
    from airflow_client.transports.base import DagRun

# The state changes below are conditional UPDATEs (compare-and-set): each says in its
# docstring which concurrent callers it decides between. None of them talks to Airflow.

#: refresh_error of a run Airflow no longer has.
GONE_MESSAGE = "The run no longer exists in Airflow."

_ANY: Any = object()

#: How a stored error saying Airflow refused this site's credentials (401/403) starts.
CREDENTIALS_REFUSED = "Airflow refused this site's credentials"


def _read_error(exc: Exception) -> str:
    """A failed read, as stored: a refusal of the credentials says so first."""
    if isinstance(exc, AuthenticationFailed):
        return f"{CREDENTIALS_REFUSED}: {exc}"
    return str(exc)


def user_label(user: Any) -> str:
    """A user as pages name them: the full name, else the username."""
    full_name = getattr(user, "get_full_name", lambda: "")()
    return str(full_name or user.get_username())


def content_key(obj: models.Model) -> tuple[ContentType, str]:
    """The (content type, object id) pair a record is linked by."""
    return ContentType.objects.get_for_model(obj), str(obj.pk)


class JobTriggerQuerySet(models.QuerySet["JobTrigger"]):
    def open(self) -> JobTriggerQuerySet:
        """Triggers that have no run yet but may still get one (pending or unknown)."""
        return cast(JobTriggerQuerySet, self.filter(outcome__in=JobTrigger.OPEN))

    def create_for(self, obj: models.Model, request: Mapping[str, Any]) -> JobTrigger:
        """Save a trigger (``request``: its fields) linked to ``obj``; call inside a transaction."""
        job_trigger: JobTrigger = self.create(**request)
        content_type, object_id = content_key(obj)
        JobRecord.objects.create(
            job_trigger=job_trigger,
            content_type=content_type,
            object_id=object_id,
            dag_id=job_trigger.dag_id,
            environment=job_trigger.environment,
        )
        return job_trigger


JobTriggerManager = models.Manager.from_queryset(JobTriggerQuerySet)


class JobTrigger(models.Model):
    """One request to start a DAG run, saved before Airflow is asked.

    It is deleted once its JobRun exists, unless AIRFLOW_PRESERVE_JOB_TRIGGER.
    A trigger that stays ``unknown`` got no answer to its POST: the widget's
    poll, sync() or the next trigger ask Airflow for its run id later
    (triggering.resolve_trigger).
    """

    # Values without explicit labels: mypy then types each member as the str it is
    # (written as a (value, label) pair it would read a tuple and reject comparisons).
    class Outcome(models.TextChoices):
        #: being sent
        PENDING = "pending"
        #: sent, never answered: Airflow may or may not have started the run
        UNKNOWN = "unknown"
        #: refused by Airflow, or not sent
        FAILED = "failed"
        #: the run exists (kept only with AIRFLOW_PRESERVE_JOB_TRIGGER)
        STARTED = "started"

    #: outcomes of a trigger that has no run yet and may still get one.
    OPEN = (Outcome.PENDING, Outcome.UNKNOWN)

    environment = models.CharField(_("environment"), max_length=100)
    dag_id = models.CharField(_("DAG id"), max_length=250)
    run_id = models.CharField(_("run id"), max_length=250)
    conf = models.JSONField(_("conf"), default=dict, blank=True)
    note = models.TextField(_("note"), blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    status_code = models.PositiveIntegerField(_("status code"), null=True, blank=True)
    response = models.JSONField(_("response"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    #: when Airflow was last asked about an open trigger (callers coalesce on it, like JobRun.refreshed_at).
    checked_at = models.DateTimeField(_("last asked Airflow"), null=True, blank=True)
    #: when the POST left; None while it has not (such a trigger cannot be in Airflow)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    objects = JobTriggerManager()

    class Meta:
        verbose_name = _("job trigger")
        verbose_name_plural = _("job triggers")
        ordering = ("-created_at", "-id")
        indexes = (models.Index(fields=("outcome", "created_at")),)

    def __str__(self) -> str:
        return f"{self.dag_id} / {self.run_id}"

    def records(self) -> list[models.Model]:
        return _linked_records(self.job_records.all())

    @property
    def in_flight_since(self) -> datetime:
        """Since when its POST may be on its way: sent_at, or created_at while not sent."""
        return self.sent_at or self.created_at

    def recorded_run(self) -> JobRun | None:
        """The JobRun of this trigger's run id, if one is recorded."""
        found: JobRun | None = JobRun.objects.filter(
            environment=self.environment, dag_id=self.dag_id, dag_run_id=self.run_id
        ).first()
        return found

    def reread(self) -> bool:
        """Reload in place; False (the instance kept as it was) when it was deleted meanwhile."""
        try:
            self.refresh_from_db()
        except JobTrigger.DoesNotExist:  # started and not preserved, or deleted by hand
            return False
        return True

    def mark_sent(self) -> bool:
        """Stamp ``sent_at`` just before the POST: the point of no return.

        Taken only while the trigger is still pending: one given up meanwhile (its
        record freed for another caller, see mark_failed(sent_at=None)) is not sent
        at all, and False is returned (the trigger re-read). Exactly one of the two happens.
        """
        now = timezone.now()
        if JobTrigger.objects.filter(pk=self.pk, outcome=self.Outcome.PENDING).update(sent_at=now):
            self.sent_at = now
            return True
        self.reread()
        return False

    def mark_unknown(self, error: str) -> None:
        """Sent, never answered: Airflow may have started the run (resolve_trigger asks later)."""
        JobTrigger.objects.filter(pk=self.pk).update(outcome=self.Outcome.UNKNOWN, error=error)
        self.reread()

    def mark_failed(self, exc: Exception, *, sent_at: datetime | None = _ANY) -> None:
        """Mark the trigger failed with ``exc`` and free the record's slot; re-read it.

        With ``sent_at``, only if the trigger is still open and was (not) sent exactly
        then: a caller deciding from an older reading must not fail a trigger just sent.
        """
        if isinstance(exc, AirflowError):
            body = (
                exc.body if isinstance(exc.body, (dict, list)) else ({"text": exc.body} if exc.body else None)
            )
            status_code, error = exc.status_code, exc.detail
            if isinstance(exc, AuthenticationFailed):
                error = f"{CREDENTIALS_REFUSED}: {exc.detail}"
        else:
            body, status_code, error = None, None, f"{type(exc).__name__}: {exc}"
        triggers = JobTrigger.objects.filter(pk=self.pk)
        if sent_at is not _ANY:
            triggers = triggers.filter(outcome__in=JobTrigger.OPEN, sent_at=sent_at)
        with transaction.atomic():
            if triggers.update(
                outcome=self.Outcome.FAILED, status_code=status_code, response=body, error=error
            ):
                JobSlot.objects.filter(job_trigger=self, job_run__isnull=True).delete()
        self.reread()

    def mark_started(self, job_run: JobRun, *, status_code: int, response: Any, keep: bool) -> None:
        """Hand the trigger's records and slot to ``job_run`` (Airflow started it), then mark
        the trigger started (``keep``) or delete it. Call in the transaction that stored the run."""
        for link in self.job_records.all():
            job_run.link_record(link.content_type_id, link.object_id)
        # The slot goes to the run before the trigger may go.
        JobSlot.objects.filter(job_trigger=self).update(job_run=job_run)
        triggers = JobTrigger.objects.filter(pk=self.pk)
        if keep:
            triggers.update(outcome=self.Outcome.STARTED, status_code=status_code, response=response)
        else:
            triggers.delete()

    def claim_check(self, interval: timedelta, now: datetime) -> bool:
        """Elect this caller to ask Airflow about the open trigger: a conditional UPDATE of
        ``checked_at`` that one caller per ``interval`` wins (like JobRun.claim_refresh)."""
        claimed = (
            JobTrigger.objects.filter(pk=self.pk, outcome__in=JobTrigger.OPEN)
            .filter(Q(checked_at__isnull=True) | Q(checked_at__lte=now - interval))
            .update(checked_at=now)
        )
        return bool(claimed)

    def store_error(self, exc: Exception) -> None:
        """Keep why Airflow could not be asked (the trigger stays open); re-read it."""
        error = (
            _read_error(exc)
            if isinstance(exc, AuthenticationFailed)
            else f"Airflow could not be asked: {exc}"
        )
        JobTrigger.objects.filter(pk=self.pk).update(error=error[:2000])
        self.reread()


class JobRunQuerySet(models.QuerySet["JobRun"]):
    def for_object(self, obj: models.Model) -> JobRunQuerySet:
        """Runs linked to ``obj`` (each run links a record at most once: no duplicates)."""
        content_type, object_id = content_key(obj)
        return cast(
            JobRunQuerySet,
            self.filter(job_records__content_type=content_type, job_records__object_id=object_id),
        )

    def for_job(self, job: type[Job] | Job | str) -> JobRunQuerySet:
        """Runs of a registered Job (class, instance or dag_id): its DAG in its environment."""
        from airflow_client.jobs import Job, get_job  # jobs sits above models

        found = job if isinstance(job, Job) else get_job(job)
        return self.for_dag(found.dag_id, environment=found.environment)

    def for_dag(self, dag_id: str, *, environment: str | None = None) -> JobRunQuerySet:
        """Runs of ``dag_id`` (in ``environment`` when given: one DAG id may live in several Airflows)."""
        runs = self.filter(dag_id=dag_id)
        if environment is not None:
            runs = runs.filter(environment=environment)
        return cast(JobRunQuerySet, runs)

    def active(self) -> JobRunQuerySet:
        """Runs Airflow has not finished (queued or running)."""
        return cast(JobRunQuerySet, self.filter(state__in=ACTIVE_STATES))

    def finished(self) -> JobRunQuerySet:
        return cast(JobRunQuerySet, self.filter(state__in=FINISHED_STATES))

    def newest_first(self) -> JobRunQuerySet:
        """Recorded order, newest first (``created_at`` is when the run happened in Airflow)."""
        return cast(JobRunQuerySet, self.order_by("-created_at", "-id"))

    # The three answers a record's page needs, one meaning each; chain them after
    # for_object() / for_job() / for_dag(), e.g. ``JobRun.objects.for_object(fa).for_job(job).current()``.

    def current(self) -> JobRun | None:
        """The run going on now: the newest queued or running one (None when nothing is)."""
        return self.active().newest_first().first()

    def newest(self) -> JobRun | None:
        """The newest run, whatever its state (None when there is none; QuerySet.latest() raises)."""
        return self.newest_first().first()

    def current_or_newest(self) -> JobRun | None:
        """``current() or newest()`` in one query: what a record's widget shows."""
        going_on_first = Case(When(state__in=ACTIVE_STATES, then=Value(0)), default=Value(1))
        shown: JobRun | None = self.order_by(going_on_first, "-created_at", "-id").first()
        return shown

    def last_success(self, obj: models.Model | None = None, dag_id: str | None = None) -> JobRun | None:
        """The newest successful run (of ``obj``, in ``dag_id``, when given)."""
        runs = self if obj is None else self.for_object(obj)
        if dag_id is not None:
            runs = runs.for_dag(dag_id)
        return cast(JobRunQuerySet, runs.filter(state=RunState.SUCCESS)).newest_first().first()

    # State changes, each one conditional UPDATE. Call them on JobRun.objects (store_dag_run)
    # or on a queryset of one run (claim_refresh, set_state); JobRun has the per-run shortcuts.

    def claim_refresh(self, interval: timedelta | None) -> int:
        """Stamp ``refreshed_at`` on the runs due for a read from Airflow: unfinished and not
        read within ``interval`` (None: all of them). Callers racing for one run coalesce on
        this UPDATE: exactly one of them gets 1 and reads Airflow."""
        now = timezone.now()
        runs = self
        if interval is not None:
            runs = runs.exclude(state__in=FINISHED_STATES).filter(
                Q(refreshed_at__isnull=True) | Q(refreshed_at__lte=now - interval)
            )
        return runs.update(refreshed_at=now)

    def set_state(self, state: str) -> str:
        """Set one run's state by compare-and-set: however many callers store the same change,
        exactly one gets the old state back (and signals); the others get ``state``.

        The run's links get the new state in the same transaction (JobRecord.run_state):
        the run's row stays locked until then, so two changes cannot leave them apart.
        """
        for _attempt in range(5):
            found: tuple[int, str] | None = self.values_list("pk", "state").first()
            if found is None or found[1] == state:
                return state
            pk, old_state = found
            with transaction.atomic(savepoint=False):  # no savepoint: nothing here to roll back alone
                if self.filter(pk=pk, state=old_state).update(state=state, updated_at=timezone.now()):
                    JobRecord.objects.filter(job_run_id=pk).update(run_state=state)
                    return old_state
        return state

    def update_record_keys(self) -> int:
        """Recompute ``record_key`` (the history's sort by records) from these runs' links."""
        first = (
            JobRecord.objects.filter(job_run=models.OuterRef("pk"))
            .order_by("content_type_id", "object_id")
            .values("object_id")[:1]
        )
        return self.update(record_key=Coalesce(models.Subquery(first), Value("")))

    def store_dag_run(self, environment: str, dag_run: DagRun, **extra: Any) -> tuple[JobRun, str | None]:
        """The JobRun for ``dag_run``, created or updated (with ``extra`` fields); also the
        state it had if this call changed it (None: created here), else the new state."""
        key = {"environment": environment, "dag_id": dag_run.dag_id, "dag_run_id": dag_run.run_id}
        error: Exception = IntegrityError("deleted while being recorded")
        for _attempt in range(3):
            try:
                with transaction.atomic():
                    created: JobRun = self.create(
                        **key,
                        **_airflow_fields(dag_run),
                        **extra,
                        state=dag_run.state,
                        refreshed_at=timezone.now(),
                    )
                return created, None
            except IntegrityError as exc:
                # Only the unique constraint means "recorded already" (maybe by a concurrent
                # caller): then the row is there, unless deleted since (retention): try again.
                # Any other constraint is a value that cannot be stored.
                error = exc
            except (DataError, OverflowError, ValueError) as exc:
                raise _unstorable(dag_run, exc) from exc
            job_run = self.filter(**key).first()
            if job_run is None:
                continue
            try:
                if extra:
                    self.filter(pk=job_run.pk).update(**extra)
                old_state = job_run.store(dag_run)
            except (DataError, OverflowError, ValueError) as exc:
                raise _unstorable(dag_run, exc) from exc
            # The UPDATE holds the row until commit, so retention (which locks what it
            # deletes) either waits and spares the row, or deleted it first: then create it.
            if self.filter(pk=job_run.pk).exists():
                return job_run, old_state
        raise _unstorable(dag_run, error) from error


def _unstorable(dag_run: DagRun, exc: Exception) -> BadResponse:
    return BadResponse(f"Airflow's run {dag_run.dag_id}/{dag_run.run_id} cannot be stored: {exc}"[:1000])


JobRunManager = models.Manager.from_queryset(JobRunQuerySet)


class JobRun(models.Model):
    """One DAG run, as last read from Airflow, wherever it was started."""

    #: The states a run can be in (also ``airflow_client.states.RunState``).
    State = RunState

    environment = models.CharField(_("environment"), max_length=100)
    dag_id = models.CharField(_("DAG id"), max_length=250)
    dag_run_id = models.CharField(_("run id"), max_length=250)
    state = models.CharField(_("state"), max_length=20, choices=RunState.choices, default=RunState.QUEUED)
    run_type = models.CharField(_("run type"), max_length=50, blank=True)
    #: None = Airflow did not say (Airflow 2), as opposed to an empty value.
    triggered_by = models.CharField(_("triggered by"), max_length=50, null=True, blank=True)  # noqa: DJ001
    triggering_user = models.CharField(_("triggering user"), max_length=250, blank=True)
    logical_date = models.DateTimeField(_("logical date"), null=True, blank=True)
    run_after = models.DateTimeField(_("run after"), null=True, blank=True)
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)
    start_date = models.DateTimeField(_("started"), null=True, blank=True)
    end_date = models.DateTimeField(_("ended"), null=True, blank=True)
    conf = models.JSONField(_("conf"), default=dict, blank=True)
    note = models.TextField(_("note"), blank=True)
    #: True when this app triggered the run (its JobTrigger may be gone since).
    started_here = models.BooleanField(_("started here"), default=False)
    #: the user who started it here (kept when its JobTrigger is deleted); None: Airflow, or code.
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("started by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    job_trigger = models.ForeignKey(
        JobTrigger,
        verbose_name=_("job trigger"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="job_runs",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    refreshed_at = models.DateTimeField(_("last read from Airflow"), null=True, blank=True)
    refresh_error = models.TextField(_("last read error"), blank=True)
    # How far the run got, by task id (a mapped task counts once): from pushed task
    # events when they arrive (pushed_at set), else from the task instances a refresh reads.
    tasks_total = models.PositiveIntegerField(_("tasks"), null=True, blank=True)
    tasks_done = models.PositiveIntegerField(_("tasks done"), null=True, blank=True)
    running_task_id = models.CharField(_("task running"), max_length=250, blank=True)
    failed_task_id = models.CharField(_("failed task"), max_length=250, blank=True)
    failed_try_number = models.PositiveIntegerField(_("failed try"), null=True, blank=True)
    failed_map_index = models.IntegerField(_("failed map index"), default=-1)
    #: the failed try's error line, when its failure event carried one.
    failed_error = models.TextField(_("failed task's error"), blank=True)
    #: when the last event pushed from Airflow arrived (None: never).
    pushed_at = models.DateTimeField(_("last event received"), null=True, blank=True)
    #: the first linked record's id (links ordered by content type, then id): what the history's
    #: "Records" column sorts on, kept here so that sort reads an index (see update_record_keys).
    record_key = models.CharField(_("record key"), max_length=255, blank=True, default="", editable=False)

    objects = JobRunManager()

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        ordering = ("-created_at", "-id")
        permissions = (
            ("trigger_job", _("Can trigger Airflow jobs")),
            ("rerun_job", _("Can re-run Airflow job runs")),
            ("mark_job", _("Can mark Airflow job runs succeeded or failed, and cancel them")),
        )
        constraints = (
            models.UniqueConstraint(
                fields=("environment", "dag_id", "dag_run_id"), name="airflow_client_jobrun_unique_run"
            ),
        )
        indexes = (
            # the history's default order, alone and within a state (also the unfinished runs sync reads)
            models.Index(fields=("created_at", "id"), name="airflow_cli_jobrun_created"),
            models.Index(fields=("state", "created_at", "id"), name="airflow_cli_jobrun_state"),
            # the history sorted by records, both ways (the other way reads it backwards)
            models.Index(fields=("record_key", "-created_at", "-id"), name="airflow_cli_jobrun_record_key"),
        )

    def __str__(self) -> str:
        return f"{self.dag_id} / {self.dag_run_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save; a saved run's links get its state and date in the same transaction (JobRecord)."""
        adding = self._state.adding
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            super().save(*args, **kwargs)
            if not adding:
                self.job_records.update(
                    environment=self.environment, run_state=self.state, run_created_at=self.created_at
                )

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def started_by_label(self) -> str:
        """Who started the run, as people read it: the user, "this site" (code), or "Airflow"."""
        if self.started_here:
            if self.started_by is not None:
                return user_label(self.started_by)
            return str(_("this site"))
        if self.triggering_user:  # Airflow 3 says who, e.g. from its UI
            return f"{_('Airflow')} ({self.triggering_user})"
        return str(_("Airflow"))

    @property
    def duration(self) -> timedelta | None:
        if self.start_date is None or self.end_date is None:
            return None
        return self.end_date - self.start_date

    def records(self) -> list[models.Model]:
        """The records this run was about (one query per model)."""
        return _linked_records(self.job_records.all())

    def differs_from(self, dag_run: DagRun) -> bool:
        """Whether Airflow's ``dag_run`` says anything this record does not."""
        wanted: dict[str, Any] = {**_airflow_fields(dag_run), "state": dag_run.state}
        return any(getattr(self, name) != value for name, value in wanted.items())

    def reread(self) -> bool:
        """Reload in place; False (the instance kept as it was) when it was deleted meanwhile."""
        try:
            self.refresh_from_db()
        except JobRun.DoesNotExist:  # pruned by another caller's retention, or deleted by hand
            return False
        return True

    def _one(self) -> JobRunQuerySet:
        return cast(JobRunQuerySet, JobRun.objects.filter(pk=self.pk))

    def refreshed_within(self, interval: timedelta) -> bool:
        """Read from Airflow less than ``interval`` ago (as loaded: no query)."""
        return self.refreshed_at is not None and self.refreshed_at > timezone.now() - interval

    def claim_refresh(self, interval: timedelta | None) -> bool:
        """Whether this caller is the one to read the run from Airflow now (see
        JobRunQuerySet.claim_refresh; ``interval`` None claims it whatever its state)."""
        return bool(self._one().claim_refresh(interval))

    def set_state(self, state: str) -> str:
        """Compare-and-set the state: the old one if this call changed it, else ``state``."""
        return self._one().set_state(state)

    def store(self, dag_run: DagRun) -> str:
        """Write what Airflow said; the old state if this call changed it, else the new one."""
        runs = self._one()
        runs.update(**_airflow_fields(dag_run), refresh_error="", updated_at=timezone.now())
        return runs.set_state(dag_run.state)

    def store_error(self, exc: Exception) -> None:
        """Keep why Airflow could not be read (the state stays as last read); re-read the run."""
        self._one().update(refresh_error=_read_error(exc)[:2000])
        self.reread()

    @property
    def credentials_refused(self) -> bool:
        """The last read failed because Airflow refused this site's credentials (401/403)."""
        return self.refresh_error.startswith(CREDENTIALS_REFUSED)

    def mark_gone(self) -> str:
        """Airflow has no such run (deleted there). An unfinished one will never finish, so it
        counts as failed; a finished one keeps its outcome (Airflow cleans up old runs).
        Returns as set_state() does; re-read before comparing."""
        runs = self._one()
        runs.update(refresh_error=GONE_MESSAGE)
        return cast(JobRunQuerySet, runs.exclude(state__in=FINISHED_STATES)).set_state(RunState.FAILED)

    def release_slot(self) -> None:
        """Free the record this finished run held (JobSlot)."""
        JobSlot.objects.filter(job_run=self).delete()

    @property
    def progress(self) -> Progress | None:
        """How far the run got (None when nothing is known)."""
        if self.tasks_total is None:
            return None
        return Progress(
            total=self.tasks_total,
            done=min(self.tasks_done or 0, self.tasks_total),
            running_task_id=self.running_task_id,
            failed_task_id=self.failed_task_id,
            failed_try_number=self.failed_try_number,
            failed_map_index=self.failed_map_index,
            failed_error=self.failed_error,
        )

    def store_progress(self, progress: Progress, **extra: Any) -> None:
        """Write ``progress`` (and ``extra`` fields), keeping the instance in step."""
        fields = {
            "tasks_total": progress.total,
            "tasks_done": progress.done,
            "running_task_id": progress.running_task_id[:250],
            "failed_task_id": progress.failed_task_id[:250],
            "failed_try_number": progress.failed_try_number,
            "failed_map_index": progress.failed_map_index,
            "failed_error": progress.failed_error[:2000],
            **extra,
        }
        self._one().update(**fields)
        for name, value in fields.items():
            setattr(self, name, value)

    def link_record(self, content_type_id: int, object_id: str) -> None:
        """Link the run to one record (once: a run links a record at most once)."""
        JobRecord.objects.get_or_create(
            job_run=self,
            content_type_id=content_type_id,
            object_id=object_id,
            defaults={"dag_id": self.dag_id},
        )


@dataclass(frozen=True)
class Progress:
    """How far a run got, counted by task id (all map indexes of a mapped task count as one)."""

    total: int
    done: int
    running_task_id: str = ""
    failed_task_id: str = ""
    failed_try_number: int | None = None
    failed_map_index: int = -1
    failed_error: str = ""

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total if self.total else 0


class JobEvent(models.Model):
    """One event Airflow pushed about a run (events endpoint or SQS): a DAG's or a task's.

    ``event_id`` is the sender's: a replayed event is recognised and changes nothing.
    Deleted with its run (retention included).
    """

    job_run = models.ForeignKey(
        JobRun, verbose_name=_("job run"), on_delete=models.CASCADE, related_name="events"
    )
    event_id = models.CharField(_("event id"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=50)
    #: empty for an event of the whole run (dag_success, dag_failure).
    task_id = models.CharField(_("task id"), max_length=250, blank=True)
    map_index = models.IntegerField(_("map index"), default=-1)
    try_number = models.PositiveIntegerField(_("try"), null=True, blank=True)
    task_state = models.CharField(_("task state"), max_length=30, blank=True)
    error = models.TextField(_("error"), blank=True)
    payload = models.JSONField(_("payload"), null=True, blank=True)
    host = models.CharField(_("host"), max_length=255, blank=True)
    #: when Airflow sent it.
    occurred_at = models.DateTimeField(_("sent"))
    created_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("job event")
        verbose_name_plural = _("job events")
        ordering = ("occurred_at", "id")
        indexes = (models.Index(fields=("job_run", "occurred_at")),)

    def __str__(self) -> str:
        where = f" {self.task_id}" if self.task_id else ""
        return f"{self.kind}{where} ({self.occurred_at:%Y-%m-%d %H:%M:%S})"

    @property
    def finished_task(self) -> bool:
        return self.kind in {"task_success", "task_failure"}

    @property
    def label(self) -> str:
        """The kind in words (a custom kind, sent with send_event(), as it was sent)."""
        return str(EVENT_LABELS.get(self.kind, self.kind))

    @property
    def payload_json(self) -> str:
        return (
            ""
            if self.payload is None
            else json.dumps(self.payload, indent=2, sort_keys=True, ensure_ascii=False)
        )


#: The callbacks' event kinds, in words.
EVENT_LABELS = {
    "dag_success": _("Run succeeded"),
    "dag_failure": _("Run failed"),
    "task_start": _("Task started"),
    "task_success": _("Task succeeded"),
    "task_failure": _("Task failed"),
    "task_retry": _("Task failed, will retry"),
}


class JobAction(models.Model):
    """What an operator did to a run (re-run, mark, cancel), and how it went: the run's audit lines."""

    class Action(models.TextChoices):
        RERUN = labelled("rerun", _("re-ran every task"))
        RERUN_FAILED = labelled("rerun_failed", _("re-ran the failed tasks"))
        MARK_SUCCESS = labelled("mark_success", _("marked it succeeded"))
        MARK_FAILED = labelled("mark_failed", _("marked it failed"))
        CANCEL = labelled("cancel", _("cancelled it"))

    job_run = models.ForeignKey(
        JobRun, verbose_name=_("job run"), on_delete=models.CASCADE, related_name="actions"
    )
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    #: the user's name when it was done (kept if the user is deleted).
    user_label = models.CharField(_("by"), max_length=250, blank=True)
    #: False: Airflow refused (``detail`` says why).
    done = models.BooleanField(_("done"), default=True)
    detail = models.TextField(_("detail"), blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        verbose_name = _("job action")
        verbose_name_plural = _("job actions")
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.user_label or '?'} {self.get_action_display()} ({self.created_at:%Y-%m-%d %H:%M})"


class JobTaskResult(models.Model):
    """What a Django task run on Airflow returned or raised (airflow_client.tasks).

    Read once from the run's XCom when the run finished; deleted with its run, and
    when the run is queued again (a re-run). Its creation is what announces the
    task finished: the primary key lets exactly one caller create it.
    """

    job_run = models.OneToOneField(
        JobRun,
        verbose_name=_("job run"),
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="task_result",
    )
    #: Django's TaskResultStatus: SUCCESSFUL or FAILED.
    status = models.CharField(_("status"), max_length=10)
    return_value = models.JSONField(_("return value"), null=True, blank=True)
    exception_class_path = models.CharField(_("exception class"), max_length=250, blank=True)
    traceback = models.TextField(_("traceback"), blank=True)
    #: Airflow's try number of the last try.
    attempts = models.PositiveIntegerField(_("attempts"), default=1)
    #: the host that ran the last try.
    worker = models.CharField(_("worker"), max_length=255, blank=True)
    last_attempted_at = models.DateTimeField(_("last attempted"), null=True, blank=True)
    created_at = models.DateTimeField(_("read"), auto_now_add=True)

    class Meta:
        verbose_name = _("task result")
        verbose_name_plural = _("task results")

    def __str__(self) -> str:
        return f"{self.job_run_id}: {self.status}"


class JobRecordQuerySet(models.QuerySet["JobRecord"]):
    def of(self, obj: models.Model, dag_id: str, environment: str) -> JobRecordQuerySet:
        """The links of ``obj`` in ``dag_id`` and ``environment`` (a Job's DAG in its Airflow)."""
        content_type, object_id = content_key(obj)
        return cast(
            JobRecordQuerySet,
            self.filter(
                content_type=content_type, object_id=object_id, dag_id=dag_id, environment=environment
            ),
        )

    def newest_runs(self, *, states: Iterable[str] = (), latest: bool = False) -> list[JobRun]:
        """The newest run in each of ``states`` and, with ``latest``, the newest of all: one query
        whose every part is one step down one of JobRecord's indexes, however long the history.

        Call it on :meth:`of`; the runs come newest first, with their ``started_by``.
        """
        newest_first = ("-run_created_at", "-job_run_id")
        parts = [self.filter(run_state=state) for state in states]
        if latest:
            parts.append(self.filter(run_created_at__isnull=False))
        if not parts:
            return []
        picks = Q()
        for part in parts:
            picks |= Q(pk=models.Subquery(part.order_by(*newest_first).values("pk")[:1]))
        links = JobRecord.objects.filter(picks).select_related("job_run__started_by").order_by(*newest_first)
        runs: list[JobRun] = []
        for link in links:
            if link.job_run is not None and link.job_run not in runs:
                runs.append(link.job_run)
        return runs

    def refill(self) -> int:
        """Copy each linked run's environment, state and date onto these links (for links
        written without save(), e.g. by bulk_create)."""
        runs = JobRun.objects.filter(pk=models.OuterRef("job_run_id"))
        updated: int = self.filter(job_run__isnull=False).update(
            environment=models.Subquery(runs.values("environment")[:1]),
            run_state=models.Subquery(runs.values("state")[:1]),
            run_created_at=models.Subquery(runs.values("created_at")[:1]),
        )
        return updated


JobRecordManager = models.Manager.from_queryset(JobRecordQuerySet)


class JobRecord(models.Model):
    """Links a run or a trigger to one record of any model.

    A record's page asks three things of one (record, Job): the run going on now,
    the newest run, the last success. To answer them without reading the record's
    history, each link carries copies of what those questions sort and filter on
    (the run's environment, state and ``created_at``), and two indexes match the
    questions exactly, so each is one step down an index (JobRecordQuerySet.newest_runs).
    The copies live on the link rather than on a per-(record, DAG) row of pointers
    because they never need recomputing: a deleted run takes its links along, so
    "the newest" stays right without anyone looking for the next one.

    The copies change with the run, in the same transaction: JobRunQuerySet.set_state
    (every state change: store(), mark_gone(), store_dag_run(), record_dag_run()
    and the events go through it) and JobRun.save() update them; a new link copies
    them in save(). Code that writes runs or links around those (``QuerySet.update``
    of a state, ``bulk_create`` of links) calls JobRecordQuerySet.refill() after.
    """

    job_run = models.ForeignKey(
        JobRun, null=True, blank=True, on_delete=models.CASCADE, related_name="job_records"
    )
    job_trigger = models.ForeignKey(
        JobTrigger, null=True, blank=True, on_delete=models.CASCADE, related_name="job_records"
    )
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=255)
    content_object = GenericForeignKey("content_type", "object_id")
    #: copied from the run/trigger so "runs of this record in this DAG" needs no join.
    dag_id = models.CharField(max_length=250)
    #: copied from the run/trigger, like dag_id.
    environment = models.CharField(max_length=100, blank=True, default="")
    #: the run's state and created_at, kept in step with it ("" and None for a trigger's link).
    run_state = models.CharField(max_length=20, blank=True, default="")
    run_created_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = JobRecordManager()

    class Meta:
        verbose_name = _("job record")
        verbose_name_plural = _("job records")
        indexes = (
            # the links made since a moment (the page poll's runs started elsewhere)
            models.Index(fields=("content_type", "object_id", "dag_id", "created_at")),
            # the newest run of a (record, DAG, environment); also the history filtered to a record
            models.Index(
                fields=("content_type", "object_id", "dag_id", "environment", "run_created_at", "job_run"),
                name="airflow_cli_jobrecord_newest",
            ),
            # the newest run in a state (current: queued / running; last success); the history
            # filtered to a record and a state reads its first three columns
            models.Index(
                fields=(
                    "content_type",
                    "object_id",
                    "run_state",
                    "dag_id",
                    "environment",
                    "run_created_at",
                    "job_run",
                ),
                name="airflow_cli_jobrecord_state",
            ),
        )
        constraints = (
            models.CheckConstraint(
                condition=Q(job_run__isnull=False) | Q(job_trigger__isnull=False),
                name="airflow_client_jobrecord_has_owner",
            ),
            models.UniqueConstraint(
                fields=("job_run", "content_type", "object_id"),
                condition=Q(job_run__isnull=False),
                name="airflow_client_jobrecord_unique_run_record",
            ),
        )

    def __str__(self) -> str:
        return f"{self.content_type_id}:{self.object_id} ({self.dag_id})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A new link of a run copies the run's environment, state and date, read (and on
        PostgreSQL locked) in the same transaction, and resets the run's ``record_key``."""
        adding = self._state.adding
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            if adding and self.job_run_id is not None:
                found = (
                    JobRun.objects.select_for_update()
                    .filter(pk=self.job_run_id)
                    .values_list("environment", "state", "created_at")
                    .first()
                )
                if found is not None:
                    self.environment, self.run_state, self.run_created_at = found
            elif adding and not self.environment and self.job_trigger_id is not None:
                self.environment = cast(JobTrigger, self.job_trigger).environment
            super().save(*args, **kwargs)
            if adding and self.job_run_id is not None:
                cast(JobRunQuerySet, JobRun.objects.filter(pk=self.job_run_id)).update_record_keys()


class JobSlotQuerySet(models.QuerySet["JobSlot"]):
    def of(self, job: Job, obj: models.Model) -> JobSlotQuerySet:
        """The slot (at most one) of ``obj`` in ``job``'s DAG and environment."""
        content_type, object_id = content_key(obj)
        return cast(
            JobSlotQuerySet,
            self.filter(
                environment=job.environment, dag_id=job.dag_id, content_type=content_type, object_id=object_id
            ),
        )

    def claim(self, job: Job, obj: models.Model, job_trigger: JobTrigger) -> JobSlot:
        """Take ``obj``'s slot for ``job_trigger``; IntegrityError when it is held (see JobSlot)."""
        content_type, object_id = content_key(obj)
        slot: JobSlot = self.create(
            environment=job.environment,
            dag_id=job.dag_id,
            content_type=content_type,
            object_id=object_id,
            job_trigger=job_trigger,
        )
        return slot


JobSlotManager = models.Manager.from_queryset(JobSlotQuerySet)


class JobSlot(models.Model):
    """The single active slot of a (DAG, record) whose Job disallows concurrent runs.

    The unique constraint is the concurrency guarantee, on SQLite and PostgreSQL
    alike: trigger() INSERTs the slot (with its JobTrigger) in a short
    transaction before calling Airflow; a second caller's INSERT fails with an
    IntegrityError (PostgreSQL makes it wait for the first transaction to
    commit), so only one caller ever reaches Airflow. The slot points at the
    trigger while the call is in flight, then at the run, and is deleted when
    the run finishes or the trigger fails. A slot whose run finished or whose
    trigger failed is stale and is taken over by a conditional delete.
    No transaction or lock is held during the HTTP call.
    """

    environment = models.CharField(max_length=100)
    dag_id = models.CharField(max_length=250)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=255)
    job_trigger = models.ForeignKey(
        JobTrigger, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job_run = models.ForeignKey(JobRun, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = JobSlotManager()

    class Meta:
        verbose_name = _("job slot")
        verbose_name_plural = _("job slots")
        constraints = (
            models.UniqueConstraint(
                fields=("environment", "dag_id", "content_type", "object_id"),
                name="airflow_client_jobslot_unique",
            ),
        )

    def __str__(self) -> str:
        return f"{self.dag_id} {self.content_type_id}:{self.object_id}"

    def drop(self) -> None:
        """Delete this stale slot. Conditional: only the version read is deleted; a slot
        re-claimed meanwhile (another trigger or run) survives."""
        JobSlot.objects.filter(pk=self.pk, job_run=self.job_run_id, job_trigger=self.job_trigger_id).delete()


def _airflow_fields(dag_run: DagRun) -> dict[str, Any]:
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


def record_prefetches() -> list[models.Prefetch[Any] | str]:
    """prefetch_related() arguments that make ``records()`` of many runs or triggers cost one
    query for the links and one per model.

    Links to a model that no longer exists (a stale content type) are left out:
    Django's generic prefetch fails on them.
    """
    live = [ct.pk for ct in ContentType.objects.all() if ct.model_class() is not None]
    return [
        models.Prefetch("job_records", queryset=JobRecord.objects.filter(content_type__in=live)),
        "job_records__content_object",
    ]


def _linked_records(links: models.QuerySet[JobRecord]) -> list[models.Model]:
    """The records behind ``links``; uses prefetch_related("job_records__content_object") if done."""
    ids: dict[int, list[str]] = defaultdict(list)
    found: list[models.Model] = []
    for link in links:  # a prefetched relation answers from its cache
        if JobRecord.content_object.is_cached(link):
            if link.content_object is not None:
                found.append(link.content_object)
        else:
            ids[link.content_type_id].append(link.object_id)
    for content_type_id, object_ids in ids.items():
        model: Any = ContentType.objects.get_for_id(content_type_id).model_class()
        if model is not None:
            found.extend(model._default_manager.filter(pk__in=object_ids))
    return found
