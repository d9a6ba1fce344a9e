"""Records of what was asked of Airflow (JobTrigger) and of every known run (JobRun).

A run or trigger is linked to any number of records of any model through
JobRecord (content type + object id as text, so non-integer keys work).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Case, Q, Value, When
from django.utils.translation import gettext_lazy as _

from airflow_client.states import ACTIVE_STATES, FINISHED_STATES, RunState

if TYPE_CHECKING:
    from airflow_client.jobs import Job


def content_key(obj: models.Model) -> tuple[ContentType, str]:
    """The (content type, object id) pair a record is linked by."""
    return ContentType.objects.get_for_model(obj), str(obj.pk)


class JobTrigger(models.Model):
    """One request to start a DAG run, saved before Airflow is asked.

    It is deleted once its JobRun exists, unless AIRFLOW_PRESERVE_JOB_TRIGGER.
    A trigger that stays ``unknown`` got no answer to its POST: the widget's
    poll, sync() or the next trigger ask Airflow for its run id later
    (services.resolve_trigger).
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

    class Meta:
        verbose_name = _("job trigger")
        verbose_name_plural = _("job triggers")
        ordering = ("-created_at", "-id")
        indexes = (models.Index(fields=("outcome", "created_at")),)

    def __str__(self) -> str:
        return f"{self.dag_id} / {self.run_id}"

    def records(self) -> list[models.Model]:
        return _linked_records(self.job_records.all())


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

    objects = JobRunManager()

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        ordering = ("-created_at", "-id")
        permissions = (("trigger_job", _("Can trigger Airflow jobs")),)
        constraints = (
            models.UniqueConstraint(
                fields=("environment", "dag_id", "dag_run_id"), name="airflow_client_jobrun_unique_run"
            ),
        )
        indexes = (models.Index(fields=("state", "environment")),)

    def __str__(self) -> str:
        return f"{self.dag_id} / {self.dag_run_id}"

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def duration(self) -> timedelta | None:
        if self.start_date is None or self.end_date is None:
            return None
        return self.end_date - self.start_date

    def records(self) -> list[models.Model]:
        """The records this run was about (one query per model)."""
        return _linked_records(self.job_records.all())


class JobRecord(models.Model):
    """Links a run or a trigger to one record of any model."""

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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("job record")
        verbose_name_plural = _("job records")
        indexes = (
            models.Index(fields=("content_type", "object_id", "created_at")),
            models.Index(fields=("content_type", "object_id", "dag_id", "created_at")),
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
