"""The job-history filters (django-filter); every value lives in the query string."""

from __future__ import annotations

from datetime import timezone as dt_timezone
from typing import Any

import django_filters
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters.fields import DateRangeField
from django_filters.widgets import DateRangeWidget

from airflow_client.conf import get_settings
from airflow_client.jobs import all_jobs, dag_ids
from airflow_client.models import JobRecord, JobRun, user_label
from airflow_client.states import RunState

#: Airflow's run types (Airflow 2 says dataset_triggered, Airflow 3 asset_triggered).
RUN_TYPES = (
    ("manual", _("manual")),
    ("scheduled", _("scheduled")),
    ("backfill", _("backfill")),
    ("asset_triggered", _("asset triggered")),
    ("dataset_triggered", _("dataset triggered")),
)


def dag_choices() -> list[tuple[str, str]]:
    return [(dag_id, dag_id) for dag_id in dag_ids()]


def environment_choices() -> list[tuple[str, str]]:
    return [(alias, alias) for alias in get_settings().environments]


def record_type_choices() -> list[tuple[str, str]]:
    """The kinds of record some Job runs for, as "app_label.modelname"."""
    seen: dict[str, str] = {}
    for job in all_jobs():
        try:
            model = job.get_model()
        except (LookupError, ValueError):
            continue
        seen[model._meta.label_lower] = str(model._meta.verbose_name).capitalize()
    return sorted(seen.items(), key=lambda item: item[1])


#: The "started by" choice of runs Airflow started (its UI, a schedule, the CLI).
AIRFLOW_CHOICE = "airflow"


def started_by_choices() -> list[tuple[str, str]]:
    """Airflow, then the users who started runs here."""
    # one index probe per user (JobRun.started_by is indexed), not a pass over every run
    started = JobRun.objects.filter(started_by=OuterRef("pk"))
    users = get_user_model().objects.filter(Exists(started))
    named = sorted((user_label(user), str(user.pk)) for user in users)
    return [(AIRFLOW_CHOICE, str(_("Airflow"))), *((pk, label) for label, pk in named)]


class BoundedDateRangeField(DateRangeField):  # type: ignore[misc]
    """A date range whose ends exist in UTC too: 9999-12-31 west of UTC or 0001-01-01 east of it
    do not, and the database would overflow converting them."""

    def compress(self, data_list: Any) -> slice | None:
        value: slice | None = super().compress(data_list)
        for bound in (value.start, value.stop) if value else ():
            if bound is not None and timezone.is_aware(bound):
                try:
                    bound.astimezone(dt_timezone.utc)
                except OverflowError:
                    raise ValidationError(
                        _("The date %(date)s is out of range in this time zone."),
                        code="out_of_range",
                        params={"date": bound.date().isoformat()},
                    ) from None
        return value


class DateRangeFilter(django_filters.DateFromToRangeFilter):  # type: ignore[misc]
    field_class = BoundedDateRangeField


class JobRunFilter(django_filters.FilterSet):  # type: ignore[misc]
    dag_id = django_filters.ChoiceFilter(label=_("DAG"), choices=dag_choices)
    state = django_filters.ChoiceFilter(label=_("State"), choices=RunState.choices)
    environment = django_filters.ChoiceFilter(label=_("Environment"), choices=environment_choices)
    record_type = django_filters.ChoiceFilter(
        label=_("Record type"), choices=record_type_choices, method="filter_record"
    )
    # Used together with record_type (see filter_record); alone it matches that key in any model.
    object_id = django_filters.CharFilter(label=_("Record id"), method="filter_record")
    run_type = django_filters.ChoiceFilter(label=_("Run type"), choices=RUN_TYPES)
    started_from = django_filters.ChoiceFilter(
        label=_("Started from"),
        choices=(("app", _("this app")), ("airflow", _("Airflow"))),
        method="filter_started_from",
    )
    started_by = django_filters.ChoiceFilter(
        label=_("Started by"), choices=lambda: started_by_choices(), method="filter_started_by"
    )
    started = DateRangeFilter(
        label=_("Started between"), field_name="start_date", widget=DateRangeWidget(attrs={"type": "date"})
    )
    ended = DateRangeFilter(
        label=_("Ended between"), field_name="end_date", widget=DateRangeWidget(attrs={"type": "date"})
    )

    class Meta:
        model = JobRun
        fields = ()

    def filter_record(
        self, queryset: models.QuerySet[JobRun], name: str, value: Any
    ) -> models.QuerySet[JobRun]:
        # Both halves of "a record" must hold for the same link, so they are applied
        # once, together, from whichever of the two filters runs first.
        if getattr(self, "_record_done", False):
            return queryset
        self._record_done = True
        data = self.form.cleaned_data
        links = JobRecord.objects.all()
        if data.get("record_type"):
            model = apps.get_model(data["record_type"])
            links = links.filter(content_type=ContentType.objects.get_for_model(model))
        if data.get("object_id"):
            links = links.filter(object_id=data["object_id"])
        filtered: models.QuerySet[JobRun]
        if data.get("state"):
            # A record's runs in one state sit together in JobRecord's state index (the links
            # copy the state): their keys are read from there, not the record's every run.
            runs_in_state = links.filter(run_state=data["state"]).values("job_run_id")
            filtered = queryset.filter(pk__in=runs_in_state)
        else:
            filtered = queryset.filter(Exists(links.filter(job_run=OuterRef("pk"))))
        return filtered

    def filter_started_by(
        self, queryset: models.QuerySet[JobRun], name: str, value: str
    ) -> models.QuerySet[JobRun]:
        found: models.QuerySet[JobRun] = (
            queryset.filter(started_here=False)
            if value == AIRFLOW_CHOICE
            else queryset.filter(started_by_id=int(value))  # one of the choices: a user's key
        )
        return found

    def filter_started_from(
        self, queryset: models.QuerySet[JobRun], name: str, value: str
    ) -> models.QuerySet[JobRun]:
        filtered: models.QuerySet[JobRun] = queryset.filter(started_here=(value == "app"))
        return filtered
