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
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from airflow_client import triggering
from airflow_client.display import airflow_url
from airflow_client.exceptions import AirflowClientError, AlreadyRunning
from airflow_client.jobs import Job, get_job
from airflow_client.models import JobEvent, JobRecord, JobRun, JobTrigger, record_prefetches

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
    TriggerAdminBase = admin.ModelAdmin[JobTrigger]
    InlineBase = GenericTabularInline
    AdminAction = Callable[[admin.ModelAdmin[Any], HttpRequest, QuerySet[Any]], None]
else:
    RunAdminBase = TriggerAdminBase = EventAdminBase = admin.ModelAdmin
    EventInlineBase = admin.TabularInline
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
        "airflow_link",
        "created_at",
    )
    list_filter = ("dag_id", "state", "environment", RecordTypeFilter, "started_here")
    search_fields = ("dag_run_id", "conf")
    date_hierarchy = "created_at"
    readonly_fields = ("records_links", "airflow_link", "duration")
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
        (_("This site"), {"fields": ("started_here", "job_trigger", "refreshed_at", "refresh_error")}),
    )
    inlines = (JobEventInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobRun]:
        # The records column costs one query per model, not one per row.
        runs: QuerySet[JobRun] = super().get_queryset(request).prefetch_related(*record_prefetches())
        return runs

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs come from Airflow

    def has_change_permission(self, request: HttpRequest, obj: JobRun | None = None) -> bool:
        return False

    @admin.display(description=_("records"))
    def records_links(self, obj: JobRun) -> SafeString:
        return _records_html(obj)

    @admin.display(description=_("Airflow"))
    def airflow_link(self, obj: JobRun) -> SafeString:
        return _airflow_link(obj)


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
    fields = ("run_link", "dag_id", "state", "start_date", "end_date", "airflow_link")
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
            .select_related("job_run")
            .order_by("-job_run__created_at", "-job_run_id")
        )
        return links

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("run"))
    def run_link(self, link: JobRecord) -> SafeString:
        if link.job_run is None:
            return format_html("{}", "-")
        url = reverse("admin:airflow_client_jobrun_change", args=[link.job_run.pk])
        return format_html('<a href="{}">{}</a>', url, link.job_run.dag_run_id)

    @admin.display(description=_("state"))
    def state(self, link: JobRecord) -> str:
        return link.job_run.get_state_display() if link.job_run else ""

    @admin.display(description=_("started"))
    def start_date(self, link: JobRecord) -> Any:
        return link.job_run.start_date if link.job_run else None

    @admin.display(description=_("ended"))
    def end_date(self, link: JobRecord) -> Any:
        return link.job_run.end_date if link.job_run else None

    @admin.display(description=_("Airflow"))
    def airflow_link(self, link: JobRecord) -> SafeString:
        return _airflow_link(link.job_run) if link.job_run else format_html("{}", "-")


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
    label = description or _("Start Airflow job %(dag_id)s for the selected records") % {"dag_id": dag_id}
    return admin.action(description=label)(action)
