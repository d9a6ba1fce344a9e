"""Admin for runs and triggers, an inline for users' model admins, and a bulk trigger action.

Add the inline and the action to your own ModelAdmin::

    from airflow_client.admin import JobRunInline, trigger_action

    @admin.register(FindingAid)
    class FindingAidAdmin(admin.ModelAdmin):
        inlines = [JobRunInline]
        actions = [trigger_action(IndexFindingAid)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.contenttypes.admin import GenericTabularInline
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import lazy
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from airflow_client import controls, refreshing, triggering
from airflow_client.display import airflow_url, format_duration
from airflow_client.exceptions import AirflowClientError, AlreadyRunning
from airflow_client.jobs import Job, get_job, jobs_for_dag
from airflow_client.models import JobEvent, JobRecord, JobRun, JobTaskResult, JobTrigger, record_prefetches
from airflow_client.states import RunState

#: Most unfinished runs of a record its admin page re-reads from Airflow.
MAX_REFRESHED = 20

__all__ = [
    "JobEventAdmin",
    "JobEventInline",
    "JobRunAdmin",
    "JobRunInline",
    "JobTriggerAdmin",
    "trigger_action",
]

if TYPE_CHECKING:  # the admin classes are generic only in django-stubs
    RunAdminBase = admin.ModelAdmin[JobRun]
    EventAdminBase = admin.ModelAdmin[JobEvent]
    EventInlineBase = admin.TabularInline[JobEvent, JobRun]
    TaskResultInlineBase = admin.StackedInline[JobTaskResult, JobRun]
    TriggerAdminBase = admin.ModelAdmin[JobTrigger]
    InlineBase = GenericTabularInline
    AdminAction = Callable[[admin.ModelAdmin[Any], HttpRequest, QuerySet[Any]], None]
else:
    RunAdminBase = TriggerAdminBase = EventAdminBase = admin.ModelAdmin
    EventInlineBase = admin.TabularInline
    TaskResultInlineBase = admin.StackedInline
    InlineBase = GenericTabularInline


def _record_link(record: Model) -> SafeString:
    opts = record._meta
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[record.pk])
    except NoReverseMatch:
        return format_html("{}", record)
    return format_html('<a href="{}">{}</a>', url, record)


def _records_html(owner: JobRun | JobTrigger) -> SafeString:
    return format_html_join(", ", "{}", ((_record_link(record),) for record in owner.records()))


def _job_html(dag_id: str, environment: str) -> SafeString:
    """A Job as pages name it: its label, the DAG id beside it."""
    found = jobs_for_dag(dag_id, environment)
    if not found or found[0].label == dag_id:
        return format_html("{}", dag_id)
    return format_html('{} <span class="quiet">({})</span>', found[0].label, dag_id)


def _airflow_link(job_run: JobRun) -> SafeString:
    url = airflow_url(job_run)
    if not url:
        return format_html("{}", "-")
    return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, _("Open in Airflow"))


class RecordTypeFilter(admin.SimpleListFilter):
    """Runs (or triggers) by the model of the records they are about."""

    title = _("record type")
    parameter_name = "record_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        ids = JobRecord.objects.values_list("content_type_id", flat=True).distinct()
        types = ContentType.objects.filter(pk__in=list(ids)).order_by("app_label", "model")
        return [(str(ct.pk), str(ct)) for ct in types]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        # Only a content type's key: isdigit() also takes "²", and int() refuses 4,300+ digits.
        if not value or not value.isascii() or not value.isdigit() or len(value) > 18:
            return queryset
        owner = "job_run_id" if queryset.model is JobRun else "job_trigger_id"
        filtered: QuerySet[Any] = queryset.filter(
            pk__in=JobRecord.objects.filter(content_type_id=int(value)).values(owner)
        )
        return filtered


class JobEventInline(EventInlineBase):
    """The run's timeline: what Airflow's callbacks pushed (read-only, as everything from Airflow)."""

    model = JobEvent
    fields = ("occurred_at", "kind", "task_id", "map_index", "try_number", "error", "payload", "host")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class JobTaskResultInline(TaskResultInlineBase):
    """What a Django task's run returned or raised (airflow_client.tasks; read-only)."""

    model = JobTaskResult
    fields = (
        "status",
        "return_value",
        "exception_class_path",
        "traceback",
        "attempts",
        "worker",
        "last_attempted_at",
    )
    readonly_fields = fields
    extra = 0
    max_num = 1
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(JobEvent)
class JobEventAdmin(EventAdminBase):
    list_display = ("occurred_at", "kind", "task_id", "try_number", "job_run", "host")
    list_filter = ("kind", "job_run__dag_id")
    search_fields = ("task_id", "kind", "job_run__dag_run_id", "event_id")
    date_hierarchy = "occurred_at"
    list_select_related = ("job_run",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # events come from Airflow

    def has_change_permission(self, request: HttpRequest, obj: JobEvent | None = None) -> bool:
        return False


@admin.register(JobRun)
class JobRunAdmin(RunAdminBase):
    list_display = (
        "dag_run_id",
        "dag_id",
        "state",
        "environment",
        "records_links",
        "started_by_label",
        "airflow_link",
        "created_at",
    )
    list_filter = ("dag_id", "state", "environment", RecordTypeFilter, "started_here", "started_by")
    search_fields = ("dag_run_id", "conf")
    date_hierarchy = "created_at"
    readonly_fields = ("records_links", "airflow_link", "duration", "started_by_label")
    fieldsets = (
        (None, {"fields": ("environment", "dag_id", "dag_run_id", "state", "airflow_link", "records_links")}),
        (
            _("Airflow"),
            {
                "fields": (
                    "run_type",
                    "triggered_by",
                    "triggering_user",
                    "logical_date",
                    "run_after",
                    "queued_at",
                    "start_date",
                    "end_date",
                    "duration",
                    "conf",
                    "note",
                )
            },
        ),
        (
            _("Progress"),
            {
                "fields": (
                    "tasks_done",
                    "tasks_total",
                    "running_task_id",
                    "failed_task_id",
                    "failed_try_number",
                    "failed_map_index",
                    "pushed_at",
                )
            },
        ),
        (
            _("This site"),
            {"fields": ("started_here", "started_by", "job_trigger", "refreshed_at", "refresh_error")},
        ),
    )
    inlines = (JobTaskResultInline, JobEventInline)
    actions = ("rerun_runs", "rerun_failed_tasks", "mark_succeeded", "mark_failed", "cancel_runs")

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobRun]:
        # The records column costs one query per model, not one per row.
        runs: QuerySet[JobRun] = (
            super().get_queryset(request).select_related("started_by").prefetch_related(*record_prefetches())
        )
        return runs

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs come from Airflow

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("airflow_client.rerun_job"))

    def has_mark_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("airflow_client.mark_job"))

    @admin.action(description=_("Re-run every task of the selected runs"), permissions=("rerun",))
    def rerun_runs(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> None:
        self._control(request, queryset, lambda run, user: controls.rerun(run, user=user))

    @admin.action(description=_("Re-run the failed tasks of the selected runs"), permissions=("rerun",))
    def rerun_failed_tasks(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> None:
        self._control(request, queryset, lambda run, user: controls.rerun(run, user=user, only_failed=True))

    @admin.action(description=_("Mark the selected runs succeeded"), permissions=("mark",))
    def mark_succeeded(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> None:
        self._control(request, queryset, lambda run, user: controls.mark(run, RunState.SUCCESS, user=user))

    @admin.action(description=_("Mark the selected runs failed"), permissions=("mark",))
    def mark_failed(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> None:
        self._control(request, queryset, lambda run, user: controls.mark(run, RunState.FAILED, user=user))

    @admin.action(description=_("Cancel the selected runs"), permissions=("mark",))
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> None:
        self._control(request, queryset, lambda run, user: controls.cancel(run, user=user))

    def _control(self, request: HttpRequest, queryset: QuerySet[JobRun], apply: Any) -> None:
        """Apply one control to each selected run (through airflow_client.controls), said per run."""
        for run in queryset:
            name = format_html("{} {}", _job_html(run.dag_id, run.environment), run.dag_run_id)
            try:
                apply(run, request.user)
            except controls.ControlRefused as exc:
                self.message_user(request, format_html("{}: {}", name, exc), messages.ERROR)
            else:
                self.message_user(
                    request, format_html("{}: {}", name, run.get_state_display()), messages.SUCCESS
                )

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        # The page shows the runs as Airflow has them now (at most one call per run per interval).
        changelist = super().get_changelist_instance(request)
        refreshing.refresh_shown(changelist.result_list)
        return changelist

    def has_change_permission(self, request: HttpRequest, obj: JobRun | None = None) -> bool:
        return False

    @admin.display(description=_("records"))
    def records_links(self, obj: JobRun) -> SafeString:
        return _records_html(obj)

    @admin.display(description=_("Airflow"))
    def airflow_link(self, obj: JobRun) -> SafeString:
        return _airflow_link(obj)

    @admin.display(description=_("started by"), ordering="started_by__username")
    def started_by_label(self, obj: JobRun) -> str:
        return obj.started_by_label


@admin.register(JobTrigger)
class JobTriggerAdmin(TriggerAdminBase):
    list_display = (
        "run_id",
        "dag_id",
        "outcome",
        "status_code",
        "environment",
        "records_links",
        "user",
        "created_at",
    )
    list_filter = ("dag_id", "outcome", "environment", RecordTypeFilter)
    search_fields = ("run_id", "conf")
    list_select_related = ("user",)
    readonly_fields = ("records_links",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobTrigger]:
        triggers: QuerySet[JobTrigger] = super().get_queryset(request).prefetch_related(*record_prefetches())
        return triggers

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: JobTrigger | None = None) -> bool:
        return False

    @admin.display(description=_("records"))
    def records_links(self, obj: JobTrigger) -> SafeString:
        return _records_html(obj)


class JobRunInline(InlineBase):
    """The runs of a record, newest first, on the record's own admin page (read only)."""

    model = JobRecord
    ct_field = "content_type"
    ct_fk_field = "object_id"
    fields = ("job_label", "state", "when", "started_by", "links")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name = _("job run")
    verbose_name_plural = _("job runs")

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobRecord]:
        links: QuerySet[JobRecord] = (
            super()
            .get_queryset(request)
            .filter(job_run__isnull=False)
            .select_related("job_run", "job_run__started_by")
            .order_by("-job_run__created_at", "-job_run_id")
        )
        return links

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is not None:  # the record's unfinished runs, as Airflow has them now (coalesced)
            content_type = ContentType.objects.get_for_model(obj)
            unfinished = JobRun.objects.active().filter(
                job_records__content_type=content_type, job_records__object_id=str(obj.pk)
            )
            refreshing.refresh_shown(unfinished[:MAX_REFRESHED])
        return super().get_formset(request, obj, **kwargs)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("job"))
    def job_label(self, link: JobRecord) -> SafeString:
        run = link.job_run
        return _job_html(run.dag_id, run.environment) if run else format_html("{}", "-")

    @admin.display(description=_("state"))
    def state(self, link: JobRecord) -> str:
        return link.job_run.get_state_display() if link.job_run else ""

    @admin.display(description=_("when"))
    def when(self, link: JobRecord) -> str:
        run = link.job_run
        if run is None:
            return ""
        moment = run.start_date or run.created_at
        text = date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")
        duration = format_duration(run.duration)
        return f"{text} ({duration})" if duration else text

    @admin.display(description=_("started by"))
    def started_by(self, link: JobRecord) -> str:
        return link.job_run.started_by_label if link.job_run else ""

    @admin.display(description=_("links"))
    def links(self, link: JobRecord) -> SafeString:
        run = link.job_run
        if run is None:
            return format_html("{}", "-")
        detail = reverse("airflow_client:run_detail", args=[run.pk])
        return format_html(
            '<a href="{}">{}</a> · <a href="{}#tasks">{}</a> · <a href="{}">{}</a> · {}',
            detail,
            run.dag_run_id,
            detail,
            _("logs"),
            reverse("admin:airflow_client_jobrun_change", args=[run.pk]),
            _("admin"),
            _airflow_link(run),
        )


def trigger_action(job: type[Job] | Job | str, *, description: str | None = None) -> AdminAction:
    """An admin action that triggers ``job`` for each selected record and reports per record."""

    def action(modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]) -> None:
        instance = get_job(job)
        user: Any = request.user
        for obj in queryset:
            if not instance.has_trigger_permission(user, obj):
                modeladmin.message_user(
                    request,
                    format_html("{}: not started, you may not start {}.", obj, instance.label),
                    messages.WARNING,
                )
                continue
            try:
                job_run = triggering.trigger(instance, obj, user=user)
            except AlreadyRunning as exc:
                level, text = (
                    messages.WARNING,
                    format_html(
                        "{}: not started, run {} is already {}.",
                        obj,
                        exc.job_run.dag_run_id,
                        exc.job_run.state,
                    ),
                )
            except AirflowClientError as exc:  # TriggerFailed and the rest
                level, text = messages.ERROR, format_html("{}: not started, {}", obj, exc)
            else:
                level, text = (
                    messages.SUCCESS,
                    format_html("{}: started {} (run {}).", obj, instance.label, job_run.dag_run_id),
                )
            modeladmin.message_user(request, text, level)

    dag_id = job if isinstance(job, str) else job.dag_id
    action.__name__ = f"trigger_{dag_id}"
    # Lazy: admin modules load before the Jobs are registered; the label is read when shown.
    label = (
        description
        or lazy(
            lambda: (
                _("Start “%(job)s” (%(dag_id)s) for the selected records")
                % {"job": get_job(job).label, "dag_id": dag_id}
            ),
            str,
        )()
    )
    return admin.action(description=label)(action)
