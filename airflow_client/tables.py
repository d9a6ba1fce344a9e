"""The job-history table (django-tables2) and its CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import django_tables2 as tables
from django.core.paginator import Paginator
from django.db import models
from django.db.models import DurationField, ExpressionWrapper, F, OuterRef, Subquery, prefetch_related_objects
from django.http import HttpRequest, StreamingHttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from airflow_client.display import format_duration
from airflow_client.models import JobRecord, JobRun, record_prefetches

#: The history's page size: ``?per_page=`` is clamped to 1..PER_PAGE_MAX (0 or junk: the default).
PER_PAGE_DEFAULT = 25
PER_PAGE_MAX = 200


class BoundedPaginator(Paginator):  # type: ignore[type-arg]
    """A paginator whose page size stays within 1..PER_PAGE_MAX, whatever the query string asked."""

    def __init__(self, object_list: Any, per_page: int | str, *args: Any, **kwargs: Any) -> None:
        try:
            size = int(per_page)
        except (TypeError, ValueError):
            size = PER_PAGE_DEFAULT
        super().__init__(object_list, min(max(size, 1), PER_PAGE_MAX), *args, **kwargs)


def annotate_for_sorting(runs: models.QuerySet[JobRun]) -> models.QuerySet[JobRun]:
    """Give the computed columns (first record, duration) something the database can sort on."""
    first_record = JobRecord.objects.filter(job_run=OuterRef("pk")).order_by("content_type_id", "object_id")
    annotated: models.QuerySet[JobRun] = runs.annotate(
        record_key=Subquery(first_record.values("object_id")[:1]),
        run_duration=ExpressionWrapper(F("end_date") - F("start_date"), output_field=DurationField()),
    )
    return annotated


def linked_records(runs: Sequence[JobRun]) -> dict[int, list[models.Model]]:
    """The records of many runs at once: one query for the links, one per model."""
    # JobRun.records() answers from this prefetch, as it does in the admin.
    prefetch_related_objects(list(runs), *record_prefetches())
    return {run.pk: run.records() for run in runs}


class JobRunTable(tables.Table):  # type: ignore[misc]
    records = tables.Column(verbose_name=_("Records"), empty_values=(), order_by=("record_key",))
    dag_id = tables.Column(verbose_name=_("DAG"))
    dag_run_id = tables.Column(
        verbose_name=_("Run"), linkify=("airflow_client:run_detail", {"pk": tables.A("pk")})
    )
    state = tables.Column(verbose_name=_("State"))
    start_date = tables.DateTimeColumn(
        verbose_name=_("Started"), format="SHORT_DATETIME_FORMAT", attrs={"td": {"class": "ac-nowrap"}}
    )
    duration = tables.Column(
        verbose_name=_("Duration"),
        empty_values=(),
        order_by=("run_duration",),
        attrs={"td": {"class": "ac-nowrap"}},
    )
    started_by = tables.Column(
        verbose_name=_("Started by"), empty_values=(), order_by=("started_here", "started_by__username")
    )
    run_type = tables.Column(verbose_name=_("Run type"))
    environment = tables.Column(verbose_name=_("Environment"))

    class Meta:
        model = JobRun
        fields = ()
        sequence = (
            "records",
            "dag_id",
            "dag_run_id",
            "state",
            "start_date",
            "duration",
            "started_by",
            "run_type",
            "environment",
        )
        # Only the sort and page links swap the table (the container boosts them); a row's links
        # (its run, its records) open their own pages.
        attrs = {"class": "ac-table", "tbody": {"hx-boost": "false"}}
        empty_text = _("No runs match these filters.")
        template_name = "airflow_client/table.html"

    _records: dict[int, list[models.Model]] | None = None

    def _set_order_by(self, value: Any) -> None:
        """``?sort=`` keeps only this table's column names (each maybe with "-"): anything else,
        e.g. "a.b", is dropped before django-tables2 reads it as an accessor path."""
        aliases = value.split(",") if isinstance(value, str) else (value or ())
        known = [
            alias for alias in aliases if isinstance(alias, str) and alias.removeprefix("-") in self.columns
        ]
        tables.Table.order_by.fset(self, known)

    order_by = property(tables.Table.order_by.fget, _set_order_by)

    def records_of(self, run: JobRun) -> list[models.Model]:
        if self._records is None:
            # Only the rows on this page (the paginator has sliced them already).
            rows = list(self.page.object_list.data) if getattr(self, "page", None) else list(self.data)
            self._records = linked_records(rows)
        return self._records.get(run.pk, [])

    def render_records(self, record: JobRun) -> SafeString:
        return render_to_string("airflow_client/records_cell.html", {"records": self.records_of(record)})

    def render_state(self, record: JobRun) -> SafeString:
        # the state itself: ``value`` is its label ("Succeeded"), which no badge class matches
        return render_to_string("airflow_client/state_badge.html", {"state": record.state})

    def render_duration(self, record: JobRun) -> str:
        return format_duration(record.duration) or "—"

    def render_started_by(self, record: JobRun) -> str:
        return record.started_by_label


CSV_HEADER = (
    "id",
    "environment",
    "dag_id",
    "dag_run_id",
    "state",
    "run_type",
    "started_from",
    "started_by",
    "records",
    "logical_date",
    "queued_at",
    "start_date",
    "end_date",
    "duration_seconds",
    "url",
)


class _Echo:
    """csv.writer wants a file; this one hands each row back for streaming."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start like a formula; a leading quote makes them text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _rows(request: HttpRequest, runs: Iterable[JobRun], batch: int = 500) -> Iterator[list[str]]:
    yield list(CSV_HEADER)
    chunk: list[JobRun] = []
    for run in runs:
        chunk.append(run)
        if len(chunk) == batch:
            yield from _chunk_rows(request, chunk)
            chunk = []
    yield from _chunk_rows(request, chunk)


def _chunk_rows(request: HttpRequest, runs: list[JobRun]) -> Iterator[list[str]]:
    records = linked_records(runs) if runs else {}
    for run in runs:
        yield [
            _cell(value)
            for value in (
                run.pk,
                run.environment,
                run.dag_id,
                run.dag_run_id,
                run.state,
                run.run_type,
                "app" if run.started_here else "airflow",
                run.started_by.get_username() if run.started_by is not None else "",
                " ".join(f"{obj._meta.label_lower}:{obj.pk}" for obj in records.get(run.pk, [])),
                _iso(run.logical_date),
                _iso(run.queued_at),
                _iso(run.start_date),
                _iso(run.end_date),
                int(run.duration.total_seconds()) if run.duration is not None else "",
                request.build_absolute_uri(reverse("airflow_client:run_detail", args=[run.pk])),
            )
        ]


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def csv_response(request: HttpRequest, runs: models.QuerySet[JobRun]) -> StreamingHttpResponse:
    """The runs as CSV, in the order the history table would show them (its ``sort`` parameter)."""
    table = JobRunTable(annotate_for_sorting(runs))
    tables.RequestConfig(request, paginate=False).configure(table)
    ordered = table.data.data  # the queryset, now ordered as the table asked
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _rows(request, ordered.iterator(chunk_size=500))),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="airflow-runs.csv"'
    return response


__all__ = ["JobRunTable", "annotate_for_sorting", "csv_response", "linked_records"]
