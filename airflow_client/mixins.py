"""Runs of a record: a model mixin, per-object helpers and a prefetch for lists.

``prefetch_job_runs(objects)`` attaches each object's current run, latest run,
last success and newest open trigger (per environment and DAG) with four queries
per model, however many objects there are; the helpers below (and the mixin's methods) answer from
that cache when it is there and ask the database otherwise, so both give
the same answer. Asked with a DAG and an environment (as the widget asks), they
read one entry of JobRecord's indexes whatever the record's history (JobRecord
says how); without them, the record's runs. ``prefetch_shown_runs(objects)``
fetches only what a widget shows (two or three queries per model): the page poll
re-renders widgets with it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Case, F, OrderBy, Value, When, Window
from django.db.models.functions import RowNumber

from airflow_client.models import JobRecord, JobRecordQuerySet, JobRun, JobRunQuerySet, JobTrigger
from airflow_client.states import ACTIVE_STATES, RunState

__all__ = [
    "AirflowJobsMixin",
    "current_job_run",
    "last_job_success",
    "latest_job_run",
    "prefetch_job_runs",
    "prefetch_shown_runs",
]

CACHE_ATTR = "_airflow_job_runs"
M = TypeVar("M", bound=models.Model)
#: (environment, dag_id)
_Key = tuple[str, str]


#: What prefetch_job_runs fetches.
ALL_SLOTS = frozenset({"current", "latest", "success", "triggers"})


@dataclass
class PrefetchedRuns:
    """Per (environment, dag_id): the current run, the latest run, the last success."""

    current: dict[_Key, JobRun] = field(default_factory=dict)
    latest: dict[_Key, JobRun] = field(default_factory=dict)
    success: dict[_Key, JobRun] = field(default_factory=dict)
    #: the newest open trigger (pending or unknown: no run yet), for triggering.pending_trigger
    triggers: dict[_Key, JobTrigger] = field(default_factory=dict)
    #: the current run, else the latest: what a widget shows (prefetch_shown_runs)
    shown: dict[_Key, JobRun] = field(default_factory=dict)
    #: the slots filled; a helper asked about another one queries the database as without a prefetch
    fetched: frozenset[str] = ALL_SLOTS


def _newest(runs: dict[_Key, JobRun], dag_id: str | None, environment: str | None) -> JobRun | None:
    matching = [
        run
        for (run_environment, run_dag), run in runs.items()
        if (dag_id is None or run_dag == dag_id) and (environment is None or run_environment == environment)
    ]
    return max(matching, key=lambda run: (run.created_at, run.pk), default=None)


def is_prefetched(obj: models.Model, slot: str | None = None) -> bool:
    """Whether ``obj`` went through prefetch_job_runs (its helpers then make no query), or
    with ``slot``, whether that slot was fetched (prefetch_shown_runs fetches some only)."""
    cached: PrefetchedRuns | None = obj.__dict__.get(CACHE_ATTR)
    return cached is not None and (slot is None or slot in cached.fetched)


def _answer(
    obj: models.Model,
    slot: str,
    dag_id: str | None,
    environment: str | None,
    ask: Callable[[JobRunQuerySet], JobRun | None],
) -> JobRun | None:
    """The prefetched run in ``slot`` when ``obj`` went through prefetch_job_runs, else ``ask``'s answer."""
    cached: PrefetchedRuns | None = obj.__dict__.get(CACHE_ATTR)
    if cached is not None and slot in cached.fetched:
        return _newest(getattr(cached, slot), dag_id, environment)
    if dag_id is not None and environment is not None:
        return _indexed(JobRecord.objects.of(obj, dag_id, environment), slot)
    runs: JobRunQuerySet = JobRun.objects.for_object(obj)
    if dag_id is not None:
        runs = runs.for_dag(dag_id, environment=environment)
    elif environment is not None:
        runs = runs.filter(environment=environment)
    return ask(runs)


#: the states each cached slot is about (latest: every state)
_SLOT_STATES: dict[str, frozenset[str]] = {"current": ACTIVE_STATES, "success": frozenset({RunState.SUCCESS})}


def _indexed(links: JobRecordQuerySet, slot: str) -> JobRun | None:
    """The run in ``slot`` of one (record, DAG, environment), from its links' indexes: one query."""
    states = _SLOT_STATES.get(slot)
    if states is None:
        newest = links.newest_runs(latest=True)
        return newest[0] if newest else None
    # the run's own state decides (the link's copy only finds it)
    return next((run for run in links.newest_runs(states=sorted(states)) if run.state in states), None)


def current_job_run(
    obj: models.Model, dag_id: str | None = None, *, environment: str | None = None
) -> JobRun | None:
    """The run going on now for ``obj`` (in ``dag_id``): its newest queued or running run, or None."""
    return _answer(obj, "current", dag_id, environment, JobRunQuerySet.current)


def latest_job_run(
    obj: models.Model, dag_id: str | None = None, *, environment: str | None = None
) -> JobRun | None:
    """The newest run of ``obj`` (in ``dag_id``), whatever its state."""
    return _answer(obj, "latest", dag_id, environment, JobRunQuerySet.newest)


def last_job_success(
    obj: models.Model, dag_id: str | None = None, *, environment: str | None = None
) -> JobRun | None:
    """The newest successful run of ``obj`` (in ``dag_id``)."""
    return _answer(obj, "success", dag_id, environment, lambda runs: runs.last_success())


def prefetched_trigger(obj: models.Model, dag_id: str, environment: str) -> JobTrigger | None:
    """The newest open trigger of ``dag_id`` in ``environment`` as prefetch_job_runs found it
    (call only when is_prefetched(obj, "triggers"))."""
    cached: PrefetchedRuns = obj.__dict__[CACHE_ATTR]
    return cached.triggers.get((environment, dag_id))


def prefetched_shown(obj: models.Model, dag_id: str, environment: str) -> JobRun | None:
    """The run prefetch_shown_runs found for a widget of ``dag_id`` in ``environment``
    (call only when is_prefetched(obj, "shown"))."""
    cached: PrefetchedRuns = obj.__dict__[CACHE_ATTR]
    return cached.shown.get((environment, dag_id))


def _open_triggers(content_type: ContentType, object_ids: Sequence[str]) -> Iterable[JobRecord]:
    """The links of open triggers to these records, newest trigger first: one query.

    ``run_state=""`` picks the records' trigger links in JobRecord's state index, so their
    run links (the histories) are not read.
    """
    links: Iterable[JobRecord] = (
        JobRecord.objects.filter(
            content_type=content_type,
            object_id__in=object_ids,
            run_state="",
            job_trigger__outcome__in=JobTrigger.OPEN,
        )
        .select_related("job_trigger")
        .order_by("-job_trigger__created_at", "-job_trigger_id")
    )
    return links


def _ranked(
    content_type: ContentType, object_ids: Sequence[str], *, active_first: bool = False, **link_filter: Any
) -> Iterable[JobRecord]:
    """The newest link per (record, environment, DAG) among links matching ``link_filter``
    (with ``active_first``, the newest active one when there is one): one query.

    It ranks on the links' copies of the runs' dates and states, in the order of JobRecord's indexes.
    """
    order: list[OrderBy] = [F("run_created_at").desc(), F("job_run_id").desc()]
    if active_first:
        going_on = Case(When(run_state__in=ACTIVE_STATES, then=Value(0)), default=Value(1))
        order.insert(0, going_on.asc())
    newest_first = Window(
        RowNumber(),
        partition_by=[F("object_id"), F("dag_id"), F("environment")],  # in the order of the index
        order_by=order,
    )
    links: Iterable[JobRecord] = (
        JobRecord.objects.filter(
            content_type=content_type,
            object_id__in=object_ids,
            run_created_at__isnull=False,
            **link_filter,
        )
        .annotate(rank=newest_first)
        .filter(rank=1)
        # the widget names who started the run: no query per run for it
        .select_related("job_run__started_by")
    )
    return links


#: Each run slot: the filter of its runs, and whether an active run goes first.
_RUN_SLOTS: dict[str, tuple[dict[str, Any], bool]] = {
    "latest": ({}, False),
    "success": ({"run_state": RunState.SUCCESS}, False),
    "current": ({"run_state__in": ACTIVE_STATES}, False),
    "shown": ({}, True),
}


def prefetch_job_runs(objects: Iterable[M]) -> list[M]:
    """Attach current / latest / last-success runs and open triggers to each object (4 queries per model)."""
    return _prefetch(objects, ALL_SLOTS)


def prefetch_shown_runs(objects: Iterable[M], *, shown: bool = True, last_success: bool = False) -> list[M]:
    """Attach what a widget shows to each object: its current-or-newest run and open trigger
    (2 queries per model; ``shown=False`` skips them), and with ``last_success`` the newest success
    (one more query)."""
    slots = {"shown", "triggers"} if shown else set()
    return _prefetch(objects, frozenset(slots | ({"success"} if last_success else set())))


def _prefetch(objects: Iterable[M], slots: frozenset[str]) -> list[M]:
    objects = list(objects)
    by_type: dict[ContentType, dict[str, list[M]]] = defaultdict(lambda: defaultdict(list))
    for obj in objects:
        if obj.pk is None:
            continue
        obj.__dict__[CACHE_ATTR] = PrefetchedRuns(fetched=slots)
        by_type[ContentType.objects.get_for_model(obj)][str(obj.pk)].append(obj)
    for content_type, members in by_type.items():
        object_ids = list(members)
        for slot, (run_filter, active_first) in _RUN_SLOTS.items():
            if slot not in slots:
                continue
            for link in _ranked(content_type, object_ids, active_first=active_first, **run_filter):
                assert link.job_run is not None
                key = (link.environment, link.dag_id)
                for obj in members[link.object_id]:
                    getattr(obj.__dict__[CACHE_ATTR], slot)[key] = link.job_run
        if "triggers" not in slots:
            continue
        for link in _open_triggers(content_type, object_ids):
            assert link.job_trigger is not None
            key = (link.job_trigger.environment, link.job_trigger.dag_id)
            for obj in members[link.object_id]:
                obj.__dict__[CACHE_ATTR].triggers.setdefault(key, link.job_trigger)  # newest first
    return objects


class AirflowJobsMixin(models.Model):
    """Adds run lookups to a model: ``obj.job_runs``, ``obj.current_job_run()``, ..."""

    class Meta:
        abstract = True

    @property
    def job_runs(self) -> JobRunQuerySet:
        """Every run of this record (a QuerySet that chains: ``.active()``, ``.for_dag(...)``, ``.newest()``)."""
        runs: JobRunQuerySet = JobRun.objects.for_object(self)
        return runs

    def current_job_run(self, dag_id: str | None = None, *, environment: str | None = None) -> JobRun | None:
        return current_job_run(self, dag_id, environment=environment)

    def latest_job_run(self, dag_id: str | None = None, *, environment: str | None = None) -> JobRun | None:
        return latest_job_run(self, dag_id, environment=environment)

    def last_job_success(self, dag_id: str | None = None, *, environment: str | None = None) -> JobRun | None:
        return last_job_success(self, dag_id, environment=environment)
