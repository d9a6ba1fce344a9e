"""The job-history table (django-tables2) and its CSV export.

At 100,000 runs and more: the default order and the sort by records read an index
(JobRun's ``created_at`` and ``record_key``), the count is PostgreSQL's estimate
when an exact one would read the whole table (:class:`BoundedPaginator`), the
records column costs one query for the links and one per model of the page's
rows, and the CSV streams from a server-side cursor, chunk by chunk.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

import django_tables2 as tables
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.db import connections, models
from django.db.models import DurationField, ExpressionWrapper, F
from django.http import HttpRequest, StreamingHttpResponse
from django.template.loader import get_template
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from airflow_client.display import format_duration
from airflow_client.models import JobRecord, JobRun

#: The history's page size: ``?per_page=`` is clamped to 1..PER_PAGE_MAX (0 or junk: the default).
PER_PAGE_DEFAULT = 25
PER_PAGE_MAX = 200
#: On PostgreSQL, a history of more runs than this shows the planner's estimate of their number
#: (counting them all would read them all); fewer are counted exactly.
EXACT_COUNT_LIMIT = 50_000
#: Runs per chunk of the CSV: one fetch from the cursor, one query for their links, one per model.
CSV_CHUNK = 2_000


class BoundedPaginator(Paginator):  # type: ignore[type-arg]
    """A paginator whose page size stays within 1..PER_PAGE_MAX, whatever the query string asked,
    and whose count is estimated where counting exactly would read a large table (``estimated``)."""

    #: the count is PostgreSQL's estimate (the page says "about"); a page past the real end is empty.
    estimated = False

    def __init__(self, object_list: Any, per_page: int | str, *args: Any, **kwargs: Any) -> None:
        try:
            size = int(per_page)
        except (TypeError, ValueError):
            size = PER_PAGE_DEFAULT
        super().__init__(object_list, min(max(size, 1), PER_PAGE_MAX), *args, **kwargs)

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        for _wrapper in range(2):  # django-tables2 pages its rows, which wrap its data, which wrap it
            if not isinstance(queryset, models.QuerySet):
                queryset = getattr(queryset, "data", queryset)
        if not isinstance(queryset, models.QuerySet):
            counted: int = super().count
            return counted
        found, self.estimated = bounded_count(queryset)
        return found


def bounded_count(queryset: models.QuerySet[Any]) -> tuple[int, bool]:
    """How many rows ``queryset`` has, and whether that is an estimate (PostgreSQL, more
    than EXACT_COUNT_LIMIT rows). One query, two for an estimate.

    On PostgreSQL the count stops after EXACT_COUNT_LIMIT + 1 rows; only past that it
    is estimated: unfiltered, from the table's ``reltuples`` (kept by autovacuum),
    filtered, from the planner's estimate for the query. Other databases count exactly.
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql" or queryset.query.is_empty():
        return queryset.count(), False
    capped = (
        queryset.order_by().values("pk")[: EXACT_COUNT_LIMIT + 1].count()
    )  # keys only: an index can answer
    if capped <= EXACT_COUNT_LIMIT:
        return capped, False
    if not queryset.query.where:
        table = connection.ops.quote_name(queryset.model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
            row = cursor.fetchone()
        estimate = int(row[0]) if row is not None and row[0] is not None else 0
    else:
        plan = json.loads(queryset.order_by().explain(format="json"))
        estimate = int(plan[0]["Plan"]["Plan Rows"])
    return max(estimate, capped), True


def annotate_for_sorting(runs: models.QuerySet[JobRun]) -> models.QuerySet[JobRun]:
    """Give the computed duration column something the database can sort on (the records
    column sorts on JobRun.record_key)."""
    annotated: models.QuerySet[JobRun] = runs.annotate(
        run_duration=ExpressionWrapper(F("end_date") - F("start_date"), output_field=DurationField()),
    )
    return annotated


def _links(run_pks: Iterable[int]) -> tuple[dict[int, list[tuple[int, str]]], dict[int, set[str]]]:
    """The links of these runs, in link order: ({run pk: [(content type id, object id)]},
    {content type id: object ids}). One query."""
    by_run: dict[int, list[tuple[int, str]]] = defaultdict(list)
    by_type: dict[int, set[str]] = defaultdict(set)
    links = JobRecord.objects.filter(job_run__in=list(run_pks)).order_by("pk")
    for run_pk, content_type_id, object_id in links.values_list("job_run_id", "content_type_id", "object_id"):
        by_run[run_pk].append((content_type_id, object_id))
        by_type[content_type_id].add(object_id)
    return by_run, by_type


def _model(content_type_id: int) -> type[models.Model] | None:
    """The model of a content type (Django caches them); None for a model that no longer exists."""
    model: type[models.Model] | None = ContentType.objects.get_for_id(content_type_id).model_class()
    return model


def linked_records(runs: Sequence[JobRun]) -> dict[int, list[models.Model]]:
    """The records of many runs at once: one query for the links, one per model.

    Links to a deleted record or to a model that no longer exists are left out.
    """
    by_run, by_type = _links(run.pk for run in runs)
    found: dict[tuple[int, str], models.Model] = {}
    for content_type_id, object_ids in by_type.items():
        model = _model(content_type_id)
        if model is not None:
            for obj in model._default_manager.filter(pk__in=object_ids):
                found[content_type_id, str(obj.pk)] = obj
    return {run_pk: [found[key] for key in keys if key in found] for run_pk, keys in by_run.items()}


class JobRunTable(tables.Table):  # type: ignore[misc]
    # The value is the row's key (cheap): render_records() shows the page's records, fetched at once.
    records = tables.Column(
        verbose_name=_("Records"),
        accessor=tables.A("pk"),
        empty_values=(),
        # newest first within one record; "-records" reads the same index backwards
        order_by=("record_key", "-created_at", "-id"),
    )
    dag_id = tables.Column(verbose_name=_("DAG"))
    dag_run_id = tables.Column(
        verbose_name=_("Run"), linkify=("airflow_client:run_detail", {"pk": tables.A("pk")})
    )
    state = tables.Column(verbose_name=_("State"))
    start_date = tables.Column(verbose_name=_("Started"), attrs={"td": {"class": "ac-nowrap"}})
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

    @cached_property
    def _cells(self) -> dict[str, Any]:
        """The cell templates, looked up once per table rather than once per row."""
        return {
            "records": get_template("airflow_client/records_cell.html"),
            "state": get_template("airflow_client/state_badge.html"),
        }

    def render_records(self, record: JobRun) -> SafeString:
        html: SafeString = self._cells["records"].render({"records": self.records_of(record)})
        return html

    def render_state(self, record: JobRun) -> SafeString:
        # the state itself: ``value`` is its label ("Succeeded"), which no badge class matches
        html: SafeString = self._cells["state"].render({"state": record.state})
        return html

    def render_start_date(self, value: datetime) -> str:
        # what DateTimeColumn's template would say, without a template per row
        shown = timezone.localtime(value) if settings.USE_TZ and timezone.is_aware(value) else value
        return formats.date_format(shown, "SHORT_DATETIME_FORMAT")

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


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start like a formula; a leading quote makes them text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_fields() -> tuple[str, ...]:
    """The columns the CSV reads (values, not model instances: a hundred thousand of those is slow)."""
    username = f"started_by__{get_user_model().USERNAME_FIELD}"
    return (
        "pk",
        "environment",
        "dag_id",
        "dag_run_id",
        "state",
        "run_type",
        "started_here",
        username,
        "logical_date",
        "queued_at",
        "start_date",
        "end_date",
    )


def _chunks(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _record_labels(run_pks: list[int]) -> dict[int, str]:
    """{run pk: "app.model:pk app.model:pk"} of the records that still exist: one query for the
    links, one per model."""
    by_run, by_type = _links(run_pks)
    labels: dict[int, str] = {}
    existing: set[tuple[int, str]] = set()
    for content_type_id, object_ids in by_type.items():
        model = _model(content_type_id)
        if model is None:
            continue
        labels[content_type_id] = model._meta.label_lower
        pks = model._default_manager.filter(pk__in=object_ids).values_list("pk", flat=True)
        existing.update((content_type_id, str(pk)) for pk in pks)
    return {
        run_pk: " ".join(f"{labels[key[0]]}:{key[1]}" for key in keys if key in existing)
        for run_pk, keys in by_run.items()
    }


def _text(rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def _lines(request: HttpRequest, rows: Iterable[tuple[Any, ...]], chunk_size: int) -> Iterator[str]:
    """The CSV: the header, then one piece of text per chunk of runs (whose records are fetched at once)."""
    yield _text([CSV_HEADER])
    for chunk in _chunks(rows, chunk_size):
        yield _text(_rows(request, chunk))


def _rows(request: HttpRequest, chunk: list[tuple[Any, ...]]) -> Iterator[list[str]]:
    """One chunk's rows, its records fetched at once."""
    # one URL reversed, every run's made from it
    url = request.build_absolute_uri(reverse("airflow_client:run_detail", args=[0]))
    url_head, url_tail = url.rsplit("/0/", 1)
    records = _record_labels([row[0] for row in chunk])
    for pk, environment, dag_id, run_id, state, run_type, here, username, *dates in chunk:
        logical_date, queued_at, start_date, end_date = dates
        duration = (
            int((end_date - start_date).total_seconds())
            if start_date is not None and end_date is not None
            else ""
        )
        yield [
            _cell(value)
            for value in (
                pk,
                environment,
                dag_id,
                run_id,
                state,
                run_type,
                "app" if here else "airflow",
                username or "",
                records.get(pk, ""),
                _iso(logical_date),
                _iso(queued_at),
                _iso(start_date),
                _iso(end_date),
                duration,
                f"{url_head}/{pk}/{url_tail}",
            )
        ]


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def csv_response(request: HttpRequest, runs: models.QuerySet[JobRun]) -> StreamingHttpResponse:
    """The runs as CSV, in the order the history table would show them (its ``sort`` parameter).

    Streamed from a server-side cursor (PostgreSQL; SQLite fetches in batches) CSV_CHUNK rows
    at a time, so memory stays the same for a hundred runs or a million.
    """
    table = JobRunTable(annotate_for_sorting(runs))
    tables.RequestConfig(request, paginate=False).configure(table)
    ordered = table.data.data  # the queryset, now ordered as the table asked
    rows = ordered.values_list(*_csv_fields()).iterator(chunk_size=CSV_CHUNK)
    response = StreamingHttpResponse(_lines(request, rows, CSV_CHUNK), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="airflow-runs.csv"'
    return response


__all__ = ["BoundedPaginator", "JobRunTable", "annotate_for_sorting", "csv_response", "linked_records"]
